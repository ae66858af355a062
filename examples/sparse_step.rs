//! LeNet-300-100 or ResNet-20 at the densities IMP visits: one training
//! step (LeNet: batch 60, Adam 1.2e-3; ResNet-20: batch 128, SGD 0.1 with
//! momentum 0.9 and weight decay 1e-4) and inference (batch 1 and 64),
//! burn's dense masked model versus the host sparse form ([`SparseMlp`](burn_lottery::sparse::SparseMlp),
//! [`SparseResNet`](burn_lottery::sparse::SparseResNet)), alternately in one run (dense, sparse, dense, ...).
//!
//! The mask is the global-magnitude mask of the seeded initial weights (as
//! `train_step_throughput --mask`). Prints one `STEP` / `INFER` line per
//! density with the median per-round CPU time (all threads) of each side and the median of
//! the per-round ratios dense / sparse (above 1: sparse is faster), and a
//! `SPLIT` line: the sparse step's forward alone versus the whole step.
//!
//! ```sh
//! cargo run --release --features wgpu --example sparse_step -- --rounds 7
//! cargo run --release --features wgpu --example sparse_step -- --model resnet20 \
//!     --rounds 5 --steps 2 --densities 7
//! ```
//!
//! Each line also gives wall-clock medians (`dense_wall_us`, `sparse_wall_us`).

mod common;

use burn::optim::GradientsParams;
use burn::tensor::Device;
use burn_lottery::device::device_by_name;
use burn_lottery::mask::MaskedParams;
use burn_lottery::models::{Classifier, LeNetConfig, ResNetConfig, cross_entropy};
use burn_lottery::sparse::SparseTicket;
use clap::Parser;
use common::{
    ModelKind, OptimizerKind, host_values, load_average, magnitude_mask, median, synthetic_batch,
    time_per_call,
};

#[derive(Parser, Debug)]
struct Args {
    /// Network.
    #[arg(long, value_enum, default_value = "lenet")]
    model: ModelKind,
    /// Device of the dense model.
    #[arg(long, default_value = "flex")]
    device: String,
    /// Rounds (each runs both sides once).
    #[arg(long, default_value_t = 7)]
    rounds: usize,
    /// Training steps per side and round.
    #[arg(long, default_value_t = 100)]
    steps: usize,
    /// Densities in percent.
    #[arg(long, value_delimiter = ',', default_value = "100,51,26,17,11,7,2")]
    densities: Vec<f64>,
}

fn main() {
    let args = Args::parse();
    burn_lottery::alloc::retain_freed_memory();
    let device = device_by_name(&args.device).expect("unknown device");
    println!("# sparse_step {:?} load {}", args, load_average());
    for &density in &args.densities {
        match args.model {
            ModelKind::Lenet => {
                let init = |d: &Device| LeNetConfig::lenet_300_100().init_seeded(d, 0);
                run_density(density / 100.0, &args, &device, init);
            }
            ModelKind::Resnet20 => {
                let init = |d: &Device| ResNetConfig::resnet20().init_seeded(d, 0);
                run_density(density / 100.0, &args, &device, init);
            }
        }
    }
    println!("# done, load {}", load_average());
}

/// The step and both inference batch sizes at one density.
fn run_density<M: Classifier>(
    density: f64,
    args: &Args,
    device: &Device,
    init: impl Fn(&Device) -> M,
) {
    step_ratio(density, args, device, &init);
    for batch in [1, 64] {
        inference_ratio(density, batch, args, device, &init);
    }
}

/// Median of the per-round ratios and times (CPU, then wall-clock).
fn report(kind: &str, density: f64, dense: &[(f64, f64)], sparse: &[(f64, f64)], unit: &str) {
    let cpu = |v: &[(f64, f64)]| v.iter().map(|t| t.0).collect::<Vec<_>>();
    let wall = |v: &[(f64, f64)]| v.iter().map(|t| t.1).collect::<Vec<_>>();
    let ratios: Vec<f64> = dense.iter().zip(sparse).map(|(d, s)| d.0 / s.0).collect();
    println!(
        "{kind} density={:.0}% dense_{unit}={:.1} sparse_{unit}={:.1} ratio={:.2} ratios={:?} dense_wall_{unit}={:.1} sparse_wall_{unit}={:.1}",
        density * 100.0,
        median(cpu(dense)),
        median(cpu(sparse)),
        median(ratios.clone()),
        ratios
            .iter()
            .map(|r| (r * 100.0).round() / 100.0)
            .collect::<Vec<_>>(),
        median(wall(dense)),
        median(wall(sparse)),
    );
}

