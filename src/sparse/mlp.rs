//! A masked multilayer perceptron (LeNet-300-100 and its kind: `Linear`
//! layers with ReLU between them) that trains and infers on the host while
//! touching only its kept weights.
//!
//! Built from a dense [`LeNet`](crate::models::LeNet) and a [`Mask`]; written back into a dense
//! `LeNet` (zeros where pruned) for everything else the crate does, so
//! checkpoints, hashes and stored experiments do not change. The step is the
//! dense masked step's arithmetic (cross-entropy averaged over the batch,
//! the recipe's optimizer) with every pruned product skipped; results agree
//! with burn's within float rounding (sums run in another order).

use std::collections::BTreeMap;

use burn::module::{Module, Param};
use burn::tensor::{Tensor, TensorData};

use super::SparseError;
use super::csr::{SparseWeight, transpose};
use super::optim::{Slot, SlotState, sparse_optimizer, step};
use crate::mask::Mask;
use crate::params::{PathMapper, float_params, float_values, map_with_paths};
use crate::train::recipe::OptimizerConfig;

/// One layer: kept weights, a dense bias, and their optimizer state.
#[derive(Debug, Clone)]
struct Layer {
    /// Module path of the weight (e.g. `fc1.weight`).
    path: String,
    weight: SparseWeight,
    bias: Vec<f32>,
    weight_state: SlotState,
    bias_state: SlotState,
}

/// A masked MLP on the host (see the module docs).
#[derive(Debug, Clone)]
pub struct SparseMlp {
    layers: Vec<Layer>,
    /// Per-step buffers, reused.
    scratch: Scratch,
}

#[derive(Debug, Clone, Default)]
struct Scratch {
    /// Feature-major activations: input, then each layer's output (after ReLU
    /// for hidden layers, logits for the last).
    acts: Vec<Vec<f32>>,
    /// Gradient buffers of each layer's output and input.
    grad_out: Vec<f32>,
    grad_in: Vec<f32>,
    weight_grad: Vec<f32>,
    bias_grad: Vec<f32>,
}

impl SparseMlp {
    /// The layers of `model` under `mask` (a layer the mask does not name
    /// keeps every weight). `model`'s float parameters, in traversal order,
    /// must be `<layer>.weight` `[d_in, d_out]` and `<layer>.bias` `[d_out]`
    /// pairs that chain (each `d_out` the next `d_in`), as in [`LeNet`](crate::models::LeNet);
    /// anything else is [`SparseError::NotAnMlp`]. That the model's forward
    /// is this chain with ReLU between layers cannot be read from its
    /// parameters: the training path checks it on a batch.
    pub fn from_module<M: Module>(model: &M, mask: &Mask) -> Result<Self, SparseError> {
        let params = float_params(model);
        if params.is_empty() || !params.len().is_multiple_of(2) {
            return Err(SparseError::NotAnMlp(format!(
                "{} float tensors",
                params.len()
            )));
        }
        let values = float_values(model, |_| true);
        let mut layers: Vec<Layer> = Vec::new();
        for pair in params.chunks_exact(2) {
            let (w, b) = (&pair[0], &pair[1]);
            let name = w.path.strip_suffix(".weight").unwrap_or("");
            if name.is_empty() || b.path != format!("{name}.bias") || w.shape.len() != 2 {
                return Err(SparseError::NotAnMlp(format!(
                    "{} and {} are not a linear layer's weight and bias",
                    w.path, b.path
                )));
            }
            if let Some(prev) = layers.last()
                && prev.weight.d_out() != w.shape[0]
            {
                return Err(SparseError::NotAnMlp(format!(
                    "{} takes {} inputs after {} outputs",
                    w.path,
                    w.shape[0],
                    prev.weight.d_out()
                )));
            }
            layers.push(layer_from_values(name, &values, mask)?);
        }
        Ok(Self {
            layers,
            scratch: Scratch::default(),
        })
    }

    /// Outputs per example (the last layer's size).
    pub fn classes(&self) -> usize {
        self.layers
            .last()
            .expect("at least one layer")
            .weight
            .d_out()
    }

    /// Inputs per example.
    pub fn d_in(&self) -> usize {
        self.layers[0].weight.d_in()
    }

    /// Number of kept weights (biases not counted).
    pub fn kept_weights(&self) -> usize {
        self.layers.iter().map(|l| l.weight.nnz()).sum()
    }

