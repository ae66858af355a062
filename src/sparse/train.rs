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
/// burn's dense masked step (flex, batch 60; BENCHMARKS.md, "Sparsity").
pub const DEFAULT_BELOW_DENSITY: f64 = 0.3;

/// Whether masked levels train on the sparse path (an [`ImpConfig`]
/// setting: it enters the experiment's hash only when enabled, so stored
/// experiments keep their directories).
///
/// The path applies to models whose parameters are a chain of linear
/// layers (LeNet-300-100; see [`SparseMlp::from_module`](super::SparseMlp::from_module)) or those of a
/// CIFAR ResNet ([`SparseResNet::from_module`](super::SparseResNet::from_module))
/// on tasks that give host batches ([`Task::host_batch`]), and only where
/// the sparse loss of the level's first batch equals the task's loss of the
/// dense model (relative tolerance [`LOSS_CHECK_TOLERANCE`]): a model whose
/// forward is not the ReLU chain or the ResNet, or a task whose loss is not
/// the mean cross-entropy, stays on the dense path.
///
/// The default density, 0.3, is LeNet-300-100's crossover against burn's
/// flex backend; ResNet-20's step is already faster at 51% (BENCHMARKS.md,
/// "Sparsity"), so a ResNet experiment gains from `below_density: 0.6`. It also needs a fresh optimizer (a level
/// resumed from a checkpoint with optimizer state trains densely).
///
/// Results agree with the dense path to float rounding, not bit for bit
/// (sums run in another order), which is why it is off by default. A
/// sparse level writes no periodic checkpoint (its optimizer state is not
/// burn's): an interrupted sparse level restarts from its beginning, and
/// the observer's stop request is not seen until the level ends.
///
/// [`ImpConfig`]: crate::imp::ImpConfig
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SparseTraining {
    /// Train on the sparse path where it applies (default false).
    pub enabled: bool,
    /// Levels whose mask density is below this train sparsely (default
    /// [`DEFAULT_BELOW_DENSITY`]; the dense level 0 never does).
    pub below_density: f64,
}

impl Default for SparseTraining {
    fn default() -> Self {
        Self {
            enabled: false,
            below_density: DEFAULT_BELOW_DENSITY,
        }
    }
}

/// Relative tolerance of the first-batch loss check.
pub const LOSS_CHECK_TOLERANCE: f64 = 1e-4;

impl SparseTraining {
    /// The sparse path on, below the default density.
    pub fn on() -> Self {
        Self {
            enabled: true,
            ..Self::default()
        }
    }

    /// Whether a level under `mask` is sparse enough for the path (the
    /// dense level, density 1, never is).
    pub fn applies_to(&self, mask: &Mask) -> bool {
        let density = mask.density();
        self.enabled && density < self.below_density && density < 1.0
    }
}

/// Trains `model` on the sparse path over `range` (see [`SparseTraining`]),
/// or returns `None` when the path does not apply to this model and task.
#[allow(clippy::too_many_arguments)]
pub(crate) fn train_sparse<M: Module, T: Task<M>>(
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
