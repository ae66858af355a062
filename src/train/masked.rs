//! Masked optimizer steps: pruned weights stay exactly zero.
//!
//! [`MaskedOptimizer`] wraps any burn [`ModuleOptimizer`] (SGD with momentum
//! and weight decay, Adam, ...). Every step it
//!
//! 1. multiplies the gradients of masked parameters by the mask, so no
//!    optimizer state (momentum, Adam moments) ever builds up for a pruned
//!    entry, and weight decay of a zero weight adds nothing;
//! 2. runs the wrapped optimizer;
//! 3. multiplies the masked weights by the mask again, so nothing the
//!    optimizer does can bring a pruned weight back.
//!
//! Layers whose mask keeps everything are skipped, so dense training pays
//! nothing.

use burn::lr_scheduler::module_lr_scheduler::ModuleLearningRate;
use burn::module::Module;
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::store::RecordError;
use burn::tensor::Device;

use crate::mask::{Mask, MaskedParams};

/// A burn optimizer that enforces a [`Mask`] on every step.
pub struct MaskedOptimizer {
    optimizer: ModuleOptimizer,
    masks: MaskedParams,
}

impl MaskedOptimizer {
    /// Wraps `optimizer`, enforcing `mask` (uploaded to `device`).
    pub fn new(optimizer: ModuleOptimizer, mask: &Mask, device: &Device) -> Self {
        Self {
            optimizer,
            masks: MaskedParams::new(mask, device),
        }
    }

    /// Zeroes the pruned weights of `model`; call once before the first step
    /// if the model may hold non-zero pruned weights.
    pub fn prepare<M: Module>(&self, model: M) -> M {
        self.masks.apply_to_weights(model)
    }

    /// One masked optimizer step at learning rate `lr`: one rate (`f64`)
    /// or burn's per-parameter-group rates (`ModuleLearningRate`).
    pub fn step<M: Module>(
        &mut self,
        lr: impl Into<ModuleLearningRate>,
        model: M,
        mut grads: GradientsParams,
    ) -> M {
        self.masks.apply_to_grads(&model, &mut grads);
        let model = self.optimizer.step(lr, model, grads);
        self.masks.apply_to_weights(model)
    }

    /// The wrapped optimizer (e.g. to save its state).
    pub fn optimizer(&self) -> &ModuleOptimizer {
        &self.optimizer
    }

    /// Replaces the wrapped optimizer's state with burn's optimizer record
    /// `bytes` (what [`ModuleOptimizer::into_bytes`] gives), as the sparse
    /// training path hands its state back.
    pub fn load_state(&mut self, bytes: burn::tensor::Bytes) -> Result<(), RecordError> {
        self.optimizer = self.optimizer.clone().from_bytes(bytes)?;
        Ok(())
    }

    /// Unwraps the optimizer.
    pub fn into_inner(self) -> ModuleOptimizer {
        self.optimizer
    }
}
