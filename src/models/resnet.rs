//! ResNets for CIFAR (He et al. 2016, section 4.2), as in open_lth's
//! `cifar_resnet_<depth>`.
//!
//! A 3x3 convolution (16 channels, no bias) + BatchNorm + ReLU, three stages
//! of N basic blocks (depth = 6N + 2) with widths 16, 32, 64 (times
//! [`ResNetConfig::width_multiplier`]), global average pooling and one fully
//! connected layer. The first block of stages 2 and 3 has stride 2 and a
//! 1x1-convolution (stride 2, no bias) + BatchNorm shortcut; the others add
//! their input unchanged.
//!
//! ResNet-20 has 272,474 trainable parameters, 270,896 of them in conv and
//! fc weights.

use burn::config::Config;
use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig, PaddingConfig2d};
use burn::tensor::activation::relu;
use burn::tensor::module::adaptive_avg_pool2d;
use burn::tensor::{Device, Tensor};

use super::{Classifier, ModelConfigError, check_positive, init::init_weights};

/// Configuration of a CIFAR [`ResNet`].
#[derive(Config, Debug)]
pub struct ResNetConfig {
    /// Depth, 6N + 2 for N blocks per stage: 20, 32, 44, 56, 110, ...
    #[config(default = 20)]
    pub depth: usize,
    /// Multiplies the stage widths 16, 32, 64.
    #[config(default = 1)]
    pub width_multiplier: usize,
    /// Channels of the input images: 3 for CIFAR, 1 for (Fashion-)MNIST.
    #[config(default = 3)]
    pub input_channels: usize,
    /// Number of classes (outputs of the last layer).
    #[config(default = 10)]
    pub num_classes: usize,
}

/// A CIFAR ResNet (see the module docs). Build it with [`ResNetConfig`].
#[derive(Module, Debug)]
pub struct ResNet {
    /// The first 3x3 convolution.
    pub conv: Conv2d,
    /// BatchNorm after the first convolution.
    pub bn: BatchNorm,
    /// The 3N basic blocks, stage after stage.
    pub blocks: Vec<BasicBlock>,
    /// The output layer.
    pub fc: Linear,
}

/// A basic residual block: conv3x3-BN-ReLU-conv3x3-BN, plus the shortcut, ReLU.
#[derive(Module, Debug)]
pub struct BasicBlock {
    /// First 3x3 convolution (carries the block's stride).
    pub conv1: Conv2d,
    /// BatchNorm after `conv1`.
    pub bn1: BatchNorm,
    /// Second 3x3 convolution.
    pub conv2: Conv2d,
    /// BatchNorm after `conv2`.
    pub bn2: BatchNorm,
    /// Projection shortcut where the shape changes; identity when `None`.
    pub shortcut: Option<Shortcut>,
}

/// A projection shortcut: 1x1 convolution (no bias) + BatchNorm.
#[derive(Module, Debug)]
pub struct Shortcut {
    /// The 1x1 convolution.
    pub conv: Conv2d,
    /// BatchNorm after it.
    pub bn: BatchNorm,
}

fn conv3x3(in_channels: usize, out_channels: usize, stride: usize, device: &Device) -> Conv2d {
    Conv2dConfig::new([in_channels, out_channels], [3, 3])
        .with_stride([stride, stride])
        .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
        .with_bias(false)
        .init(device)
}

fn batch_norm(channels: usize, device: &Device) -> BatchNorm {
    BatchNormConfig::new(channels).init(device)
}

impl ResNetConfig {
    /// ResNet-20 for CIFAR-10 (the defaults).
    pub fn resnet20() -> Self {
        Self::new()
    }

    /// Number of basic blocks per stage, `(depth - 2) / 6`.
    ///
    /// # Panics
    /// If the depth is not 6N + 2 with N >= 1 (see [`ResNetConfig::validate`]).
    pub fn blocks_per_stage(&self) -> usize {
        self.try_blocks_per_stage()
            .unwrap_or_else(|e| panic!("{e}"))
    }

