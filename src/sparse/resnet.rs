//! A masked CIFAR ResNet ([`ResNet`](crate::models::ResNet): 3x3 stem,
//! basic blocks with 1x1 projection shortcuts where the stride is 2, global
//! average pooling, one linear layer) that trains and infers on the host,
//! touching only its kept convolution and linear weights.
//!
//! Built from a dense `ResNet` and a [`Mask`]; written back into it (zeros
//! where pruned, BatchNorm running statistics included) for everything else
//! the crate does. The step is the dense masked step's arithmetic (batch
//! statistics in training, mean cross-entropy, the recipe's optimizer over
//! kept weights and every BatchNorm parameter) with every pruned product
//! skipped; results agree with burn's within float rounding.

use std::collections::BTreeMap;

use burn::module::Module;
use rayon::prelude::*;

use super::SparseError;
use super::batch_norm::{Norm, NormSettings};
use super::conv::{Planes, SparseConv};
use super::conv_kernels::Source;
use super::csr::{SparseWeight, transpose};
use super::mlp::{ValueWriter, softmax_cross_entropy};
use super::optim::{Slot, SlotState, SparseOptimizer, sparse_optimizer, step};
use crate::mask::Mask;
use crate::params::{float_params, float_values};
use crate::train::recipe::OptimizerConfig;

/// A convolution followed by BatchNorm, with the buffers of its last
/// forward pass.
#[derive(Debug, Clone)]
struct ConvNorm {
    /// Module path of the convolution (e.g. `blocks.0.conv1`).
    conv_path: String,
    /// Module path of the BatchNorm (e.g. `blocks.0.bn1`).
    norm_path: String,
    conv: SparseConv,
    conv_state: SlotState,
    norm: Norm,
    /// Input planes of the last forward pass.
    input: Planes,
    /// Its input, padded and phase-split (read again by the weight gradient).
    source: Source,
    /// Convolution output (BatchNorm input).
    z: Vec<f32>,
    /// BatchNorm output (after ReLU where the network applies one).
    y: Vec<f32>,
}

/// One basic block: conv-BN-ReLU, conv-BN, plus the shortcut, ReLU.
#[derive(Debug, Clone)]
struct Block {
    conv1: ConvNorm,
    conv2: ConvNorm,
    shortcut: Option<ConvNorm>,
    /// The block's output of the last forward pass.
    out: Vec<f32>,
}

/// A masked ResNet on the host (see the module docs).
#[derive(Debug, Clone)]
pub struct SparseResNet {
    stem: ConvNorm,
    blocks: Vec<Block>,
    fc: SparseWeight,
    fc_bias: Vec<f32>,
    fc_state: [SlotState; 2],
    settings: NormSettings,
    scratch: Scratch,
}

#[derive(Debug, Clone, Default)]
struct Scratch {
    /// The images, channel-major.
    images: Vec<f32>,
    pooled: Vec<f32>,
    logits: Vec<f32>,
    grad_logits: Vec<f32>,
    grad_pooled: Vec<f32>,
    fc_grad: Vec<f32>,
    fc_bias_grad: Vec<f32>,
    /// Gradient of the current block's output, and of its input.
    grad: Vec<f32>,
    grad_in: Vec<f32>,
    grad_sum: Vec<f32>,
    grad_mid: Vec<f32>,
    grad_short: Vec<f32>,
    dz: Vec<f32>,
    weight_grad: Vec<f32>,
    /// The padded output gradient of a convolution's input gradient.
    padded_grad: Source,
}

/// How the forward pass normalizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Batch statistics; running statistics updated or not.
    Train { update_running: bool },
    /// Running statistics.
    Eval,
}

