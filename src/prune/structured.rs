//! Structured pruning by L1 norm (Li, Kadav, Durdanovic, Samet & Graf,
//! "Pruning Filters for Efficient ConvNets", arXiv 1608.08710): whole output
//! units (convolution filters, Linear neurons) are removed, those whose
//! weights have the smallest sum of absolute values.
//!
//! The prunable units are declared as [`ChannelGroup`]s: the output units of
//! a `producer` weight feed the input channels of a `consumer` weight
//! (`blocks.0.conv1.weight` -> `blocks.0.conv2.weight` in a ResNet block,
//! `fc1.weight` -> `fc2.weight` in LeNet; presets in
//! [`models::export`](crate::models::export)). Removing unit `u` clears, in
//! the mask, the producer's unit `u` (its filter or neuron) **and** the
//! consumer's input channel `u`. The second part makes the masked network
//! compute exactly what the network without the unit computes: whatever
//! reaches channel `u` (a BatchNorm shift, a bias through ReLU) is multiplied
//! by zero weights. So [`shrink`](crate::models::export::shrink) can rebuild
//! a smaller dense network with the same outputs, and the mask's density is
//! the exported network's share of prunable weights.
//!
//! Stages, as in the rest of the module: a score per unit
//! ([`l1_unit_scores`]), an allocation (each group keeps
//! [`kept_after_levels`] of its remaining units for `levels` levels of
//! `fraction_of_remaining`, at least one), a selection (lowest scores out,
//! ties: the earlier unit first), enforced by the runner's masked training
//! like any mask. Iterated like IMP, each level removes the fraction of the
//! units still alive in the network trained at the previous level.
//!
//! Unit layout: burn's `Linear` weight is `[d_in, d_out]` (unit `j` is
//! column `j`, input channel `i` row `i`); a convolution weight is
//! `[c_out, c_in, k_h, k_w]` (unit `o` is filter `o`, input channel `c` the
//! slice `[:, c, .., ..]`). A convolution may feed a Linear layer whose
//! `d_in` equals its `c_out` (after global pooling).

use std::collections::BTreeSet;

use burn::module::Module;
use serde::{Deserialize, Serialize};

use super::{PruneError, Pruner, Weights, check_weights, kept_after_levels, validate_fraction};
use crate::mask::Mask;

/// The output units of `producer` feeding the input channels of `consumer`
/// (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelGroup {
    /// Path of the weight whose output units are pruned.
    pub producer: String,
    /// Path of the weight that takes them as input channels.
    pub consumer: String,
    /// Per-unit parameters removed with the units on export: the producer's
    /// bias, a BatchNorm between the two (a module path such as
    /// `blocks.0.bn1` names all its per-channel tensors). The mask does not
    /// cover them; the pruner ignores them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attached: Vec<String>,
}

/// How a weight's entries split into output units and input channels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Axes {
    /// burn `Linear` weight `[d_in, d_out]`.
    Linear { d_in: usize, d_out: usize },
    /// Convolution weight `[c_out, c_in, ..kernel]`, `kernel` entries per
    /// (filter, input channel).
    Conv {
        c_out: usize,
        c_in: usize,
        kernel: usize,
    },
}

impl Axes {
    /// The layout of a weight of `shape` at `path`.
    pub(crate) fn of(path: &str, shape: &[usize]) -> Result<Self, PruneError> {
        match shape {
            [d_in, d_out] => Ok(Self::Linear {
                d_in: *d_in,
                d_out: *d_out,
            }),
            [c_out, c_in, rest @ ..] if !rest.is_empty() => Ok(Self::Conv {
                c_out: *c_out,
                c_in: *c_in,
                kernel: rest.iter().product(),
            }),
            _ => Err(PruneError::InvalidStructured(format!(
                "`{path}` of shape {shape:?} is neither a Linear nor a convolution weight"
            ))),
        }
    }

    /// Number of output units.
    pub(crate) fn outputs(self) -> usize {
        match self {
            Self::Linear { d_out, .. } => d_out,
            Self::Conv { c_out, .. } => c_out,
        }
    }

