//! The training loop: any iteration range `[start, end)` of a recipe, with a
//! mask enforced every step, and evaluation.
//!
//! Everything that decides a step is a function of the iteration: the batch
//! comes from the [`Task`] (a pure function of the [`DataOrder`] and the
//! iteration) and the learning rate from the recipe's schedule. So training
//! `0..k` then `k..T` gives the same weights as `0..T` when the optimizer
//! state is carried over, which is what rewinding and resuming rely on.

use std::ops::Range;

use burn::lr_scheduler::module_lr_scheduler::ModuleLearningRate;
use burn::module::Module;
use burn::optim::GradientsParams;
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use super::losses::{LossWindow, LossesRead, count_host_read, read_together};
use super::masked::MaskedOptimizer;
use super::recipe::{RecipeError, TrainingRecipe};
use crate::data::{DataError, EvalBatches, ImageDataset, Normalization};
use crate::mask::Mask;
use crate::models::{Classifier, correct_count, cross_entropy};
use crate::params::float_values;
use crate::prune::{MaskSchedule, MaskUpdate, PruneError, gradient_values};
use crate::rewind::RewindError;
use crate::sparse::{
    Execution, ExecutionReason, SparseError, SparseRequest, SparseTraining, Strategy,
};
use crate::task::{DataOrder, Task, TaskError};

