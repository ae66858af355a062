//! VGG-11/13/16/19 for CIFAR with BatchNorm, as open_lth's `cifar_vgg_<depth>`.
//!
//! Each convolution is 3x3 (padding 1, with bias, as in open_lth) + BatchNorm +
//! ReLU; a 2x2 max-pool follows where the plan says 'M'. As in open_lth the
//! plans leave out the last pool: a 32x32 image ends at 2x2 features, which
//! are averaged globally and fed to one fully connected layer 512 -> classes.
//!
//! Plans (numbers are output channels, M a max-pool):
//! - VGG-11: 64 M 128 M 256 256 M 512 512 M 512 512
//! - VGG-13: 64 64 M 128 128 M 256 256 M 512 512 M 512 512
//! - VGG-16: 64 64 M 128 128 M 256 256 256 M 512 512 512 M 512 512 512
//! - VGG-19: 64 64 M 128 128 M 256 256 256 256 M 512 512 512 512 M 512 512 512 512
//!
//! VGG-19 has 20,040,522 trainable parameters (20,024,000 in conv and fc weights).

use burn::config::Config;
use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig, PaddingConfig2d};
use burn::tensor::activation::relu;
use burn::tensor::module::adaptive_avg_pool2d;
use burn::tensor::{Device, Tensor};

use super::{Classifier, ModelConfigError, check_positive, init::init_weights};

/// Which VGG plan to build.
#[derive(Config, Debug, Copy, PartialEq, Eq)]
pub enum VggDepth {
    /// VGG-11 (8 convolutions).
    Vgg11,
    /// VGG-13 (10 convolutions).
    Vgg13,
    /// VGG-16 (13 convolutions).
    Vgg16,
    /// VGG-19 (16 convolutions).
    Vgg19,
}

impl VggDepth {
    /// The plan: `Some(channels)` for a conv block, `None` for a max-pool.
    pub fn plan(self) -> Vec<Option<usize>> {
        const M: i32 = 0;
        let plan: &[i32] = match self {
            VggDepth::Vgg11 => &[64, M, 128, M, 256, 256, M, 512, 512, M, 512, 512],
            VggDepth::Vgg13 => &[64, 64, M, 128, 128, M, 256, 256, M, 512, 512, M, 512, 512],
            VggDepth::Vgg16 => &[
                64, 64, M, 128, 128, M, 256, 256, 256, M, 512, 512, 512, M, 512, 512, 512,
            ],
            VggDepth::Vgg19 => &[
                64, 64, M, 128, 128, M, 256, 256, 256, 256, M, 512, 512, 512, 512, M, 512, 512,
                512, 512,
            ],
        };
        plan.iter()
            .map(|&c| (c != M).then_some(c as usize))
            .collect()
    }
}

/// Configuration of a CIFAR [`Vgg`].
#[derive(Config, Debug)]
pub struct VggConfig {
    /// Which plan.
    pub depth: VggDepth,
    /// Channels of the input images.
    #[config(default = 3)]
    pub input_channels: usize,
    /// Number of classes.
    #[config(default = 10)]
    pub num_classes: usize,
}

/// One conv block: 3x3 conv + BatchNorm + ReLU, then a max-pool if `pool_after`.
#[derive(Module, Debug)]
pub struct VggBlock {
    /// The 3x3 convolution (with bias).
    pub conv: Conv2d,
    /// BatchNorm after it.
    pub bn: BatchNorm,
    /// Whether a 2x2 max-pool follows this block.
    pub pool_after: bool,
}

/// A CIFAR VGG (see the module docs). Build it with [`VggConfig`].
#[derive(Module, Debug)]
pub struct Vgg {
    /// The conv blocks in order.
    pub layers: Vec<VggBlock>,
    /// The 2x2 max-pool (no parameters).
    pub pool: MaxPool2d,
    /// The output layer, last width -> classes.
    pub fc: Linear,
}

impl VggConfig {
    /// Checks that channels and classes are positive.
    pub fn validate(&self) -> Result<(), ModelConfigError> {
        check_positive(
            "VGG",
            &[
                ("input_channels", self.input_channels),
                ("num_classes", self.num_classes),
            ],
        )
    }

    /// Builds the network with burn's default initializers, or says why the
    /// configuration is invalid.
    pub fn try_init(&self, device: &Device) -> Result<Vgg, ModelConfigError> {
        self.validate()?;
        Ok(self.init(device))
    }

    /// [`VggConfig::init_seeded`], or why the configuration is invalid.
    pub fn try_init_seeded(&self, device: &Device, seed: u64) -> Result<Vgg, ModelConfigError> {
        self.validate()?;
        Ok(self.init_seeded(device, seed))
    }

    /// Builds the network with burn's default initializers.
    ///
    /// # Panics
    /// If the configuration is invalid (see [`VggConfig::validate`]).
    pub fn init(&self, device: &Device) -> Vgg {
        if let Err(e) = self.validate() {
            panic!("{e}");
        }
        let mut layers: Vec<VggBlock> = Vec::new();
        let mut in_channels = self.input_channels;
        for entry in self.depth.plan() {
            match entry {
                Some(out_channels) => {
                    layers.push(VggBlock {
                        conv: Conv2dConfig::new([in_channels, out_channels], [3, 3])
                            .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                            .init(device),
                        bn: BatchNormConfig::new(out_channels).init(device),
                        pool_after: false,
                    });
                    in_channels = out_channels;
                }
                None => {
                    layers
                        .last_mut()
                        .expect("a VGG plan starts with a conv block")
                        .pool_after = true;
                }
            }
        }
        Vgg {
            layers,
            pool: MaxPool2dConfig::new([2, 2]).init(),
            fc: LinearConfig::new(in_channels, self.num_classes).init(device),
        }
    }

    /// Builds the network with the reference initialization drawn from `seed`
    /// (see [`init_weights`]).
    pub fn init_seeded(&self, device: &Device, seed: u64) -> Vgg {
        init_weights(self.init(device), seed)
    }
}

impl Vgg {
    /// Logits `[N, classes]` for images `[N, C, H, W]`.
    pub fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        let mut x = images;
        for block in &self.layers {
            x = relu(block.bn.forward(block.conv.forward(x)));
            if block.pool_after {
                x = self.pool.forward(x);
            }
        }
        let [n, c, _, _] = x.dims();
        let pooled = adaptive_avg_pool2d(x, [1, 1]).reshape([n, c]);
        self.fc.forward(pooled)
    }
}

impl Classifier for Vgg {
    fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        Vgg::forward(self, images)
    }
}
