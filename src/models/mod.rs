//! The networks of the lottery-ticket experiments and what the training loop
//! needs from them.
//!
//! - [`ResNet`] ([`ResNetConfig`]): the CIFAR ResNets of He et al. (depth 6N+2;
//!   ResNet-20 is the paper's main CIFAR-10 network).
//! - [`LeNet`] ([`LeNetConfig`]): the fully connected LeNet-300-100.
//! - [`Vgg`] ([`VggConfig`]): VGG-11/13/16/19 with BatchNorm and the open_lth
//!   CIFAR head (global average pool, one fully connected layer).
//!
//! Every model implements [`Classifier`] (NCHW images in, logits out). Each
//! config has `init(&self, device)`, which builds the module with burn's
//! default initializers, and `init_seeded(&self, device, seed)`, which also
//! applies the reference initialization of [`init::init_weights`]: drawn on
//! the host from the seed and each parameter's path, so bit-identical on
//! every backend.
//!
//! Parameter paths follow the field names: `conv.weight`, `blocks.0.conv1.weight`,
//! `blocks.3.shortcut.conv.weight`, `fc.weight` (ResNet); `fc1.weight` .. `fc3.weight`
//! (LeNet); `layers.0.conv.weight`, `fc.weight` (VGG). burn's `Linear` weight is
//! stored `[d_in, d_out]`, `Conv2d` weight `[out, in, kh, kw]`.

pub mod init;
pub mod lenet;
pub mod resnet;
pub mod vgg;

pub use init::init_weights;
pub use lenet::{LeNet, LeNetConfig};
pub use resnet::{BasicBlock, ResNet, ResNetConfig, Shortcut};
pub use vgg::{Vgg, VggBlock, VggConfig, VggDepth};

use burn::module::Module;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::tensor::{Int, Tensor};

/// An image classifier: what the training and IMP loops need from a model.
pub trait Classifier: Module {
    /// Logits `[N, classes]` for a batch of NCHW images `[N, C, H, W]`.
    fn forward(&self, images: Tensor<4>) -> Tensor<2>;
}

/// Mean cross-entropy (softmax over the logits) of a batch, a one-element
/// tensor: burn-nn's `CrossEntropyLoss` with default settings.
pub fn cross_entropy(logits: Tensor<2>, targets: Tensor<1, Int>) -> Tensor<1> {
    CrossEntropyLossConfig::new()
        .init(&logits.device())
        .forward(logits, targets)
}

/// Number of rows of `logits` whose arg-max equals the target class.
///
/// Reads one scalar back from the device.
pub fn accuracy_count(logits: Tensor<2>, targets: Tensor<1, Int>) -> usize {
    let [n, _] = logits.dims();
    if n == 0 {
        return 0;
    }
    let predicted: Tensor<1, Int> = logits.argmax(1).reshape([n]);
    let correct: i64 = predicted.equal(targets).int().sum().into_scalar();
    correct as usize
}