    /// The trainable parameters with their optimizer state.
    pub(super) fn slots(&mut self) -> Vec<Slot<'_>> {
        let mut slots = Vec::new();
        for layer in &mut self.layers {
            let prefix = layer.path.trim_end_matches(".weight");
            slots.push(Slot {
                path: layer.path.clone(),
                shape: vec![layer.weight.d_in(), layer.weight.d_out()],
                positions: Some(layer.weight.positions()),
                state: &mut layer.weight_state,
            });
            let bias = format!("{prefix}.bias");
            slots.push(Slot::dense(bias, layer.bias.len(), &mut layer.bias_state));
        }
        slots
    }

    /// Writes the weights and biases into `model` (dense, zeros where
    /// pruned), keeping its parameter ids and devices.
    pub fn write_into<M: Module>(&self, model: M) -> M {
        let mut values = BTreeMap::new();
        for layer in &self.layers {
            let prefix = layer.path.trim_end_matches(".weight");
            values.insert(layer.path.clone(), layer.weight.to_dense());
            values.insert(format!("{prefix}.bias"), layer.bias.clone());
        }
        map_with_paths(model, &mut ValueWriter { values })
    }

    /// Logits `[batch, classes]` (row-major) of row-major `images`
    /// `[batch, d_in]`.
    pub fn forward(&mut self, images: &[f32], batch: usize) -> Vec<f32> {
        self.forward_t(images, batch);
        let logits = self.scratch.acts.last().expect("at least one layer");
        let classes = self.classes();
        let mut out = vec![0.0; batch * classes];
        transpose(logits, classes, batch, &mut out);
        out
    }

    /// Forward pass into the scratch activations (feature-major).
    fn forward_t(&mut self, images: &[f32], batch: usize) {
        let d_in = self.layers[0].weight.d_in();
        assert_eq!(images.len(), batch * d_in, "images are [batch, d_in]");
        let acts = &mut self.scratch.acts;
        acts.resize(self.layers.len() + 1, Vec::new());
        acts[0].resize(batch * d_in, 0.0);
        transpose(images, batch, d_in, &mut acts[0]);
        let last = self.layers.len() - 1;
        for (l, layer) in self.layers.iter().enumerate() {
            let (done, rest) = acts.split_at_mut(l + 1);
            let out = &mut rest[0];
            out.resize(batch * layer.weight.d_out(), 0.0);
            layer
                .weight
                .forward(&done[l], batch, Some(&layer.bias), out);
            if l < last {
                out.iter_mut().for_each(|v| *v = v.max(0.0));
            }
        }
    }

    /// Mean cross-entropy of the logits of row-major `images`
    /// `[batch, d_in]` against class `labels` (no step).
    pub fn loss(&mut self, images: &[f32], labels: &[i64]) -> Result<f32, SparseError> {
        self.forward_loss(images, labels)
    }

    /// Forward pass and loss; leaves the logits' gradient in `grad_out`.
    fn forward_loss(&mut self, images: &[f32], labels: &[i64]) -> Result<f32, SparseError> {
        let batch = labels.len();
        let classes = self.classes();
        if let Some(&bad) = labels.iter().find(|&&c| c < 0 || c as usize >= classes) {
            return Err(SparseError::Shape(format!(
                "label {bad} outside 0..{classes}"
            )));
        }
        let d_in = self.layers[0].weight.d_in();
        if images.len() != batch * d_in {
            return Err(SparseError::Shape(format!(
                "{} image values for {batch} labels of {d_in} inputs",
                images.len()
            )));
        }
        self.forward_t(images, batch);
        let s = &mut self.scratch;
        let logits = s.acts.last().expect("at least one layer");
        s.grad_out.resize(batch * classes, 0.0);
        Ok(softmax_cross_entropy(
            logits,
            labels,
            classes,
            &mut s.grad_out,
        ))
    }

    /// One training step on row-major `images` `[batch, d_in]` and class
    /// `labels`: forward, mean cross-entropy, backward, one `optimizer`
    /// step at `lr` on the kept weights and the biases. Returns the loss.
    pub fn train_step(
        &mut self,
        images: &[f32],
        labels: &[i64],
        optimizer: &OptimizerConfig,
        lr: f64,
    ) -> Result<f32, SparseError> {
        let optimizer = &sparse_optimizer(optimizer)?;
        let batch = labels.len();
        let loss = self.forward_loss(images, labels)?;
        for l in (0..self.layers.len()).rev() {
            let layer = &mut self.layers[l];
            let s = &mut self.scratch;
            let d_in = layer.weight.d_in();
            s.weight_grad.resize(layer.weight.nnz(), 0.0);
            layer
                .weight
                .weight_grad(&s.acts[l], &s.grad_out, batch, &mut s.weight_grad);
            s.bias_grad.clear();
            s.bias_grad.extend(
                s.grad_out
                    .chunks_exact(batch)
                    .map(|r| r.iter().sum::<f32>()),
            );
            if l > 0 {
                s.grad_in.resize(batch * d_in, 0.0);
                layer.weight.input_grad(&s.grad_out, batch, &mut s.grad_in);
                // ReLU: the input was this layer's previous activation.
                for (g, a) in s.grad_in.iter_mut().zip(&s.acts[l]) {
                    if *a <= 0.0 {
                        *g = 0.0;
                    }
                }
            }
            let values = layer.weight.values_mut();
            step(
                optimizer,
                lr,
                values,
                &mut s.weight_grad,
                &mut layer.weight_state,
            );
            step(
                optimizer,
                lr,
                &mut layer.bias,
                &mut s.bias_grad,
                &mut layer.bias_state,
            );
            std::mem::swap(&mut s.grad_out, &mut s.grad_in);
        }
        Ok(loss)
    }
}

