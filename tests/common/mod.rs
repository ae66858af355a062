//! Shared test fixtures: a tiny conv net with BatchNorm, and helpers.
#![allow(dead_code)]

pub mod compare;

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig, PaddingConfig2d};
use burn::optim::GradientsParams;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use burn::tensor::{Device, Tensor, TensorData};
use burn_lottery::data::{ImageDataset, Normalization};
use burn_lottery::imp::{ExperimentData, ImpConfig, Seeds};
use burn_lottery::mask::{LayerMask, Mask, ParamSelector};
use burn_lottery::models::{LeNet, LeNetConfig};
use burn_lottery::params::float_values;
use burn_lottery::prune::MagnitudePrunerConfig;

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

/// The checkout under test: the `CARGO_MANIFEST_DIR` cargo gives the test
/// process, else the one it was compiled with. A test binary built in another
/// checkout that shares the build directory (`.ci/run`'s
/// `$HOME/.cache/burn-lottery/target`) keeps that checkout's path at compile
/// time, and cargo need not rebuild it when the sources are older than it.
pub fn repo_root() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from)
}

#[allow(deprecated)]
pub fn ndarray() -> Device {
    Device::ndarray()
}

/// A deterministic batch for TinyNet, drawn on the host from `seed` (not
/// from the device's generator, which the tests running at the same time
/// share and reseed).
pub fn tiny_batch(device: &Device, seed: u64) -> (Tensor<4>, Tensor<2>) {
    use rand::{RngExt, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut draw =
        |n: usize| -> Vec<f32> { (0..n).map(|_| rng.random::<f32>() * 2.0 - 1.0).collect() };
    let x = tensor(draw(8 * 36), [8, 1, 6, 6], device);
    let y = tensor(draw(8 * 3), [8, 3], device);
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

/// 10 classes of 8x8 images: class c lights up a band of rows.
pub fn synthetic(n: usize, seed: u64) -> ImageDataset {
    let mut images = Vec::with_capacity(n * 64);
    let mut labels = Vec::with_capacity(n);
    let mut state = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
    for i in 0..n {
        let class = (i % 10) as u8;
        for p in 0..64 {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let noise = (state >> 59) as u8;
            let row = p / 8;
            let on = row == usize::from(class) % 8 && (class < 8 || p % 2 == class as usize % 2);
            images.push(if on { 200 + noise } else { noise * 3 });
        }
        labels.push(class);
    }
    ImageDataset::new(images, labels, 1, 8, 8, 10).unwrap()
}

/// A learnable synthetic experiment: 200 training and 100 test images.
pub fn data() -> ExperimentData {
    let train = synthetic(200, 1);
    let normalization = Normalization::from_dataset(&train);
    ExperimentData {
        train: Arc::new(train),
        test: Arc::new(synthetic(100, 2)),
        normalization,
        augmentation: None,
    }
}

/// A small LeNet (64-24-16-10) for the synthetic images.
pub fn init(device: &Device, seed: u64) -> LeNet {
    LeNetConfig::new()
        .with_input_size(64)
        .with_hidden1(24)
        .with_hidden2(16)
        .init_seeded(device, seed)
}

/// A small synthetic IMP experiment: `levels` levels of [`tiny_recipe`],
/// global 20% magnitude pruning, rewinding to iteration 5, seeds 0, no
/// controls. Tests adjust fields with struct update syntax.
pub fn tiny_imp_config(name: &str, levels: usize) -> ImpConfig {
    ImpConfig {
        name: name.into(),
        training: tiny_recipe(),
        pruning: MagnitudePrunerConfig::new(0.2),
        levels,
        rewind_iteration: 5,
        seeds: Seeds::all(0),
        ..ImpConfig::default()
    }
}

/// 30 iterations of Adam 3e-3 at batch 20: the recipe of the synthetic experiments.
pub fn tiny_recipe() -> burn_lottery::train::recipe::TrainingRecipe {
    burn_lottery::train::recipe::TrainingRecipe {
        batch_size: 20,
        training_iterations: 30,
        optimizer: burn_lottery::train::recipe::OptimizerConfig::adam(3e-3),
        schedule: burn_lottery::train::schedule::LrSchedule::constant(),
        augment: false,
    }
}

/// Every float tensor of a model (BatchNorm statistics synchronized), as
/// host values by parameter path.
pub fn state<M: Module>(model: &M) -> BTreeMap<String, Vec<f32>> {
    float_values(&model.valid(), |_| true)
}

/// Keeps 30% of every prunable weight, in a fixed pattern.
pub fn sparse_mask<M: Module>(model: &M) -> Mask {
    let dense = Mask::dense(model, &ParamSelector::default()).unwrap();
    Mask::from_layers(dense.layers().map(|(p, l)| {
        let kept = (0..l.total_count()).map(|i| (i * 7) % 10 < 3).collect();
        (
            p.to_string(),
            LayerMask::from_kept(p, l.shape().to_vec(), kept).unwrap(),
        )
    }))
}

/// Every file under `dir` (path relative to `dir` -> bytes); empty when
/// `dir` does not exist. The writers' locks (`locks/` of an experiment:
/// which process writes what, not results) are left out.
pub fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() && path.file_name() == Some("locks".as_ref()) {
                continue;
            }
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                let relative = path.strip_prefix(root).unwrap().display().to_string();
                out.insert(relative, std::fs::read(&path).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    if dir.exists() {
        walk(dir, dir, &mut out);
    }
    out
}

/// Stops a run after this many training steps in total (asks to stop once
/// they are done; the checkpoint of that step is still written).
pub struct StopAfter(pub u64);

impl burn_lottery::imp::ImpObserver for StopAfter {
    fn step(&mut self, _completed: u64, _loss: Option<f64>) {
        self.0 = self.0.saturating_sub(1);
    }
    fn should_stop(&mut self) -> bool {
        self.0 == 0
    }
}
