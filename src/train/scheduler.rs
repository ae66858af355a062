//! Learning rates step by step, through burn's `LrScheduler`.
//!
//! Two sources drive a run's learning rate, and both are burn schedulers:
//!
//! * burn's own ([`BurnScheduler`]: cosine, linear, exponential, step,
//!   noam, sequential, composed, constant, and per-parameter-group rates
//!   through `ModuleLrSchedulerConfig`), given with
//!   [`OptimizerConfig::scheduled`](super::optimizer::OptimizerConfig::scheduled);
//! * the crate's [`LrSchedule`] (a multiplier of the optimizer's base rate),
//!   which implements burn's `LrScheduler` as [`ScheduledLr`].
//!
//! A scheduler is a state machine, so a run that starts at iteration `k`
//! (a rewind, a resumed level) builds it fresh and steps it `k` times:
//! the rates it then gives are bit-identical to those an uninterrupted run
//! gives at the same iterations ([`LearningRates::starting_at`]).

use burn::lr_scheduler::module_lr_scheduler::{
    ModuleLearningRate, ModuleLrScheduler, ModuleLrSchedulerConfig,
};
use burn::lr_scheduler::{LrScheduler, LrSchedulerConfig, LrSchedulerRecord};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::iteration::Iteration;
use super::recipe::RecipeError;
use super::schedule::LrSchedule;
use crate::imp::schema::parse_strict;

/// One of burn's learning-rate schedulers, as burn's
/// `ModuleLrSchedulerConfig` (a base scheduler and optional per-group
/// ones), stored in burn's own serialization. Reading one refuses fields
/// burn's configs do not have.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(transparent)]
pub struct BurnScheduler(#[serde(deserialize_with = "strict_scheduler")] ModuleLrSchedulerConfig);

fn strict_scheduler<'de, D>(deserializer: D) -> Result<ModuleLrSchedulerConfig, D::Error>
where
    D: serde::Deserializer<'de>,
{
    let value = Value::deserialize(deserializer)?;
    parse_strict(value, "the burn scheduler").map_err(serde::de::Error::custom)
}

impl BurnScheduler {
    /// burn's scheduler config (with its per-group schedulers).
    pub fn config(&self) -> &ModuleLrSchedulerConfig {
        &self.0
    }

    /// Builds burn's scheduler, or says why burn refuses its settings.
    pub fn init(&self) -> Result<ModuleLrScheduler, RecipeError> {
        self.0.init().map_err(RecipeError::Scheduler)
    }

    /// Checks that burn can build the scheduler.
    pub fn validate(&self) -> Result<(), RecipeError> {
        self.init().map(|_| ())
    }
}

impl PartialEq for BurnScheduler {
    /// Equal when they serialize alike (burn's configs have no `PartialEq`).
    fn eq(&self, other: &Self) -> bool {
        serde_json::to_value(self).ok() == serde_json::to_value(other).ok()
    }
}

impl From<ModuleLrSchedulerConfig> for BurnScheduler {
    fn from(config: ModuleLrSchedulerConfig) -> Self {
        Self(config)
    }
}

/// `From` each of burn's scheduler configs (one scheduler for every
/// parameter).
macro_rules! from_scheduler_configs {
    ($($config:ty),* $(,)?) => {
        $(impl From<$config> for BurnScheduler {
            fn from(config: $config) -> Self {
                Self(ModuleLrSchedulerConfig::new(LrSchedulerConfig::from(config)))
            }
        })*
    };
}

from_scheduler_configs!(
    LrSchedulerConfig,
    burn::lr_scheduler::cosine::CosineAnnealingLrSchedulerConfig,
    burn::lr_scheduler::linear::LinearLrSchedulerConfig,
    burn::lr_scheduler::exponential::ExponentialLrSchedulerConfig,
    burn::lr_scheduler::noam::NoamLrSchedulerConfig,
    burn::lr_scheduler::step::StepLrSchedulerConfig,
    burn::lr_scheduler::sequential::SequentialLrSchedulerConfig,
    burn::lr_scheduler::composed::ComposedLrSchedulerConfig,
);

/// The crate's [`LrSchedule`] over a base rate, as a burn `LrScheduler`:
/// step `i` (counting from 0) gives `schedule.lr_at(base, i)`.
#[derive(Clone, Debug)]
pub struct ScheduledLr {
    base: f64,
    schedule: LrSchedule,
    next: u64,
}

impl ScheduledLr {
    /// `schedule` over the base learning rate `base`, at iteration 0.
    pub fn new(base: f64, schedule: LrSchedule) -> Self {
        Self {
            base,
            schedule,
            next: 0,
        }
    }
}

/// The record key of [`ScheduledLr`]'s iteration.
const NEXT_ITERATION: &str = "next_iteration";

impl LrScheduler for ScheduledLr {
    fn step(&mut self) -> f64 {
        let lr = self.schedule.lr_at(self.base, Iteration(self.next));
        self.next += 1;
        lr
    }

    fn to_record(&self) -> LrSchedulerRecord {
        LrSchedulerRecord::new().with_scalar(NEXT_ITERATION, self.next)
    }

    fn load_record(&mut self, record: LrSchedulerRecord) {
        if let Some(next) = record.scalar::<u64>(NEXT_ITERATION) {
            self.next = next;
        }
    }
}

/// The learning rates of consecutive steps, from a burn scheduler.
#[derive(Clone)]
pub struct LearningRates {
    scheduler: ModuleLrScheduler,
}

impl LearningRates {
    /// `scheduler` fast-forwarded to iteration `start`: its first
    /// [`next_rate`](Self::next_rate) is the rate of step `start`.
    pub fn starting_at(mut scheduler: ModuleLrScheduler, start: u64) -> Self {
        for _ in 0..start {
            scheduler.step();
        }
        Self { scheduler }
    }

    /// The rate of the next step (per parameter group).
    pub fn next_rate(&mut self) -> ModuleLearningRate {
        self.scheduler.step()
    }
}

impl std::fmt::Debug for LearningRates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LearningRates")
    }
}
