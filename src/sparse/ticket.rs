//! The inference form of a trained ticket, read from a stored experiment.

use std::path::Path;

use burn::module::Module;
use burn::tensor::Device;

use super::optim::{Slot, SparseOptimizer};
use super::{NormSettings, SparseError, SparseMlp, SparseResNet, state};
use crate::imp::{Branch, Imp, ImpError, Layout};
use crate::mask::Mask;
use crate::rewind::RewindCheckpoint;
use crate::train::recipe::OptimizerConfig;

/// A ticket that skips its pruned weights: the host form of a chain of
/// linear layers or of a CIFAR ResNet, for inference (see
/// [`Imp::sparse_ticket`]) and for the sparse training path.
#[derive(Debug, Clone)]
pub enum SparseTicket {
    /// A multilayer perceptron (LeNet-300-100 and its kind).
    Mlp(SparseMlp),
    /// A CIFAR ResNet, BatchNorm with its running statistics.
    ResNet(Box<SparseResNet>),
}

impl SparseTicket {
    /// The host form of `model` under `mask`: a [`SparseMlp`] if its
    /// parameters are a chain of linear layers, else a [`SparseResNet`]
    /// (BatchNorm with burn's default settings), else why neither.
    pub fn from_module<M: Module>(model: &M, mask: &Mask) -> Result<Self, SparseError> {
        match SparseMlp::from_module(model, mask) {
            Ok(mlp) => Ok(Self::Mlp(mlp)),
            Err(SparseError::NotAnMlp(why_not_mlp)) => {
                SparseResNet::from_module(model, mask, NormSettings::default())
                    .map(|r| Self::ResNet(Box::new(r)))
                    .map_err(|e| match e {
                        SparseError::NotAResNet(why) => SparseError::NotAResNet(format!(
                            "{why}; nor a chain of linear layers: {why_not_mlp}"
                        )),
                        other => other,
                    })
            }
            Err(other) => Err(other),
        }
    }

    /// Logits `[batch, classes]` (row-major) of row-major `images`
    /// (flattened examples; square images for a ResNet), as the dense
    /// masked model in inference gives them.
    pub fn forward(&mut self, images: &[f32], batch: usize) -> Result<Vec<f32>, SparseError> {
        match self {
            Self::Mlp(m) => {
                let d_in = images.len() / batch.max(1);
                if batch == 0 || images.len() != batch * d_in || d_in != m.d_in() {
                    return Err(SparseError::Shape(format!(
                        "{} image values are not {batch} examples of {}",
                        images.len(),
                        m.d_in()
                    )));
                }
                Ok(m.forward(images, batch))
            }
            Self::ResNet(r) => r.forward(images, batch),
        }
    }

    /// The model's kind in words: `MLP` or `ResNet`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Mlp(_) => "MLP",
            Self::ResNet(_) => "ResNet",
        }
    }

    fn slots(&mut self) -> Vec<Slot<'_>> {
        match self {
            Self::Mlp(m) => m.slots(),
            Self::ResNet(r) => r.slots(),
        }
    }

    /// The optimizer state as burn's optimizer record bytes (what
    /// `ModuleOptimizer::into_bytes` gives) for the parameters of `model`
    /// (the dense model this ticket was read from or written into).
    pub(crate) fn optimizer_record<M: Module>(
        &mut self,
        optimizer: &SparseOptimizer,
        model: &M,
    ) -> Result<burn::tensor::Bytes, SparseError> {
        state::to_record(&self.slots(), optimizer, model)
    }

    /// Takes the state of burn's optimizer record `bytes` (for the
    /// parameters of `model`) as this ticket's optimizer state.
    pub(crate) fn load_optimizer_record<M: Module>(
        &mut self,
        bytes: &[u8],
        optimizer: &SparseOptimizer,
        model: &M,
    ) -> Result<(), SparseError> {
        state::load_record(bytes, &mut self.slots(), optimizer, model)
    }

    /// Writes the BatchNorm running statistics the ticket holds into
    /// `model` (nothing for an MLP): undoes the update a training-mode
    /// forward pass of `model` made after the ticket was read.
    pub(crate) fn restore_running_stats<M: Module>(&self, model: M) -> M {
        match self {
            Self::Mlp(_) => model,
            Self::ResNet(r) => r.write_running_into(model),
        }
    }

    /// Number of kept weights.
    pub fn kept_weights(&self) -> usize {
        match self {
            Self::Mlp(m) => m.kept_weights(),
            Self::ResNet(r) => r.kept_weights(),
        }
    }

    /// Mean cross-entropy of a batch, as in a training step (no step).
    pub fn loss(&mut self, images: &[f32], labels: &[i64]) -> Result<f32, SparseError> {
        match self {
            Self::Mlp(m) => m.loss(images, labels),
            Self::ResNet(r) => r.loss(images, labels),
        }
    }

    /// One training step (see [`SparseMlp::train_step`],
    /// [`SparseResNet::train_step`]); returns the loss.
    pub fn train_step(
        &mut self,
        images: &[f32],
        labels: &[i64],
        optimizer: &OptimizerConfig,
        lr: f64,
    ) -> Result<f32, SparseError> {
        match self {
            Self::Mlp(m) => m.train_step(images, labels, optimizer, lr),
            Self::ResNet(r) => r.train_step(images, labels, optimizer, lr),
        }
    }

    /// Writes the ticket's values into the dense `model` (zeros where
    /// pruned).
    pub fn write_into<M: Module>(&self, model: M) -> M {
        match self {
            Self::Mlp(m) => m.write_into(model),
            Self::ResNet(r) => r.write_into(model),
        }
    }
}

impl Imp {
    /// The trained network of `branch` at `level` (which must be finished)
    /// of the experiment under `output_root`, as a [`SparseTicket`] that
    /// skips the weights the level's mask prunes: the same logits as the
    /// dense masked model, for a fraction of the work.
    ///
    /// `init` builds the model as [`Imp::run`] was given it (a chain of
    /// linear layers such as LeNet-300-100, or a CIFAR ResNet); another
    /// model is an [`ImpError::Config`] naming why.
    pub fn sparse_ticket<M, F>(
        &self,
        output_root: &Path,
        branch: &Branch,
        level: usize,
        device: &Device,
        init: F,
    ) -> Result<SparseTicket, ImpError>
    where
        M: Module,
        F: Fn(&Device, u64) -> M,
    {
        let store = self.config().open_store(&self.directory(output_root))?;
        let files = Layout::level(branch, level);
        let mask = Mask::from_bytes(&store.read(&files.mask())?)?;
        let checkpoint = RewindCheckpoint::from_bytes(&store.read(&files.final_checkpoint())?)?;
        let model = checkpoint.restore(init(device, self.config().seeds.init))?;
        SparseTicket::from_module(&model, &mask)
            .map_err(|e| ImpError::Config(format!("no sparse form of level {level}: {e}")))
    }
}
