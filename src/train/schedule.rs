//! Learning-rate schedules as pure functions of the iteration, so a resumed
//! or rewound run gets the learning rate of its iteration without replaying
//! any scheduler state (burn's own schedulers are stateful).
//!
//! An [`LrSchedule`] gives a multiplier of the optimizer's base learning rate:
//! `lr(it) = base * decay(it) * warmup(it)` with
//! - `decay`: 1 ([`LrDecay::Constant`]), `gamma^(number of milestones <= it)`
//!   ([`LrDecay::MultiStep`]) or `gamma^(it / step_size)` ([`LrDecay::Step`]);
//! - `warmup`: `min(1, it / W)` over `W = warmup_iterations` (open_lth's linear
//!   warmup: 0 at iteration 0), 1 when `W = 0`.

use serde::{Deserialize, Serialize};

use super::iteration::Iteration;

/// How the learning rate decays.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum LrDecay {
    /// No decay.
    Constant,
    /// Multiply by `gamma` at each milestone (iteration at which the new rate
    /// is first used); milestones strictly increasing.
    MultiStep {
        /// Iterations at which the rate drops.
        milestones: Vec<u64>,
        /// Factor applied at each milestone.
        gamma: f64,
    },
    /// Multiply by `gamma` every `step_size` iterations.
    Step {
        /// Iterations between drops.
        step_size: u64,
        /// Factor applied at each drop.
        gamma: f64,
    },
}

/// A learning-rate schedule (see the module docs).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LrSchedule {
    /// The decay.
    #[serde(deserialize_with = "crate::imp::schema::deserialize_strict")]
    pub decay: LrDecay,
    /// Length of the linear warmup in iterations (0: none).
    #[serde(default)]
    pub warmup_iterations: u64,
}

/// An invalid [`LrSchedule`].
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ScheduleError {
    /// `gamma` not finite or not positive.
    #[error("lr decay gamma must be finite and > 0, got {0}")]
    InvalidGamma(f64),
    /// Milestones not strictly increasing.
    #[error("lr milestones must be strictly increasing, got {0:?}")]
    UnsortedMilestones(Vec<u64>),
    /// `step_size` is 0.
    #[error("lr step_size must be > 0")]
    ZeroStepSize,
}

impl Default for LrSchedule {
    fn default() -> Self {
        Self::constant()
    }
}

impl LrSchedule {
    /// A constant learning rate, no warmup.
    pub fn constant() -> Self {
        LrSchedule {
            decay: LrDecay::Constant,
            warmup_iterations: 0,
        }
    }

    /// Multiply by `gamma` at each of `milestones` (iterations), no warmup.
    pub fn multi_step(milestones: Vec<u64>, gamma: f64) -> Self {
        LrSchedule {
            decay: LrDecay::MultiStep { milestones, gamma },
            warmup_iterations: 0,
        }
    }

    /// Multiply by `gamma` every `step_size` iterations, no warmup.
    pub fn step(step_size: u64, gamma: f64) -> Self {
        LrSchedule {
            decay: LrDecay::Step { step_size, gamma },
            warmup_iterations: 0,
        }
    }

    /// The same schedule with a linear warmup over `iterations` iterations.
    pub fn with_warmup(mut self, iterations: u64) -> Self {
        self.warmup_iterations = iterations;
        self
    }

    /// Checks gamma, milestone order and step size.
    pub fn validate(&self) -> Result<(), ScheduleError> {
        match &self.decay {
            LrDecay::Constant => Ok(()),
            LrDecay::MultiStep { milestones, gamma } => {
                check_gamma(*gamma)?;
                if milestones.windows(2).any(|w| w[0] >= w[1]) {
                    return Err(ScheduleError::UnsortedMilestones(milestones.clone()));
                }
                Ok(())
            }
            LrDecay::Step { step_size, gamma } => {
                check_gamma(*gamma)?;
                if *step_size == 0 {
                    return Err(ScheduleError::ZeroStepSize);
                }
                Ok(())
            }
        }
    }

    /// The factor of the base learning rate at `iteration` (warmup included).
    pub fn multiplier_at(&self, iteration: Iteration) -> f64 {
        let it = iteration.0;
        let decay = match &self.decay {
            LrDecay::Constant => 1.0,
            LrDecay::MultiStep { milestones, gamma } => {
                let drops = milestones.iter().filter(|&&m| m <= it).count();
                gamma.powi(drops as i32)
            }
            LrDecay::Step { step_size, gamma } => {
                let drops = it.checked_div(*step_size).unwrap_or(0);
                gamma.powi(drops.min(i32::MAX as u64) as i32)
            }
        };
        let warmup = if self.warmup_iterations == 0 || it >= self.warmup_iterations {
            1.0
        } else {
            it as f64 / self.warmup_iterations as f64
        };
        decay * warmup
    }

    /// The learning rate at `iteration` for base rate `base_lr`.
    pub fn lr_at(&self, base_lr: f64, iteration: Iteration) -> f64 {
        base_lr * self.multiplier_at(iteration)
    }
}

fn check_gamma(gamma: f64) -> Result<(), ScheduleError> {
    if gamma.is_finite() && gamma > 0.0 {
        Ok(())
    } else {
        Err(ScheduleError::InvalidGamma(gamma))
    }
}
