//! Distances between two networks restricted to a mask.
//!
//! Only the entries a [`Mask`] keeps count: masked parameters (conv and
//! linear weights by default) at their kept positions. Biases, BatchNorm
//! parameters and running statistics are never part of a mask, so they are
//! excluded.

use std::collections::BTreeMap;

use burn::module::Module;
use serde::{Deserialize, Serialize};

use super::StabilityError;
use crate::mask::{LayerMask, Mask};
use crate::params::float_values;

/// Host copies of a model's float tensors, keyed by module path.
pub type HostWeights = BTreeMap<String, Vec<f32>>;

/// Distance between two networks on the weights a mask keeps.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Distance {
    /// `||m*W1 - m*W2||_2`: the paper's raw (unnormalized) distance.
    pub l2: f64,
    /// `l2` divided by the mean of the two masked norms
    /// `(||m*W1|| + ||m*W2||) / 2` (0 when both norms are 0).
    pub l2_normalized: f64,
    /// Angle between the masked vectors, in radians in `[0, pi]`
    /// (0 when both are zero vectors, `pi/2` when exactly one is).
    pub angle: f64,
    /// `||m*W1||_2`.
    pub norm_a: f64,
    /// `||m*W2||_2`.
    pub norm_b: f64,
    /// Number of kept entries compared.
    pub count: usize,
}

/// Distance between `a` and `b` (host weights keyed by path) on the entries
/// `mask` keeps. Every masked path must be present in both with the mask's
/// number of entries.
pub fn distance(a: &HostWeights, b: &HostWeights, mask: &Mask) -> Result<Distance, StabilityError> {
    let (mut diff2, mut na2, mut nb2, mut count) = (0.0f64, 0.0f64, 0.0f64, 0usize);
    for (path, layer) in mask.layers() {
        let (va, vb) = (entries(a, path, layer, "a")?, entries(b, path, layer, "b")?);
        for ((&x, &y), &kept) in va.iter().zip(vb).zip(layer.kept()) {
            if kept {
                let (x, y) = (f64::from(x), f64::from(y));
                diff2 += (x - y) * (x - y);
                na2 += x * x;
                nb2 += y * y;
                count += 1;
            }
        }
    }
    let (l2, norm_a, norm_b) = (diff2.sqrt(), na2.sqrt(), nb2.sqrt());
    let mean_norm = (norm_a + norm_b) / 2.0;
    Ok(Distance {
        l2,
        l2_normalized: if mean_norm > 0.0 { l2 / mean_norm } else { 0.0 },
        angle: angle(a, b, mask, norm_a, norm_b),
        norm_a,
        norm_b,
        count,
    })
}

fn entries<'w>(
    weights: &'w HostWeights,
    path: &str,
    layer: &LayerMask,
    which: &str,
) -> Result<&'w [f32], StabilityError> {
    let values = weights.get(path).ok_or_else(|| {
        StabilityError::Mismatch(format!("{path} is masked but missing from network {which}"))
    })?;
    if values.len() != layer.total_count() {
        return Err(StabilityError::Mismatch(format!(
            "{path}: network {which} has {} entries, the mask {}",
            values.len(),
            layer.total_count()
        )));
    }
    Ok(values)
}

/// The angle by Kahan's formula `2 atan2(|u - v|, |u + v|)` on the unit
/// vectors, exact for parallel (0) and opposite (pi) vectors.
fn angle(a: &HostWeights, b: &HostWeights, mask: &Mask, norm_a: f64, norm_b: f64) -> f64 {
    match (norm_a > 0.0, norm_b > 0.0) {
        (false, false) => return 0.0,
        (true, false) | (false, true) => return std::f64::consts::FRAC_PI_2,
        _ => {}
    }
    let (mut minus, mut plus) = (0.0f64, 0.0f64);
    for (path, layer) in mask.layers() {
        let (va, vb) = (&a[path], &b[path]);
        for ((&x, &y), &kept) in va.iter().zip(vb).zip(layer.kept()) {
            if kept {
                let (u, v) = (f64::from(x) / norm_a, f64::from(y) / norm_b);
                minus += (u - v) * (u - v);
                plus += (u + v) * (u + v);
            }
        }
    }
    2.0 * minus.sqrt().atan2(plus.sqrt())
}

/// Host copies of every float tensor of `model` (parameters and BatchNorm
/// running statistics, synchronized first via `valid()`).
pub fn host_weights<M: Module>(model: &M) -> HostWeights {
    float_values(&model.valid(), |_| true)
}

/// [`distance`] between two modules of the same architecture.
pub fn masked_distance<M: Module>(a: &M, b: &M, mask: &Mask) -> Result<Distance, StabilityError> {
    let wanted = |p: &str| mask.contains(p);
    distance(&float_values(a, wanted), &float_values(b, wanted), mask)
}

/// Mean and (sample) standard deviation of a set of values (0 spread for
/// fewer than two).
pub fn mean_and_std(values: &[f64]) -> (f64, f64) {
    if values.is_empty() {
        return (f64::NAN, 0.0);
    }
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    if values.len() < 2 {
        return (mean, 0.0);
    }
    let var = values.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / (n - 1.0);
    (mean, var.sqrt())
}
