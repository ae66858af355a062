//! [`PruningMethod`]: where each level's mask comes from.

use serde::{Deserialize, Serialize};

use super::config::ImpConfig;
use super::retrain::Retrain;
use crate::mask::Mask;
use crate::prune::{
    AtInitConfig, DynamicConfig, EarlyBirdConfig, GradualConfig, MaskSchedule, PruneError,
    StructuredConfig,
};
use crate::seed::derive_seed;

/// Where the mask of each level `L >= 1` of the main line comes from. Every
/// method reaches, at level `L`, exactly the number of weights that `L`
/// levels of the experiment's magnitude pruner keep (per layer group for
/// IMP, one-shot pruning, early-bird tickets and gradual pruning, in total
/// for pruning at initialization, SET and RigL), so the methods compare at
/// equal densities level by level (structured pruning follows its own unit
/// counts).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum PruningMethod {
    /// Iterative magnitude pruning (IMP): level `L` prunes the network trained
    /// at level `L - 1`.
    #[default]
    Iterative,
    /// One-shot magnitude pruning: level `L` prunes the dense trained network
    /// (level 0) in one step to the per-group counts `L` iterative levels
    /// would keep; each level is an independent one-shot experiment.
    OneShot,
    /// Pruning at initialization (or at the rewind point `k`): level `L`
    /// scores the weights of iteration `k` with a criterion (SNIP, GraSP,
    /// SynFlow, magnitude, random) and keeps the best to level `L`'s total
    /// count, spread over layers by a density rule; then trains from `k`
    /// (Frankle et al., arXiv 2009.08576, use `k = 0`).
    AtInitialization(AtInitConfig),
    /// Structured pruning: level `L` removes whole output units (filters,
    /// neurons) by L1 norm from the network trained at level `L - 1` (or, with
    /// `one_shot`, from the dense one), Li et al. (arXiv 1608.08710); see
    /// [`StructuredConfig`]. Its densities follow its own unit counts, not
    /// the magnitude pruner's, and
    /// [`models::export`](crate::models::export) rebuilds the smaller
    /// network.
    Structured(StructuredConfig),
    /// Early-bird tickets (You et al., arXiv 1909.11957): level `L` runs the
    /// dense training from the initialization, takes the magnitude mask at
    /// `L` levels' per-group counts at the end of every epoch and stops once
    /// consecutive masks stay within `epsilon` of each other for `window`
    /// epochs (see [`EarlyBirdConfig`]); the drawn mask then trains from
    /// the rewind point like any ticket. The distances and the epoch drawn
    /// are stored under `early_bird/` (see [`Layout`](super::Layout)).
    EarlyBird(EarlyBirdConfig),
    /// Gradual magnitude pruning (Zhu & Gupta, arXiv 1710.01878): level `L`
    /// trains one run from the initialization in which the experiment's
    /// magnitude pruner prunes on the cubic schedule of [`GradualConfig`]
    /// up to the per-group counts of `L` levels. The level's `mask.bin` is
    /// the mask the run ends with.
    Gradual(GradualConfig),
    /// Dynamic sparse training, SET or RigL ([`DynamicConfig`]): level `L`
    /// trains one run from the initialization under a random mask with
    /// `L` levels' total count spread over layers (ERK by default), whose
    /// kept weights are dropped and regrown as it trains. The level's
    /// `mask.bin` is the mask the run ends with.
    Dynamic(DynamicConfig),
}

impl PruningMethod {
    /// The level whose trained network a level `level >= 1` prunes (and, when
    /// retraining keeps the trained weights, starts from): `level - 1` for
    /// IMP, the dense level 0 for one-shot pruning; `None` when the mask does
    /// not come from a trained network.
    pub fn pruned_from(&self, level: usize) -> Option<usize> {
        match self {
            Self::Iterative => Some(level.saturating_sub(1)),
            Self::OneShot => Some(0),
            Self::AtInitialization(_)
            | Self::EarlyBird(_)
            | Self::Gradual(_)
            | Self::Dynamic(_) => None,
            Self::Structured(s) => Some(if s.one_shot {
                0
            } else {
                level.saturating_sub(1)
            }),
        }
    }

    /// The main-line level whose finished network (or mask) level
    /// `level >= 1` is made from: the level it is
    /// [pruned from](Self::pruned_from) (the previous one for IMP and
    /// iterated structured pruning), else the dense level 0 (its trained
    /// network or its rewind point).
    pub fn builds_on(&self, level: usize) -> usize {
        self.pruned_from(level).unwrap_or(0)
    }

