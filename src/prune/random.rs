//! Random pruning, the paper's control.

use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

use super::magnitude::{Candidate, Target, prune_groups};
use super::{PruneError, Pruner, PruningScope, Weights, validate_fraction};
use crate::mask::{LayerMask, Mask};
use crate::seed::derive_seed;

/// Configuration of [`RandomPruner`]: removes `fraction_of_remaining` of the
/// kept weights chosen uniformly at random, with the same counts as
/// magnitude pruning would remove.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RandomPrunerConfig {
    /// Fraction of the remaining weights removed per level (default 0.2).
    pub fraction_of_remaining: f64,
    /// One random draw over all layers (global) or per layer (default).
    pub scope: PruningScope,
    /// Seed of the random draw.
    pub seed: u64,
}

impl Default for RandomPrunerConfig {
    fn default() -> Self {
        Self {
            fraction_of_remaining: 0.2,
            scope: PruningScope::LayerWise,
            seed: 0,
        }
    }
}

impl RandomPrunerConfig {
    /// Validates the configuration and builds the pruner.
    pub fn init(&self) -> Result<RandomPruner, PruneError> {
        validate_fraction("fraction_of_remaining", self.fraction_of_remaining)?;
        Ok(RandomPruner {
            config: self.clone(),
        })
    }
}

/// Prunes uniformly at random among the kept weights; seeded.
#[derive(Debug, Clone)]
pub struct RandomPruner {
    config: RandomPrunerConfig,
}

impl Pruner for RandomPruner {
    fn next_mask_from_weights(
        &self,
        _weights: &Weights,
        current: &Mask,
    ) -> Result<Mask, PruneError> {
        // Random keys in place of magnitudes; the shared rule then decides
        // counts and floors exactly as for magnitude pruning.
        let keys: Vec<(String, Vec<f32>)> = current
            .layers()
            .map(|(path, layer)| {
                let mut rng = StdRng::seed_from_u64(derive_seed(self.config.seed, path));
                let mut order: Vec<u32> = (0..layer.total_count() as u32).collect();
                order.shuffle(&mut rng);
                // Distinct keys: a random rank per entry, exact in f32 up to 2^24.
                let mut ranks = vec![0f32; order.len()];
                for (rank, &i) in order.iter().enumerate() {
                    ranks[i as usize] = rank as f32;
                }
                (path.to_string(), ranks)
            })
            .collect();
        let candidates: Vec<Candidate<'_>> = current
            .layers()
            .zip(&keys)
            .map(|((path, layer), (_, ranks))| Candidate {
                path,
                magnitudes: Some(ranks),
                kept: layer.kept(),
                protected: None,
            })
            .collect();
        let groups: Vec<Vec<Candidate<'_>>> = match self.config.scope {
            PruningScope::Global => vec![candidates],
            PruningScope::LayerWise => candidates.into_iter().map(|c| vec![c]).collect(),
        };
        let fraction = self.config.fraction_of_remaining;
        prune_groups(
            current,
            groups.iter().map(|g| (fraction, g.as_slice())),
            0.0,
            Target::Levels(1),
        )
    }
}

/// A random mask with the same parameters, shapes and per-layer kept counts
/// as `reference`, kept positions drawn uniformly over each whole layer
/// (the paper's "random pruning" control). Seeded per layer by path.
pub fn random_mask_like(reference: &Mask, seed: u64) -> Mask {
    Mask::from_layers(reference.layers().map(|(path, layer)| {
        let mut rng = StdRng::seed_from_u64(derive_seed(seed, path));
        let n = layer.total_count();
        let mut kept = vec![false; n];
        for i in rand::seq::index::sample(&mut rng, n, layer.kept_count()) {
            kept[i] = true;
        }
        (
            path.to_string(),
            LayerMask::from_kept(path, layer.shape().to_vec(), kept).expect("same shape"),
        )
    }))
}

/// A random score per weight of `mask` (pruning at initialization's
/// "random" criterion): a uniform random permutation rank within each
/// layer, seeded per layer by path, scaled to `[0, 1)` so layers compare
/// under a global ranking too.
pub(crate) fn random_scores(mask: &Mask, seed: u64) -> super::Scores {
    mask.layers()
        .map(|(path, layer)| {
            let mut rng = StdRng::seed_from_u64(derive_seed(seed, path));
            let n = layer.total_count();
            let mut order: Vec<u32> = (0..n as u32).collect();
            order.shuffle(&mut rng);
            let mut scores = vec![0f32; n];
            for (rank, &i) in order.iter().enumerate() {
                scores[i as usize] = (rank as f64 / n as f64) as f32;
            }
            (path.to_string(), scores)
        })
        .collect()
}
