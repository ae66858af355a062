//! The top-k stage of pruning by scores: keep the highest-scoring kept
//! weights, to a global count or to a count per layer.
//!
//! Ties follow the module's rule: among equal scores the earlier position
//! (layers in path order, entries row-major) is removed first.

use std::collections::BTreeMap;

use super::PruneError;
use super::density::Allocation;
use crate::mask::Mask;

/// Scores of the prunable weights, keyed by parameter path (row-major, one
/// per entry). Higher means more important unless a criterion says
/// otherwise.
pub type Scores = BTreeMap<String, Vec<f32>>;

/// An order-preserving map of `f32` to `u32` (negative scores included;
/// `-0.0` and `0.0` map alike).
pub(super) fn ordered_bits(score: f32) -> u32 {
    let bits = (score + 0.0).to_bits();
    if bits & 0x8000_0000 != 0 {
        !bits
    } else {
        bits | 0x8000_0000
    }
}

/// Checks that `scores` covers every layer of `mask` with finite values.
pub(crate) fn check_scores(scores: &Scores, mask: &Mask) -> Result<(), PruneError> {
    check_covers(scores, mask, |path, index| PruneError::NonFiniteScore {
        path,
        index,
    })
}

/// Checks that `values` has one finite value per weight of every layer of
/// `mask`; a non-finite one is reported by `non_finite(path, index)`.
pub(crate) fn check_covers(
    values: &Scores,
    mask: &Mask,
    non_finite: fn(String, usize) -> PruneError,
) -> Result<(), PruneError> {
    for (path, layer) in mask.layers() {
        let values = values.get(path).ok_or_else(|| PruneError::MissingWeights {
            path: path.to_string(),
        })?;
        if values.len() != layer.total_count() {
            return Err(PruneError::WeightCount {
                path: path.to_string(),
                expected: layer.total_count(),
                actual: values.len(),
            });
        }
        if let Some(index) = values.iter().position(|v| !v.is_finite()) {
            return Err(non_finite(path.to_string(), index));
        }
    }
    Ok(())
}

/// The subset of `current` that keeps, by `allocation`, the highest-scoring
/// weights `current` keeps. A count above what a group keeps is an error.
pub fn keep_top(
    scores: &Scores,
    current: &Mask,
    allocation: &Allocation,
) -> Result<Mask, PruneError> {
    check_scores(scores, current)?;
    let paths: Vec<&str> = current.paths().collect();
    let groups: Vec<(Vec<&str>, usize)> = match allocation {
        Allocation::Global(kept) => vec![(paths, *kept)],
        Allocation::PerLayer(counts) => paths
            .iter()
            .map(|&p| {
                let kept = counts
                    .get(p)
                    .copied()
                    .ok_or_else(|| PruneError::MissingWeights {
                        path: p.to_string(),
                    })?;
                Ok((vec![p], kept))
            })
            .collect::<Result<_, PruneError>>()?,
    };
    let mut next = current.clone();
    for (layers, kept) in groups {
        keep_top_in(scores, current, &mut next, &layers, kept)?;
    }
    Ok(next)
}

/// Keeps the `kept` best kept weights of `layers` (a group of `current`) in
/// `next`, clearing the others.
fn keep_top_in(
    scores: &Scores,
    current: &Mask,
    next: &mut Mask,
    layers: &[&str],
    kept: usize,
) -> Result<(), PruneError> {
    // A key is (ordered score << 32) | position; position breaks ties.
    let mut keys = Vec::new();
    let mut offset = 0u64;
    let mut starts = Vec::with_capacity(layers.len());
    for &path in layers {
        let layer = current.layer(path).expect("path from this mask");
        starts.push(offset);
        for (i, _) in layer.kept().iter().enumerate().filter(|(_, k)| **k) {
            keys.push((u64::from(ordered_bits(scores[path][i])) << 32) | (offset + i as u64));
        }
        offset += layer.total_count() as u64;
    }
    if offset > u64::from(u32::MAX) {
        return Err(PruneError::PoolTooLarge {
            weights: offset as usize,
        });
    }
    if kept > keys.len() {
        return Err(PruneError::KeepTooMany {
            asked: kept,
            available: keys.len(),
        });
    }
    let removed = keys.len() - kept;
    if removed > 0 {
        keys.select_nth_unstable(removed - 1);
    }
    for &key in &keys[..removed] {
        let position = key & 0xFFFF_FFFF;
        let l = starts.partition_point(|&s| s <= position) - 1;
        next.layer_mut(layers[l])
            .expect("path from this mask")
            .kept_mut()[(position - starts[l]) as usize] = false;
    }
    Ok(())
}
