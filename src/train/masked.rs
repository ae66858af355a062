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
//!
//! The mask may change during training ([`MaskedOptimizer::replace_mask`],
//! for gradual pruning and dynamic sparse training): the optimizer state of
//! every weight outside the new mask is zeroed with it, so a weight that
//! comes back starts from zero state.

use burn::lr_scheduler::module_lr_scheduler::ModuleLearningRate;
use burn::module::Module;
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::store::RecordError;
use burn::tensor::Device;

use crate::mask::{Mask, MaskError, MaskedParams};
use crate::rewind::RewindError;

/// A burn optimizer that enforces a [`Mask`] on every step.
pub struct MaskedOptimizer {
    optimizer: ModuleOptimizer,
    masks: MaskedParams,
    mask: Mask,
    device: Device,
}

impl MaskedOptimizer {
    /// Wraps `optimizer`, enforcing `mask` on `model`'s parameters, which
    /// train on `device` (where the mask is uploaded).
    ///
    /// A mask that does not fit `model` (a parameter it names that the model
    /// lacks, or a shape that differs: a mask saved for another model) is a
    /// [`MaskError`] naming the parameter, before any step.
    pub fn new<M: Module>(
        optimizer: ModuleOptimizer,
        mask: &Mask,
        model: &M,
        device: &Device,
    ) -> Result<Self, MaskError> {
        mask.validate(model, None)?;
        Ok(Self {
            optimizer,
            masks: MaskedParams::new(mask, device),
            mask: mask.clone(),
            device: device.clone(),
        })
    }

    /// The mask it enforces.
    pub fn mask(&self) -> &Mask {
        &self.mask
    }

    /// Enforces `next` from now on: the weights of `model` outside it are
    /// zeroed, and so is their optimizer state (momentum, Adam's moments),
    /// so a weight `next` brings back starts at zero with zero state.
    /// Returns the masked model. State burn cannot re-read is a
    /// [`RewindError`].
    pub fn replace_mask<M: Module>(&mut self, next: Mask, model: M) -> Result<M, RewindError> {
        next.validate(&model, None)?;
        let bytes = self
            .optimizer
            .into_bytes()
            .map_err(|e| RewindError::Record(e.to_string()))?;
        let masked = crate::optim_state::mask_optimizer_state(&bytes, &model, &next)?;
        self.load_state(burn::tensor::Bytes::from_bytes_vec(masked))
            .map_err(|e| RewindError::Record(e.to_string()))?;
        self.masks = MaskedParams::new(&next, &self.device);
        self.mask = next;
        Ok(self.masks.apply_to_weights(model))
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
