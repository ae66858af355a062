//! LeNet-300-100: the fully connected network of the original lottery-ticket
//! paper (784-300-100-10, ReLU, 266,610 parameters).
//!
//! The input images are flattened (`[N, C, H, W]` -> `[N, C*H*W]`), so
//! `C*H*W` must equal [`LeNetConfig::input_size`].

use burn::config::Config;
use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};

use super::{Classifier, ModelConfigError, check_positive, init::init_weights};

/// Configuration of a [`LeNet`].
#[derive(Config, Debug)]
pub struct LeNetConfig {
    /// Number of input features, `C * H * W` (784 for 28x28 gray images).
    #[config(default = 784)]
    pub input_size: usize,
    /// Width of the first hidden layer.
    #[config(default = 300)]
    pub hidden1: usize,
    /// Width of the second hidden layer.
    #[config(default = 100)]
    pub hidden2: usize,
    /// Number of classes.
    #[config(default = 10)]
    pub num_classes: usize,
}

/// LeNet-300-100 (see the module docs). Build it with [`LeNetConfig`].
#[derive(Module, Debug)]
pub struct LeNet {
    /// Input -> first hidden layer.
    pub fc1: Linear,
    /// First -> second hidden layer.
    pub fc2: Linear,
    /// Output layer.
    pub fc3: Linear,
}

impl LeNetConfig {
    /// LeNet-300-100 for 28x28 gray images (the defaults).
    pub fn lenet_300_100() -> Self {
        Self::new()
    }

    /// Checks that every layer size is positive.
    pub fn validate(&self) -> Result<(), ModelConfigError> {
        check_positive(
            "LeNet",
            &[
                ("input_size", self.input_size),
                ("hidden1", self.hidden1),
                ("hidden2", self.hidden2),
                ("num_classes", self.num_classes),
            ],
        )
    }

    /// Builds the network with burn's default initializers, or says why the
    /// configuration is invalid.
    pub fn try_init(&self, device: &Device) -> Result<LeNet, ModelConfigError> {
        self.validate()?;
        Ok(self.init(device))
    }

    /// [`LeNetConfig::init_seeded`], or why the configuration is invalid.
    pub fn try_init_seeded(&self, device: &Device, seed: u64) -> Result<LeNet, ModelConfigError> {
        self.validate()?;
        Ok(self.init_seeded(device, seed))
    }

    /// Builds the network with burn's default initializers.
    ///
    /// # Panics
    /// If a size is 0 (see [`LeNetConfig::validate`]).
    pub fn init(&self, device: &Device) -> LeNet {
        if let Err(e) = self.validate() {
            panic!("{e}");
        }
        LeNet {
            fc1: LinearConfig::new(self.input_size, self.hidden1).init(device),
            fc2: LinearConfig::new(self.hidden1, self.hidden2).init(device),
            fc3: LinearConfig::new(self.hidden2, self.num_classes).init(device),
        }
    }

    /// Builds the network with the reference initialization drawn from `seed`
    /// (see [`init_weights`]).
    pub fn init_seeded(&self, device: &Device, seed: u64) -> LeNet {
        init_weights(self.init(device), seed)
    }
}

impl LeNet {
    /// Logits `[N, classes]` for images `[N, C, H, W]` (flattened first).
    pub fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        let x: Tensor<2> = images.flatten(1, 3);
        let x = relu(self.fc1.forward(x));
        let x = relu(self.fc2.forward(x));
        self.fc3.forward(x)
    }
}

impl Classifier for LeNet {
    fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        LeNet::forward(self, images)
    }
}
