//! Dynamic sparse training: SET and RigL ([`DynamicConfig`]).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::density::{Allocation, DensityRule};
use super::random::random_scores;
use super::schedule::{MaskSchedule, MaskUpdate};
use super::select::keep_top;
use super::{PruneError, Scores, Weights, check_weights, prune_count};
use crate::mask::Mask;
use crate::seed::derive_seed;

/// Where dropped weights grow back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Regrowth {
    /// Uniformly at random among the weights not kept (SET).
    Random,
    /// Where the magnitude of the dense gradient is largest (RigL).
    Gradient,
}

/// How the drop fraction changes over the update window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DropDecay {
    /// `α_t = α / 2 (1 + cos(π t / T_end))` (RigL's schedule).
    #[default]
    Cosine,
    /// `α_t = α`.
    Constant,
}

/// Dynamic sparse training: the mask keeps its per-layer counts but moves
/// during training. Every `update_every` steps until `end_fraction` of
/// training, each sparse layer drops the fraction `α_t` of its kept weights
/// with the smallest magnitude and regrows as many among the others:
///
/// * **SET** (Mocanu et al., Nature Communications 2018) regrows at random;
/// * **RigL** (Evci et al., "Rigging the Lottery", arXiv 1911.11134)
///   regrows where the dense gradient of the step's batch is largest.
///
/// `α_t` decays from `drop_fraction` to 0 by a cosine over the update
/// window (RigL's schedule, used for both here) or stays constant. The run
/// starts from a random mask with the level's total count spread over layers
/// by a [`DensityRule`] (ERK by default). An update step replaces the
/// optimizer step of its batch (as RigL's implementations do); regrown
/// weights start at zero, with zero optimizer state (the trainer enforces
/// it, see [`MaskSchedule`]). A weight dropped and regrown by the same
/// update keeps its value.
///
/// Defaults are RigL's: drop fraction 0.3 decayed by a cosine, an update every 100
/// steps, none after 75% of training, ERK densities.
///
/// ```
/// use burn_lottery::prune::{DynamicConfig, Regrowth};
/// let rigl = DynamicConfig::rigl();
/// assert_eq!(rigl.regrowth, Regrowth::Gradient);
/// assert_eq!(rigl.drop_fraction_at(0, 1000), 0.3);
/// assert!((rigl.drop_fraction_at(375, 1000) - 0.15).abs() < 1e-12); // half way
/// assert_eq!(rigl.drop_fraction_at(750, 1000), 0.0); // the window's end
/// assert_eq!(rigl.update_iterations(1000), vec![100, 200, 300, 400, 500, 600, 700]);
/// assert!(DynamicConfig::set().with_drop_fraction(1.5).validate().is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DynamicConfig {
    /// Random regrowth (SET) or by gradient (RigL; the default).
    pub regrowth: Regrowth,
    /// The fraction of each layer's kept weights dropped at the first
    /// update, in `(0, 1)` (default 0.3).
    pub drop_fraction: f64,
    /// How the fraction decays (default cosine).
    pub decay: DropDecay,
    /// Steps between two updates (default 100).
    pub update_every: u64,
    /// No update at or after this fraction of training (default 0.75).
    pub end_fraction: f64,
    /// How the level's count is spread over layers (default ERK; global is
    /// refused: the layers' counts must be fixed).
    pub density_rule: DensityRule,
}

impl Default for DynamicConfig {
    fn default() -> Self {
        Self {
            regrowth: Regrowth::Gradient,
            drop_fraction: 0.3,
            decay: DropDecay::Cosine,
            update_every: 100,
            end_fraction: 0.75,
            density_rule: DensityRule::Erk,
        }
    }
}

impl DynamicConfig {
    /// RigL with its paper's settings (the defaults).
    pub fn rigl() -> Self {
        Self::default()
    }

    /// SET: random regrowth, otherwise the same settings as RigL.
    pub fn set() -> Self {
        Self {
            regrowth: Regrowth::Random,
            ..Self::default()
        }
    }

    /// Sets the drop fraction of the first update.
    pub fn with_drop_fraction(mut self, fraction: f64) -> Self {
        self.drop_fraction = fraction;
        self
    }

    /// Sets the steps between two updates.
    pub fn with_update_every(mut self, every: u64) -> Self {
        self.update_every = every;
        self
    }

    /// Sets the layer allocation.
    pub fn with_density_rule(mut self, rule: DensityRule) -> Self {
        self.density_rule = rule;
        self
    }

    /// `set` or `rigl`, with `_uniform` when the layers keep the same
    /// density.
    pub fn name(&self) -> String {
        let base = match self.regrowth {
            Regrowth::Random => "set",
            Regrowth::Gradient => "rigl",
        };
        match self.density_rule {
            DensityRule::Uniform => format!("{base}_uniform"),
            _ => base.to_string(),
        }
    }

    /// Checks every setting.
    pub fn validate(&self) -> Result<(), PruneError> {
        let invalid = |m: String| Err(PruneError::InvalidDynamic(m));
        let f = self.drop_fraction;
        if !(f.is_finite() && f > 0.0 && f < 1.0) {
            return invalid(format!("drop_fraction must be in (0, 1), got {f}"));
        }
        let e = self.end_fraction;
        if !(e.is_finite() && (0.0..=1.0).contains(&e)) {
            return invalid(format!("end_fraction must be in [0, 1], got {e}"));
        }
        if self.update_every == 0 {
            return invalid("update_every must be at least 1".into());
        }
        if self.density_rule == DensityRule::Global {
            return invalid(
                "density_rule global gives no per-layer counts: use erk or uniform".into(),
            );
        }
        Ok(())
    }

