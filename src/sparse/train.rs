//! The sparse execution strategy of the [`Trainer`](crate::train::trainer::Trainer):
//! decided once per range before its first step ([`SparseRequest::decide`]),
//! every dense outcome with its reason; a sparse range trains as a
//! [`SparseTicket`] on the host and hands the observer the dense model and
//! burn's optimizer state whenever it asks for a checkpoint.

use std::ops::Range;

use burn::module::Module;
use burn::tensor::Device;

use super::execution::{Execution, ExecutionReason};
use super::optim::{SparseOptimizer, sparse_optimizer};
use super::settings::{LOSS_CHECK_TOLERANCE, MLP_BELOW_DENSITY, RESNET_BELOW_DENSITY};
use super::{SparseError, SparseTicket, SparseTraining};
use crate::mask::Mask;
use crate::task::{Batches, DataOrder, Task};
use crate::train::iteration::Iteration;
use crate::train::masked::MaskedOptimizer;
use crate::train::recipe::TrainingRecipe;
use crate::train::trainer::{TrainError, TrainObserver};

/// What the trainer knows when it decides how a range trains.
pub(crate) struct SparseRequest<'a, T> {
    /// The sparse settings and the mask the optimizer enforces, if the
    /// trainer was given them.
    pub(crate) settings: Option<(&'a SparseTraining, &'a Mask)>,
    /// A fixed learning rate (fine-tuning) instead of the schedule.
    pub(crate) fixed_learning_rate: Option<f64>,
    pub(crate) recipe: &'a TrainingRecipe,
    pub(crate) task: &'a T,
    pub(crate) device: &'a Device,
}

/// How a range trains.
pub(crate) enum Strategy<'a, B> {
    /// burn's dense masked step, and why.
    Dense(Execution),
    /// The host kernels.
    Sparse(Box<SparseRun<'a, B>>),
}

impl<B> Strategy<'_, B> {
    /// The decision and its reason.
    pub(crate) fn execution(&self) -> &Execution {
        match self {
            Self::Dense(execution) => execution,
            Self::Sparse(run) => &run.execution,
        }
    }
}

/// A range that trains on the sparse path, its first batch already read.
pub(crate) struct SparseRun<'a, B> {
    ticket: SparseTicket,
    optimizer: SparseOptimizer,
    batches: Batches<'a, B>,
    first: Option<(Vec<f32>, Vec<i64>)>,
    execution: Execution,
}

/// A ticket that passed every check that needs no data, its optimizer and
/// the decision's words.
type Candidate = (SparseTicket, SparseOptimizer, String);

