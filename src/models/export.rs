//! Structured export: the smaller dense network a channel-pruned one
//! stands for.
//!
//! [`StructuredPruner`](crate::prune::StructuredPruner) masks whole units:
//! a producer's filters or neurons together with the matching input channels
//! of the consumer. [`shrink`] removes them for real: the producer's weight
//! loses those output units, the consumer's weight those input channels, and
//! every attached per-unit tensor (a bias, BatchNorm's gamma, beta and
//! running statistics) those entries. Nothing else changes (strides,
//! padding, BatchNorm settings, parameter ids), and the result computes what
//! the masked network computes, in training and in evaluation mode, up to
//! float summation order.
//!
//! A unit is removed when its input channel in the consumer keeps no weight
//! (the criterion of [`ChannelGroup::kept_units`]); the producer's filter
//! need not be zero, since its output is not used.
//!
//! Which channels each model can lose:
//! * [`LeNet`]: the hidden neurons of `fc1` and `fc2` (and their biases);
//!   the 10 outputs stay ([`lenet_channel_groups`]).
//! * [`ResNet`]: residual additions tie every block's output channels to its
//!   stage's, so only the inner channels of each basic block are pruned:
//!   `conv1`'s filters, `bn1`'s channels and `conv2`'s input channels
//!   ([`resnet_channel_groups`]), the usual simple choice (Li et al. prune
//!   ResNets the same way). The stem, the shortcuts and the stage widths
//!   stay.

use std::collections::BTreeMap;

use burn::module::{Module, Param};
use burn::tensor::{Int, Tensor, TensorData};

use super::{LeNet, ResNet};
use crate::mask::{Mask, MaskError};
use crate::params::{PathMapper, float_params, map_with_paths};
use crate::prune::{ChannelGroup, PruneError};

/// Why a structured export failed.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The mask does not fit the model.
    #[error(transparent)]
    Mask(#[from] MaskError),
    /// A channel group does not fit the mask.
    #[error(transparent)]
    Prune(#[from] PruneError),
    /// Every unit of a group is pruned: the network would be cut in two.
    #[error("no unit of `{producer}` is left: the exported network would be cut")]
    NoUnitLeft {
        /// The group's producer.
        producer: String,
    },
    /// An attached path names no tensor, or a tensor that is not one value
    /// per unit.
    #[error("attached `{path}`: {reason}")]
    Attached {
        /// The attached path (or the tensor under it).
        path: String,
        /// What is wrong.
        reason: String,
    },
}

/// LeNet's prunable units: `fc1`'s neurons (with `fc1.bias`) feeding `fc2`,
/// `fc2`'s neurons (with `fc2.bias`) feeding `fc3`.
pub fn lenet_channel_groups() -> Vec<ChannelGroup> {
    vec![
        ChannelGroup::new("fc1.weight", "fc2.weight").with_attached("fc1.bias"),
        ChannelGroup::new("fc2.weight", "fc3.weight").with_attached("fc2.bias"),
    ]
}

/// A CIFAR ResNet's prunable units: in each of its `blocks` basic blocks,
/// `conv1`'s filters with `bn1` feeding `conv2` (see the module docs).
pub fn resnet_channel_groups(blocks: usize) -> Vec<ChannelGroup> {
    (0..blocks)
        .map(|i| {
            ChannelGroup::new(
                format!("blocks.{i}.conv1.weight"),
                format!("blocks.{i}.conv2.weight"),
            )
            .with_attached(format!("blocks.{i}.bn1"))
        })
        .collect()
}

/// [`shrink`] with [`lenet_channel_groups`].
pub fn export_lenet(model: &LeNet, mask: &Mask) -> Result<LeNet, ExportError> {
    shrink(model, mask, &lenet_channel_groups())
}

/// [`shrink`] with [`resnet_channel_groups`] of all of `model`'s blocks.
pub fn export_resnet(model: &ResNet, mask: &Mask) -> Result<ResNet, ExportError> {
    shrink(model, mask, &resnet_channel_groups(model.blocks.len()))
}

/// The pruned units of `groups` removed from `model` under `mask` (see the
/// module docs). The result is in evaluation mode (burn's
/// [`valid`](Module::valid)), with the masked weights; call
/// [`train`](Module::train) on it to train it. `model` is not changed.
pub fn shrink<M: Module>(
    model: &M,
    mask: &Mask,
    groups: &[ChannelGroup],
) -> Result<M, ExportError> {
    // `valid` settles pending BatchNorm statistics and gives running states
    // of their own: mapping a clone would write through to `model`'s.
    let masked = mask.apply(model.valid())?;
    let plan = plan(&masked, mask, groups)?;
    Ok(map_with_paths(masked, &mut Shrinker { plan: &plan }))
}

/// Per tensor path, the (dimension, kept indices) cuts to apply.
type Plan = BTreeMap<String, Vec<(usize, Vec<usize>)>>;

/// The cuts `groups` make in `model` under `mask`.
fn plan<M: Module>(model: &M, mask: &Mask, groups: &[ChannelGroup]) -> Result<Plan, ExportError> {
    let params = float_params(model);
    let mut plan = Plan::new();
    for group in groups {
        let (producer, consumer) = group.axes(mask)?;
        let kept = group.kept_units(mask)?;
        if kept.is_empty() {
            return Err(ExportError::NoUnitLeft {
                producer: group.producer.clone(),
            });
        }
        let mut cut = |path: &str, dim: usize| {
            plan.entry(path.to_string())
                .or_default()
                .push((dim, kept.clone()));
        };
        cut(&group.producer, producer.output_dim());
        cut(&group.consumer, consumer.input_dim());
        for attached in &group.attached {
            let under = format!("{attached}.");
            let mut found = false;
            for p in params
                .iter()
                .filter(|p| p.path == *attached || p.path.starts_with(&under))
            {
                if p.shape != [producer.outputs()] {
                    return Err(ExportError::Attached {
                        path: p.path.clone(),
                        reason: format!(
                            "shape {:?}, expected one value per unit of `{}` ({})",
                            p.shape,
                            group.producer,
                            producer.outputs()
                        ),
                    });
                }
                cut(&p.path, 0);
                found = true;
            }
            if !found {
                return Err(ExportError::Attached {
                    path: attached.clone(),
                    reason: "names no tensor of the model".into(),
                });
            }
        }
    }
    Ok(plan)
}

/// Applies a [`Plan`]: keeps the listed indices along each listed dimension.
struct Shrinker<'a> {
    plan: &'a Plan,
}

impl PathMapper for Shrinker<'_> {
    fn map_float<const D: usize>(
        &mut self,
        path: &str,
        param: Param<Tensor<D>>,
    ) -> Param<Tensor<D>> {
        let Some(cuts) = self.plan.get(path) else {
            return param;
        };
        param.map(|tensor| {
            let require_grad = tensor.is_require_grad();
            let device = tensor.device();
            let cut = cuts.iter().fold(tensor, |t, (dim, kept)| {
                let indices: Vec<i64> = kept.iter().map(|&i| i as i64).collect();
                let n = indices.len();
                let indices = Tensor::<1, Int>::from_data(TensorData::new(indices, [n]), &device);
                t.select(*dim, indices)
            });
            cut.detach().set_require_grad(require_grad)
        })
    }
}