impl SparseResNet {
    /// The layers of `model` under `mask` (a layer the mask does not name
    /// keeps every weight). `model`'s float tensors must be exactly those of
    /// a [`ResNet`](crate::models::ResNet) (`conv`, `bn`, `blocks.<i>.conv1`,
    /// `bn1`, `conv2`, `bn2`, optionally `shortcut.conv` and `shortcut.bn`,
    /// and `fc`), with 3x3 convolutions padded by 1, stride 2 in blocks with
    /// a shortcut, and BatchNorm with `settings`; anything else is
    /// [`SparseError::NotAResNet`]. That the forward pass is the ResNet's
    /// cannot be read from the parameters: the training path checks it on a
    /// batch.
    pub fn from_module<M: Module>(
        model: &M,
        mask: &Mask,
        settings: NormSettings,
    ) -> Result<Self, SparseError> {
        // `valid` synchronizes BatchNorm running statistics (burn keeps a
        // training step's update pending until then).
        let model = &model.valid();
        let shapes: BTreeMap<String, Vec<usize>> = float_params(model)
            .into_iter()
            .map(|p| (p.path, p.shape))
            .collect();
        let mut reader = Reader {
            shapes: &shapes,
            values: float_values(model, |_| true),
            mask,
        };
        let stem = reader.conv_norm("conv", "bn", 1)?;
        let mut blocks = Vec::new();
        while shapes.contains_key(&format!("blocks.{}.conv1.weight", blocks.len())) {
            let b = format!("blocks.{}", blocks.len());
            let has_shortcut = shapes.contains_key(&format!("{b}.shortcut.conv.weight"));
            let stride = if has_shortcut { 2 } else { 1 };
            let conv1 = reader.conv_norm(&format!("{b}.conv1"), &format!("{b}.bn1"), stride)?;
            let conv2 = reader.conv_norm(&format!("{b}.conv2"), &format!("{b}.bn2"), 1)?;
            let shortcut = has_shortcut
                .then(|| {
                    reader.conv_norm(
                        &format!("{b}.shortcut.conv"),
                        &format!("{b}.shortcut.bn"),
                        2,
                    )
                })
                .transpose()?;
            blocks.push(Block {
                conv1,
                conv2,
                shortcut,
                out: Vec::new(),
            });
        }
        let (fc, fc_bias) = reader.linear("fc")?;
        if let Some(extra) = reader.values.keys().next() {
            return Err(SparseError::NotAResNet(format!(
                "{extra} is not part of a CIFAR ResNet"
            )));
        }
        Ok(Self {
            stem,
            blocks,
            fc,
            fc_bias,
            fc_state: Default::default(),
            settings,
            scratch: Scratch::default(),
        })
    }

    /// Number of kept weights (convolutions and the linear layer; biases
    /// and BatchNorm parameters not counted).
    pub fn kept_weights(&self) -> usize {
        self.conv_norms().map(|c| c.conv.nnz()).sum::<usize>() + self.fc.nnz()
    }

    /// Multiply-adds of the convolutions and the linear layer for one
    /// `height` x `width` image in a forward pass: `(kept, dense)`. Their
    /// ratio is the work the sparse path does, which is not the density: a
    /// weight of an early layer is used at every position of a large image.
    pub fn multiply_adds(&self, height: usize, width: usize) -> (u64, u64) {
        let count = |conv: &SparseConv, input: Planes| {
            let out = conv.output_planes(input);
            let positions = (out.height * out.width) as u64;
            let [c_out, c_in, k_h, k_w] = conv.shape();
            (
                conv.nnz() as u64 * positions,
                (c_out * c_in * k_h * k_w) as u64 * positions,
            )
        };
        let mut input = Planes {
            batch: 1,
            height,
            width,
        };
        let mut totals = count(&self.stem.conv, input);
        let mut add = |(kept, dense): (u64, u64)| {
            totals.0 += kept;
            totals.1 += dense;
        };
        input = self.stem.conv.output_planes(input);
        for block in &self.blocks {
            add(count(&block.conv1.conv, input));
            if let Some(shortcut) = &block.shortcut {
                add(count(&shortcut.conv, input));
            }
            input = block.conv1.conv.output_planes(input);
            add(count(&block.conv2.conv, input));
        }
        add((
            self.fc.nnz() as u64,
            (self.fc.d_in() * self.fc.d_out()) as u64,
        ));
        totals
    }