/// Mean cross-entropy of feature-major `logits` `[classes, batch]`; writes
/// its gradient (softmax minus one-hot, over the batch size) into `grad`.
pub(super) fn softmax_cross_entropy(
    logits: &[f32],
    labels: &[i64],
    classes: usize,
    grad: &mut [f32],
) -> f32 {
    let batch = labels.len();
    let mut loss = 0.0f64;
    for (n, &label) in labels.iter().enumerate() {
        let column = |c: usize| logits[c * batch + n];
        let max = (0..classes).map(column).fold(f32::NEG_INFINITY, f32::max);
        let sum: f32 = (0..classes).map(|c| (column(c) - max).exp()).sum();
        let log_sum = sum.ln() + max;
        loss += f64::from(log_sum - column(label as usize));
        for c in 0..classes {
            let p = (column(c) - log_sum).exp();
            let target = if c == label as usize { 1.0 } else { 0.0 };
            grad[c * batch + n] = (p - target) / batch as f32;
        }
    }
    (loss / batch as f64) as f32
}

/// One layer of `values` (by path) under `mask`.
fn layer_from_values(
    name: &str,
    values: &BTreeMap<String, Vec<f32>>,
    mask: &Mask,
) -> Result<Layer, SparseError> {
    let path = format!("{name}.weight");
    let missing = |p: &str| SparseError::Shape(format!("the model has no parameter {p}"));
    let weight = values.get(&path).ok_or_else(|| missing(&path))?;
    let bias_path = format!("{name}.bias");
    let bias = values.get(&bias_path).ok_or_else(|| missing(&bias_path))?;
    let d_out = bias.len();
    if d_out == 0 || weight.len() % d_out != 0 {
        return Err(SparseError::Shape(format!(
            "{path} does not fit {bias_path}"
        )));
    }
    let d_in = weight.len() / d_out;
    let dense_kept;
    let kept = match mask.layer(&path) {
        Some(layer) if layer.shape() == [d_in, d_out] => layer.kept(),
        Some(layer) => {
            return Err(SparseError::Shape(format!(
                "the mask of {path} is {:?}, the weight [{d_in}, {d_out}]",
                layer.shape()
            )));
        }
        None => {
            dense_kept = vec![true; d_in * d_out];
            &dense_kept
        }
    };
    Ok(Layer {
        path,
        weight: SparseWeight::from_dense(d_in, d_out, weight, kept)?,
        bias: bias.clone(),
        weight_state: SlotState::default(),
        bias_state: SlotState::default(),
    })
}

/// Replaces float parameters by path with host values, keeping ids, devices
/// and gradient requirements.
pub(super) struct ValueWriter {
    pub(super) values: BTreeMap<String, Vec<f32>>,
}

impl PathMapper for ValueWriter {
    fn map_float<const D: usize>(
        &mut self,
        path: &str,
        param: Param<Tensor<D>>,
    ) -> Param<Tensor<D>> {
        let Some(values) = self.values.remove(path) else {
            return param;
        };
        param.map(|tensor| {
            let (shape, device) = (tensor.shape(), tensor.device());
            let (require_grad, autodiff) = (tensor.is_require_grad(), tensor.is_autodiff());
            let fresh =
                Tensor::<D>::from_data(TensorData::new(values, shape), &device).without_autodiff();
            let fresh = if autodiff { fresh.autodiff() } else { fresh };
            fresh.set_require_grad(require_grad)
        })
    }
}
