//! [`Branch`]: what is trained at a pruning level. Each branch knows its
//! name, where its files go, how its starting weights are made and which
//! data order it sees; the runner trains every branch the same way
//! ([`Imp::run`](super::Imp::run) and the stability analysis alike).

use std::ops::Range;

use serde::{Deserialize, Serialize};

use super::config::ImpConfig;
use crate::seed::derive_seed;
use crate::task::DataOrder;

/// Which subnetwork of an experiment a stability copy retrains.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Condition {
    /// The IMP main line (`imp_rewind<k>` by default).
    Imp,
    /// The random-pruning control (random mask with the level's per-layer
    /// counts, weights from the rewind point).
    RandomPrune,
}

impl Condition {
    /// The report name: the main line's condition under `config`
    /// (`imp_rewind<k>` by default, `imp_lr_rewind<k>` with learning-rate
    /// rewinding, ...; [`ImpConfig::condition`]) or `random_prune`.
    pub fn name(&self, config: &ImpConfig) -> String {
        match self {
            Self::Imp => config.condition(),
            Self::RandomPrune => "random_prune".into(),
        }
    }

    /// Level 0 is the dense network in every condition.
    pub fn at_level(self, level: usize) -> Self {
        if level == 0 { Self::Imp } else { self }
    }

    /// The branch whose mask and training this condition follows.
    pub fn branch(self) -> Branch {
        match self {
            Self::Imp => Branch::Main,
            Self::RandomPrune => Branch::RandomPrune,
        }
    }
}

/// One line of training of an experiment, run at every level it applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Branch {
    /// The IMP line: level 0 trains the dense network from its seeded
    /// initialization (and saves the rewind point on the way); level `L`
    /// trains the level's mask from the rewind point.
    Main,
    /// Control: the main line's mask with fresh weights from the model's
    /// initialization (a seed derived per level), trained from `k`.
    RandomReinit,
    /// Control: a random mask with the main line's per-layer counts (a seed
    /// derived per level), weights from the rewind point.
    RandomPrune,
    /// The main line's subnetwork retrained from the rewind point with this
    /// data-order seed (augmentation keeps the experiment's seed).
    DataOrder(u64),
    /// A copy for the stability analysis: `condition`'s subnetwork trained
    /// from the rewind point with data-order seed `seed` (which seeds its
    /// augmentation too, unless it is the experiment's own data-order seed).
    Stability {
        /// Which subnetwork.
        condition: Condition,
        /// Its data-order seed.
        seed: u64,
    },
}

/// How a branch's starting weights at a level are made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// The seeded initialization (the main line's level 0).
    Init,
    /// The survivors rewound to iteration k.
    Rewind,
    /// Fresh weights from this initialization seed.
    Reinit(u64),
    /// The main line's trained network of this level, under the branch's
    /// mask (learning-rate rewinding and fine-tuning).
    Trained(usize),
}

impl Branch {
    /// The condition name in reports and summaries.
    pub fn name(&self, config: &ImpConfig) -> String {
        match self {
            Self::Main => config.condition(),
            Self::RandomReinit => "random_reinit".into(),
            Self::RandomPrune => "random_prune".into(),
            Self::DataOrder(seed) => format!("data_order_{seed}"),
            Self::Stability { condition, seed } => {
                format!("{}_data_order_{seed}", condition.name(config))
            }
        }
    }

    /// Whether the branch trains at `level` (controls start at level 1).
    pub fn trains_at(&self, level: usize) -> bool {
        !matches!(self, Self::RandomReinit | Self::RandomPrune) || level > 0
    }

    /// Whether the branch retrains the main line's subnetwork after pruning
    /// at `level`, and so follows the experiment's [`Retrain`] mode: the
    /// main line, its other data orders and the IMP stability copies, at
    /// levels >= 1. The controls always train from `k` to `T`.
    ///
    /// [`Retrain`]: super::Retrain
    pub fn retrains(&self, level: usize) -> bool {
        level > 0
            && matches!(
                self,
                Self::Main
                    | Self::DataOrder(_)
                    | Self::Stability {
                        condition: Condition::Imp,
                        ..
                    }
            )
    }