    /// The trainable parameters with their optimizer state: every
    /// convolution's kept weights, BatchNorm's gamma and beta, the linear
    /// layer's kept weights and bias.
    pub(super) fn slots(&mut self) -> Vec<Slot<'_>> {
        let mut slots = Vec::new();
        let convs = std::iter::once(&mut self.stem).chain(self.blocks.iter_mut().flat_map(|b| {
            [&mut b.conv1, &mut b.conv2]
                .into_iter()
                .chain(b.shortcut.as_mut())
        }));
        for c in convs {
            slots.push(Slot {
                path: format!("{}.weight", c.conv_path),
                shape: c.conv.shape().to_vec(),
                positions: Some(c.conv.positions()),
                state: &mut c.conv_state,
            });
            let (n, channels) = (&c.norm_path, c.norm.channels());
            let gamma = format!("{n}.gamma");
            slots.push(Slot::dense(gamma, channels, &mut c.norm.gamma_state));
            let beta = format!("{n}.beta");
            slots.push(Slot::dense(beta, channels, &mut c.norm.beta_state));
        }
        let [weight_state, bias_state] = &mut self.fc_state;
        slots.push(Slot {
            path: "fc.weight".into(),
            shape: vec![self.fc.d_in(), self.fc.d_out()],
            positions: Some(self.fc.positions()),
            state: weight_state,
        });
        slots.push(Slot::dense(
            "fc.bias".into(),
            self.fc_bias.len(),
            bias_state,
        ));
        slots
    }

    fn conv_norms(&self) -> impl Iterator<Item = &ConvNorm> {
        std::iter::once(&self.stem).chain(
            self.blocks
                .iter()
                .flat_map(|b| [&b.conv1, &b.conv2].into_iter().chain(b.shortcut.as_ref())),
        )
    }

    /// Writes weights, BatchNorm parameters and running statistics into
    /// `model` (dense, zeros where pruned), keeping its parameter ids and
    /// devices.
    pub fn write_into<M: Module>(&self, model: M) -> M {
        self.write_values_into(model, |_| true)
    }

    /// Writes the BatchNorm running statistics only into `model`.
    pub(super) fn write_running_into<M: Module>(&self, model: M) -> M {
        self.write_values_into(model, |path| {
            path.ends_with(".running_mean") || path.ends_with(".running_var")
        })
    }

    /// Writes the values whose path passes `keep` into `model`.
    fn write_values_into<M: Module>(&self, model: M, keep: impl Fn(&str) -> bool) -> M {
        // Settle pending running-statistics updates first (from a forward
        // pass of `model` in training), or a later synchronization would
        // replace the values written here.
        drop(model.valid());
        let mut values = BTreeMap::new();
        for c in self.conv_norms() {
            values.insert(format!("{}.weight", c.conv_path), c.conv.to_dense());
            let n = &c.norm_path;
            values.insert(format!("{n}.gamma"), c.norm.gamma.clone());
            values.insert(format!("{n}.beta"), c.norm.beta.clone());
            values.insert(format!("{n}.running_mean"), c.norm.running_mean.clone());
            values.insert(format!("{n}.running_var"), c.norm.running_var.clone());
        }
        values.insert("fc.weight".into(), self.fc.to_dense());
        values.insert("fc.bias".into(), self.fc_bias.clone());
        values.retain(|path, _| keep(path));
        crate::params::map_with_paths(model, &mut ValueWriter { values })
    }

    /// Logits `[batch, classes]` (row-major) of row-major images `[batch,
    /// channels, height, width]` (square), with the running statistics (the
    /// model in inference).
    pub fn forward(&mut self, images: &[f32], batch: usize) -> Result<Vec<f32>, SparseError> {
        self.forward_planes(images, batch, Mode::Eval)?;
        let classes = self.fc.d_out();
        let mut out = vec![0.0; batch * classes];
        transpose(&self.scratch.logits, classes, batch, &mut out);
        Ok(out)
    }

    /// Mean cross-entropy of the logits of `images` against class `labels`
    /// with batch statistics, as in a training step (no step taken, running
    /// statistics unchanged).
    pub fn loss(&mut self, images: &[f32], labels: &[i64]) -> Result<f32, SparseError> {
        self.forward_loss(
            images,
            labels,
            Mode::Train {
                update_running: false,
            },
        )
    }

    /// One training step on row-major `images` and class `labels`:
    /// forward with batch statistics (updating the running ones), mean
    /// cross-entropy, backward, one `optimizer` step at `lr` on the kept
    /// weights, the linear bias and every BatchNorm parameter. Returns the
    /// loss.
    pub fn train_step(
        &mut self,
        images: &[f32],
        labels: &[i64],
        optimizer: &OptimizerConfig,
        lr: f64,
    ) -> Result<f32, SparseError> {
        let optimizer = &sparse_optimizer(optimizer)?;
        let batch = labels.len();
        let mode = Mode::Train {
            update_running: true,
        };
        let loss = self.forward_loss(images, labels, mode)?;
        self.backward_head(batch, optimizer, lr);
        let s = &mut self.scratch;
        for b in (0..self.blocks.len()).rev() {
            let (before, rest) = self.blocks.split_at_mut(b);
            let x = before.last().map_or(&self.stem.y, |p| &p.out);
            rest[0].backward(x, s, optimizer, lr);
            std::mem::swap(&mut s.grad, &mut s.grad_in);
        }
        let (images, mut grad) = (std::mem::take(&mut s.images), std::mem::take(&mut s.grad));
        relu_backward(&self.stem.y, &mut grad);
        self.stem.backward(&images, &grad, None, s, optimizer, lr);
        (s.images, s.grad) = (images, grad);
        Ok(loss)
    }

    fn forward_loss(
        &mut self,
        images: &[f32],
        labels: &[i64],
        mode: Mode,
    ) -> Result<f32, SparseError> {
        let classes = self.fc.d_out();
        if let Some(&bad) = labels.iter().find(|&&c| c < 0 || c as usize >= classes) {
            return Err(SparseError::Shape(format!(
                "label {bad} outside 0..{classes}"
            )));
        }
        self.forward_planes(images, labels.len(), mode)?;
        let s = &mut self.scratch;
        s.grad_logits.resize(s.logits.len(), 0.0);
        Ok(softmax_cross_entropy(
            &s.logits,
            labels,
            classes,
            &mut s.grad_logits,
        ))
    }

    /// Forward pass into the layers' buffers and the scratch logits
    /// (`[classes, batch]`).
    fn forward_planes(
        &mut self,
        images: &[f32],
        batch: usize,
        mode: Mode,
    ) -> Result<(), SparseError> {
        let input = self.image_planes(images.len(), batch)?;
        let s = &mut self.scratch;
        channel_major(images, self.stem.conv.shape()[1], input, &mut s.images);
        let settings = self.settings;
        let mut planes = self.stem.forward(&s.images, input, settings, mode, true);
        for b in 0..self.blocks.len() {
            let (before, rest) = self.blocks.split_at_mut(b);
            let x = before.last().map_or(&self.stem.y, |p| &p.out);
            planes = rest[0].forward(x, planes, settings, mode);
        }
        let last = self.blocks.last().map_or(&self.stem.y, |b| &b.out);
        let image = planes.height * planes.width;
        s.pooled.clear();
        s.pooled.extend(
            last.chunks_exact(image)
                .map(|c| c.iter().sum::<f32>() / image as f32),
        );
        s.logits.resize(self.fc.d_out() * batch, 0.0);
        self.fc
            .forward(&s.pooled, batch, Some(&self.fc_bias), &mut s.logits);
        Ok(())
    }

    /// The planes of `batch` square images of `len` floats in total.
    fn image_planes(&self, len: usize, batch: usize) -> Result<Planes, SparseError> {
        let channels = self.stem.conv.shape()[1];
        let pixels = len / (batch * channels).max(1);
        let side = (pixels as f64).sqrt().round() as usize;
        if batch == 0 || len != batch * channels * side * side {
            return Err(SparseError::Shape(format!(
                "{len} image values are not {batch} square images of {channels} channels"
            )));
        }
        Ok(Planes {
            batch,
            height: side,
            width: side,
        })
    }

    /// The linear layer's step, and the gradient of the last block's output
    /// (through the average pooling) into `scratch.grad`.
    fn backward_head(&mut self, batch: usize, optimizer: &SparseOptimizer, lr: f64) {
        let s = &mut self.scratch;
        s.fc_grad.resize(self.fc.nnz(), 0.0);
        self.fc
            .weight_grad(&s.pooled, &s.grad_logits, batch, &mut s.fc_grad);
        s.fc_bias_grad.clear();
        s.fc_bias_grad.extend(
            s.grad_logits
                .chunks_exact(batch)
                .map(|r| r.iter().sum::<f32>()),
        );
        s.grad_pooled.resize(self.fc.d_in() * batch, 0.0);
        self.fc
            .input_grad(&s.grad_logits, batch, &mut s.grad_pooled);
        let [weight_state, bias_state] = &mut self.fc_state;
        step(
            optimizer,
            lr,
            self.fc.values_mut(),
            &mut s.fc_grad,
            weight_state,
        );
        step(
            optimizer,
            lr,
            &mut self.fc_bias,
            &mut s.fc_bias_grad,
            bias_state,
        );
        let last = self.blocks.last().map_or(&self.stem.y, |b| &b.out);
        let image = last.len() / s.grad_pooled.len();
        s.grad.resize(last.len(), 0.0);
        for (g, &p) in s.grad.chunks_exact_mut(image).zip(&s.grad_pooled) {
            g.fill(p / image as f32);
        }
    }
}

