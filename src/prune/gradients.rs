//! Host-side gradients and weight edits that the criteria at initialization
//! share: the mean gradient of a task's loss over some batches, a model
//! shifted along a direction, and a model with every parameter replaced by
//! its absolute value.

use std::ops::Range;

use burn::module::{Module, Param};
use burn::optim::GradientsParams;
use burn::tensor::{Device, Tensor, TensorData};

use super::{PruneError, Weights};
use crate::mask::Mask;
use crate::params::{
    PathMapper, PathVisitor, float_values, is_running_stat_path, map_with_paths, visit_with_paths,
};
use crate::task::{DataOrder, Task};

/// Reads the gradients of the parameters `mask` covers.
struct GradientReader<'a> {
    grads: &'a GradientsParams,
    mask: &'a Mask,
    values: Weights,
}

impl PathVisitor for GradientReader<'_> {
    fn visit_float<const D: usize>(&mut self, path: &str, param: &Param<Tensor<D>>) {
        let Some(layer) = self.mask.layer(path) else {
            return;
        };
        // A parameter the loss does not reach has a zero gradient.
        let values = match self.grads.get::<D>(param.id) {
            Some(grad) => grad
                .into_data()
                .convert::<f32>()
                .try_into_vec::<f32>()
                .expect("converted to f32 above"),
            None => vec![0.0; layer.total_count()],
        };
        self.values.insert(path.to_string(), values);
    }
}

/// Host gradients of `loss` with respect to the parameters `mask` covers
/// (`model` must be on an autodiff device).
pub(crate) fn gradients<M: Module>(model: &M, loss: Tensor<1>, mask: &Mask) -> Weights {
    gradient_values(
        model,
        &GradientsParams::from_grads(loss.backward(), model),
        mask,
    )
}

/// Host copies of the gradients in `grads` of the parameters of `model`
/// that `mask` covers (zero for one the loss does not reach).
pub(crate) fn gradient_values<M: Module>(
    model: &M,
    grads: &GradientsParams,
    mask: &Mask,
) -> Weights {
    let mut reader = GradientReader {
        grads,
        mask,
        values: Weights::new(),
    };
    visit_with_paths(model, &mut reader);
    reader.values
}

/// The mean over `iterations` of the batches of `order` of the gradient of
/// `task`'s loss, for the parameters `mask` covers.
pub(crate) fn mean_gradient<M: Module, T: Task<M>>(
    model: &M,
    mask: &Mask,
    task: &T,
    order: &DataOrder,
    iterations: Range<u64>,
    device: &Device,
) -> Result<Weights, PruneError> {
    let mut sum: Option<Weights> = None;
    let mut count = 0usize;
    for batch in task.batches(order, iterations, device)? {
        let grads = gradients(model, task.loss(model, batch?), mask);
        match &mut sum {
            None => sum = Some(grads),
            Some(sum) => {
                for (path, values) in sum.iter_mut() {
                    for (s, g) in values.iter_mut().zip(&grads[path]) {
                        *s += g;
                    }
                }
            }
        }
        count += 1;
    }
    let mut mean = sum.ok_or_else(|| PruneError::InvalidAtInit("no batches to score on".into()))?;
    for values in mean.values_mut() {
        for v in values.iter_mut() {
            *v /= count as f32;
        }
    }
    Ok(mean)
}

/// Rewrites a parameter tensor on the host side, keeping it a leaf with its
/// gradient requirement.
fn rewrite<const D: usize>(
    param: Param<Tensor<D>>,
    f: impl FnOnce(Tensor<D>) -> Tensor<D>,
) -> Param<Tensor<D>> {
    param.map(|tensor| {
        let require_grad = tensor.is_require_grad();
        let autodiff = tensor.is_autodiff();
        let edited = f(tensor.without_autodiff());
        let edited = if autodiff { edited.autodiff() } else { edited };
        edited.set_require_grad(require_grad)
    })
}

/// Adds `step * direction[path]` to every parameter `direction` names.
struct Shift<'a> {
    direction: &'a Weights,
    step: f32,
}

impl PathMapper for Shift<'_> {
    fn map_float<const D: usize>(
        &mut self,
        path: &str,
        param: Param<Tensor<D>>,
    ) -> Param<Tensor<D>> {
        let Some(direction) = self.direction.get(path) else {
            return param;
        };
        let scaled: Vec<f32> = direction.iter().map(|d| d * self.step).collect();
        rewrite(param, |tensor| {
            let delta =
                Tensor::<D>::from_data(TensorData::new(scaled, tensor.shape()), &tensor.device());
            tensor + delta
        })
    }
}

/// `model` with `step * direction` added to the parameters `direction` names.
pub(crate) fn shifted<M: Module>(model: M, direction: &Weights, step: f32) -> M {
    map_with_paths(model, &mut Shift { direction, step })
}

/// Replaces every trainable parameter by its absolute value.
struct Absolute;

impl PathMapper for Absolute {
    fn map_float<const D: usize>(
        &mut self,
        path: &str,
        param: Param<Tensor<D>>,
    ) -> Param<Tensor<D>> {
        if is_running_stat_path(path) {
            return param;
        }
        rewrite(param, Tensor::abs)
    }
}

/// `|w ⊙ g|` for every masked weight `w` of `model` and its gradient `g`
/// (SNIP's connection sensitivity; SynFlow's synaptic saliency).
pub(crate) fn weight_times_gradient<M: Module>(
    model: &M,
    mask: &Mask,
    gradient: &Weights,
) -> Weights {
    float_values(model, |path| mask.contains(path))
        .into_iter()
        .map(|(path, w)| {
            let scores = w
                .iter()
                .zip(&gradient[&path])
                .map(|(w, g)| (w * g).abs())
                .collect();
            (path, scores)
        })
        .collect()
}

/// `model` with every trainable parameter (biases included) replaced by its
/// absolute value (SynFlow's linearization).
pub(crate) fn absolute<M: Module>(model: M) -> M {
    map_with_paths(model, &mut Absolute)
}

/// Euclidean norm of all values.
pub(crate) fn norm(values: &Weights) -> f64 {
    values
        .values()
        .flatten()
        .map(|&v| f64::from(v) * f64::from(v))
        .sum::<f64>()
        .sqrt()
}
