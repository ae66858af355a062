//! Sparsity reports and mask overlap.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::{Mask, MaskError};

/// Counts of one masked parameter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LayerSparsity {
    /// Parameter path.
    pub path: String,
    /// Tensor shape.
    pub shape: Vec<usize>,
    /// Number of weights.
    pub total: usize,
    /// Kept weights.
    pub kept: usize,
    /// Pruned weights.
    pub pruned: usize,
    /// `kept / total`.
    pub density: f64,
}

/// Per-layer and total counts of a mask. Counts come from the mask itself,
/// over the prunable parameters only (never from counting zeros).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SparsityReport {
    /// One row per masked parameter, ordered by path.
    pub layers: Vec<LayerSparsity>,
    /// Prunable weights in all.
    pub total: usize,
    /// Kept weights in all.
    pub kept: usize,
    /// Pruned weights in all.
    pub pruned: usize,
    /// `kept / total`.
    pub density: f64,
}

impl Mask {
    /// The per-layer and total counts.
    pub fn report(&self) -> SparsityReport {
        let layers: Vec<_> = self
            .layers()
            .map(|(path, layer)| {
                let kept = layer.kept_count();
                LayerSparsity {
                    path: path.to_string(),
                    shape: layer.shape().to_vec(),
                    total: layer.total_count(),
                    kept,
                    pruned: layer.total_count() - kept,
                    density: layer.density(),
                }
            })
            .collect();
        let total = layers.iter().map(|l| l.total).sum();
        let kept = layers.iter().map(|l| l.kept).sum();
        SparsityReport {
            layers,
            total,
            kept,
            pruned: total - kept,
            density: if total == 0 {
                0.0
            } else {
                kept as f64 / total as f64
            },
        }
    }

    /// Intersection over union of the kept weights of two masks over the same
    /// parameters, per layer and in total.
    pub fn overlap(&self, other: &Mask) -> Result<MaskOverlap, MaskError> {
        self.check_same_layers(other)?;
        let layers: Vec<_> = self
            .layers()
            .map(|(path, a)| {
                let b = other.layer(path).expect("checked above");
                let (mut intersection, mut union) = (0, 0);
                for (&x, &y) in a.kept().iter().zip(b.kept()) {
                    intersection += usize::from(x && y);
                    union += usize::from(x || y);
                }
                LayerOverlap {
                    path: path.to_string(),
                    intersection,
                    union,
                    iou: iou(intersection, union),
                }
            })
            .collect();
        let intersection = layers.iter().map(|l| l.intersection).sum();
        let union = layers.iter().map(|l| l.union).sum();
        Ok(MaskOverlap {
            layers,
            intersection,
            union,
            iou: iou(intersection, union),
        })
    }
}

fn iou(intersection: usize, union: usize) -> f64 {
    if union == 0 {
        1.0
    } else {
        intersection as f64 / union as f64
    }
}

/// Overlap of one parameter's kept weights in two masks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LayerOverlap {
    /// Parameter path.
    pub path: String,
    /// Weights kept by both masks.
    pub intersection: usize,
    /// Weights kept by either mask.
    pub union: usize,
    /// `intersection / union` (1 when both masks prune everything).
    pub iou: f64,
}

/// Overlap of two masks' kept weights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MaskOverlap {
    /// One row per parameter, ordered by path.
    pub layers: Vec<LayerOverlap>,
    /// Weights kept by both masks.
    pub intersection: usize,
    /// Weights kept by either mask.
    pub union: usize,
    /// `intersection / union` over all parameters.
    pub iou: f64,
}

impl fmt::Display for SparsityReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let width = self
            .layers
            .iter()
            .map(|l| l.path.len())
            .max()
            .unwrap_or(0)
            .max("total".len());
        writeln!(
            f,
            "{:<width$}  {:>18}  {:>10}  {:>10}  {:>8}",
            "parameter", "shape", "kept", "total", "density"
        )?;
        for l in &self.layers {
            writeln!(
                f,
                "{:<width$}  {:>18}  {:>10}  {:>10}  {:>7.3}%",
                l.path,
                format!("{:?}", l.shape),
                l.kept,
                l.total,
                100.0 * l.density
            )?;
        }
        write!(
            f,
            "{:<width$}  {:>18}  {:>10}  {:>10}  {:>7.3}%",
            "total",
            "",
            self.kept,
            self.total,
            100.0 * self.density
        )
    }
}
