//! Training recipes: optimizer, batch size, length, learning-rate schedule and
//! augmentation, with the papers' settings as presets.
//!
//! Recipes are serde types: print a preset with
//! [`TrainingRecipe::to_json_string`], edit it, and load it back with
//! [`TrainingRecipe::from_json_str`] (which validates it).
//!
//! Optimizers follow PyTorch's semantics (as the reference implementation):
//! SGD momentum without dampening (burn's default dampening is 0.1), weight
//! decay as an L2 term added to the gradient before momentum, Adam epsilon
//! 1e-8 (burn's default is 1e-5).

use serde::{Deserialize, Serialize};

pub use super::optimizer::{BurnOptimizer, OptimizerConfig};

use burn::lr_scheduler::module_lr_scheduler::ModuleLrScheduler;

use super::iteration::{Iteration, iterations_per_epoch};
use super::schedule::{LrDecay, LrSchedule, ScheduleError};
use super::scheduler::{LearningRates, ScheduledLr};

/// An invalid recipe, or one that could not be read.
#[derive(Debug, thiserror::Error)]
pub enum RecipeError {
    /// `batch_size` is 0.
    #[error("batch_size must be > 0")]
    ZeroBatchSize,
    /// `training_iterations` is 0.
    #[error("training_iterations must be > 0")]
    ZeroTrainingIterations,
    /// The base learning rate is not finite and positive.
    #[error("learning_rate must be finite and > 0, got {0}")]
    InvalidLearningRate(f64),
    /// Another optimizer hyperparameter out of range.
    #[error("optimizer {name} out of range: {value}")]
    InvalidHyperparameter {
        /// The field.
        name: &'static str,
        /// Its value.
        value: f64,
    },
    /// Nesterov momentum asked for with momentum 0.
    #[error("nesterov needs momentum > 0")]
    NesterovWithoutMomentum,
    /// The warmup is longer than the training.
    #[error("warmup_iterations ({warmup}) exceeds training_iterations ({training})")]
    WarmupTooLong {
        /// Warmup length.
        warmup: u64,
        /// Training length.
        training: u64,
    },
    /// The learning-rate schedule is invalid.
    #[error(transparent)]
    Schedule(#[from] ScheduleError),
    /// The schedule grows the learning rate past what `f64` holds (a
    /// `gamma` above 1 applied too many times).
    #[error(
        "the learning rate overflows: {base} x the schedule's multiplier is {value} at iteration {iteration}"
    )]
    LearningRateOverflow {
        /// The base learning rate.
        base: f64,
        /// The iteration at which it is no longer finite.
        iteration: u64,
        /// The learning rate there.
        value: f64,
    },
    /// A burn optimizer needs exactly one source of its learning rate.
    #[error(
        "a burn optimizer needs exactly one of `learning_rate` (scaled by `schedule`) and `scheduler`"
    )]
    LearningRateSource,
    /// burn refused the scheduler's settings.
    #[error("the burn scheduler: {0}")]
    Scheduler(String),
    /// A burn scheduler gives every rate, so the multiplier `schedule`
    /// must stay constant.
    #[error(
        "the optimizer's burn scheduler gives every learning rate: leave `schedule` constant without warmup"
    )]
    ScheduleWithScheduler,
    /// The JSON could not be parsed.
    #[error("recipe JSON: {0}")]
    Json(#[from] serde_json::Error),
}

/// Everything that defines how a network is trained (see the module docs).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainingRecipe {
    /// Examples per batch.
    pub batch_size: usize,
    /// Training length T in iterations (optimizer steps).
    pub training_iterations: u64,
    /// The optimizer.
    pub optimizer: OptimizerConfig,
    /// The learning-rate schedule (a multiplier of the optimizer's rate).
    pub schedule: LrSchedule,
    /// Data augmentation (CIFAR: random crop 32 with padding 4 and horizontal flip).
    pub augment: bool,
}

