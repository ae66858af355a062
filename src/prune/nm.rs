//! N:M structured sparsity, the selection stage: at most `N` weights kept in
//! every group of `M` consecutive weights along a layer's input dimension
//! (2:4 is what sparse tensor cores accelerate; Mishra et al., "Accelerating
//! Sparse Deep Neural Networks", arXiv 2104.08378).
//!
//! # Groups
//! A group is `M` consecutive weights that feed the same output unit:
//!
//! * burn's `Linear` weight is `[d_in, d_out]`: for output `j`, the inputs
//!   `g*M .. g*M + M` form group `(g, j)` (entries `(i, j)`, a column
//!   stride `d_out` apart in row-major order). `d_in` must be divisible by
//!   `M`.
//! * A convolution weight `[c_out, c_in, k_h, k_w]` (any rank >= 3): per
//!   output channel, the flattened `c_in * k_h * k_w` weights in row-major
//!   order (the reduction dimension of the im2col product), cut into runs of
//!   `M`. `c_in * k_h * k_w` must be divisible by `M`. NVIDIA's ASP instead
//!   groups along `c_in` at each kernel position (its kernels are NHWC); with
//!   `c_in` divisible by `M` both are valid 2:4 layouts of the same
//!   reduction, only the order differs.
//! * A one-dimensional parameter (a bias) has no input dimension and is an
//!   error, as is a layer whose input dimension `M` does not divide (the
//!   error names the layer: leave it out of the
//!   [`ParamSelector`](crate::mask::ParamSelector), e.g. a ResNet's stem
//!   convolution on 1- or 3-channel images, 9 or 27 weights per filter).
//!
//! Ties follow the module's rule: among equal keys the earlier position goes
//! first.

use serde::{Deserialize, Serialize};

use super::select::ordered_bits;
use super::{PruneError, Scores};
use crate::mask::{LayerMask, Mask};

/// The N:M pattern: at most `n` of every `m` consecutive input weights kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NOfM {
    /// Weights kept per group, `1 <= n < m`.
    pub n: usize,
    /// Group size.
    pub m: usize,
}

/// Where the groups of one layer lie: group `g` holds the entries
/// `start(g) + t * stride` for `t < m`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupLayout {
    /// Number of groups.
    pub count: usize,
    /// Groups side by side in one block of `m` input rows (`d_out` for a
    /// Linear weight, 1 for a convolution).
    columns: usize,
    /// Distance between consecutive entries of a group.
    stride: usize,
    /// Group size.
    m: usize,
}

impl GroupLayout {
    /// The flat row-major indices of group `g`.
    pub fn entries(&self, g: usize) -> impl Iterator<Item = usize> + use<> {
        let start = (g / self.columns) * self.m * self.stride + g % self.columns;
        let stride = self.stride;
        (0..self.m).map(move |t| start + t * stride)
    }
}

impl NOfM {
    /// `n` of every `m`.
    pub fn new(n: usize, m: usize) -> Self {
        Self { n, m }
    }

    /// 2:4, the pattern of sparse tensor cores.
    pub fn two_of_four() -> Self {
        Self::new(2, 4)
    }

    /// The density of a layer that satisfies the pattern exactly, `n / m`.
    pub fn density(&self) -> f64 {
        self.n as f64 / self.m as f64
    }

    /// Checks `1 <= n < m`.
    pub fn validate(&self) -> Result<(), PruneError> {
        if self.n == 0 || self.n >= self.m {
            return Err(PruneError::InvalidNOfM(format!(
                "N:M sparsity needs 1 <= N < M, got {}:{}",
                self.n, self.m
            )));
        }
        Ok(())
    }

    /// The groups of a parameter `path` of `shape` (see the module docs).
    pub fn layout(&self, path: &str, shape: &[usize]) -> Result<GroupLayout, PruneError> {
        self.validate()?;
        let total: usize = shape.iter().product();
        let (input, columns) = match shape.len() {
            2 => (shape[0], shape[1]),
            r if r >= 3 => (shape[1..].iter().product(), 1),
            _ => {
                return Err(PruneError::NOfMShape {
                    path: path.to_string(),
                    shape: shape.to_vec(),
                });
            }
        };
        if !input.is_multiple_of(self.m) {
            return Err(PruneError::NOfMIndivisible {
                path: path.to_string(),
                input,
                m: self.m,
            });
        }
        Ok(GroupLayout {
            count: total / self.m,
            columns,
            stride: columns,
            m: self.m,
        })
    }

    /// Checks that every layer of `mask` has a valid group layout.
    pub fn check_shapes(&self, mask: &Mask) -> Result<(), PruneError> {
        for (path, layer) in mask.layers() {
            self.layout(path, layer.shape())?;
        }
        Ok(())
    }

    /// Checks that `mask` keeps at most `n` weights in every group; the
    /// first offending group is the error.
    pub fn check(&self, mask: &Mask) -> Result<(), PruneError> {
        for (path, layer) in mask.layers() {
            let layout = self.layout(path, layer.shape())?;
            for g in 0..layout.count {
                let kept = layout.entries(g).filter(|&i| layer.kept()[i]).count();
                if kept > self.n {
                    return Err(PruneError::NOfMViolated {
                        path: path.to_string(),
                        group: g,
                        kept,
                        n: self.n,
                        m: self.m,
                    });
                }
            }
        }
        Ok(())
    }

    /// The entries of `layer` among the best `n` kept ones of their group:
    /// keys compared largest first (position breaks ties: the later entry
    /// wins, as the earlier one is removed first). Entries `layer` does not
    /// keep are never marked.
    pub(super) fn best_in_groups(
        &self,
        path: &str,
        layer: &LayerMask,
        key: impl Fn(usize) -> u32,
    ) -> Result<Vec<bool>, PruneError> {
        let layout = self.layout(path, layer.shape())?;
        let mut best = vec![false; layer.total_count()];
        let mut group: Vec<(u32, usize)> = Vec::with_capacity(self.m);
        for g in 0..layout.count {
            group.clear();
            group.extend(
                layout
                    .entries(g)
                    .filter(|&i| layer.kept()[i])
                    .map(|i| (key(i), i)),
            );
            group.sort_unstable_by(|a, b| b.cmp(a));
            for &(_, i) in group.iter().take(self.n) {
                best[i] = true;
            }
        }
        Ok(best)
    }
}

/// The subset of `current` that keeps, in every group, the `n` highest
/// scores among the weights `current` keeps (fewer where a group keeps
/// fewer): N:M selection by any score, the top-k stage's structured
/// counterpart ([`keep_top`](super::keep_top)). With magnitudes as scores
/// this is one-shot N:M magnitude pruning.
pub fn keep_n_of_m(scores: &Scores, current: &Mask, pattern: NOfM) -> Result<Mask, PruneError> {
    super::select::check_scores(scores, current)?;
    let mut next = current.clone();
    for (path, layer) in current.layers() {
        let values = &scores[path];
        let best = pattern.best_in_groups(path, layer, |i| ordered_bits(values[i]))?;
        next.layer_mut(path)
            .expect("path from this mask")
            .kept_mut()
            .copy_from_slice(&best);
    }
    Ok(next)
}