    /// Number of input channels.
    pub(crate) fn inputs(self) -> usize {
        match self {
            Self::Linear { d_in, .. } => d_in,
            Self::Conv { c_in, .. } => c_in,
        }
    }

    /// The tensor dimension that indexes output units.
    pub(crate) fn output_dim(self) -> usize {
        match self {
            Self::Linear { .. } => 1,
            Self::Conv { .. } => 0,
        }
    }

    /// The tensor dimension that indexes input channels.
    pub(crate) fn input_dim(self) -> usize {
        match self {
            Self::Linear { .. } => 0,
            Self::Conv { .. } => 1,
        }
    }

    /// Flat row-major indices of output unit `u`.
    fn output_entries(self, u: usize) -> Vec<usize> {
        match self {
            Self::Linear { d_in, d_out } => (0..d_in).map(|i| i * d_out + u).collect(),
            Self::Conv { c_in, kernel, .. } => {
                let n = c_in * kernel;
                (u * n..(u + 1) * n).collect()
            }
        }
    }

    /// Flat row-major indices of input channel `c`.
    fn input_entries(self, c: usize) -> Vec<usize> {
        match self {
            Self::Linear { d_out, .. } => (c * d_out..(c + 1) * d_out).collect(),
            Self::Conv {
                c_out,
                c_in,
                kernel,
            } => (0..c_out)
                .flat_map(|o| {
                    let start = (o * c_in + c) * kernel;
                    start..start + kernel
                })
                .collect(),
        }
    }
}

impl ChannelGroup {
    /// `producer`'s units feeding `consumer`, nothing attached.
    pub fn new(producer: impl Into<String>, consumer: impl Into<String>) -> Self {
        Self {
            producer: producer.into(),
            consumer: consumer.into(),
            attached: Vec::new(),
        }
    }

    /// Adds a per-unit parameter (or module prefix) removed on export.
    pub fn with_attached(mut self, path: impl Into<String>) -> Self {
        self.attached.push(path.into());
        self
    }

    /// The layouts of producer and consumer in `mask`, checked to match.
    pub(crate) fn axes(&self, mask: &Mask) -> Result<(Axes, Axes), PruneError> {
        let layout = |path: &str| {
            let layer = mask.layer(path).ok_or_else(|| {
                PruneError::InvalidStructured(format!("`{path}` is not in the mask"))
            })?;
            Axes::of(path, layer.shape())
        };
        let (producer, consumer) = (layout(&self.producer)?, layout(&self.consumer)?);
        if producer.outputs() != consumer.inputs() {
            return Err(PruneError::InvalidStructured(format!(
                "`{}` has {} output units but `{}` takes {} input channels",
                self.producer,
                producer.outputs(),
                self.consumer,
                consumer.inputs()
            )));
        }
        Ok((producer, consumer))
    }

    /// The units still alive under `mask`: those whose input channel in the
    /// consumer keeps at least one weight (the others no longer reach the
    /// output, whatever the producer computes).
    pub fn kept_units(&self, mask: &Mask) -> Result<Vec<usize>, PruneError> {
        let (producer, consumer) = self.axes(mask)?;
        let kept = mask.layer(&self.consumer).expect("checked").kept();
        Ok((0..producer.outputs())
            .filter(|&u| consumer.input_entries(u).into_iter().any(|i| kept[i]))
            .collect())
    }
}

/// Li et al.'s score of each output unit of a weight of `shape`: the sum of
/// the absolute values of its kept weights (`kept`: the layer's mask).
pub fn l1_unit_scores(
    path: &str,
    shape: &[usize],
    weights: &[f32],
    kept: &[bool],
) -> Result<Vec<f64>, PruneError> {
    let axes = Axes::of(path, shape)?;
    Ok((0..axes.outputs())
        .map(|u| {
            axes.output_entries(u)
                .into_iter()
                .filter(|&i| kept[i])
                .map(|i| f64::from(weights[i].abs()))
                .sum()
        })
        .collect())
}