    /// The last iteration (exclusive) of the update window of a run of
    /// `total` iterations.
    fn end(&self, total: u64) -> u64 {
        (self.end_fraction * total as f64).round() as u64
    }

    /// The drop fraction of an update at `iteration` of a run of `total`.
    pub fn drop_fraction_at(&self, iteration: u64, total: u64) -> f64 {
        let end = self.end(total);
        match self.decay {
            DropDecay::Constant => self.drop_fraction,
            DropDecay::Cosine if iteration >= end => 0.0,
            DropDecay::Cosine => {
                let phase = std::f64::consts::PI * iteration as f64 / end as f64;
                self.drop_fraction / 2.0 * (1.0 + phase.cos())
            }
        }
    }

    /// The iterations before whose step the mask is updated: every
    /// `update_every` from `update_every` on, before the window's end.
    pub fn update_iterations(&self, total: u64) -> Vec<u64> {
        (1..)
            .map(|j| j * self.update_every)
            .take_while(|&t| t < self.end(total).min(total))
            .collect()
    }

    /// The schedule of one run of `total` iterations keeping `kept` of the
    /// weights of `dense`, its random start and random regrowth drawn from
    /// `seed`.
    pub fn schedule(
        &self,
        dense: &Mask,
        kept: usize,
        total: u64,
        seed: u64,
    ) -> Result<DynamicSparsity, PruneError> {
        self.validate()?;
        let allocation = self.density_rule.allocate(dense, kept)?;
        let scores = random_scores(dense, derive_seed(seed, "dynamic/start"));
        let initial = keep_top(&scores, dense, &allocation)?;
        Ok(DynamicSparsity {
            config: self.clone(),
            initial,
            total,
            seed,
        })
    }
}

/// SET or RigL over one run: a [`MaskSchedule`] built by
/// [`DynamicConfig::schedule`].
#[derive(Debug, Clone)]
pub struct DynamicSparsity {
    config: DynamicConfig,
    initial: Mask,
    total: u64,
    seed: u64,
}

impl MaskSchedule for DynamicSparsity {
    fn initial_mask(&self) -> &Mask {
        &self.initial
    }

    fn update_at(&self, iteration: u64) -> Option<MaskUpdate> {
        let every = self.config.update_every;
        let due = iteration > 0
            && iteration.is_multiple_of(every)
            && iteration < self.config.end(self.total).min(self.total);
        due.then_some(MaskUpdate {
            gradients: self.config.regrowth == Regrowth::Gradient,
            replaces_step: true,
        })
    }

    fn next_mask(
        &self,
        iteration: u64,
        current: &Mask,
        weights: &Weights,
        gradients: Option<&Weights>,
    ) -> Result<Mask, PruneError> {
        check_weights(weights, current)?;
        let growth: Scores = match (self.config.regrowth, gradients) {
            (Regrowth::Gradient, Some(gradients)) => gradients
                .iter()
                .map(|(path, g)| (path.clone(), g.iter().map(|v| v.abs()).collect()))
                .collect(),
            (Regrowth::Gradient, None) => {
                return Err(PruneError::InvalidDynamic(
                    "RigL's update needs the step's gradients".into(),
                ));
            }
            (Regrowth::Random, _) => random_scores(
                current,
                derive_seed(self.seed, &format!("grow/{iteration}")),
            ),
        };
        let fraction = self.config.drop_fraction_at(iteration, self.total);
        drop_and_grow(current, weights, &growth, fraction)
    }

    fn final_kept(&self) -> usize {
        self.initial.kept_count()
    }
}

/// Each layer of `current` that prunes something drops the fraction
/// `fraction` of its kept weights with the smallest magnitude
/// ([`prune_count`] of them) and regrows as many of the best `growth`
/// scores among the weights the drop leaves out.
pub fn drop_and_grow(
    current: &Mask,
    weights: &Weights,
    growth: &Scores,
    fraction: f64,
) -> Result<Mask, PruneError> {
    let mut survivors = BTreeMap::new();
    let mut regrown = BTreeMap::new();
    for (path, layer) in current.layers() {
        let kept = layer.kept_count();
        let k = if kept < layer.total_count() {
            prune_count(fraction, kept)
        } else {
            0
        };
        survivors.insert(path.to_string(), kept - k);
        regrown.insert(path.to_string(), k);
    }
    let magnitudes: Scores = weights
        .iter()
        .map(|(path, w)| (path.clone(), w.iter().map(|v| v.abs()).collect()))
        .collect();
    let after_drop = keep_top(&magnitudes, current, &Allocation::PerLayer(survivors))?;
    let candidates = complement(&after_drop);
    let grown = keep_top(growth, &candidates, &Allocation::PerLayer(regrown))?;
    Ok(union(&after_drop, &grown))
}

/// The weights `mask` does not keep.
fn complement(mask: &Mask) -> Mask {
    let mut out = mask.clone();
    for path in mask.paths() {
        let kept = out.layer_mut(path).expect("path of this mask").kept_mut();
        kept.iter_mut().for_each(|k| *k = !*k);
    }
    out
}

/// The weights either mask keeps (same layers).
fn union(a: &Mask, b: &Mask) -> Mask {
    let mut out = a.clone();
    for (path, layer) in b.layers() {
        let kept = out.layer_mut(path).expect("same layers").kept_mut();
        for (k, &other) in kept.iter_mut().zip(layer.kept()) {
            *k |= other;
        }
    }
    out
}
