//! The inference form of a trained ticket, read from a stored experiment.

use std::path::Path;

use burn::module::Module;
use burn::tensor::Device;

use super::SparseMlp;
use crate::imp::{Branch, Imp, ImpError, Layout};
use crate::mask::Mask;
use crate::rewind::RewindCheckpoint;

impl Imp {
    /// The trained network of `branch` at `level` (which must be finished)
    /// of the experiment under `output_root`, as a [`SparseMlp`] that skips
    /// the weights the level's mask prunes: the same logits as the dense
    /// masked model, for a fraction of the work.
    ///
    /// `init` builds the model as [`Imp::run`] was given it (a chain of
    /// linear layers, e.g. LeNet-300-100); another model is an
    /// [`ImpError::Config`] naming why.
    pub fn sparse_ticket<M, F>(
        &self,
        output_root: &Path,
        branch: &Branch,
        level: usize,
        device: &Device,
        init: F,
    ) -> Result<SparseMlp, ImpError>
    where
        M: Module,
        F: Fn(&Device, u64) -> M,
    {
        let store = self.config().open_store(&self.directory(output_root))?;
        let files = Layout::level(branch, level);
        let mask = Mask::from_bytes(&store.read(&files.mask())?)?;
        let checkpoint = RewindCheckpoint::from_bytes(&store.read(&files.final_checkpoint())?)?;
        let model = checkpoint.restore(init(device, self.config().seeds.init))?;
        SparseMlp::from_module(&model, &mask)
            .map_err(|e| ImpError::Config(format!("no sparse form of level {level}: {e}")))
    }
}
