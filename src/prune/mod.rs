//! Pruning strategies: given trained weights and the current mask, the next
//! mask.
//!
//! Every pruner follows the same two rules, decided here and nowhere else:
//!
//! * **Rounding** ([`prune_count`]): pruning a fraction `p` of `n` remaining
//!   weights removes `round(p * n)` of them, halves rounded up (computed in
//!   `f64`). After `L` levels at `p = 0.2` a layer of `n0` weights keeps
//!   `n_L = n_{L-1} - round(0.2 * n_{L-1})`.
//! * **Ties** are broken by magnitude, then by position: parameters in path
//!   order, entries in row-major order, earlier first. Exactly the requested
//!   number of weights is removed however many weights tie.
//!
//! Pruning only ever removes weights that are still kept: the next mask is
//! always a subset of the current one.
//!
//! Pruning at initialization ([`AtInitConfig`]) works in stages, one file
//! each: a criterion scores the weights ([`snip_scores`], [`grasp_scores`],
//! [`synflow_scores`], magnitude, random), a [`DensityRule`] spreads the
//! kept count over layers (global, uniform, ERK), and [`keep_top`] keeps the
//! best scores. [`NOfM`] is the structured selection (at most N of every M
//! input weights; [`keep_n_of_m`], or [`MagnitudePrunerConfig::n_of_m`]
//! inside IMP); [`StructuredPruner`] removes whole output channels and
//! neurons by L1 norm (Li et al.), which
//! [`models::export`](crate::models::export) turns into a smaller dense
//! network. [`EarlyBirdConfig`] draws early-bird tickets (You et al.):
//! the magnitude mask of the dense run once it stops changing
//! ([`mask_distance`], [`EarlyBirdDetector`]).
//!
//! Masks that change during one training run are the schedule stage
//! ([`MaskSchedule`]): [`GradualConfig`] prunes by magnitude on Zhu &
//! Gupta's cubic schedule (GMP), [`DynamicConfig`] drops and regrows
//! weights at fixed per-layer counts (SET, RigL).

mod at_init;
mod density;
mod dynamic;
mod early_bird;
mod error;
mod gradients;
mod gradual;
mod grasp;
mod magnitude;
mod nm;
mod random;
mod schedule;
mod select;
mod snip;
mod structured;
mod synflow;

use std::collections::BTreeMap;

use burn::module::Module;

pub use at_init::{AtInitConfig, InitCriterion};
pub use density::{Allocation, DensityRule, erk_densities};
pub use dynamic::{DropDecay, DynamicConfig, DynamicSparsity, Regrowth, drop_and_grow};
pub use early_bird::{
    EARLY_BIRD_CSV_HEADER, EarlyBirdConfig, EarlyBirdDetector, EarlyBirdRecord, EpochDistance,
    mask_distance,
};
pub use error::PruneError;
pub(crate) use gradients::gradient_values;
pub use gradual::{GradualConfig, GradualPruning};
pub use grasp::grasp_scores;
pub use magnitude::{LayerRate, MagnitudePruner, MagnitudePrunerConfig};
pub use nm::{GroupLayout, NOfM, keep_n_of_m};
pub use random::{RandomPruner, RandomPrunerConfig, random_mask_like};
pub use schedule::{MaskSchedule, MaskUpdate};
pub use select::{Scores, keep_top};
pub use snip::snip_scores;
pub use structured::{ChannelGroup, StructuredConfig, StructuredPruner, l1_unit_scores};
pub use synflow::{synflow_mask, synflow_scores};

use crate::mask::Mask;
use crate::params::float_values;

/// Host copies of the masked weights of a model, keyed by parameter path.
pub type Weights = BTreeMap<String, Vec<f32>>;

/// Whether one threshold spans all prunable layers or each layer is pruned
/// on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PruningScope {
    /// One ranking over all selected weights (the paper's choice).
    #[default]
    Global,
    /// Each layer loses the same fraction of its own remaining weights.
    LayerWise,
}

/// A pruning strategy.
pub trait Pruner {
    /// The next mask from host copies of the trained weights. `weights` must
    /// hold every path of `current`, with matching sizes.
    fn next_mask_from_weights(&self, weights: &Weights, current: &Mask)
    -> Result<Mask, PruneError>;

    /// The next mask for a trained model: reads the masked weights of
    /// `trained` and calls [`Pruner::next_mask_from_weights`].
    fn next_mask<M: Module>(&self, trained: &M, current: &Mask) -> Result<Mask, PruneError>
    where
        Self: Sized,
    {
        self.next_mask_from_weights(&masked_weights(trained, current)?, current)
    }
}

/// Host copies of the weights of `trained` that `current` masks, after
/// checking that the mask fits the model: what every pruner scores.
pub(crate) fn masked_weights<M: Module>(
    trained: &M,
    current: &Mask,
) -> Result<Weights, PruneError> {
    current.validate(trained, None)?;
    Ok(float_values(trained, |path| current.contains(path)))
}

/// The number of weights that pruning `fraction` of `remaining` removes:
/// `round(fraction * remaining)`, halves rounded up.
///
/// ```
/// use burn_lottery::prune::prune_count;
/// assert_eq!(prune_count(0.2, 1000), 200);
/// assert_eq!(prune_count(0.2, 7), 1); // 1.4 -> 1
/// assert_eq!(prune_count(0.5, 3), 2); // 1.5 -> 2
/// ```
pub fn prune_count(fraction: f64, remaining: usize) -> usize {
    let exact = fraction * remaining as f64;
    (exact.round() as usize).min(remaining)
}

/// The number of weights kept after `levels` levels of pruning `fraction` of
/// the remaining weights of a pool of `total`, by the rule of [`prune_count`].
pub fn kept_after_levels(total: usize, fraction: f64, levels: usize) -> usize {
    (0..levels).fold(total, |n, _| n - prune_count(fraction, n))
}

/// Checks that a pruning fraction lies strictly between 0 and 1.
pub fn validate_fraction(name: &str, value: f64) -> Result<(), PruneError> {
    if value.is_finite() && value > 0.0 && value < 1.0 {
        Ok(())
    } else {
        Err(PruneError::InvalidFraction {
            name: name.to_string(),
            value,
        })
    }
}

/// Checks that `weights` covers `current` with matching sizes and finite values.
fn check_weights(weights: &Weights, current: &Mask) -> Result<(), PruneError> {
    select::check_covers(weights, current, |path, index| {
        PruneError::NonFiniteWeight { path, index }
    })
}
