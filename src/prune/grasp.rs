//! GraSP (Wang, Zhang & Grosse, "Picking Winning Tickets Before Training by
//! Preserving Gradient Flow", ICLR 2020): the score of a weight is
//! `S = -w * (H g)`, `g` the gradient of the loss and `H` its Hessian; the
//! weights of **highest** `S` are removed (removing them reduces the
//! gradient norm least, or even raises it).
//!
//! burn 0.22's autodiff does not differentiate through a backward pass (its
//! gradients are plain tensors; higher-order derivatives are an open burn
//! feature request, tracel-ai/burn#1942), so the Hessian-gradient product is
//! a central finite difference of gradients along `g`:
//!
//! `H g ≈ (∇L(w + ε g) - ∇L(w - ε g)) / (2 ε)`,
//!
//! with `ε` chosen so the step `ε |g|` is `step` times `max(|w|, 1)` (norms
//! over the prunable weights; exact up to `O(ε²)` where the loss is smooth,
//! i.e. away from ReLU kinks). The same batches give all three gradients.
//! Unlike the authors' code, the loss is the task's own (no temperature on
//! the logits).

use std::ops::Range;

use burn::module::Module;
use burn::tensor::Device;

use super::gradients::{mean_gradient, norm, shifted};
use super::{PruneError, Scores};
use crate::mask::Mask;
use crate::params::float_values;
use crate::task::{DataOrder, Task};

/// GraSP scores `S = -w * (H g)` of the weights `mask` covers (see the
/// module docs), on the batches `iterations` of `order`, with relative
/// finite-difference `step`. **Lower is kept.**
pub fn grasp_scores<M: Module, T: Task<M>>(
    model: &M,
    mask: &Mask,
    task: &T,
    order: &DataOrder,
    iterations: Range<u64>,
    step: f64,
    device: &Device,
) -> Result<Scores, PruneError> {
    if !(step.is_finite() && step > 0.0) {
        return Err(PruneError::InvalidAtInit(format!(
            "the finite-difference step must be finite and > 0, got {step}"
        )));
    }
    let gradient = mean_gradient(model, mask, task, order, iterations.clone(), device)?;
    let weights = float_values(model, |path| mask.contains(path));
    let g_norm = norm(&gradient);
    let epsilon = if g_norm > 0.0 {
        step * norm(&weights).max(1.0) / g_norm
    } else {
        0.0
    };
    let hessian_gradient = if epsilon > 0.0 {
        let at = |sign: f64| {
            let model = shifted(model.clone(), &gradient, (sign * epsilon) as f32);
            mean_gradient(&model, mask, task, order, iterations.clone(), device)
        };
        let (plus, minus) = (at(1.0)?, at(-1.0)?);
        plus.into_iter()
            .map(|(path, p)| {
                let hg = p
                    .iter()
                    .zip(&minus[&path])
                    .map(|(p, m)| ((f64::from(*p) - f64::from(*m)) / (2.0 * epsilon)) as f32)
                    .collect::<Vec<f32>>();
                (path, hg)
            })
            .collect()
    } else {
        // A zero gradient: H g = 0.
        gradient
    };
    Ok(weights
        .into_iter()
        .map(|(path, w)| {
            let scores = w
                .iter()
                .zip(&hessian_gradient[&path])
                .map(|(w, hg)| -w * hg)
                .collect();
            (path, scores)
        })
        .collect())
}