    fn try_blocks_per_stage(&self) -> Result<usize, ModelConfigError> {
        if self.depth >= 8 && (self.depth - 2).is_multiple_of(6) {
            Ok((self.depth - 2) / 6)
        } else {
            Err(ModelConfigError::InvalidDepth(self.depth))
        }
    }

    /// Checks the depth (6N + 2) and that widths, channels and classes are
    /// positive.
    pub fn validate(&self) -> Result<(), ModelConfigError> {
        self.try_blocks_per_stage()?;
        check_positive(
            "ResNet",
            &[
                ("width_multiplier", self.width_multiplier),
                ("input_channels", self.input_channels),
                ("num_classes", self.num_classes),
            ],
        )?;
        if self.width_multiplier.checked_mul(64 * 64 * 9).is_none() {
            return Err(ModelConfigError::TooLarge {
                model: "ResNet",
                setting: "width_multiplier",
                value: self.width_multiplier,
            });
        }
        Ok(())
    }

    /// Builds the network with burn's default initializers, or says why the
    /// configuration is invalid.
    pub fn try_init(&self, device: &Device) -> Result<ResNet, ModelConfigError> {
        self.validate()?;
        Ok(self.init(device))
    }

    /// [`ResNetConfig::init_seeded`], or why the configuration is invalid.
    pub fn try_init_seeded(&self, device: &Device, seed: u64) -> Result<ResNet, ModelConfigError> {
        self.validate()?;
        Ok(self.init_seeded(device, seed))
    }

    /// Builds the network with burn's default initializers.
    ///
    /// # Panics
    /// If the configuration is invalid (see [`ResNetConfig::validate`]).
    pub fn init(&self, device: &Device) -> ResNet {
        if let Err(e) = self.validate() {
            panic!("{e}");
        }
        let n = self.blocks_per_stage();
        let widths = [16, 32, 64].map(|w| w * self.width_multiplier);

        let conv = conv3x3(self.input_channels, widths[0], 1, device);
        let bn = batch_norm(widths[0], device);
        let mut blocks = Vec::with_capacity(3 * n);
        let mut in_channels = widths[0];
        for (stage, &width) in widths.iter().enumerate() {
            for i in 0..n {
                let stride = if stage > 0 && i == 0 { 2 } else { 1 };
                let shortcut = (stride != 1 || in_channels != width).then(|| Shortcut {
                    conv: Conv2dConfig::new([in_channels, width], [1, 1])
                        .with_stride([stride, stride])
                        .with_bias(false)
                        .init(device),
                    bn: batch_norm(width, device),
                });
                blocks.push(BasicBlock {
                    conv1: conv3x3(in_channels, width, stride, device),
                    bn1: batch_norm(width, device),
                    conv2: conv3x3(width, width, 1, device),
                    bn2: batch_norm(width, device),
                    shortcut,
                });
                in_channels = width;
            }
        }
        let fc = LinearConfig::new(widths[2], self.num_classes).init(device);
        ResNet {
            conv,
            bn,
            blocks,
            fc,
        }
    }

    /// Builds the network with the reference initialization drawn from `seed`
    /// (see [`init_weights`]): the same values on every backend.
    pub fn init_seeded(&self, device: &Device, seed: u64) -> ResNet {
        init_weights(self.init(device), seed)
    }
}

impl BasicBlock {
    /// Applies the block to `[N, C, H, W]` features.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let out = relu(self.bn1.forward(self.conv1.forward(x.clone())));
        let out = self.bn2.forward(self.conv2.forward(out));
        let residual = match &self.shortcut {
            Some(shortcut) => shortcut.bn.forward(shortcut.conv.forward(x)),
            None => x,
        };
        relu(out + residual)
    }
}

impl ResNet {
    /// Logits `[N, classes]` for images `[N, C, H, W]`.
    pub fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        let mut x = relu(self.bn.forward(self.conv.forward(images)));
        for block in &self.blocks {
            x = block.forward(x);
        }
        let [n, c, _, _] = x.dims();
        let pooled = adaptive_avg_pool2d(x, [1, 1]).reshape([n, c]);
        self.fc.forward(pooled)
    }
}

impl Classifier for ResNet {
    fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        ResNet::forward(self, images)
    }
}