fn step_ratio<M: Classifier>(
    density: f64,
    args: &Args,
    device: &Device,
    init: &impl Fn(&Device) -> M,
) {
    let device = device.clone().autodiff();
    let model = init(&device);
    let mask = magnitude_mask(&model, 1.0 - density);
    let (optimizer, batch) = match args.model {
        ModelKind::Lenet => (OptimizerKind::Adam.config(), 60),
        ModelKind::Resnet20 => (OptimizerKind::Sgd.config(), 128),
    };
    let lr = optimizer.learning_rate().expect("a preset has a base rate");
    let masks = MaskedParams::new(&mask, &device);
    let mut dense = masks.apply_to_weights(model);
    let mut sparse = SparseTicket::from_module(&dense, &mask).expect("mask fits");
    if let SparseTicket::ResNet(net) = &sparse {
        let (kept, all) = net.multiply_adds(32, 32);
        println!(
            "WORK density={:.0}% forward_multiply_adds_per_image kept={kept} dense={all} fraction={:.3}",
            density * 100.0,
            kept as f64 / all as f64
        );
    }
    let mut optim = optimizer.init();
    let (images, labels) = synthetic_batch(&device, batch, args.model.image_shape());
    let (host_images, host_labels) = host_values(&images, &labels);
    let (mut dense_us, mut sparse_us, mut forward_us) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..args.rounds {
        dense_us.push(time_per_call(args.steps, || {
            let loss = cross_entropy(dense.forward(images.clone()), labels.clone());
            let mut grads = GradientsParams::from_grads(loss.backward(), &dense);
            masks.apply_to_grads(&dense, &mut grads);
            let stepped = optim.step(lr, dense.clone(), grads);
            dense = masks.apply_to_weights(stepped);
            let _: f32 = loss.into_scalar();
        }));
        sparse_us.push(time_per_call(args.steps, || {
            let loss = sparse
                .train_step(&host_images, &host_labels, &optimizer, lr)
                .expect("labels fit");
            assert!(loss.is_finite());
        }));
        forward_us.push(time_per_call(args.steps, || {
            std::hint::black_box(sparse.forward(&host_images, batch).expect("images fit"));
        }));
    }
    report("STEP", density, &dense_us, &sparse_us, "us");
    println!(
        "SPLIT density={:.0}% sparse_step_us={:.1} sparse_forward_us={:.1}",
        density * 100.0,
        median(sparse_us.iter().map(|t| t.0).collect()),
        median(forward_us.iter().map(|t| t.0).collect())
    );
}

fn inference_ratio<M: Classifier>(
    density: f64,
    batch: usize,
    args: &Args,
    device: &Device,
    init: &impl Fn(&Device) -> M,
) {
    let model = init(device);
    let mask = magnitude_mask(&model, 1.0 - density);
    let dense = MaskedParams::new(&mask, device).apply_to_weights(model);
    let mut sparse = SparseTicket::from_module(&dense, &mask).expect("mask fits");
    let (images, labels) = synthetic_batch(device, batch, args.model.image_shape());
    let (host_images, _) = host_values(&images, &labels);
    let calls = args.steps * if batch == 1 { 100 } else { 4 };
    let (mut dense_us, mut sparse_us) = (Vec::new(), Vec::new());
    for _ in 0..args.rounds {
        dense_us.push(time_per_call(calls, || {
            let logits: Vec<f32> = dense
                .forward(images.clone())
                .into_data()
                .try_to_vec()
                .expect("f32");
            std::hint::black_box(logits);
        }));
        sparse_us.push(time_per_call(calls, || {
            std::hint::black_box(sparse.forward(&host_images, batch).expect("images fit"));
        }));
    }
    report(
        &format!("INFER batch={batch}"),
        density,
        &dense_us,
        &sparse_us,
        "us",
    );
}
