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
//! every backend. Both panic on an invalid configuration; `validate`,
//! `try_init` and `try_init_seeded` return a [`ModelConfigError`] instead
//! (use them for configurations a user wrote, e.g. loaded from JSON).
//!
//! Parameter paths follow the field names: `conv.weight`, `blocks.0.conv1.weight`,
//! `blocks.3.shortcut.conv.weight`, `fc.weight` (ResNet); `fc1.weight` .. `fc3.weight`
//! (LeNet); `layers.0.conv.weight`, `fc.weight` (VGG). burn's `Linear` weight is
//! stored `[d_in, d_out]`, `Conv2d` weight `[out, in, kh, kw]`.
//!
//! [`export`] rebuilds a smaller dense LeNet or ResNet from a channel-pruned
//! one ([`crate::prune::StructuredPruner`]).

pub mod export;
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
use burn::tensor::{Device, Int, Tensor};

/// An invalid model configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModelConfigError {
    /// A CIFAR ResNet depth that is not 6N + 2 with N >= 1.
    #[error("CIFAR ResNet depth must be 6N + 2 (20, 32, 44, 56, 110, ...), got {0}")]
    InvalidDepth(usize),
    /// A size (width, channels, classes) that must be positive is 0.
    #[error("{model} {setting} must be > 0")]
    ZeroSize {
        /// The model (`ResNet`, `VGG`, `LeNet`).
        model: &'static str,
        /// The setting that is 0.
        setting: &'static str,
    },
    /// The model does not accept the dataset's images, or does not output
    /// one logit per class.
    #[error(
        "the model does not fit images of shape {image_shape:?} with {num_classes} classes: {reason}"
    )]
    DoesNotFitData {
        /// `[channels, height, width]` of the dataset's images.
        image_shape: [usize; 3],
        /// Classes of the dataset.
        num_classes: usize,
        /// What went wrong.
        reason: String,
    },
    /// A width so large that the layer sizes overflow.
    #[error("{model} {setting} = {value} makes the layer sizes overflow")]
    TooLarge {
        /// The model.
        model: &'static str,
        /// The setting.
        setting: &'static str,
        /// Its value.
        value: usize,
    },
}

/// Checks that each named size is positive.
fn check_positive(
    model: &'static str,
    sizes: &[(&'static str, usize)],
) -> Result<(), ModelConfigError> {
    match sizes.iter().find(|(_, value)| *value == 0) {
        Some(&(setting, _)) => Err(ModelConfigError::ZeroSize { model, setting }),
        None => Ok(()),
    }
}

/// Checks that `model` takes images of `image_shape` (`[C, H, W]`) and
/// outputs `num_classes` logits, by running one blank image through it in
/// evaluation mode (BatchNorm statistics are not touched). burn reports a
/// shape mismatch by panicking: the panic is caught here and returned as
/// [`ModelConfigError::DoesNotFitData`] (the default panic hook still prints
/// it).
pub fn check_fits_data<M: Classifier>(
    model: &M,
    image_shape: [usize; 3],
    num_classes: usize,
    device: &Device,
) -> Result<(), ModelConfigError> {
    let error = |reason: String| ModelConfigError::DoesNotFitData {
        image_shape,
        num_classes,
        reason,
    };
    let [c, h, w] = image_shape;
    let probe = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let images = Tensor::<4>::zeros([1, c, h, w], device);
        model.valid().forward(images).dims()
    }))
    .map_err(|panic| {
        let message = panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "the forward pass panicked".into());
        error(message)
    })?;
    if probe != [1, num_classes] {
        return Err(error(format!(
            "one image gives logits of shape {probe:?}, expected [1, {num_classes}]"
        )));
    }
    Ok(())
}

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
    if logits.dims()[0] == 0 {
        return 0;
    }
    let correct: i64 = correct_count(logits, targets).into_scalar();
    correct as usize
}

/// How many rows of `logits` have their largest entry at the target class,
/// as a one-element tensor left on the device (no read); `logits` must have
/// at least one row.
pub fn correct_count(logits: Tensor<2>, targets: Tensor<1, Int>) -> Tensor<1, Int> {
    let [n, _] = logits.dims();
    let predicted: Tensor<1, Int> = logits.argmax(1).reshape([n]);
    predicted.equal(targets).int().sum()
}