impl TrainingRecipe {
    /// ResNet-20 on CIFAR-10 (open_lth `cifar_resnet_20`): SGD lr 0.1,
    /// momentum 0.9, weight decay 1e-4, batch 128, 160 epochs = 62,560
    /// iterations (391 per epoch), lr x0.1 at epochs 80 and 120 (iterations
    /// 31,280 and 46,920), no warmup, augmentation on.
    pub fn resnet20_cifar10() -> Self {
        let ipe = iterations_per_epoch(50_000, 128) as u64;
        TrainingRecipe {
            batch_size: 128,
            training_iterations: 160 * ipe,
            optimizer: OptimizerConfig::sgd_momentum(0.1),
            schedule: LrSchedule::multi_step(vec![80 * ipe, 120 * ipe], 0.1),
            augment: true,
        }
    }

    /// A smoke-test version of [`resnet20_cifar10`](Self::resnet20_cifar10):
    /// the same optimizer, batch 64, 200 iterations, lr x0.1 at 100 and 150.
    pub fn resnet20_cifar10_quick() -> Self {
        TrainingRecipe {
            batch_size: 64,
            training_iterations: 200,
            schedule: LrSchedule::multi_step(vec![100, 150], 0.1),
            ..Self::resnet20_cifar10()
        }
    }

    /// LeNet-300-100 as in the original lottery-ticket paper (Frankle &
    /// Carbin 2019), here on Fashion-MNIST: Adam lr 1.2e-3, batch 60, 50,000
    /// iterations, constant lr, no augmentation.
    pub fn lenet_fashion_mnist() -> Self {
        TrainingRecipe {
            batch_size: 60,
            training_iterations: 50_000,
            optimizer: OptimizerConfig::adam(1.2e-3),
            schedule: LrSchedule::constant(),
            augment: false,
        }
    }

    /// A smoke-test version of [`lenet_fashion_mnist`](Self::lenet_fashion_mnist):
    /// 500 iterations.
    pub fn lenet_fashion_mnist_quick() -> Self {
        TrainingRecipe {
            training_iterations: 500,
            ..Self::lenet_fashion_mnist()
        }
    }

    /// [`lenet_fashion_mnist`](Self::lenet_fashion_mnist) with a decaying
    /// learning rate, for comparing retraining modes: Adam 1.2e-3, batch 60,
    /// 50,000 iterations, the rate x0.1 at 50% and at 75% of training
    /// (iterations 25,000 and 37,500; [`shortened`](Self::shortened) keeps
    /// the fractions), no augmentation. Renda, Frankle & Carbin (arXiv
    /// 2003.02389) compare retraining modes under such step schedules: with
    /// one, learning-rate rewinding replays the high early rate from `k`
    /// while fine-tuning trains at the final rate (1.2e-5); with the
    /// constant rate of the original preset the two coincide.
    pub fn lenet_fashion_mnist_decaying() -> Self {
        TrainingRecipe {
            schedule: LrSchedule::multi_step(vec![25_000, 37_500], 0.1),
            ..Self::lenet_fashion_mnist()
        }
    }

    /// The same recipe trained for `iterations` instead, with the schedule's
    /// milestones, step size and warmup scaled by the same factor (rounded
    /// down), so a shortened run keeps the shape of the full one.
    pub fn shortened(&self, iterations: u64) -> Self {
        let scale = |x: u64| -> u64 {
            (u128::from(x) * u128::from(iterations) / u128::from(self.training_iterations.max(1)))
                as u64
        };
        let mut recipe = self.clone();
        recipe.training_iterations = iterations;
        recipe.schedule.warmup_iterations = scale(self.schedule.warmup_iterations);
        match &mut recipe.schedule.decay {
            LrDecay::Constant => {}
            LrDecay::MultiStep { milestones, .. } => {
                for m in milestones.iter_mut() {
                    *m = scale(*m);
                }
                milestones.dedup();
            }
            LrDecay::Step { step_size, .. } => *step_size = scale(*step_size).max(1),
        }
        recipe
    }

    /// The data order of a run with these seeds: the recipe's batch size,
    /// and augmentation seeded by `augment_seed` when the recipe augments.
    pub fn data_order(&self, order_seed: u64, augment_seed: u64) -> crate::task::DataOrder {
        crate::task::DataOrder {
            batch_size: self.batch_size,
            order_seed,
            augment_seed: self.augment.then_some(augment_seed),
        }
    }

