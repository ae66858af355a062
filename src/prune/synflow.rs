//! SynFlow (Tanaka, Kunin, Yamins & Ganguli, "Pruning neural networks
//! without any data by iteratively conserving synaptic flow", NeurIPS 2020):
//! data-free. Every parameter is replaced by its absolute value, an all-ones
//! input goes through the network and `R` is the sum of its outputs; the
//! score of a weight is `|∂R/∂w * w|`. Pruning runs over many rounds (100 in
//! the paper) on an exponential schedule: round `r` of `n` keeps
//! `N * d^(r/n)` of the `N` weights for a final density `d`, rescoring the
//! surviving network each round, which avoids emptying a layer.
//!
//! On a ReLU network without biases or BatchNorm, each layer's scores add up
//! to the same total, `R` (the conservation the paper's Theorem 2 states).

use burn::module::Module;
use burn::tensor::Tensor;

use super::density::DensityRule;
use super::gradients::{absolute, gradients, weight_times_gradient};
use super::select::keep_top;
use super::{PruneError, Scores};
use crate::mask::Mask;
use crate::task::TaskError;

/// One round of SynFlow scores for the weights `mask` keeps (pruned ones
/// score 0): `objective` computes `R`, the sum of the outputs of its model
/// on an all-ones input (see [`Task::synflow_objective`]). `model` must be
/// on an autodiff device. Higher is kept.
///
/// [`Task::synflow_objective`]: crate::task::Task::synflow_objective
pub fn synflow_scores<M: Module>(
    model: &M,
    mask: &Mask,
    objective: &impl Fn(&M) -> Result<Tensor<1>, TaskError>,
) -> Result<Scores, PruneError> {
    let linear = mask.apply(absolute(model.clone()))?;
    let flow = objective(&linear)?;
    let gradient = gradients(&linear, flow, mask);
    Ok(weight_times_gradient(&linear, mask, &gradient))
}

/// SynFlow's iterative pruning of `dense` to `kept` weights over `rounds`
/// rounds on the exponential schedule (see the module docs), each round's
/// count spread over layers by `rule`. With [`DensityRule::Global`] (the
/// paper's) the result keeps exactly `kept`; a per-layer rule may end a
/// few weights under where rounding differs between rounds.
pub fn synflow_mask<M: Module>(
    model: &M,
    dense: &Mask,
    kept: usize,
    rule: DensityRule,
    rounds: usize,
    objective: &impl Fn(&M) -> Result<Tensor<1>, TaskError>,
) -> Result<Mask, PruneError> {
    let total = dense.kept_count();
    if kept > total {
        return Err(PruneError::KeepTooMany {
            asked: kept,
            available: total,
        });
    }
    let rounds = rounds.max(1);
    let density = kept as f64 / total.max(1) as f64;
    let mut mask = dense.clone();
    for round in 1..=rounds {
        let count = if round == rounds {
            kept
        } else {
            let exact = total as f64 * density.powf(round as f64 / rounds as f64);
            (exact.round() as usize).clamp(kept, mask.kept_count())
        };
        let scores = synflow_scores(model, &mask, objective)?;
        let allocation = within(rule.allocate(dense, count)?, &mask);
        mask = keep_top(&scores, &mask, &allocation)?;
    }
    Ok(mask)
}

/// `allocation` with every layer's count capped at what `mask` keeps there.
fn within(allocation: super::density::Allocation, mask: &Mask) -> super::density::Allocation {
    use super::density::Allocation;
    match allocation {
        Allocation::Global(kept) => Allocation::Global(kept.min(mask.kept_count())),
        Allocation::PerLayer(counts) => Allocation::PerLayer(
            counts
                .into_iter()
                .map(|(path, n)| {
                    let cap = mask.layer(&path).map_or(0, |l| l.kept_count());
                    (path, n.min(cap))
                })
                .collect(),
        ),
    }
}
