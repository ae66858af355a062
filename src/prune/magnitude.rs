//! Magnitude pruning: remove the smallest-magnitude remaining weights.

use serde::{Deserialize, Serialize};

use burn::module::Module;

use super::nm::NOfM;
use super::{
    PruneError, Pruner, PruningScope, Weights, check_weights, kept_after_levels, validate_fraction,
};
use crate::mask::{Mask, glob_match};

/// A per-layer pruning rate. A layer matching `pattern` leaves the global
/// pool and is pruned on its own at `fraction_of_remaining` per level (the
/// original lottery-ticket paper prunes a fully-connected network's output
/// layer this way, at half the rate of the rest).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LayerRate {
    /// Glob pattern on parameter paths (see [`crate::mask::ParamSelector`]).
    pub pattern: String,
    /// Fraction of the layer's remaining weights removed per level.
    pub fraction_of_remaining: f64,
}

/// Configuration of [`MagnitudePruner`]. Defaults are the paper's: global
/// scope, 20% of the remaining weights per level.
///
/// # N:M
/// With [`n_of_m`](Self::n_of_m) set, every level still removes exactly the
/// usual count (so N:M runs compare with unstructured ones at equal density,
/// level by level), but it removes the weights that break the pattern
/// first: a kept weight outside the `N` largest of its group (see
/// [`NOfM`] for the groups) goes before any weight inside, smallest first;
/// only when none is left does plain magnitude order continue. From a dense
/// start the mask is therefore N:M from the first level whose kept count is
/// at most `N/M` of each pool (global pool, override, or layer) on, and stays
/// N:M after (pruning only removes). IMP with 2:4 at 20% per level reaches
/// 2:4 at level 4 (41% kept), with levels 1-3 moving towards it; one-shot
/// pruning to level `L` is the same rule in one step. For the pattern
/// exactly (density `N/M`) in one level, set
/// `fraction_of_remaining = 1 - N/M`. `min_density_per_layer` may not
/// exceed `N/M`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MagnitudePrunerConfig {
    /// Fraction of the remaining weights removed per level (default 0.2).
    pub fraction_of_remaining: f64,
    /// Global (default) or layer-wise ranking.
    pub scope: PruningScope,
    /// Layers pruned at their own rate, outside the global pool. The first
    /// matching pattern wins.
    pub layer_overrides: Vec<LayerRate>,
    /// No layer is pruned below this density; whatever the value, at least
    /// one weight per layer is always kept, so a layer is never emptied
    /// (default 0).
    pub min_density_per_layer: f64,
    /// Reach an N:M pattern (see the type docs; default `None`:
    /// unstructured).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub n_of_m: Option<NOfM>,
}

impl Default for MagnitudePrunerConfig {
    fn default() -> Self {
        Self {
            fraction_of_remaining: 0.2,
            scope: PruningScope::Global,
            layer_overrides: Vec::new(),
            min_density_per_layer: 0.0,
            n_of_m: None,
        }
    }
}

impl MagnitudePrunerConfig {
    /// Global magnitude pruning of `fraction_of_remaining` per level.
    pub fn new(fraction_of_remaining: f64) -> Self {
        Self {
            fraction_of_remaining,
            ..Self::default()
        }
    }

    /// Sets the scope.
    pub fn with_scope(mut self, scope: PruningScope) -> Self {
        self.scope = scope;
        self
    }

    /// Adds a per-layer rate.
    pub fn with_layer_rate(mut self, pattern: impl Into<String>, fraction: f64) -> Self {
        self.layer_overrides.push(LayerRate {
            pattern: pattern.into(),
            fraction_of_remaining: fraction,
        });
        self
    }

    /// Sets the minimum density per layer.
    pub fn with_min_density_per_layer(mut self, density: f64) -> Self {
        self.min_density_per_layer = density;
        self
    }

    /// Sets the N:M pattern to reach (see the type docs).
    pub fn with_n_of_m(mut self, pattern: NOfM) -> Self {
        self.n_of_m = Some(pattern);
        self
    }

    /// Checks every setting.
    pub fn validate(&self) -> Result<(), PruneError> {
        validate_fraction("fraction_of_remaining", self.fraction_of_remaining)?;
        for rate in &self.layer_overrides {
            validate_fraction(
                &format!("fraction_of_remaining of override `{}`", rate.pattern),
                rate.fraction_of_remaining,
            )?;
        }
        let d = self.min_density_per_layer;
        if !(d.is_finite() && (0.0..1.0).contains(&d)) {
            return Err(PruneError::InvalidMinDensity { value: d });
        }
        if let Some(pattern) = self.n_of_m {
            pattern.validate()?;
            if d > pattern.density() {
                return Err(PruneError::InvalidNOfM(format!(
                    "min_density_per_layer {d} exceeds the density {}:{} allows",
                    pattern.n, pattern.m
                )));
            }
        }
        Ok(())
    }