/// Configuration of [`StructuredPruner`] (see the module docs). Defaults:
/// 20% of each group's remaining units per level, iterative, no groups (set
/// them, e.g. from [`crate::models::export::resnet_channel_groups`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StructuredConfig {
    /// Fraction of each group's remaining units removed per level.
    pub fraction_of_remaining: f64,
    /// The prunable units.
    pub groups: Vec<ChannelGroup>,
    /// Level `L` prunes the dense trained network in one step to the unit
    /// counts `L` levels keep (default false: each level prunes the previous
    /// level's trained network, like IMP).
    pub one_shot: bool,
}

impl Default for StructuredConfig {
    fn default() -> Self {
        Self {
            fraction_of_remaining: 0.2,
            groups: Vec::new(),
            one_shot: false,
        }
    }
}

impl StructuredConfig {
    /// Iterative L1 pruning of `fraction_of_remaining` of each group's units
    /// per level.
    pub fn new(fraction_of_remaining: f64, groups: Vec<ChannelGroup>) -> Self {
        Self {
            fraction_of_remaining,
            groups,
            one_shot: false,
        }
    }

    /// Checks the fraction and that groups exist, each producer and each
    /// consumer in one group only.
    pub fn validate(&self) -> Result<(), PruneError> {
        validate_fraction("fraction_of_remaining", self.fraction_of_remaining)?;
        if self.groups.is_empty() {
            return Err(PruneError::InvalidStructured("no channel groups".into()));
        }
        let (mut producers, mut consumers) = (BTreeSet::new(), BTreeSet::new());
        for group in &self.groups {
            if group.producer == group.consumer {
                return Err(PruneError::InvalidStructured(format!(
                    "`{}` cannot feed itself",
                    group.producer
                )));
            }
            let new_producer = producers.insert(&group.producer);
            if !new_producer || !consumers.insert(&group.consumer) {
                let (role, path) = match new_producer {
                    false => ("producer", &group.producer),
                    true => ("consumer", &group.consumer),
                };
                return Err(PruneError::InvalidStructured(format!(
                    "`{path}` is the {role} of two groups"
                )));
            }
        }
        Ok(())
    }

    /// Validates the configuration and builds the pruner.
    pub fn init(&self) -> Result<StructuredPruner, PruneError> {
        self.validate()?;
        Ok(StructuredPruner {
            config: self.clone(),
        })
    }
}

/// Removes whole output units by L1 norm. Build it with
/// [`StructuredConfig::init`].
#[derive(Debug, Clone)]
pub struct StructuredPruner {
    config: StructuredConfig,
}

impl StructuredPruner {
    /// The configuration.
    pub fn config(&self) -> &StructuredConfig {
        &self.config
    }

    /// The mask `levels` levels reach from `current` in one step: each group
    /// keeps `kept_after_levels(alive, fraction, levels)` of its alive units
    /// (at least one), those of largest L1 norm under `current`.
    pub fn one_shot_from_weights(
        &self,
        weights: &Weights,
        current: &Mask,
        levels: usize,
    ) -> Result<Mask, PruneError> {
        check_weights(weights, current)?;
        let mut next = current.clone();
        for group in &self.config.groups {
            let (producer, consumer) = group.axes(current)?;
            let alive = group.kept_units(current)?;
            let layer = current.layer(&group.producer).expect("checked");
            let scores = l1_unit_scores(
                &group.producer,
                layer.shape(),
                &weights[&group.producer],
                layer.kept(),
            )?;
            let keep = kept_after_levels(alive.len(), self.config.fraction_of_remaining, levels);
            let mut order = alive;
            order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]).then(a.cmp(&b)));
            for &u in &order[..order.len() - keep.max(1).min(order.len())] {
                clear(&mut next, &group.producer, producer.output_entries(u));
                clear(&mut next, &group.consumer, consumer.input_entries(u));
            }
        }
        Ok(next)
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
}

/// Clears `entries` of the layer `path` of `mask`.
fn clear(mask: &mut Mask, path: &str, entries: Vec<usize>) {
    let kept = mask.layer_mut(path).expect("checked").kept_mut();
    for i in entries {
        kept[i] = false;
    }
}

impl Pruner for StructuredPruner {
    fn next_mask_from_weights(
        &self,
        weights: &Weights,
        current: &Mask,
    ) -> Result<Mask, PruneError> {
        self.one_shot_from_weights(weights, current, 1)
    }
}