    /// Whether the main line's mask changes while a level trains (gradual
    /// pruning, SET, RigL): such a level trains from the initialization and
    /// stores the mask it ends with.
    pub fn changes_mask_during_training(&self) -> bool {
        matches!(self, Self::Gradual(_) | Self::Dynamic(_))
    }

    /// The mask schedule of main-line `level >= 1` of `config` (whose
    /// prunable weights `dense` keeps), for a method whose mask changes
    /// during training; `None` for the others.
    pub fn mask_schedule(
        &self,
        config: &ImpConfig,
        level: usize,
        dense: Mask,
    ) -> Result<Option<Box<dyn MaskSchedule>>, PruneError> {
        let total = config.training.training_iterations;
        let pruner = config.pruning.init()?;
        Ok(match self {
            Self::Gradual(gradual) => {
                Some(Box::new(gradual.schedule(pruner, dense, level, total)?))
            }
            Self::Dynamic(dynamic) => {
                let kept = pruner.kept_after(&dense, level)?;
                let seed = derive_seed(config.seeds.init, &format!("dynamic/{level}"));
                Some(Box::new(dynamic.schedule(&dense, kept, total, seed)?))
            }
            _ => None,
        })
    }

    /// The condition name of the main line with `retrain` and rewind
    /// iteration `k`: `imp_rewind500` (the default), `imp_lr_rewind500`,
    /// `oneshot_finetune7500`, `snip`, `random_init_erk`, `grasp_at500`,
    /// `structured_rewind500`, `structured_oneshot_rewind500`,
    /// `early_bird_rewind0`, `gmp`, `rigl`, `set`.
    pub fn condition(&self, retrain: &Retrain, k: u64) -> String {
        match self {
            Self::Iterative => format!("imp_{}", retrain.name(k)),
            Self::OneShot => format!("oneshot_{}", retrain.name(k)),
            Self::AtInitialization(at_init) if k == 0 => at_init.name(),
            Self::AtInitialization(at_init) => format!("{}_at{k}", at_init.name()),
            Self::Structured(s) if s.one_shot => format!("structured_oneshot_{}", retrain.name(k)),
            Self::Structured(_) => format!("structured_{}", retrain.name(k)),
            Self::EarlyBird(_) => format!("early_bird_{}", retrain.name(k)),
            Self::Gradual(_) => "gmp".into(),
            Self::Dynamic(dynamic) => dynamic.name(),
        }
    }

    /// Checks the method and its combination with `retrain`: pruning at
    /// initialization and early-bird tickets train from the rewind point, so
    /// they only combine with weight rewinding; gradual pruning, SET and
    /// RigL train one run from the initialization, so they take no
    /// retraining mode (the default, weight rewinding, is accepted and
    /// means nothing for them).
    pub fn validate(&self, retrain: &Retrain) -> Result<(), String> {
        match self {
            Self::AtInitialization(at_init) => {
                at_init.validate().map_err(|e| e.to_string())?;
                if retrain.keeps_trained_weights() {
                    return Err(format!(
                        "pruning at initialization trains from the rewind point; retrain {retrain:?} keeps trained weights"
                    ));
                }
                Ok(())
            }
            Self::Structured(structured) => structured.validate().map_err(|e| e.to_string()),
            Self::EarlyBird(early_bird) => {
                early_bird.validate().map_err(|e| e.to_string())?;
                if retrain.keeps_trained_weights() {
                    return Err(format!(
                        "an early-bird ticket trains from the rewind point; retrain {retrain:?} keeps trained weights"
                    ));
                }
                Ok(())
            }
            Self::Gradual(gradual) => {
                gradual.validate().map_err(|e| e.to_string())?;
                self.refuse_retraining(retrain)
            }
            Self::Dynamic(dynamic) => {
                dynamic.validate().map_err(|e| e.to_string())?;
                self.refuse_retraining(retrain)
            }
            _ => Ok(()),
        }
    }

    /// A method that trains one run from the initialization refuses any
    /// retraining mode but the default.
    fn refuse_retraining(&self, retrain: &Retrain) -> Result<(), String> {
        if *retrain != Retrain::default() {
            return Err(format!(
                "{} trains one run from the initialization; retrain {retrain:?} does not apply",
                self.condition(retrain, 0)
            ));
        }
        Ok(())
    }
}