/// Errors of training and evaluation.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// The loss became NaN or infinite.
    #[error("the training loss became {loss} at iteration {iteration}")]
    NonFiniteLoss {
        /// The first iteration (0-based) whose loss is non-finite: exact,
        /// although losses are read only every
        /// [`TrainOptions::loss_every`] steps (all of a window's losses are
        /// read together).
        iteration: u64,
        /// The value.
        loss: f64,
    },
    /// The range asked for lies outside the recipe's training length.
    #[error("cannot train iterations {start}..{end}: the recipe trains 0..{total}")]
    InvalidRange {
        /// First iteration asked for.
        start: u64,
        /// One past the last.
        end: u64,
        /// The recipe's training length.
        total: u64,
    },
    /// The data order builds batches another way than the recipe says.
    #[error("the loader does not match the recipe: {0}")]
    LoaderMismatch(String),
    /// The recipe is invalid.
    #[error(transparent)]
    Recipe(#[from] RecipeError),
    /// The data pipeline failed.
    #[error(transparent)]
    Data(#[from] DataError),
    /// The task failed to make a batch.
    #[error(transparent)]
    Task(#[from] TaskError),
    /// The sparse path failed (a kernel's shapes, a batch without a host
    /// copy, optimizer state that does not convert).
    #[error("sparse training: {0}")]
    Sparse(#[from] SparseError),
    /// A mask update of a [`MaskSchedule`] failed.
    #[error("the mask update before iteration {iteration} failed: {source}")]
    MaskUpdate {
        /// The iteration whose step the update comes before.
        iteration: u64,
        /// What failed.
        source: MaskUpdateError,
    },
    /// An observer asked to stop (e.g. a checkpoint could not be written).
    #[error("training stopped at iteration {iteration}: {reason}")]
    Stopped {
        /// Iterations completed when it stopped.
        iteration: u64,
        /// Why.
        reason: String,
    },
}

/// What failed in a mask update ([`TrainError::MaskUpdate`]).
#[derive(Debug, thiserror::Error)]
pub enum MaskUpdateError {
    /// The schedule could not make the next mask.
    #[error(transparent)]
    Prune(#[from] PruneError),
    /// The optimizer state could not be masked.
    #[error(transparent)]
    OptimizerState(#[from] RewindError),
}

/// Called by [`Trainer::train`] as it goes; every method has a default that does
/// nothing.
pub trait TrainObserver<M> {
    /// After each step; `completed` iterations are done (the step just taken
    /// was iteration `completed - 1`). `loss` is the step's loss when it was
    /// read (every [`TrainOptions::loss_every`] steps of the range, and at
    /// its last step).
    fn after_step(&mut self, completed: u64, loss: Option<f64>, learning_rate: f64) {
        let _ = (completed, loss, learning_rate);
    }

    /// Every training loss, in order, as it is read from the device:
    /// `losses[j]` is the loss of iteration `first + j`. Losses are read
    /// every [`TrainOptions::loss_every`] steps, before a checkpoint and at
    /// the end of the range, each step's exactly once (so this sees every
    /// step's loss, whatever `loss_every`).
    fn losses(&mut self, first: u64, losses: &[f64]) {
        let _ = (first, losses);
    }

    /// Once per [`Trainer::train`], before the first step: which path
    /// trains the range and why.
    fn execution(&mut self, execution: &Execution) {
        let _ = execution;
    }

    /// After each step (and [`TrainObserver::after_step`]): whether to call
    /// [`TrainObserver::checkpoint`] now. The default, `true`, calls it
    /// every step; the sparse path writes its weights and optimizer state
    /// into the dense model and burn's optimizer for each call, so an
    /// observer that checkpoints now and then says when.
    fn checkpoint_due(&mut self, completed: u64) -> bool {
        let _ = completed;
        true
    }

    /// After each step when [`TrainObserver::checkpoint_due`]: a chance to
    /// checkpoint. An `Err` stops training with [`TrainError::Stopped`].
    fn checkpoint(
        &mut self,
        completed: u64,
        model: &M,
        optimizer: &MaskedOptimizer,
    ) -> Result<(), String> {
        let _ = (completed, model, optimizer);
        Ok(())
    }
}

/// An observer that does nothing.
pub struct NoObserver;

impl<M> TrainObserver<M> for NoObserver {
    fn checkpoint_due(&mut self, _: u64) -> bool {
        false
    }
}

/// Options of the loop that are not part of the recipe.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainOptions {
    /// Read the losses of the last this many steps from the device (and
    /// check they are finite) every this many steps (default 100). Each
    /// read is one transfer that makes the host wait for the device, so on
    /// a GPU a larger value lets it queue steps ahead; a non-finite loss is
    /// still reported at its exact iteration, up to `loss_every - 1` steps
    /// later. Losses are also read before every checkpoint.
    pub loss_every: u64,
}

/// The default [`TrainOptions::loss_every`].
pub const DEFAULT_LOSS_EVERY: u64 = 100;

impl Default for TrainOptions {
    fn default() -> Self {
        Self {
            loss_every: DEFAULT_LOSS_EVERY,
        }
    }
}

/// Runs a recipe's training of a [`Task`] over any iteration range:
/// `Trainer::new(&recipe, &task, &device).train(model, &mut optimizer, k..T, &order, &mut NoObserver)`.
/// [`crate::imp::Imp`] drives it for every level and branch.
#[derive(Clone)]
pub struct Trainer<'a, T> {
    recipe: &'a TrainingRecipe,
    task: &'a T,
    device: &'a Device,
    options: TrainOptions,
    fixed_learning_rate: Option<f64>,
    sparse: Option<(&'a SparseTraining, &'a Mask)>,
    schedule: Option<&'a dyn MaskSchedule>,
}

impl<T: std::fmt::Debug> std::fmt::Debug for Trainer<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Trainer")
            .field("recipe", self.recipe)
            .field("task", self.task)
            .field("options", &self.options)
            .field("fixed_learning_rate", &self.fixed_learning_rate)
            .field("mask_schedule", &self.schedule.is_some())
            .finish_non_exhaustive()
    }
}

impl<'a, T> Trainer<'a, T> {
    /// Trains with `recipe` on batches of `task`, on `device` (an autodiff
    /// device holding the model), with default [`TrainOptions`].
    pub fn new(recipe: &'a TrainingRecipe, task: &'a T, device: &'a Device) -> Self {
        Self {
            recipe,
            task,
            device,
            options: TrainOptions::default(),
            fixed_learning_rate: None,
            sparse: None,
            schedule: None,
        }
    }

    /// Changes the mask during training as `schedule` says (gradual
    /// pruning, SET, RigL): before the step of every iteration it names, the
    /// schedule gets host copies of the masked weights (and of the step's
    /// dense gradients when it asks) and the optimizer enforces its new mask
    /// ([`MaskedOptimizer::replace_mask`]). Such a range trains on the dense
    /// path.
    pub fn with_mask_schedule(mut self, schedule: Option<&'a dyn MaskSchedule>) -> Self {
        self.schedule = schedule;
        self
    }

    /// Lets a range train on the sparse path ([`crate::sparse`]) when
    /// `settings` apply to `mask` (the mask the optimizer enforces).
    pub fn with_sparse(mut self, settings: &'a SparseTraining, mask: &'a Mask) -> Self {
        self.sparse = Some((settings, mask));
        self
    }

    /// Sets the loop options.
    pub fn with_options(mut self, options: TrainOptions) -> Self {
        self.options = options;
        self
    }

    /// Trains at this constant learning rate instead of the recipe's
    /// schedule when `Some` (fine-tuning). The range may then run past the
    /// recipe's length: the data order continues there.
    pub fn with_fixed_learning_rate(mut self, learning_rate: Option<f64>) -> Self {
        self.fixed_learning_rate = learning_rate;
        self
    }

    /// Checks the recipe, the data order and the range before training.
    fn check(&self, order: &DataOrder, range: &Range<u64>) -> Result<(), TrainError> {
        let recipe = self.recipe;
        recipe.validate()?;
        if let Some(lr) = self.fixed_learning_rate
            && !(lr.is_finite() && lr > 0.0)
        {
            return Err(RecipeError::InvalidLearningRate(lr).into());
        }
        if order.batch_size != recipe.batch_size {
            return Err(TrainError::LoaderMismatch(format!(
                "batch size {} vs the recipe's {}",
                order.batch_size, recipe.batch_size
            )));
        }
        if order.augment_seed.is_some() && !recipe.augment {
            return Err(TrainError::LoaderMismatch(
                "the data order augments but the recipe has augment = false".into(),
            ));
        }
        let total = recipe.training_iterations;
        let past_end = range.end > total && self.fixed_learning_rate.is_none();
        if range.start > range.end || past_end {
            return Err(TrainError::InvalidRange {
                start: range.start,
                end: range.end,
                total,
            });
        }
        Ok(())
    }

    /// Trains `model` for iterations `range` of the recipe on the batches of
    /// `order`, enforcing the optimizer's mask every step. Returns the
    /// trained model, and leaves the optimizer's state as of the last step.
    ///
    /// Which path trains (burn's dense masked step, or the sparse host
    /// kernels when [`Trainer::with_sparse`] settings allow) is decided once,
    /// before the first step, and given to
    /// [`TrainObserver::execution`] with its reason.
    pub fn train<M: Module>(
        &self,
        model: M,
        optimizer: &mut MaskedOptimizer,
        range: Range<u64>,
        order: &DataOrder,
        observer: &mut dyn TrainObserver<M>,
    ) -> Result<M, TrainError>
    where
        T: Task<M>,
    {
        self.check(order, &range)?;
        let (recipe, task) = (self.recipe, self.task);
        if self.schedule.is_some() {
            let detail = "the mask changes during training (a mask schedule)";
            observer.execution(&Execution::dense(ExecutionReason::MaskChanges, detail));
            return self.train_dense(model, optimizer, range, order, observer);
        }
        let request = SparseRequest {
            settings: self.sparse,
            fixed_learning_rate: self.fixed_learning_rate,
            recipe,
            task,
            device: self.device,
        };
        let (model, strategy) = request.decide(model, optimizer, &range, order)?;
        observer.execution(strategy.execution());
        match strategy {
            Strategy::Sparse(run) => run.train(task, recipe, model, optimizer, range, observer),
            Strategy::Dense(_) => self.train_dense(model, optimizer, range, order, observer),
        }
    }

    /// The dense masked step over `range`: the task's training step, the
    /// masked optimizer step, and the losses read every
    /// [`TrainOptions::loss_every`] steps (and before a checkpoint).
    fn train_dense<M: Module>(
        &self,
        mut model: M,
        optimizer: &mut MaskedOptimizer,
        range: Range<u64>,
        order: &DataOrder,
        observer: &mut dyn TrainObserver<M>,
    ) -> Result<M, TrainError>
    where
        T: Task<M>,
    {
        let (recipe, task) = (self.recipe, self.task);
        let loss_every = self.options.loss_every.max(1);
        let mut rates = recipe.learning_rates(range.start)?;
        let mut losses = LossWindow::default();
        let batches = task.batches(order, range.clone(), self.device)?;
        for (iteration, batch) in range.clone().zip(batches) {
            let learning_rate = match self.fixed_learning_rate {
                Some(fixed) => ModuleLearningRate::from(fixed),
                None => rates.next_rate(),
            };
            let base_rate = learning_rate.base();
            let step = task.train_step(&model, batch?);
            losses.push(iteration, step.item);
            let update = self
                .schedule
                .and_then(|s| Some((s, s.update_at(iteration)?)));
            let replaced = match update {
                Some((schedule, update)) => {
                    model =
                        update_mask(schedule, update, iteration, model, &step.grads, optimizer)?;
                    update.replaces_step
                }
                None => false,
            };
            if !replaced {
                model = optimizer.step(learning_rate, model, step.grads);
            }
            let completed = iteration + 1;
            let read =
                (completed - range.start).is_multiple_of(loss_every) || completed == range.end;
            let loss = if read {
                deliver(losses.read()?, observer)
            } else {
                None
            };
            observer.after_step(completed, loss, base_rate);
            if observer.checkpoint_due(completed) {
                // Nothing is checkpointed before its losses are known finite.
                deliver(losses.read()?, observer);
                observer
                    .checkpoint(completed, &model, optimizer)
                    .map_err(|reason| TrainError::Stopped {
                        iteration: completed,
                        reason,
                    })?;
            }
        }
        Ok(model)
    }
}

/// The mask update before the step of `iteration`: the schedule's next
/// mask from host copies of the masked weights (and of the step's gradients
/// `grads` when it asks), enforced by `optimizer` on `model`.
fn update_mask<M: Module>(
    schedule: &dyn MaskSchedule,
    update: MaskUpdate,
    iteration: u64,
    model: M,
    grads: &GradientsParams,
    optimizer: &mut MaskedOptimizer,
) -> Result<M, TrainError> {
    let fail = |source: MaskUpdateError| TrainError::MaskUpdate { iteration, source };
    let current = optimizer.mask();
    count_host_read();
    let weights = float_values(&model, |path| current.contains(path));
    let gradients = update
        .gradients
        .then(|| gradient_values(&model, grads, current));
    let next = schedule
        .next_mask(iteration, current, &weights, gradients.as_ref())
        .map_err(|e| fail(e.into()))?;
    if next == *current {
        // Nothing outside the mask holds weight or state: nothing to do.
        return Ok(model);
    }
    optimizer
        .replace_mask(next, model)
        .map_err(|e| fail(e.into()))
}

/// Gives the losses just read to `observer`; the last one, if any.
fn deliver<M>(read: Option<LossesRead>, observer: &mut dyn TrainObserver<M>) -> Option<f64> {
    let read = read?;
    observer.losses(read.first, &read.values);
    read.values.last().copied()
}

/// Loss and accuracy of a model on a dataset.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    /// Mean cross-entropy.
    pub loss: f64,
    /// Fraction classified correctly.
    pub accuracy: f64,
    /// Number of examples.
    pub examples: usize,
}

