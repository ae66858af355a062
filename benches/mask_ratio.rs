//! Mask enforcement cost as a ratio: the masked step's time over the dense
//! step's, measured alternately in one process (A B B A ...), so that the
//! machine's load hits both alike.
//!
//! Two copies of one network train side by side on the same batch: one with
//! burn's plain optimizer and no mask (dense), one through
//! `MaskedOptimizer` with an 80% global-magnitude mask. Each pair times one
//! step of each (the order alternates between pairs); the output has every
//! step's time, every pair's ratio masked / dense, and their median.
//!
//! Cases: LeNet-300-100, batch 60, Adam, ndarray (200 pairs after 20
//! warm-up pairs); ResNet-20, batch 128, SGD momentum, flex (8 pairs after
//! 2). `MASK_RATIO_PAIRS=<n>` overrides the pair counts (for a quick run).
//!
//! Run: `cargo bench --features wgpu --bench mask_ratio | tee docs/bench/mask_ratio.txt`

use std::time::Instant;

use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Int, Tensor, TensorData};
use burn_lottery::device::device_by_name;
use burn_lottery::mask::{Mask, ParamSelector};
use burn_lottery::models::{Classifier, LeNetConfig, ResNetConfig, cross_entropy};
use burn_lottery::prune::{MagnitudePrunerConfig, Pruner};
use burn_lottery::train::masked::MaskedOptimizer;
use burn_lottery::train::recipe::OptimizerConfig;

fn batch(device: &Device, shape: [usize; 4]) -> (Tensor<4>, Tensor<1, Int>) {
    let n: usize = shape.iter().product();
    let values: Vec<f32> = (0..n).map(|i| ((i * 7919) % 255) as f32 / 255.0).collect();
    let labels: Vec<i64> = (0..shape[0] as i64).map(|i| i % 10).collect();
    (
        Tensor::from_data(TensorData::new(values, shape), device),
        Tensor::from_data(TensorData::new(labels, [shape[0]]), device),
    )
}

/// One network in training: dense (plain optimizer) or masked.
struct Run<M> {
    model: Option<M>,
    plain: Option<ModuleOptimizer>,
    masked: Option<MaskedOptimizer>,
}

impl<M: Classifier> Run<M> {
    /// One step; returns its wall time in seconds.
    fn step(&mut self, lr: f64, images: &Tensor<4>, labels: &Tensor<1, Int>) -> f64 {
        let start = Instant::now();
        let model = self.model.take().expect("a model");
        let loss = cross_entropy(model.forward(images.clone()), labels.clone());
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        let model = match (&mut self.plain, &mut self.masked) {
            (Some(o), _) => o.step(lr, model, grads),
            (None, Some(o)) => o.step(lr, model, grads),
            (None, None) => unreachable!("one optimizer is set"),
        };
        images.device().sync().expect("device sync");
        self.model = Some(model);
        start.elapsed().as_secs_f64()
    }
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

/// Alternates dense and masked steps of one case and prints the raw times
/// and ratios.
fn measure<M: Classifier>(
    name: &str,
    device: &str,
    make: fn(&Device) -> M,
    optimizer: OptimizerConfig,
    shape: [usize; 4],
    (warmup, pairs): (usize, usize),
) {
    let device = device_by_name(device)
        .expect("backend compiled in")
        .autodiff();
    let (images, labels) = batch(&device, shape);
    let lr = optimizer.learning_rate().expect("a preset has a base rate");
    let model = make(&device);
    let dense = Mask::dense(&model, &ParamSelector::default()).expect("prunable weights");
    let mask = MagnitudePrunerConfig::new(0.8)
        .init()
        .expect("valid rate")
        .next_mask(&model, &dense)
        .expect("mask");
    let masked_optimizer = MaskedOptimizer::new(optimizer.init(), &mask, &model, &device)
        .expect("the mask fits the model");
    let mut masked = Run {
        model: Some(masked_optimizer.prepare(make(&device))),
        plain: None,
        masked: Some(masked_optimizer),
    };
    let mut plain = Run {
        model: Some(model),
        plain: Some(optimizer.init()),
        masked: None,
    };
    let mut ratios = Vec::new();
    for pair in 0..warmup + pairs {
        // A B, then B A: neither side always runs first.
        let (d, m) = if pair % 2 == 0 {
            let d = plain.step(lr, &images, &labels);
            (d, masked.step(lr, &images, &labels))
        } else {
            let m = masked.step(lr, &images, &labels);
            (plain.step(lr, &images, &labels), m)
        };
        if pair >= warmup {
            ratios.push(m / d);
            println!(
                "PAIR case={name} pair={} dense_s={d:.6} masked_s={m:.6} ratio={:.4}",
                pair - warmup + 1,
                m / d
            );
        }
    }
    let mut sorted = ratios.clone();
    let med = median(&mut sorted);
    println!(
        "SUMMARY case={name} pairs={pairs} masked/dense median={med:.4} min={:.4} max={:.4}",
        sorted[0],
        sorted[sorted.len() - 1]
    );
}

fn main() {
    burn_lottery::alloc::retain_freed_memory();
    let pairs = |default: usize| {
        std::env::var("MASK_RATIO_PAIRS")
            .ok()
            .and_then(|p| p.parse().ok())
            .unwrap_or(default)
    };
    println!(
        "# mask_ratio: masked (80%) step time / dense step time, alternating; {} cores",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    measure(
        "lenet300100_b60_adam_ndarray_80pct",
        "ndarray",
        |d| LeNetConfig::lenet_300_100().init_seeded(d, 0),
        OptimizerConfig::adam(1.2e-3),
        [60, 1, 28, 28],
        (20, pairs(200)),
    );
    measure(
        "resnet20_b128_sgd_flex_80pct",
        "flex",
        |d| ResNetConfig::resnet20().init_seeded(d, 0),
        OptimizerConfig::sgd_momentum(0.1),
        [128, 3, 32, 32],
        (2, pairs(8)),
    );
}