    /// Validates the configuration and builds the pruner.
    pub fn init(&self) -> Result<MagnitudePruner, PruneError> {
        self.validate()?;
        Ok(MagnitudePruner {
            config: self.clone(),
        })
    }
}

/// Prunes the remaining weights of smallest magnitude. Build it with
/// [`MagnitudePrunerConfig::init`].
#[derive(Debug, Clone)]
pub struct MagnitudePruner {
    config: MagnitudePrunerConfig,
}

impl MagnitudePruner {
    /// The configuration.
    pub fn config(&self) -> &MagnitudePrunerConfig {
        &self.config
    }
}

/// One layer taking part in a pruning round.
pub(super) struct Candidate<'a> {
    pub(super) path: &'a str,
    pub(super) magnitudes: Option<&'a [f32]>,
    pub(super) kept: &'a [bool],
    /// Entries removed only after every unprotected kept one (N:M: the best
    /// `N` of each group); `None`: no priority.
    pub(super) protected: Option<&'a [bool]>,
}

impl MagnitudePruner {
    /// The mask that `levels` levels of this pruner reach from `current`,
    /// chosen in one step from `weights` (one-shot pruning): every group of
    /// layers (the global pool, each override, each layer when layer-wise)
    /// keeps exactly the count `levels` iterative levels would keep
    /// ([`kept_after_levels`]), its weights of largest magnitude. With
    /// `levels = 1` this is [`Pruner::next_mask_from_weights`].
    pub fn one_shot_from_weights(
        &self,
        weights: &Weights,
        current: &Mask,
        levels: usize,
    ) -> Result<Mask, PruneError> {
        check_weights(weights, current)?;
        self.prune(Some(weights), current, Target::Levels(levels))
    }

    /// One step of gradual magnitude pruning towards the counts `levels`
    /// levels of this pruner keep: every group (the global pool, each
    /// override, each layer when layer-wise) of `n` weights keeps
    /// `n - round(s * n)` of them, its weights of largest magnitude among
    /// those `current` keeps, where `s` is the cubic schedule of Zhu & Gupta
    /// (arXiv 1710.01878) at `progress` in `[0, 1]`:
    /// `s = s_f + (s_i - s_f) (1 - progress)^3` from `initial_sparsity`
    /// `s_i` to the group's final sparsity `s_f`. At `progress = 1` the
    /// group keeps exactly what [`one_shot_from_weights`](Self::one_shot_from_weights)
    /// from a dense mask keeps. A group never gains weights: a count above
    /// what `current` keeps leaves it as it is.
    pub fn gradual_from_weights(
        &self,
        weights: &Weights,
        current: &Mask,
        levels: usize,
        (initial_sparsity, progress): (f64, f64),
    ) -> Result<Mask, PruneError> {
        check_weights(weights, current)?;
        let target = Target::Cubic {
            levels,
            initial_sparsity,
            progress: progress.clamp(0.0, 1.0),
        };
        self.prune(Some(weights), current, target)
    }

    /// [`one_shot_from_weights`](Self::one_shot_from_weights) with the
    /// masked weights of `trained`.
    pub fn one_shot<M: Module>(
        &self,
        trained: &M,
        current: &Mask,
        levels: usize,
    ) -> Result<Mask, PruneError> {
        self.one_shot_from_weights(&super::masked_weights(trained, current)?, current, levels)
    }

    /// How many weights of `current` remain after `levels` levels of this
    /// pruner (every group's count, floors included).
    pub fn kept_after(&self, current: &Mask, levels: usize) -> Result<usize, PruneError> {
        Ok(self
            .prune(None, current, Target::Levels(levels))?
            .kept_count())
    }