impl ConvNorm {
    /// Convolution, BatchNorm and (if `relu`) ReLU of `x` into `self.y`;
    /// returns the output planes.
    fn forward(
        &mut self,
        x: &[f32],
        input: Planes,
        settings: NormSettings,
        mode: Mode,
        relu: bool,
    ) -> Planes {
        let output = self.conv.output_planes(input);
        let len = self.conv.shape()[0] * output.len();
        self.input = input;
        self.z.resize(len, 0.0);
        self.y.resize(len, 0.0);
        self.conv.fill_source(&mut self.source, x, input);
        self.conv.forward_source(&self.source, input, &mut self.z);
        match mode {
            Mode::Train { update_running } => {
                self.norm
                    .forward_train(settings, &self.z, &mut self.y, update_running)
            }
            Mode::Eval => self.norm.forward_eval(settings, &self.z, &mut self.y),
        }
        if relu {
            for_chunks(&mut self.y, |y| y.iter_mut().for_each(|v| *v = v.max(0.0)));
        }
        output
    }

    /// Given `dy`, the gradient of the BatchNorm output (before any ReLU),
    /// steps the convolution and BatchNorm and, when asked, writes the
    /// gradient of the input `x` into `dx`.
    fn backward(
        &mut self,
        x: &[f32],
        dy: &[f32],
        dx: Option<&mut Vec<f32>>,
        s: &mut Scratch,
        optimizer: &SparseOptimizer,
        lr: f64,
    ) {
        s.dz.resize(self.z.len(), 0.0);
        self.norm.backward(&self.z, dy, &mut s.dz);
        s.weight_grad.resize(self.conv.nnz(), 0.0);
        self.conv
            .weight_grad_source(&self.source, &s.dz, self.input, &mut s.weight_grad);
        if let Some(dx) = dx {
            dx.resize(x.len(), 0.0);
            self.conv
                .input_grad_with(&mut s.padded_grad, &s.dz, self.input, dx);
        }
        step(
            optimizer,
            lr,
            self.conv.values_mut(),
            &mut s.weight_grad,
            &mut self.conv_state,
        );
        self.norm.step(optimizer, lr);
    }
}