/// Evaluates `model` (in inference mode: BatchNorm uses its running
/// statistics) on `dataset` in its stored order. Each batch's loss and
/// number of correct predictions stay on the device until all batches are
/// queued, then are read in one transfer.
pub fn evaluate<M: Classifier>(
    model: &M,
    dataset: &ImageDataset,
    normalization: &Normalization,
    batch_size: usize,
    device: &Device,
) -> Result<Evaluation, DataError> {
    let model = model.valid();
    let mut per_batch: Vec<Tensor<1>> = Vec::new();
    let mut sizes: Vec<usize> = Vec::new();
    for batch in EvalBatches::new(dataset, batch_size, normalization)?.to_device(device) {
        sizes.push(batch.labels.dims()[0]);
        let logits = model.forward(batch.images.without_autodiff());
        let correct = correct_count(logits.clone(), batch.labels.clone()).float();
        per_batch.push(cross_entropy(logits, batch.labels));
        per_batch.push(correct);
    }
    let values: Vec<f64> = if per_batch.is_empty() {
        Vec::new()
    } else {
        read_together(per_batch)
    };
    let mut loss_sum = 0.0;
    let mut correct = 0usize;
    for (pair, &n) in values.chunks_exact(2).zip(&sizes) {
        loss_sum += pair[0] * n as f64;
        correct += pair[1] as usize;
    }
    let examples: usize = sizes.iter().sum();
    Ok(Evaluation {
        loss: if examples == 0 {
            0.0
        } else {
            loss_sum / examples as f64
        },
        accuracy: if examples == 0 {
            0.0
        } else {
            correct as f64 / examples as f64
        },
        examples,
    })
}
