//! The layer-allocation stage: how a total number of kept weights is spread
//! over the layers of a mask.
//!
//! * [`DensityRule::Global`]: no per-layer target; one ranking over all
//!   layers decides (the crate's IMP default).
//! * [`DensityRule::Uniform`]: every layer keeps the same fraction.
//! * [`DensityRule::Erk`]: Erdős–Rényi-Kernel (Evci et al., "Rigging the
//!   Lottery", arXiv 1911.11134): layer `l` of shape `(d_1, ..., d_n)` keeps
//!   a density proportional to `(d_1 + ... + d_n) / (d_1 * ... * d_n)`
//!   (`(n_in + n_out + k_h + k_w) / (n_in n_out k_h k_w)` for a convolution),
//!   scaled so the total matches; a layer that would exceed density 1 is kept
//!   dense and the others are scaled again.
//!
//! Per-layer densities become counts by largest remainders, so the counts
//! add up to the total exactly.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::PruneError;
use crate::mask::Mask;

/// How a total of kept weights is spread over layers (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DensityRule {
    /// One ranking over all layers.
    #[default]
    Global,
    /// The same density in every layer.
    Uniform,
    /// Erdős–Rényi-Kernel densities.
    Erk,
}

/// Kept weights per group: one global count, or a count per layer path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Allocation {
    /// Keep this many over all layers together.
    Global(usize),
    /// Keep this many in each layer.
    PerLayer(BTreeMap<String, usize>),
}

impl DensityRule {
    /// The allocation of `kept` weights over the layers of `mask` (its
    /// shapes; which entries it keeps does not matter).
    pub fn allocate(&self, mask: &Mask, kept: usize) -> Result<Allocation, PruneError> {
        let total = mask.total_count();
        if kept > total {
            return Err(PruneError::KeepTooMany {
                asked: kept,
                available: total,
            });
        }
        let density = kept as f64 / total.max(1) as f64;
        let densities = match self {
            Self::Global => return Ok(Allocation::Global(kept)),
            Self::Uniform => mask.paths().map(|p| (p.to_string(), density)).collect(),
            Self::Erk => erk_densities(mask, density)?,
        };
        Ok(Allocation::PerLayer(counts(mask, &densities, kept)))
    }
}

/// The ERK density of every layer of `mask` for an overall `density` (see
/// the module docs), before rounding to counts.
pub fn erk_densities(mask: &Mask, density: f64) -> Result<BTreeMap<String, f64>, PruneError> {
    if !(density.is_finite() && (0.0..=1.0).contains(&density)) {
        return Err(PruneError::InvalidDensity { value: density });
    }
    let layers: Vec<(&str, f64, f64)> = mask
        .layers()
        .map(|(path, layer)| {
            let shape = layer.shape();
            let n = layer.total_count() as f64;
            let raw = shape.iter().sum::<usize>() as f64 / n.max(1.0);
            (path, n, raw)
        })
        .collect();
    let target = density * layers.iter().map(|l| l.1).sum::<f64>();
    let mut dense: Vec<bool> = vec![false; layers.len()];
    loop {
        let dense_weights: f64 = layers
            .iter()
            .zip(&dense)
            .filter(|(_, d)| **d)
            .map(|(l, _)| l.1)
            .sum();
        let scaled: f64 = layers
            .iter()
            .zip(&dense)
            .filter(|(_, d)| !**d)
            .map(|(l, _)| l.2 * l.1)
            .sum();
        let epsilon = if scaled > 0.0 {
            (target - dense_weights).max(0.0) / scaled
        } else {
            0.0
        };
        let mut changed = false;
        for (l, is_dense) in layers.iter().zip(dense.iter_mut()) {
            if !*is_dense && epsilon * l.2 > 1.0 {
                *is_dense = true;
                changed = true;
            }
        }
        if !changed {
            return Ok(layers
                .iter()
                .zip(&dense)
                .map(|(l, d)| (l.0.to_string(), if *d { 1.0 } else { epsilon * l.2 }))
                .collect());
        }
    }
}

/// Per-layer counts from densities, by largest remainders so that they add
/// up to `kept` (never above a layer's size).
fn counts(mask: &Mask, densities: &BTreeMap<String, f64>, kept: usize) -> BTreeMap<String, usize> {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    let mut remainders: Vec<(f64, usize, &str)> = Vec::new();
    for (i, (path, layer)) in mask.layers().enumerate() {
        let exact = densities[path].clamp(0.0, 1.0) * layer.total_count() as f64;
        let floor = (exact.floor() as usize).min(layer.total_count());
        counts.insert(path.to_string(), floor);
        remainders.push((exact - floor as f64, i, path));
    }
    let assigned: usize = counts.values().sum();
    // Largest remainder first, earlier layer first among equal remainders.
    remainders.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    let mut missing = kept.saturating_sub(assigned);
    while missing > 0 {
        let before = missing;
        for &(_, _, path) in &remainders {
            if missing == 0 {
                break;
            }
            let count = counts.get_mut(path).expect("inserted above");
            if *count < mask.layer(path).expect("path of mask").total_count() {
                *count += 1;
                missing -= 1;
            }
        }
        if missing == before {
            break;
        }
    }
    counts
}
