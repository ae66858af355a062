//! Enforcing a mask on a module's weights and on its gradients.

use std::any::Any;
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use burn::module::{Module, Param};
use burn::optim::GradientsParams;
use burn::tensor::{Device, Shape, Tensor, TensorData};

use super::Mask;
use crate::params::{PathMapper, PathVisitor, map_with_paths, visit_with_paths};

/// A [`Mask`] ready to be enforced every step on one device.
///
/// Layers whose mask keeps every weight are skipped entirely, so a dense run
/// pays nothing. Each other layer's mask is a plain (non-autodiff) `f32`
/// tensor of ones and zeros, uploaded the first time a step enforces it, in
/// its parameter's own shape, and reused by every later step; multiplying by
/// it zeroes pruned weights and gradients. Being already in shape (no reshape
/// each step) is what lets burn's fusion merge most of the multiplies into
/// the elementwise kernels around them: counted on lavapipe, ResNet-20's 22
/// masked tensors add 17 launches per step, down from 34 with a mask
/// reshaped every step (`BENCHMARKS.md`, kernel launches per step).
#[derive(Debug, Clone)]
pub struct MaskedParams {
    layers: HashMap<String, MaskedLayer>,
    device: Device,
}

/// One masked layer: which entries are kept, and the mask tensor on the
/// device once a step has asked for it (shared by clones).
#[derive(Clone)]
struct MaskedLayer {
    kept: Arc<[bool]>,
    on_device: Arc<OnceLock<Arc<dyn Any + Send + Sync>>>,
}

impl std::fmt::Debug for MaskedLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MaskedLayer")
            .field("entries", &self.kept.len())
            .field("uploaded", &self.on_device.get().is_some())
            .finish()
    }
}

impl MaskedParams {
    /// Prepares the layers of `mask` that prune at least one weight for
    /// enforcement on `device`.
    pub fn new(mask: &Mask, device: &Device) -> Self {
        let layers = mask
            .layers()
            .filter(|(_, layer)| layer.kept_count() < layer.total_count())
            .map(|(path, layer)| {
                let layer = MaskedLayer {
                    kept: layer.kept().into(),
                    on_device: Arc::default(),
                };
                (path.to_string(), layer)
            })
            .collect();
        Self {
            layers,
            device: device.clone(),
        }
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

    /// The mask of the parameter at `path` as a tensor of its `shape`, or
    /// `None` when that parameter is not masked.
    fn get<const D: usize>(&self, path: &str, shape: Shape) -> Option<Tensor<D>> {
        let layer = self.layers.get(path)?;
        let upload = || {
            let values = layer.kept.iter().map(|&k| if k { 1.0f32 } else { 0.0 });
            let data = TensorData::new(values.collect(), shape.clone());
            Tensor::<D>::from_data(data, &self.device).without_autodiff()
        };
        let uploaded = layer.on_device.get_or_init(|| Arc::new(upload()));
        // A parameter keeps its rank, so the cached tensor fits; should it
        // not, a fresh upload still enforces the mask.
        Some(match uploaded.downcast_ref::<Tensor<D>>() {
            Some(tensor) => tensor.clone(),
            None => upload(),
        })
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
