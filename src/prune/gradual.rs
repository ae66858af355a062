//! Gradual magnitude pruning ([`GradualConfig`]).

use serde::{Deserialize, Serialize};

use super::schedule::{MaskSchedule, MaskUpdate};
use super::{MagnitudePruner, PruneError, Weights};
use crate::mask::Mask;

/// Gradual magnitude pruning (GMP; Zhu & Gupta, "To prune, or not to
/// prune", arXiv 1710.01878): one training run from the initialization in
/// which the sparsity rises on a cubic schedule,
/// `s_t = s_f + (s_i - s_f) (1 - (t - t_0) / (n Δt))^3`, pruning the
/// smallest-magnitude kept weights every `Δt` steps from `t_0` to
/// `t_0 + n Δt`, then training on at the final sparsity.
///
/// The final counts are the experiment's magnitude pruner's at the level
/// (per group: the global pool, each override, each layer when layer-wise),
/// so GMP compares with IMP level by level; the scope, overrides, floors and
/// N:M pattern of [`MagnitudePrunerConfig`](super::MagnitudePrunerConfig)
/// apply at every step.
///
/// This config says when it prunes. Defaults: from sparsity 0 at 10% of training to the level's sparsity at
/// 75%, every 100 steps.
///
/// ```
/// use burn_lottery::prune::GradualConfig;
/// let config = GradualConfig::new().with_every(50);
/// config.validate().unwrap();
/// // 10,000 iterations: prune at 1,000, 1,050, ..., 7,500.
/// let steps = config.pruning_iterations(10_000);
/// assert_eq!((steps.first(), steps.last(), steps.len()), (Some(&1000), Some(&7500), 131));
/// assert!(GradualConfig::new().with_every(0).validate().is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GradualConfig {
    /// Sparsity `s_i` of the first pruning step, in `[0, 1)` (default 0).
    pub initial_sparsity: f64,
    /// The first pruning step `t_0` as a fraction of the training length
    /// (default 0.1).
    pub start_fraction: f64,
    /// The last pruning step, at most this fraction of the training length
    /// (default 0.75): `t_0 + n Δt` with the largest `n` that fits.
    pub end_fraction: f64,
    /// Steps `Δt` between two pruning steps (default 100).
    pub every: u64,
}

impl Default for GradualConfig {
    fn default() -> Self {
        Self {
            initial_sparsity: 0.0,
            start_fraction: 0.1,
            end_fraction: 0.75,
            every: 100,
        }
    }
}

impl GradualConfig {
    /// The defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the steps between two pruning steps.
    pub fn with_every(mut self, every: u64) -> Self {
        self.every = every;
        self
    }

    /// Sets the fractions of training where pruning starts and ends.
    pub fn with_window(mut self, start_fraction: f64, end_fraction: f64) -> Self {
        self.start_fraction = start_fraction;
        self.end_fraction = end_fraction;
        self
    }

    /// Sets the initial sparsity.
    pub fn with_initial_sparsity(mut self, sparsity: f64) -> Self {
        self.initial_sparsity = sparsity;
        self
    }

    /// Checks every setting.
    pub fn validate(&self) -> Result<(), PruneError> {
        let invalid = |m: String| Err(PruneError::InvalidGradual(m));
        let s = self.initial_sparsity;
        if !(s.is_finite() && (0.0..1.0).contains(&s)) {
            return invalid(format!("initial_sparsity must be in [0, 1), got {s}"));
        }
        let (a, b) = (self.start_fraction, self.end_fraction);
        if !(a.is_finite() && b.is_finite() && 0.0 <= a && a <= b && b <= 1.0) {
            return invalid(format!(
                "need 0 <= start_fraction <= end_fraction <= 1, got {a} and {b}"
            ));
        }
        if self.every == 0 {
            return invalid("every must be at least 1".into());
        }
        Ok(())
    }

    /// The iterations before whose step the mask is pruned, in a run of
    /// `total` iterations: `t_0, t_0 + Δt, ..., t_0 + n Δt`.
    pub fn pruning_iterations(&self, total: u64) -> Vec<u64> {
        let at = |fraction: f64| ((fraction * total as f64).round() as u64).min(total);
        let (first, last) = (at(self.start_fraction), at(self.end_fraction));
        if first >= total {
            return Vec::new();
        }
        let last = last.min(total - 1);
        (first..=last.max(first))
            .step_by(self.every as usize)
            .collect()
    }

    /// The schedule of one run of `total` iterations that ends at the
    /// counts `levels` levels of `pruner` keep of `dense`.
    pub fn schedule(
        &self,
        pruner: MagnitudePruner,
        dense: Mask,
        levels: usize,
        total: u64,
    ) -> Result<GradualPruning, PruneError> {
        self.validate()?;
        let final_kept = pruner.kept_after(&dense, levels)?;
        Ok(GradualPruning {
            initial_sparsity: self.initial_sparsity,
            steps: self.pruning_iterations(total),
            pruner,
            dense,
            levels,
            final_kept,
        })
    }
}

/// Gradual magnitude pruning over one run: a [`MaskSchedule`] built by
/// [`GradualConfig::schedule`].
#[derive(Debug, Clone)]
pub struct GradualPruning {
    initial_sparsity: f64,
    steps: Vec<u64>,
    pruner: MagnitudePruner,
    dense: Mask,
    levels: usize,
    final_kept: usize,
}

impl GradualPruning {
    /// The iterations before whose step the mask is pruned.
    pub fn steps(&self) -> &[u64] {
        &self.steps
    }

    /// Where `iteration` lies in the schedule: `j / n` at its `j`-th of
    /// `n + 1` pruning steps (1 when there is a single step).
    fn progress(&self, iteration: u64) -> Option<f64> {
        let j = self.steps.binary_search(&iteration).ok()?;
        let n = self.steps.len() - 1;
        Some(if n == 0 { 1.0 } else { j as f64 / n as f64 })
    }
}

impl MaskSchedule for GradualPruning {
    fn initial_mask(&self) -> &Mask {
        &self.dense
    }

    fn update_at(&self, iteration: u64) -> Option<MaskUpdate> {
        self.progress(iteration).map(|_| MaskUpdate {
            gradients: false,
            replaces_step: false,
        })
    }

    fn next_mask(
        &self,
        iteration: u64,
        current: &Mask,
        weights: &Weights,
        _gradients: Option<&Weights>,
    ) -> Result<Mask, PruneError> {
        let Some(progress) = self.progress(iteration) else {
            return Ok(current.clone());
        };
        self.pruner.gradual_from_weights(
            weights,
            current,
            self.levels,
            (self.initial_sparsity, progress),
        )
    }

    fn final_kept(&self) -> usize {
        self.final_kept
    }
}
