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
use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use super::masked::MaskedOptimizer;
use super::recipe::{RecipeError, TrainingRecipe};
use crate::data::{DataError, EvalBatches, ImageDataset, Normalization};
use crate::mask::Mask;
use crate::models::{Classifier, accuracy_count, cross_entropy};
use crate::sparse::{Execution, SparseError, SparseRequest, SparseTraining, Strategy};
use crate::task::{DataOrder, Task, TaskError};

/// Errors of training and evaluation.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// The loss became NaN or infinite.
    #[error("the training loss became {loss} at iteration {iteration}")]
    NonFiniteLoss {
        /// The first iteration (0-based) whose loss was read and found
        /// non-finite (losses are read every [`TrainOptions::loss_every`] steps).
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
    /// An observer asked to stop (e.g. a checkpoint could not be written).
    #[error("training stopped at iteration {iteration}: {reason}")]
    Stopped {
        /// Iterations completed when it stopped.
        iteration: u64,
        /// Why.
        reason: String,
    },
}

/// Called by [`Trainer::train`] as it goes; every method has a default that does
/// nothing.
pub trait TrainObserver<M> {
    /// After each step; `completed` iterations are done (the step just taken
    /// was iteration `completed - 1`). `loss` is the step's loss when it was
    /// read (every [`TrainOptions::loss_every`] steps).
    fn after_step(&mut self, completed: u64, loss: Option<f64>, learning_rate: f64) {
        let _ = (completed, loss, learning_rate);
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
    /// Read the loss (and check it is finite) every this many steps
    /// (default 1: every step; reading forces a device sync).
    pub loss_every: u64,
}

impl Default for TrainOptions {
    fn default() -> Self {
        Self { loss_every: 1 }
    }
}

/// Runs a recipe's training of a [`Task`] over any iteration range:
/// `Trainer::new(&recipe, &task, &device).train(model, &mut optimizer, k..T, &order, &mut NoObserver)`.
/// [`crate::imp::Imp`] drives it for every level and branch.
#[derive(Debug, Clone)]
pub struct Trainer<'a, T> {
    recipe: &'a TrainingRecipe,
    task: &'a T,
    device: &'a Device,
    options: TrainOptions,
    fixed_learning_rate: Option<f64>,
    sparse: Option<(&'a SparseTraining, &'a Mask)>,
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
        }
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

    /// The dense masked step over `range`.
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
        let batches = task.batches(order, range.clone(), self.device)?;
        for (iteration, batch) in range.clone().zip(batches) {
            let learning_rate = match self.fixed_learning_rate {
                Some(fixed) => ModuleLearningRate::from(fixed),
                None => rates.next_rate(),
            };
            let base_rate = learning_rate.base();
            let loss = task.loss(&model, batch?);
            let read = (iteration + 1 - range.start).is_multiple_of(loss_every)
                || iteration + 1 == range.end;
            let value = if read {
                let v: f64 = loss.clone().into_scalar::<f32>().into();
                if !v.is_finite() {
                    return Err(TrainError::NonFiniteLoss { iteration, loss: v });
                }
                Some(v)
            } else {
                None
            };
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optimizer.step(learning_rate, model, grads);
            observer.after_step(iteration + 1, value, base_rate);
            if observer.checkpoint_due(iteration + 1) {
                observer
                    .checkpoint(iteration + 1, &model, optimizer)
                    .map_err(|reason| TrainError::Stopped {
                        iteration: iteration + 1,
                        reason,
                    })?;
            }
        }
        Ok(model)
    }
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
/// statistics) on `dataset` in its stored order.
pub fn evaluate<M: Classifier>(
    model: &M,
    dataset: &ImageDataset,
    normalization: &Normalization,
    batch_size: usize,
    device: &Device,
) -> Result<Evaluation, DataError> {
    let model = model.valid();
    let mut loss_sum = 0.0;
    let mut correct = 0usize;
    let mut examples = 0usize;
    for batch in EvalBatches::new(dataset, batch_size, normalization)?.to_device(device) {
        let n = batch.labels.dims()[0];
        let logits = model.forward(batch.images.without_autodiff());
        correct += accuracy_count(logits.clone(), batch.labels.clone());
        let loss: f32 = cross_entropy(logits, batch.labels).into_scalar();
        loss_sum += f64::from(loss) * n as f64;
        examples += n;
    }
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