impl Block {
    fn forward(&mut self, x: &[f32], input: Planes, settings: NormSettings, mode: Mode) -> Planes {
        let mid = self.conv1.forward(x, input, settings, mode, true);
        let output = self
            .conv2
            .forward(&self.conv1.y, mid, settings, mode, false);
        if let Some(shortcut) = &mut self.shortcut {
            shortcut.forward(x, input, settings, mode, false);
        }
        let residual = self.shortcut.as_ref().map_or(x, |s| &s.y);
        self.out.resize(residual.len(), 0.0);
        zip_chunks(&mut self.out, &self.conv2.y, residual, |out, a, b| {
            for ((o, a), b) in out.iter_mut().zip(a).zip(b) {
                *o = (a + b).max(0.0);
            }
        });
        output
    }

    /// Given the gradient of the block's output in `s.grad`, steps the
    /// block's layers and writes the gradient of its input `x` into
    /// `s.grad_in`.
    fn backward(&mut self, x: &[f32], s: &mut Scratch, optimizer: &SparseOptimizer, lr: f64) {
        let mut grad_sum = std::mem::take(&mut s.grad_sum);
        grad_sum.resize(s.grad.len(), 0.0);
        zip_chunks(&mut grad_sum, &s.grad, &self.out, |out, g, o| {
            for ((out, &g), &o) in out.iter_mut().zip(g).zip(o) {
                *out = if o > 0.0 { g } else { 0.0 };
            }
        });
        let mut grad_mid = std::mem::take(&mut s.grad_mid);
        self.conv2.backward(
            &self.conv1.y,
            &grad_sum,
            Some(&mut grad_mid),
            s,
            optimizer,
            lr,
        );
        relu_backward(&self.conv1.y, &mut grad_mid);
        let mut grad_in = std::mem::take(&mut s.grad_in);
        self.conv1
            .backward(x, &grad_mid, Some(&mut grad_in), s, optimizer, lr);
        match &mut self.shortcut {
            Some(shortcut) => {
                let mut grad_short = std::mem::take(&mut s.grad_short);
                shortcut.backward(x, &grad_sum, Some(&mut grad_short), s, optimizer, lr);
                add_into(&mut grad_in, &grad_short);
                s.grad_short = grad_short;
            }
            None => add_into(&mut grad_in, &grad_sum),
        }
        s.grad_in = grad_in;
        s.grad_mid = grad_mid;
        s.grad_sum = grad_sum;
    }
}