    /// How its starting weights at `level` are made: the main line trains
    /// from the initialization at level 0, and at every level when its mask
    /// changes during training (gradual pruning, SET, RigL).
    pub fn start(&self, level: usize, config: &ImpConfig) -> Start {
        match self {
            Self::Main if level == 0 || config.method.changes_mask_during_training() => Start::Init,
            Self::RandomReinit => Start::Reinit(derive_seed(
                config.seeds.init,
                &format!("random_reinit/{level}"),
            )),
            _ if self.retrains(level) && config.retrain.keeps_trained_weights() => {
                Start::Trained(config.method.pruned_from(level).unwrap_or(level - 1))
            }
            _ => Start::Rewind,
        }
    }

    /// The iterations it trains at `level`: `0..T` from the initialization,
    /// the retraining mode's range when it [retrains](Self::retrains), `k..T`
    /// otherwise.
    pub fn iterations(&self, level: usize, config: &ImpConfig) -> Range<u64> {
        let (k, total) = (config.rewind_iteration, config.training.training_iterations);
        match self.start(level, config) {
            Start::Init => 0..total,
            _ if self.retrains(level) => config.retrain.iterations(k, total),
            _ => k..total,
        }
    }

    /// The constant learning rate it trains at `level` with instead of the
    /// recipe's schedule (fine-tuning), or `None`.
    pub fn fixed_learning_rate(&self, level: usize, config: &ImpConfig) -> Option<f64> {
        if self.retrains(level) {
            config.retrain.fixed_learning_rate(&config.training)
        } else {
            None
        }
    }

    /// The data order it trains with.
    pub fn data_order(&self, config: &ImpConfig) -> DataOrder {
        let seeds = &config.seeds;
        let (order, augment) = match *self {
            Self::DataOrder(seed) => (seed, seeds.augmentation),
            Self::Stability { seed, .. } if seed != seeds.data_order => (seed, seed),
            _ => (seeds.data_order, seeds.augmentation),
        };
        config.training.data_order(order, augment)
    }

    /// The seed of the random-pruning control's mask at `level`.
    pub fn random_prune_seed(config: &ImpConfig, level: usize) -> u64 {
        derive_seed(config.seeds.init, &format!("random_prune/{level}"))
    }

    /// The already trained branch whose network this one would reproduce
    /// exactly, if any: a stability copy with the experiment's data-order
    /// seed is its condition's own network, except for the dense level 0
    /// when the main line trained `0..T` in one go from initialization
    /// (`k > 0`, or the optimizer state restored at `k`), and for a main
    /// line whose mask changes during training (it trains from the
    /// initialization; its copies train the mask it ends with from `k`).
    pub fn same_network_as(&self, level: usize, config: &ImpConfig) -> Option<Branch> {
        // Whether a copy trained from k retraces its condition's own run.
        let retraces = |condition: Condition| match condition {
            Condition::RandomPrune => true,
            Condition::Imp if level == 0 => {
                config.rewind_iteration == 0 && !config.restore_optimizer_state
            }
            Condition::Imp => !config.method.changes_mask_during_training(),
        };
        match *self {
            Self::Stability { condition, seed }
                if seed == config.seeds.data_order && retraces(condition.at_level(level)) =>
            {
                Some(condition.at_level(level).branch())
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imp::Retrain;

    #[test]
    fn stability_copies_are_named_after_the_main_lines_condition() {
        let copy = Branch::Stability {
            condition: Condition::Imp,
            seed: 3,
        };
        let config = ImpConfig {
            rewind_iteration: 500,
            ..ImpConfig::default()
        };
        assert_eq!(copy.name(&config), "imp_rewind500_data_order_3");
        let lr_rewinding = ImpConfig {
            retrain: Retrain::LearningRateRewinding,
            ..config.clone()
        };
        assert_eq!(copy.name(&lr_rewinding), "imp_lr_rewind500_data_order_3");
        let control = Branch::Stability {
            condition: Condition::RandomPrune,
            seed: 3,
        };
        assert_eq!(control.name(&lr_rewinding), "random_prune_data_order_3");
    }
}
