//! [`Retrain`]: how a pruned network is trained again (Renda, Frankle &
//! Carbin, "Comparing Rewinding and Fine-tuning in Neural Network Pruning",
//! arXiv 2003.02389).

use std::ops::Range;

use serde::{Deserialize, Serialize};

use crate::train::iteration::Iteration;
use crate::train::recipe::TrainingRecipe;

/// How the main line retrains the network after each pruning step. Level 0
/// (the dense network) always trains `0..T` from the initialization.
///
/// | mode | starting weights | iterations | learning rate |
/// |---|---|---|---|
/// | weight rewinding (default) | the survivors at iteration `k` | `k..T` | the schedule's |
/// | learning-rate rewinding | the previous network's trained weights | `k..T` | the schedule's, replayed from `k` |
/// | fine-tuning | the previous network's trained weights | `T..T+n` | the schedule's final rate, constant |
///
/// All three start with a fresh optimizer and see the experiment's data order
/// at the iterations they train (fine-tuning continues the stream past `T`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Retrain {
    /// Weight rewinding (Frankle et al., arXiv 1903.01611): weights and
    /// schedule back to iteration `k`.
    #[default]
    WeightRewinding,
    /// Learning-rate rewinding: keep the trained weights, replay the
    /// learning-rate schedule from iteration `k` to the end (`T - k`
    /// iterations).
    LearningRateRewinding,
    /// Fine-tuning: keep the trained weights and train `iterations` more
    /// iterations at the schedule's final learning rate (that of iteration
    /// `T - 1`).
    FineTuning {
        /// Iterations of retraining (Renda et al. compare modes at equal
        /// budgets: `T - k` matches the rewinding modes).
        iterations: u64,
    },
}

impl Retrain {
    /// Whether retraining starts from the previous network's trained weights
    /// (learning-rate rewinding, fine-tuning) rather than from iteration `k`.
    pub fn keeps_trained_weights(&self) -> bool {
        !matches!(self, Self::WeightRewinding)
    }

    /// The iterations a pruned level trains, for rewind iteration `k` and a
    /// recipe of `total` iterations.
    pub fn iterations(&self, k: u64, total: u64) -> Range<u64> {
        match *self {
            Self::WeightRewinding | Self::LearningRateRewinding => k..total,
            Self::FineTuning { iterations } => total..total.saturating_add(iterations),
        }
    }

    /// The constant learning rate a pruned level trains at instead of the
    /// schedule's (fine-tuning: the final rate of `recipe`), or `None`.
    pub fn fixed_learning_rate(&self, recipe: &TrainingRecipe) -> Option<f64> {
        match self {
            Self::FineTuning { .. } => {
                Some(recipe.lr_at(Iteration(recipe.training_iterations.saturating_sub(1))))
            }
            _ => None,
        }
    }

    /// The learning rate of the step at `iteration` of a pruned level.
    pub fn learning_rate(&self, recipe: &TrainingRecipe, iteration: u64) -> f64 {
        self.fixed_learning_rate(recipe)
            .unwrap_or_else(|| recipe.lr_at(Iteration(iteration)))
    }

    /// The part of a condition name that says how it retrains, for rewind
    /// iteration `k`: `rewind500`, `lr_rewind500`, `finetune7500`.
    pub fn name(&self, k: u64) -> String {
        match self {
            Self::WeightRewinding => format!("rewind{k}"),
            Self::LearningRateRewinding => format!("lr_rewind{k}"),
            Self::FineTuning { iterations } => format!("finetune{iterations}"),
        }
    }

    /// Checks the setting: fine-tuning needs at least one iteration.
    pub fn validate(&self) -> Result<(), String> {
        match self {
            Self::FineTuning { iterations: 0 } => {
                Err("retrain: fine-tuning needs iterations > 0".into())
            }
            _ => Ok(()),
        }
    }
}
