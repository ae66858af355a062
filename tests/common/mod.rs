//! Shared test fixtures: a tiny conv net with BatchNorm, and helpers.
#![allow(dead_code)]

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig, PaddingConfig2d};
use burn::optim::GradientsParams;
use burn::tensor::{Device, Distribution, Tensor, TensorData};

/// conv(1->4, 3x3) -> BN -> ReLU -> fc(4*6*6 -> 3).
#[derive(Module, Debug)]
pub struct TinyNet {
    pub conv: Conv2d,
    pub bn: BatchNorm,
    pub fc: Linear,
}

impl TinyNet {
    pub fn new(device: &Device) -> Self {
        Self {
            conv: Conv2dConfig::new([1, 4], [3, 3])
                .with_padding(PaddingConfig2d::Same)
                .init(device),
            bn: BatchNormConfig::new(4).init(device),
            fc: LinearConfig::new(4 * 6 * 6, 3).init(device),
        }
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        let x = burn::tensor::activation::relu(self.bn.forward(self.conv.forward(x)));
        self.fc.forward(x.flatten(1, 3))
    }
}

/// Two Linear layers, for fast optimizer tests.
#[derive(Module, Debug)]
pub struct Mlp {
    pub fc1: Linear,
    pub fc2: Linear,
}

impl Mlp {
    pub fn new(device: &Device) -> Self {
        Self {
            fc1: LinearConfig::new(16, 32).init(device),
            fc2: LinearConfig::new(32, 4).init(device),
        }
    }

    pub fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        self.fc2
            .forward(burn::tensor::activation::relu(self.fc1.forward(x)))
    }
}

#[allow(deprecated)]
pub fn ndarray() -> Device {
    Device::ndarray()
}

/// A deterministic batch for TinyNet.
pub fn tiny_batch(device: &Device, seed: u64) -> (Tensor<4>, Tensor<2>) {
    device.seed(seed);
    let x = Tensor::<4>::random([8, 1, 6, 6], Distribution::Normal(0.0, 1.0), device);
    let y = Tensor::<2>::random([8, 3], Distribution::Normal(0.0, 1.0), device);
    (x, y)
}

/// Mean squared error gradients of TinyNet on a batch.
pub fn tiny_grads(model: &TinyNet, x: Tensor<4>, y: Tensor<2>) -> GradientsParams {
    let loss = (model.forward(x) - y).powf_scalar(2.0).mean();
    GradientsParams::from_grads(loss.backward(), model)
}

/// Host values of a float tensor.
pub fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .unwrap()
}

/// A tensor from host values.
pub fn tensor<const D: usize>(values: Vec<f32>, shape: [usize; D], device: &Device) -> Tensor<D> {
    Tensor::from_data(TensorData::new(values, shape), device)
}