/// Floats per task of the element-wise loops on rayon's pool.
const CHUNK: usize = super::conv_kernels::MIN_TASK_FLOATS;

/// `f` over chunks of `out`, in parallel.
fn for_chunks(out: &mut [f32], f: impl Fn(&mut [f32]) + Sync + Send) {
    out.par_chunks_mut(CHUNK).for_each(f);
}

/// `f(out, a, b)` over matching chunks of the three, in parallel.
fn zip_chunks(
    out: &mut [f32],
    a: &[f32],
    b: &[f32],
    f: impl Fn(&mut [f32], &[f32], &[f32]) + Sync,
) {
    out.par_chunks_mut(CHUNK)
        .zip(a.par_chunks(CHUNK).zip(b.par_chunks(CHUNK)))
        .for_each(|(out, (a, b))| f(out, a, b));
}

/// `out += a`, in parallel.
fn add_into(out: &mut [f32], a: &[f32]) {
    zip_chunks_2(out, a, |out, a| {
        out.iter_mut().zip(a).for_each(|(o, a)| *o += a)
    });
}

/// `f(out, a)` over matching chunks of the two, in parallel.
fn zip_chunks_2(out: &mut [f32], a: &[f32], f: impl Fn(&mut [f32], &[f32]) + Sync) {
    out.par_chunks_mut(CHUNK)
        .zip(a.par_chunks(CHUNK))
        .for_each(|(out, a)| f(out, a));
}

/// Zeroes the gradient where the ReLU's output `y` was not positive.
fn relu_backward(y: &[f32], grad: &mut [f32]) {
    zip_chunks_2(grad, y, |grad, y| {
        for (g, &y) in grad.iter_mut().zip(y) {
            if y <= 0.0 {
                *g = 0.0;
            }
        }
    });
}

