//! SNIP (Lee, Ajanthan & Torr, "SNIP: Single-shot Network Pruning based on
//! Connection Sensitivity", ICLR 2019): the score of a weight is `|g * w|`,
//! `g` the gradient of the loss at the weights `w`.

use std::ops::Range;

use burn::module::Module;
use burn::tensor::Device;

use super::gradients::{mean_gradient, weight_times_gradient};
use super::{PruneError, Scores};
use crate::mask::Mask;
use crate::task::{DataOrder, Task};

/// SNIP scores `|g * w|` of the weights `mask` covers, `g` the mean gradient
/// of `task`'s loss over the batches `iterations` of `order` (`model` on an
/// autodiff `device`). Higher is kept.
pub fn snip_scores<M: Module, T: Task<M>>(
    model: &M,
    mask: &Mask,
    task: &T,
    order: &DataOrder,
    iterations: Range<u64>,
    device: &Device,
) -> Result<Scores, PruneError> {
    let gradient = mean_gradient(model, mask, task, order, iterations, device)?;
    Ok(weight_times_gradient(model, mask, &gradient))
}