    /// Removes, group by group, what `target` says; weights ranked by
    /// magnitude, or by position only when `weights` is `None`.
    fn prune(
        &self,
        weights: Option<&Weights>,
        current: &Mask,
        target: Target,
    ) -> Result<Mask, PruneError> {
        let overrides = &self.config.layer_overrides;
        for rate in overrides {
            if !current.paths().any(|p| glob_match(&rate.pattern, p)) {
                return Err(PruneError::OverrideMatchesNothing {
                    pattern: rate.pattern.clone(),
                });
            }
        }
        let protected = self.protected(weights, current)?;
        let mut groups: Vec<(f64, Vec<Candidate<'_>>)> = Vec::new();
        let mut pool = Vec::new();
        for (path, layer) in current.layers() {
            let candidate = Candidate {
                path,
                magnitudes: weights.map(|w| w[path].as_slice()),
                kept: layer.kept(),
                protected: protected.get(path).map(Vec::as_slice),
            };
            let rate = overrides.iter().find(|r| glob_match(&r.pattern, path));
            match (rate, self.config.scope) {
                (Some(rate), _) => groups.push((rate.fraction_of_remaining, vec![candidate])),
                (None, PruningScope::LayerWise) => {
                    groups.push((self.config.fraction_of_remaining, vec![candidate]))
                }
                (None, PruningScope::Global) => pool.push(candidate),
            }
        }
        if !pool.is_empty() {
            groups.push((self.config.fraction_of_remaining, pool));
        }
        let min_density = self.config.min_density_per_layer;
        prune_groups(
            current,
            groups.iter().map(|(f, layers)| (*f, layers.as_slice())),
            min_density,
            target,
        )
    }
}

/// How many weights a group of pruning keeps.
#[derive(Debug, Clone, Copy)]
pub(super) enum Target {
    /// What this many levels at the group's fraction keep of what it keeps
    /// now ([`kept_after_levels`]).
    Levels(usize),
    /// Gradual pruning (see [`MagnitudePruner::gradual_from_weights`]).
    Cubic {
        /// The levels whose count the schedule ends at.
        levels: usize,
        /// Sparsity at `progress = 0`.
        initial_sparsity: f64,
        /// Where in the schedule, in `[0, 1]`.
        progress: f64,
    },
}

impl Target {
    /// The count a group of `total` weights (kept or not) that keeps `kept`
    /// now keeps after this step, pruned at `fraction` per level; never more
    /// than `kept`.
    pub(super) fn kept(self, total: usize, kept: usize, fraction: f64) -> usize {
        match self {
            Self::Levels(levels) => kept_after_levels(kept, fraction, levels),
            Self::Cubic {
                levels,
                initial_sparsity,
                progress,
            } => {
                let last = kept_after_levels(total, fraction, levels);
                let count = if progress >= 1.0 || total == 0 {
                    last
                } else {
                    let s_f = 1.0 - last as f64 / total as f64;
                    let s = s_f + (initial_sparsity - s_f) * (1.0 - progress).powi(3);
                    (total - super::prune_count(s.clamp(0.0, 1.0), total)).max(last)
                };
                count.min(kept)
            }
        }
    }
}

impl MagnitudePruner {
    /// With an N:M pattern, the best `N` kept weights of every group by
    /// magnitude, per layer (shapes checked even without `weights`).
    fn protected(
        &self,
        weights: Option<&Weights>,
        current: &Mask,
    ) -> Result<std::collections::BTreeMap<String, Vec<bool>>, PruneError> {
        let Some(pattern) = self.config.n_of_m else {
            return Ok(Default::default());
        };
        pattern.check_shapes(current)?;
        let Some(weights) = weights else {
            return Ok(Default::default());
        };
        current
            .layers()
            .map(|(path, layer)| {
                let w = &weights[path];
                let best = pattern.best_in_groups(path, layer, |i| w[i].abs().to_bits())?;
                Ok((path.to_string(), best))
            })
            .collect()
    }
}

impl Pruner for MagnitudePruner {
    fn next_mask_from_weights(
        &self,
        weights: &Weights,
        current: &Mask,
    ) -> Result<Mask, PruneError> {
        self.one_shot_from_weights(weights, current, 1)
    }
}

/// The next mask: `current` minus, for each group of layers, the weights
/// [`remove_smallest`] picks at the group's fraction over `levels` levels.
pub(super) fn prune_groups<'a, 'b: 'a>(
    current: &Mask,
    groups: impl IntoIterator<Item = (f64, &'a [Candidate<'b>])>,
    min_density: f64,
    target: Target,
) -> Result<Mask, PruneError> {
    let mut next = current.clone();
    for (fraction, layers) in groups {
        for (path, removed) in remove_smallest(layers, fraction, min_density, target)? {
            let kept = next
                .layer_mut(path)
                .expect("path from this mask")
                .kept_mut();
            for i in removed {
                kept[i] = false;
            }
        }
    }
    Ok(next)
}

/// The fewest weights a layer of `total` entries keeps.
pub(super) fn layer_floor(total: usize, min_density: f64) -> usize {
    ((min_density * total as f64).ceil() as usize).clamp(1, total.max(1))
}

