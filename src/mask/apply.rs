//! Enforcing a mask on a module's weights and on its gradients.

use std::collections::HashMap;

use burn::module::{Module, Param};
use burn::optim::GradientsParams;
use burn::tensor::{Device, Tensor, TensorData};

use super::Mask;
use crate::params::{PathMapper, PathVisitor, map_with_paths, visit_with_paths};

/// A [`Mask`] uploaded to a device, ready to be enforced every step.
///
/// Layers whose mask keeps every weight are skipped entirely, so a dense run
/// pays nothing. Mask tensors are plain (non-autodiff) `f32` tensors of ones and
/// zeros; multiplying by them zeroes pruned weights and gradients.
#[derive(Debug, Clone)]
pub struct MaskedParams {
    layers: HashMap<String, Tensor<1>>,
}

impl MaskedParams {
    /// Uploads the layers of `mask` that prune at least one weight to `device`.
    pub fn new(mask: &Mask, device: &Device) -> Self {
        let layers = mask
            .layers()
            .filter(|(_, layer)| layer.kept_count() < layer.total_count())
            .map(|(path, layer)| {
                let values: Vec<f32> = layer
                    .kept()
                    .iter()
                    .map(|&k| if k { 1.0 } else { 0.0 })
                    .collect();
                let n = values.len();
                let tensor =
                    Tensor::<1>::from_data(TensorData::new(values, [n]), device).without_autodiff();
                (path.to_string(), tensor)
            })
            .collect();
        Self { layers }
    }

    /// Whether there is nothing to enforce (every layer fully kept).
    pub fn is_dense(&self) -> bool {
        self.layers.is_empty()
    }

    /// Zeroes the pruned weights of `model`. The model's parameter ids and
    /// gradient requirements are kept; the result is a leaf the optimizer can
    /// update.
    pub fn apply_to_weights<M: Module>(&self, model: M) -> M {
        if self.is_dense() {
            return model;
        }
        let mut mapper = WeightMasker { masks: self };
        map_with_paths(model, &mut mapper)
    }

    /// Zeroes the gradients of pruned weights, so that no optimizer state
    /// (momentum, Adam moments) ever builds up for them.
    pub fn apply_to_grads<M: Module>(&self, model: &M, grads: &mut GradientsParams) {
        if self.is_dense() {
            return;
        }
        let mut visitor = GradMasker { masks: self, grads };
        visit_with_paths(model, &mut visitor);
    }

    fn get<const D: usize>(&self, path: &str, shape: burn::tensor::Shape) -> Option<Tensor<D>> {
        self.layers.get(path).map(|m| m.clone().reshape(shape))
    }
}

struct WeightMasker<'a> {
    masks: &'a MaskedParams,
}

impl PathMapper for WeightMasker<'_> {
    fn map_float<const D: usize>(
        &mut self,
        path: &str,
        param: Param<Tensor<D>>,
    ) -> Param<Tensor<D>> {
        let Some(mask) = self.masks.get::<D>(path, param.lazy_shape()) else {
            return param;
        };
        param.map(|tensor| {
            let require_grad = tensor.is_require_grad();
            let autodiff = tensor.is_autodiff();
            let masked = tensor.without_autodiff() * mask;
            let masked = if autodiff { masked.autodiff() } else { masked };
            masked.set_require_grad(require_grad)
        })
    }
}

struct GradMasker<'a> {
    masks: &'a MaskedParams,
    grads: &'a mut GradientsParams,
}

impl PathVisitor for GradMasker<'_> {
    fn visit_float<const D: usize>(&mut self, path: &str, param: &Param<Tensor<D>>) {
        let Some(mask) = self.masks.get::<D>(path, param.lazy_shape()) else {
            return;
        };
        if let Some(grad) = self.grads.remove::<D>(param.id) {
            self.grads.register::<D>(param.id, grad * mask);
        }
    }
}

/// Zeroes pruned weights using a mask built on each parameter's own device.
pub(super) fn apply_host_mask<M: Module>(mask: &Mask, model: M) -> M {
    let device = model.devices().into_iter().next();
    match device {
        Some(device) => MaskedParams::new(mask, &device).apply_to_weights(model),
        None => model,
    }
}