/// Row-major `[batch, channels, h, w]` images into `[channels, batch, h, w]`.
fn channel_major(images: &[f32], channels: usize, planes: Planes, out: &mut Vec<f32>) {
    let image = planes.height * planes.width;
    out.resize(images.len(), 0.0);
    for (n, example) in images.chunks_exact(channels * image).enumerate() {
        for (c, pixels) in example.chunks_exact(image).enumerate() {
            let at = (c * planes.batch + n) * image;
            out[at..at + image].copy_from_slice(pixels);
        }
    }
}

/// Reads layers by path, removing what it reads (what is left at the end
/// is not a ResNet's).
struct Reader<'a> {
    shapes: &'a BTreeMap<String, Vec<usize>>,
    values: BTreeMap<String, Vec<f32>>,
    mask: &'a Mask,
}

impl Reader<'_> {
    fn take(&mut self, path: &str) -> Result<(Vec<usize>, Vec<f32>), SparseError> {
        match (self.shapes.get(path), self.values.remove(path)) {
            (Some(shape), Some(values)) => Ok((shape.clone(), values)),
            _ => Err(SparseError::NotAResNet(format!("no tensor {path}"))),
        }
    }

    /// The mask's flags for a weight, all kept if the mask does not name it.
    fn kept(&self, path: &str, shape: &[usize]) -> Result<Vec<bool>, SparseError> {
        match self.mask.layer(path) {
            Some(layer) if layer.shape() == shape => Ok(layer.kept().to_vec()),
            Some(layer) => Err(SparseError::Shape(format!(
                "the mask of {path} is {:?}, the weight {shape:?}",
                layer.shape()
            ))),
            None => Ok(vec![true; shape.iter().product()]),
        }
    }

    fn conv_norm(
        &mut self,
        conv: &str,
        norm: &str,
        stride: usize,
    ) -> Result<ConvNorm, SparseError> {
        let weight_path = format!("{conv}.weight");
        let (shape, weights) = self.take(&weight_path)?;
        let Ok(shape) = <[usize; 4]>::try_from(shape.as_slice()) else {
            return Err(SparseError::NotAResNet(format!(
                "{weight_path} is {shape:?}"
            )));
        };
        if shape[2] != shape[3] || shape[2] % 2 == 0 {
            return Err(SparseError::NotAResNet(format!(
                "{weight_path} is {shape:?}"
            )));
        }
        let kept = self.kept(&weight_path, &shape)?;
        let padding = shape[2] / 2;
        let sparse = SparseConv::from_dense(shape, stride, padding, &weights, &kept)?;
        let mut norm_tensor = |name: &str| -> Result<Vec<f32>, SparseError> {
            let (s, v) = self.take(&format!("{norm}.{name}"))?;
            if s != [shape[0]] {
                return Err(SparseError::NotAResNet(format!("{norm}.{name} is {s:?}")));
            }
            Ok(v)
        };
        let norm_layer = Norm::new(
            norm_tensor("gamma")?,
            norm_tensor("beta")?,
            norm_tensor("running_mean")?,
            norm_tensor("running_var")?,
        );
        Ok(ConvNorm {
            conv_path: conv.to_string(),
            norm_path: norm.to_string(),
            conv: sparse,
            conv_state: SlotState::default(),
            norm: norm_layer,
            input: Planes {
                batch: 0,
                height: 0,
                width: 0,
            },
            source: Source::default(),
            z: Vec::new(),
            y: Vec::new(),
        })
    }

    fn linear(&mut self, name: &str) -> Result<(SparseWeight, Vec<f32>), SparseError> {
        let path = format!("{name}.weight");
        let (shape, weights) = self.take(&path)?;
        let (bias_shape, bias) = self.take(&format!("{name}.bias"))?;
        if shape.len() != 2 || bias_shape != [shape[1]] {
            return Err(SparseError::NotAResNet(format!("{path} is {shape:?}")));
        }
        let kept = self.kept(&path, &shape)?;
        Ok((
            SparseWeight::from_dense(shape[0], shape[1], &weights, &kept)?,
            bias,
        ))
    }
}
