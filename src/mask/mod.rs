//! Binary pruning masks, one per prunable parameter, keyed by module path.
//!
//! A [`Mask`] records, for each selected parameter (e.g.
//! `blocks.0.conv1.weight`), its shape and which entries are kept. It is held
//! on the host at one byte per weight and saved bit-packed (one bit per
//! weight) with a checksum; it also exports to safetensors (one `u8` tensor
//! per parameter path) for use outside Rust.
//!
//! ```
//! use burn_lottery::mask::{Mask, ParamSelector};
//! use burn::nn::LinearConfig;
//! # #[allow(deprecated)] let device = burn::tensor::Device::ndarray();
//! let model = LinearConfig::new(8, 4).init(&device);
//! let mask = Mask::dense(&model, &ParamSelector::default()).unwrap();
//! assert_eq!(mask.total_count(), 32); // the weight; the bias is never selected
//! assert_eq!(mask.density(), 1.0);
//! ```

mod apply;
mod error;
mod report;
mod selector;
mod storage;

use std::collections::BTreeMap;

use burn::module::Module;
use serde::{Deserialize, Serialize};

pub use apply::MaskedParams;
pub use error::MaskError;
pub use report::{LayerOverlap, LayerSparsity, MaskOverlap, SparsityReport};
pub use selector::{ParamSelector, glob_match};

use crate::params::float_params;

/// The mask of one parameter: its shape and which entries are kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "storage::PackedLayer", try_from = "storage::PackedLayer")]
pub struct LayerMask {
    shape: Vec<usize>,
    kept: Vec<bool>,
}

impl LayerMask {
    /// A mask that keeps every entry of a tensor of this shape.
    pub fn dense(shape: Vec<usize>) -> Self {
        let n = shape.iter().product();
        Self {
            shape,
            kept: vec![true; n],
        }
    }

    /// Builds a layer mask from row-major keep flags.
    pub fn from_kept(path: &str, shape: Vec<usize>, kept: Vec<bool>) -> Result<Self, MaskError> {
        let Some(expected) = shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d)) else {
            return Err(MaskError::ShapeOverflow {
                path: path.to_string(),
                shape,
            });
        };
        if kept.len() != expected {
            return Err(MaskError::LengthMismatch {
                path: path.to_string(),
                shape,
                expected,
                actual: kept.len(),
            });
        }
        Ok(Self { shape, kept })
    }

    /// Builds a layer mask from row-major numeric values, each 0 or 1.
    pub fn from_values(path: &str, shape: Vec<usize>, values: &[f64]) -> Result<Self, MaskError> {
        let mut kept = Vec::with_capacity(values.len());
        for (index, &value) in values.iter().enumerate() {
            if value == 1.0 {
                kept.push(true);
            } else if value == 0.0 {
                kept.push(false);
            } else {
                return Err(MaskError::NonBinary {
                    path: path.to_string(),
                    index,
                    value,
                });
            }
        }
        Self::from_kept(path, shape, kept)
    }

    /// Tensor shape.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// Row-major keep flags (`true` = kept).
    pub fn kept(&self) -> &[bool] {
        &self.kept
    }

    /// Number of entries.
    pub fn total_count(&self) -> usize {
        self.kept.len()
    }

    /// Number of kept entries.
    pub fn kept_count(&self) -> usize {
        self.kept.iter().filter(|&&k| k).count()
    }

    /// Kept fraction.
    pub fn density(&self) -> f64 {
        if self.kept.is_empty() {
            return 0.0;
        }
        self.kept_count() as f64 / self.kept.len() as f64
    }

    pub(crate) fn kept_mut(&mut self) -> &mut [bool] {
        &mut self.kept
    }
}

/// One binary mask per prunable parameter, keyed by module path.
///
/// Masks are ordered by path, which fixes the order of layers wherever an
/// order matters (reports, tie-breaking, files).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Mask {
    layers: BTreeMap<String, LayerMask>,
}

impl Mask {
    /// A mask keeping every weight of the parameters `selector` picks in `model`.
    ///
    /// Fails if the selection is empty or a pattern matches nothing.
    pub fn dense<M: Module>(model: &M, selector: &ParamSelector) -> Result<Self, MaskError> {
        let params = float_params(model);
        let layers = selector
            .select(&params)?
            .into_iter()
            .map(|p| (p.path.clone(), LayerMask::dense(p.shape.clone())))
            .collect();
        Ok(Self { layers })
    }