impl<'a, T> SparseRequest<'a, T> {
    /// Decides how `model` trains over `range` under `optimizer` (whose
    /// state the sparse path takes over). Returns the model (a failed
    /// first-batch check leaves it as it was given) and the strategy.
    pub(crate) fn decide<M: Module>(
        &self,
        model: M,
        optimizer: &MaskedOptimizer,
        range: &Range<u64>,
        order: &DataOrder,
    ) -> Result<(M, Strategy<'a, T::Batch>), TrainError>
    where
        T: Task<M>,
    {
        match self.candidate(&model, optimizer, range) {
            Ok(candidate) => self.check_first_batch(model, candidate, range, order),
            Err(dense) => Ok((model, Strategy::Dense(dense))),
        }
    }

    /// Sparse settings that are on for a masked, non-empty range on the
    /// recipe's schedule, or why the range trains densely.
    fn enabled(&self, range: &Range<u64>) -> Result<(&'a SparseTraining, &'a Mask), Execution> {
        use ExecutionReason as R;
        let (settings, mask) = match self.settings {
            Some((settings, mask)) if settings.enabled => (settings, mask),
            _ => {
                return Err(Execution::dense(
                    R::SparseTrainingOff,
                    "sparse training off",
                ));
            }
        };
        if let Some(lr) = self.fixed_learning_rate {
            let detail =
                format!("a fixed learning rate {lr} (fine-tuning) instead of the schedule");
            return Err(Execution::dense(R::FixedLearningRate, detail));
        }
        if mask.density() >= 1.0 {
            return Err(Execution::dense(
                R::DenseMask,
                "the mask keeps every weight",
            ));
        }
        if range.is_empty() {
            let detail = format!("no iteration to train in {range:?}");
            return Err(Execution::dense(R::EmptyRange, detail));
        }
        Ok((settings, mask))
    }

    /// The checks that need no data, in order; the first that fails says
    /// why the range trains densely.
    fn candidate<M: Module>(
        &self,
        model: &M,
        optimizer: &MaskedOptimizer,
        range: &Range<u64>,
    ) -> Result<Candidate, Execution> {
        use ExecutionReason as R;
        let (settings, mask) = self.enabled(range)?;
        let density = mask.density();
        let sparse_optimizer = sparse_optimizer(&self.recipe.optimizer)
            .map_err(|e| Execution::dense(R::UnsupportedOptimizer, e.to_string()))?;
        if !settings.applies_to(mask) {
            let limit = match settings.below_density {
                Some(d) => format!("the configured {d}"),
                None => format!(
                    "any model's crossover (MLP {MLP_BELOW_DENSITY}, ResNet {RESNET_BELOW_DENSITY})"
                ),
            };
            let detail = format!("density {density:.4} is not below {limit}");
            return Err(Execution::dense(R::AboveThreshold, detail));
        }
        let mut ticket = SparseTicket::from_module(model, mask)
            .map_err(|e| Execution::dense(R::LayoutNotRecognised, e.to_string()))?;
        let (limit, name) = settings.threshold(&ticket);
        if density >= limit {
            let detail = format!("density {density:.4} is not below {name}");
            return Err(Execution::dense(R::AboveThreshold, detail));
        }
        optimizer
            .optimizer()
            .into_bytes()
            .map_err(|e| SparseError::OptimizerState(e.to_string()))
            .and_then(|bytes| ticket.load_optimizer_record(&bytes, &sparse_optimizer, model))
            .map_err(|e| Execution::dense(R::OptimizerState, e.to_string()))?;
        let detail = format!("density {density:.4} is below {name}");
        Ok((ticket, sparse_optimizer, detail))
    }

    /// The range's first batch: the task must give a host copy, and the
    /// sparse loss of it must equal the task's loss of the dense model.
    fn check_first_batch<M: Module>(
        &self,
        model: M,
        (mut ticket, optimizer, detail): Candidate,
        range: &Range<u64>,
        order: &DataOrder,
    ) -> Result<(M, Strategy<'a, T::Batch>), TrainError>
    where
        T: Task<M>,
    {
        use ExecutionReason as R;
        let (task, device) = (self.task, self.device);
        let mut batches = task.batches(order, range.clone(), device)?;
        let first = batches.next().ok_or_else(|| {
            TrainError::LoaderMismatch(format!("no batch for iteration {}", range.start))
        })??;
        let Some((images, labels)) = task.host_batch(&first) else {
            let dense = Execution::dense(R::NoHostBatches, "the task gives no host batches");
            return Ok((model, Strategy::Dense(dense)));
        };
        let dense: f64 = task.loss(&model, first).into_scalar::<f32>().into();
        let mismatch = match ticket.loss(&images, &labels).map(f64::from) {
            Ok(s) if (s - dense).abs() <= LOSS_CHECK_TOLERANCE * dense.abs().max(1.0) => None,
            Ok(s) => Some(format!(
                "first-batch loss {s} on the sparse path vs the task's {dense}"
            )),
            Err(e) => Some(format!("the sparse loss of the first batch failed: {e}")),
        };
        if let Some(why) = mismatch {
            // The task's forward pass updated BatchNorm's running statistics.
            let model = ticket.restore_running_stats(model);
            return Ok((
                model,
                Strategy::Dense(Execution::dense(R::LossMismatch, why)),
            ));
        }
        let run = SparseRun {
            ticket,
            optimizer,
            batches,
            first: Some((images, labels)),
            execution: Execution::sparse(detail),
        };
        Ok((model, Strategy::Sparse(Box::new(run))))
    }
}

impl<B> SparseRun<'_, B> {
    /// Trains `model` over `range` (the range it was decided for) on the
    /// host; whenever `observer` asks for a checkpoint, and at the end,
    /// `model` and `optimizer` get the ticket's weights and state.
    pub(crate) fn train<M: Module, T: Task<M, Batch = B>>(
        mut self: Box<Self>,
        task: &T,
        recipe: &TrainingRecipe,
        mut model: M,
        optimizer: &mut MaskedOptimizer,
        range: Range<u64>,
        observer: &mut dyn TrainObserver<M>,
    ) -> Result<M, TrainError> {
        for iteration in range {
            let (images, labels) = self.next_batch(task, iteration)?;
            let lr = recipe.lr_at(Iteration(iteration));
            let loss = self
                .ticket
                .train_step(&images, &labels, &recipe.optimizer, lr)?;
            let loss = f64::from(loss);
            if !loss.is_finite() {
                return Err(TrainError::NonFiniteLoss { iteration, loss });
            }
            let completed = iteration + 1;
            // The host loop has every loss at hand: each step's is read.
            observer.losses(iteration, &[loss]);
            observer.after_step(completed, Some(loss), lr);
            if observer.checkpoint_due(completed) {
                model = self.sync(model, optimizer)?;
                observer
                    .checkpoint(completed, &model, optimizer)
                    .map_err(|reason| TrainError::Stopped {
                        iteration: completed,
                        reason,
                    })?;
            }
        }
        self.sync(model, optimizer)
    }

    /// The host batch of `iteration`.
    fn next_batch<M: Module, T: Task<M, Batch = B>>(
        &mut self,
        task: &T,
        iteration: u64,
    ) -> Result<(Vec<f32>, Vec<i64>), TrainError> {
        if let Some(first) = self.first.take() {
            return Ok(first);
        }
        let batch = self.batches.next().ok_or_else(|| {
            TrainError::LoaderMismatch(format!("no batch for iteration {iteration}"))
        })??;
        task.host_batch(&batch).ok_or_else(|| {
            TrainError::Sparse(SparseError::HostBatch(format!(
                "the task gave no host copy of batch {iteration}"
            )))
        })
    }

    /// Writes the ticket's weights into `model` and its optimizer state
    /// into `optimizer`.
    fn sync<M: Module>(
        &mut self,
        model: M,
        optimizer: &mut MaskedOptimizer,
    ) -> Result<M, TrainError> {
        let model = self.ticket.write_into(model);
        let record = self.ticket.optimizer_record(&self.optimizer, &model)?;
        optimizer
            .load_state(record)
            .map_err(|e| SparseError::OptimizerState(e.to_string()))?;
        Ok(model)
    }
}
