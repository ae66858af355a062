//! The sparse training path of the [`Trainer`](crate::train::trainer::Trainer):
//! a level whose mask is sparse enough trains as a [`SparseTicket`] on the host
//! and is written back into the dense model at the end.

use std::ops::Range;

use burn::module::Module;
use serde::{Deserialize, Serialize};

use super::SparseTicket;
use crate::mask::Mask;
use crate::task::{DataOrder, Task};
use crate::train::iteration::Iteration;
use crate::train::recipe::TrainingRecipe;
use crate::train::trainer::{TrainError, TrainObserver};

/// The density below which the sparse path trains LeNet-300-100 faster than
/// burn's dense masked step (flex, batch 60; BENCHMARKS.md, "Sparsity"):
/// the default for chains of linear layers.
pub const MLP_BELOW_DENSITY: f64 = 0.3;

/// The density below which ResNet-20's sparse step is measured faster than
/// burn's dense masked step (flex, batch 128: 1.11x at 51%; BENCHMARKS.md,
/// "Sparsity"; 80% was not measured): the default for ResNets.
pub const RESNET_BELOW_DENSITY: f64 = 0.6;

/// Whether masked levels train on the sparse path (an [`ImpConfig`]
/// setting: it enters the experiment's hash only when enabled, so stored
/// experiments keep their directories).
///
/// The path applies to models whose parameters are a chain of linear
/// layers (LeNet-300-100; see
/// [`SparseMlp::from_module`](super::SparseMlp::from_module)) or those of a
/// CIFAR ResNet ([`SparseResNet::from_module`](super::SparseResNet::from_module))
/// on tasks that give host batches ([`Task::host_batch`]), and only where
/// the sparse loss of the level's first batch equals the task's loss of the
/// dense model (relative tolerance [`LOSS_CHECK_TOLERANCE`]): a model whose
/// forward is not the ReLU chain or the ResNet, or a task whose loss is not
/// the mean cross-entropy, stays on the dense path. It also needs a fresh
/// optimizer (a level resumed from a checkpoint with optimizer state trains
/// densely).
///
/// Results agree with the dense path to float rounding, not bit for bit
/// (sums run in another order), which is why it is off by default. A
/// sparse level writes no periodic checkpoint (its optimizer state is not
/// burn's): an interrupted sparse level restarts from its beginning, and
/// the observer's stop request is not seen until the level ends.
///
/// [`ImpConfig`]: crate::imp::ImpConfig
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct SparseTraining {
    /// Train on the sparse path where it applies (default false).
    pub enabled: bool,
    /// Levels whose mask density is below this train sparsely (the dense
    /// level 0 never does). `None` (the default): below the crossover
    /// measured for the model's kind, [`MLP_BELOW_DENSITY`] for a chain of
    /// linear layers, [`RESNET_BELOW_DENSITY`] for a ResNet.
    pub below_density: Option<f64>,
}

/// Relative tolerance of the first-batch loss check.
pub const LOSS_CHECK_TOLERANCE: f64 = 1e-4;

impl SparseTraining {
    /// The sparse path on, below each model kind's measured crossover.
    pub fn on() -> Self {
        Self {
            enabled: true,
            below_density: None,
        }
    }

    /// The sparse path on, below `density` whatever the model.
    pub fn below(density: f64) -> Self {
        Self {
            enabled: true,
            below_density: Some(density),
        }
    }

    /// Checks that a set density is in (0, 1].
    pub fn validate(&self) -> Result<(), String> {
        match self.below_density {
            Some(d) if !(d.is_finite() && d > 0.0 && d <= 1.0) => Err(format!(
                "sparse_training.below_density must be in (0, 1], got {d}"
            )),
            _ => Ok(()),
        }
    }

    /// Whether a level under `mask` may be sparse enough for the path, for
    /// some model kind (the dense level, density 1, never is).
    pub fn applies_to(&self, mask: &Mask) -> bool {
        let limit = self
            .below_density
            .unwrap_or(MLP_BELOW_DENSITY.max(RESNET_BELOW_DENSITY));
        let density = mask.density();
        self.enabled && density < limit && density < 1.0
    }

    /// Whether a level of `density` trains sparsely as `ticket`.
    fn applies_to_ticket(&self, ticket: &SparseTicket, density: f64) -> bool {
        let limit = self.below_density.unwrap_or(match ticket {
            SparseTicket::Mlp(_) => MLP_BELOW_DENSITY,
            SparseTicket::ResNet(_) => RESNET_BELOW_DENSITY,
        });
        self.enabled && density < limit && density < 1.0
    }
}

/// Trains `model` on the sparse path over `range` (see [`SparseTraining`]),
/// or returns `None` when the path does not apply to this model and task.
#[allow(clippy::too_many_arguments)]
pub(crate) fn train_sparse<M: Module, T: Task<M>>(
    settings: &SparseTraining,
    recipe: &TrainingRecipe,
    task: &T,
    device: &burn::tensor::Device,
    model: &M,
    mask: &Mask,
    range: Range<u64>,
    order: &DataOrder,
    observer: &mut dyn TrainObserver<M>,
) -> Result<Option<M>, TrainError> {
    let Ok(mut host_model) = SparseTicket::from_module(model, mask) else {
        return Ok(None);
    };
    if !settings.applies_to_ticket(&host_model, mask.density()) {
        return Ok(None);
    }
    let mut batches = task.batches(order, range.clone(), device)?;
    let Some(first) = batches.next() else {
        return Ok(Some(model.clone()));
    };
    let first = first?;
    let Some((images, labels)) = task.host_batch(&first) else {
        return Ok(None);
    };
    let dense: f64 = task.loss(model, first).into_scalar::<f32>().into();
    let sparse = host_model.loss(&images, &labels).map(f64::from);
    if !sparse.is_ok_and(|s| (s - dense).abs() <= LOSS_CHECK_TOLERANCE * dense.abs().max(1.0)) {
        return Ok(None);
    }
    let mut host = Some((images, labels));
    for iteration in range {
        let (images, labels) = match host.take() {
            Some(batch) => batch,
            None => {
                let batch = batches.next().ok_or_else(|| {
                    TrainError::LoaderMismatch("fewer batches than iterations".into())
                })??;
                task.host_batch(&batch).ok_or_else(|| {
                    TrainError::LoaderMismatch("the task stopped giving host batches".into())
                })?
            }
        };
        let lr = recipe.lr_at(Iteration(iteration));
        let loss = host_model
            .train_step(&images, &labels, &recipe.optimizer, lr)
            .map_err(|e| TrainError::LoaderMismatch(e.to_string()))?;
        let loss = f64::from(loss);
        if !loss.is_finite() {
            return Err(TrainError::NonFiniteLoss { iteration, loss });
        }
        observer.after_step(iteration + 1, Some(loss), lr);
    }
    Ok(Some(host_model.write_into(model.clone())))
}