    /// Builds a mask from `(path, layer)` pairs.
    pub fn from_layers(layers: impl IntoIterator<Item = (String, LayerMask)>) -> Self {
        Self {
            layers: layers.into_iter().collect(),
        }
    }

    /// The layers, ordered by path.
    pub fn layers(&self) -> impl ExactSizeIterator<Item = (&str, &LayerMask)> {
        self.layers.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// The mask of one parameter.
    pub fn layer(&self, path: &str) -> Option<&LayerMask> {
        self.layers.get(path)
    }

    pub(crate) fn layer_mut(&mut self, path: &str) -> Option<&mut LayerMask> {
        self.layers.get_mut(path)
    }

    /// The masked parameter paths, sorted.
    pub fn paths(&self) -> impl Iterator<Item = &str> {
        self.layers.keys().map(String::as_str)
    }

    /// Whether the mask covers `path`.
    pub fn contains(&self, path: &str) -> bool {
        self.layers.contains_key(path)
    }

    /// Number of masked parameters.
    pub fn num_layers(&self) -> usize {
        self.layers.len()
    }

    /// Number of prunable weights (kept + pruned).
    pub fn total_count(&self) -> usize {
        self.layers.values().map(LayerMask::total_count).sum()
    }

    /// Number of kept weights.
    pub fn kept_count(&self) -> usize {
        self.layers.values().map(LayerMask::kept_count).sum()
    }

    /// Number of pruned weights.
    pub fn pruned_count(&self) -> usize {
        self.total_count() - self.kept_count()
    }

    /// Fraction of prunable weights kept.
    pub fn density(&self) -> f64 {
        let total = self.total_count();
        if total == 0 {
            return 0.0;
        }
        self.kept_count() as f64 / total as f64
    }

    /// Fraction of prunable weights pruned.
    pub fn sparsity(&self) -> f64 {
        1.0 - self.density()
    }

    /// Whether every weight this mask keeps is also kept by `other`
    /// (same parameters and shapes required).
    pub fn is_subset_of(&self, other: &Mask) -> Result<bool, MaskError> {
        self.check_same_layers(other)?;
        Ok(self.layers.iter().all(|(path, layer)| {
            let o = &other.layers[path];
            layer.kept.iter().zip(&o.kept).all(|(&a, &b)| !a || b)
        }))
    }

    /// Checks that `other` covers the same parameters with the same shapes.
    pub fn check_same_layers(&self, other: &Mask) -> Result<(), MaskError> {
        for path in self.layers.keys().chain(other.layers.keys()) {
            match (self.layers.get(path), other.layers.get(path)) {
                (Some(a), Some(b)) if a.shape != b.shape => {
                    return Err(MaskError::ShapeMismatch {
                        path: path.clone(),
                        mask_shape: a.shape.clone(),
                        param_shape: b.shape.clone(),
                    });
                }
                (Some(_), Some(_)) => {}
                _ => return Err(MaskError::LayerSetMismatch { path: path.clone() }),
            }
        }
        Ok(())
    }

    /// Checks that the mask fits `model`: every masked path exists with the
    /// same shape, and (with a selector) every parameter the selector picks is
    /// covered.
    pub fn validate<M: Module>(
        &self,
        model: &M,
        selector: Option<&ParamSelector>,
    ) -> Result<(), MaskError> {
        let params = float_params(model);
        let by_path: BTreeMap<&str, &crate::params::ParamInfo> =
            params.iter().map(|p| (p.path.as_str(), p)).collect();
        for (path, layer) in &self.layers {
            let param = by_path
                .get(path.as_str())
                .filter(|p| !p.is_running_stat)
                .ok_or_else(|| MaskError::UnknownParameter { path: path.clone() })?;
            if param.shape != layer.shape {
                return Err(MaskError::ShapeMismatch {
                    path: path.clone(),
                    mask_shape: layer.shape.clone(),
                    param_shape: param.shape.clone(),
                });
            }
        }
        if let Some(selector) = selector {
            for param in selector.select(&params)? {
                if !self.layers.contains_key(&param.path) {
                    return Err(MaskError::MissingParameter {
                        path: param.path.clone(),
                    });
                }
            }
        }
        Ok(())
    }

    /// Zeroes every pruned weight of `model`, after checking that the mask
    /// fits it. Parameters the mask does not name are left untouched.
    pub fn apply<M: Module>(&self, model: M) -> Result<M, MaskError> {
        self.validate(&model, None)?;
        Ok(apply::apply_host_mask(self, model))
    }
}