/// Chooses which kept weights of a pool to remove: `kept - target.kept(..)`
/// of them (`prune_count(fraction, kept)` for one level), smallest key first, where a weight's key is its magnitude
/// then its position (layers in the given order, entries row-major). Layers
/// never drop below their floor. With `magnitudes: None` every key is
/// position only (used by tests of the rule).
pub(super) fn remove_smallest<'a>(
    layers: &[Candidate<'a>],
    fraction: f64,
    min_density: f64,
    target: Target,
) -> Result<Vec<(&'a str, Vec<usize>)>, PruneError> {
    let pool = PoolKeys::new(layers, min_density)?;
    let kept = pool.keys.len();
    let removable: usize = pool.spare.iter().sum();
    let k = (kept - target.kept(pool.total(), kept, fraction)).min(removable);
    if k == 0 {
        return Ok(Vec::new());
    }
    let removed = pool.take_smallest(k);
    Ok(layers
        .iter()
        .zip(removed)
        .map(|(layer, r)| (layer.path, r))
        .collect())
}

/// The kept weights of a pool as sortable keys, one `u64` each:
/// `(protected << 63) | (magnitude bits << 32) | position`. Magnitudes are
/// non-negative finite f32, whose bit patterns order like the values and
/// fit in 31 bits; a position counts across the pool's layers.
struct PoolKeys {
    /// Where each layer's positions start, and the pool's size last.
    offsets: Vec<usize>,
    keys: Vec<u64>,
    /// How many kept weights each layer can lose before its floor.
    spare: Vec<usize>,
}

impl PoolKeys {
    fn new(layers: &[Candidate<'_>], min_density: f64) -> Result<Self, PruneError> {
        let mut offsets = Vec::with_capacity(layers.len() + 1);
        let mut total = 0usize;
        for layer in layers {
            offsets.push(total);
            total += layer.kept.len();
        }
        offsets.push(total);
        if total > u32::MAX as usize {
            return Err(PruneError::PoolTooLarge { weights: total });
        }
        let mut keys = Vec::new();
        let mut spare = Vec::with_capacity(layers.len());
        for (layer, offset) in layers.iter().zip(&offsets) {
            let kept_here = layer.kept.iter().filter(|&&k| k).count();
            spare.push(kept_here.saturating_sub(layer_floor(layer.kept.len(), min_density)));
            keys.reserve(kept_here);
            for (i, _) in layer.kept.iter().enumerate().filter(|(_, k)| **k) {
                let magnitude = layer.magnitudes.map_or(0.0, |m| m[i].abs());
                let protected = layer.protected.is_some_and(|p| p[i]);
                keys.push(
                    (u64::from(protected) << 63)
                        | (u64::from(magnitude.to_bits()) << 32)
                        | (offset + i) as u64,
                );
            }
        }
        Ok(Self {
            offsets,
            keys,
            spare,
        })
    }

    fn total(&self) -> usize {
        self.offsets[self.offsets.len() - 1]
    }

    /// The layer of `key` and its entry in that layer.
    fn locate(&self, key: u64) -> (usize, usize) {
        let pos = (key & 0xFFFF_FFFF) as usize;
        let l = self.offsets.partition_point(|&o| o <= pos) - 1;
        (l, pos - self.offsets[l])
    }

    /// The entries of the `k` smallest keys, per layer, skipping a layer's
    /// keys once it is at its floor.
    fn take_smallest(mut self, k: usize) -> Vec<Vec<usize>> {
        let mut removed: Vec<Vec<usize>> = vec![Vec::new(); self.spare.len()];
        self.keys.select_nth_unstable(k - 1);
        let mut per_layer = vec![0usize; self.spare.len()];
        for &key in &self.keys[..k] {
            per_layer[self.locate(key).0] += 1;
        }
        if per_layer
            .iter()
            .zip(&self.spare)
            .all(|(n, spare)| n <= spare)
        {
            for &key in &self.keys[..k] {
                let (l, i) = self.locate(key);
                removed[l].push(i);
            }
            return removed;
        }
        // Rare: some layer would fall below its floor. Walk all weights in
        // key order, skipping layers that reached their floor.
        self.keys.sort_unstable();
        let mut left = self.spare.clone();
        let mut taken = 0;
        for &key in &self.keys {
            if taken == k {
                break;
            }
            let (l, i) = self.locate(key);
            if left[l] > 0 {
                left[l] -= 1;
                removed[l].push(i);
                taken += 1;
            }
        }
        removed
    }
}