    /// The learning rate for the step taken at `iteration` (with per-group
    /// rates, the rate of the group every parameter belongs to); NaN for a
    /// recipe that [`validate`](Self::validate) refuses.
    pub fn lr_at(&self, iteration: Iteration) -> f64 {
        match (self.optimizer.scheduler(), self.optimizer.learning_rate()) {
            (Some(_), _) => self
                .learning_rates(iteration.0)
                .map_or(f64::NAN, |mut rates| rates.next_rate().base()),
            (None, Some(base)) => self.schedule.lr_at(base, iteration),
            (None, None) => f64::NAN,
        }
    }

    /// The learning rates of the steps from `start` on, as a burn scheduler
    /// gives them: the optimizer's burn scheduler, or the recipe's
    /// `schedule` over the base rate ([`ScheduledLr`]). Bit-identical to an
    /// uninterrupted run's rates at the same iterations.
    pub fn learning_rates(&self, start: u64) -> Result<LearningRates, RecipeError> {
        let scheduler = match (self.optimizer.scheduler(), self.optimizer.learning_rate()) {
            (Some(scheduler), _) => scheduler.init()?,
            (None, Some(base)) => {
                ModuleLrScheduler::new(ScheduledLr::new(base, self.schedule.clone()))
            }
            (None, None) => return Err(RecipeError::LearningRateSource),
        };
        Ok(LearningRates::starting_at(scheduler, start))
    }

    /// The last iteration (T): the state after all training steps.
    pub fn final_iteration(&self) -> Iteration {
        Iteration(self.training_iterations)
    }

    /// Iterations per epoch on a dataset of `dataset_len` examples.
    ///
    /// # Panics
    /// If `batch_size` is 0 (see [`validate`](Self::validate)).
    pub fn iterations_per_epoch(&self, dataset_len: usize) -> u64 {
        iterations_per_epoch(dataset_len, self.batch_size) as u64
    }

    /// Checks batch size, length, optimizer and schedule.
    pub fn validate(&self) -> Result<(), RecipeError> {
        if self.batch_size == 0 {
            return Err(RecipeError::ZeroBatchSize);
        }
        if self.training_iterations == 0 {
            return Err(RecipeError::ZeroTrainingIterations);
        }
        self.optimizer.validate()?;
        self.schedule.validate()?;
        if self.schedule.warmup_iterations > self.training_iterations {
            return Err(RecipeError::WarmupTooLong {
                warmup: self.schedule.warmup_iterations,
                training: self.training_iterations,
            });
        }
        let Some(base) = self.optimizer.learning_rate() else {
            // The optimizer checked that its burn scheduler builds.
            if self.schedule != LrSchedule::constant() {
                return Err(RecipeError::ScheduleWithScheduler);
            }
            return Ok(());
        };
        // A decay factor is applied a non-decreasing number of times, so the
        // largest rate is at the start (gamma <= 1) or at T (gamma > 1).
        for iteration in [Iteration(0), self.final_iteration()] {
            let value = self.lr_at(iteration);
            if !value.is_finite() {
                return Err(RecipeError::LearningRateOverflow {
                    base,
                    iteration: iteration.0,
                    value,
                });
            }
        }
        Ok(())
    }

    /// Pretty-printed JSON.
    pub fn to_json_string(&self) -> String {
        serde_json::to_string_pretty(self).expect("a recipe always serializes")
    }

    /// Parses and validates a recipe from JSON (schema 1's `"type"` tag of
    /// the optimizer is read as `"kind"`; see [`crate::imp::schema`]).
    pub fn from_json_str(json: &str) -> Result<Self, RecipeError> {
        let mut value: serde_json::Value = serde_json::from_str(json)?;
        crate::imp::schema::rename_key(
            &mut value,
            "/optimizer",
            "type",
            crate::imp::schema::TAG_KEY,
        );
        let recipe: TrainingRecipe = serde_json::from_value(value)?;
        recipe.validate()?;
        Ok(recipe)
    }
}
