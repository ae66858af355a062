//! LeNet-300-100 at the densities IMP visits: one training step (batch 60,
//! Adam 1.2e-3) and inference (batch 1 and 64), burn's dense masked model
//! versus [`SparseMlp`], alternately in one run (dense, sparse, dense, ...).
//!
//! The mask is the global-magnitude mask of the seeded initial weights (as
//! `train_step_throughput --mask`). Prints one `STEP` / `INFER` line per
//! density with the median per-round CPU time (all threads) of each side and the median of
//! the per-round ratios dense / sparse (above 1: sparse is faster), and a
//! `SPLIT` line: the sparse step's forward alone versus the whole step.
//!
//! ```sh
//! cargo run --release --features wgpu --example sparse_step -- --rounds 7
//! ```

mod common;

use burn::optim::GradientsParams;
use burn::tensor::Device;
use burn_lottery::device::device_by_name;
use burn_lottery::mask::MaskedParams;
use burn_lottery::models::{LeNet, LeNetConfig, cross_entropy};
use burn_lottery::sparse::SparseMlp;
use burn_lottery::train::recipe::OptimizerConfig;
use clap::Parser;
use common::{load_average, magnitude_mask, synthetic_batch};

#[derive(Parser, Debug)]
struct Args {
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
        step_ratio(density / 100.0, &args, &device);
        for batch in [1, 64] {
            inference_ratio(density / 100.0, batch, &args, &device);
        }
    }
    println!("# done, load {}", load_average());
}

/// Median of the per-round ratios and times.
fn report(kind: &str, density: f64, dense: &[f64], sparse: &[f64], unit: &str) {
    let ratios: Vec<f64> = dense.iter().zip(sparse).map(|(d, s)| d / s).collect();
    println!(
        "{kind} density={:.0}% dense_{unit}={:.1} sparse_{unit}={:.1} ratio={:.2} ratios={:?}",
        density * 100.0,
        median(dense.to_vec()),
        median(sparse.to_vec()),
        median(ratios.clone()),
        ratios
            .iter()
            .map(|r| (r * 100.0).round() / 100.0)
            .collect::<Vec<_>>()
    );
}

fn step_ratio(density: f64, args: &Args, device: &Device) {
    let device = device.clone().autodiff();
    let model = LeNetConfig::lenet_300_100().init_seeded(&device, 0);
    let mask = magnitude_mask(&model, 1.0 - density);
    let optimizer = OptimizerConfig::adam(1.2e-3);
    let lr = optimizer.learning_rate();
    let masks = MaskedParams::new(&mask, &device);
    let mut dense = masks.apply_to_weights(model);
    let mut sparse = SparseMlp::from_module(&dense, &mask).expect("mask fits");
    let mut optim = optimizer.init();
    let (images, labels) = synthetic_batch(&device, 60, [1, 28, 28]);
    let host_images: Vec<f32> = images.to_data().try_to_vec().expect("f32 images");
    let host_labels: Vec<i64> = labels
        .to_data()
        .convert::<i64>()
        .try_to_vec()
        .expect("labels");
    let (mut dense_us, mut sparse_us, mut forward_us) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..args.rounds {
        dense_us.push(time(args.steps, || {
            let loss = cross_entropy(dense.forward(images.clone()), labels.clone());
            let mut grads = GradientsParams::from_grads(loss.backward(), &dense);
            masks.apply_to_grads(&dense, &mut grads);
            let stepped = optim.step(lr, dense.clone(), grads);
            dense = masks.apply_to_weights(stepped);
            let _: f32 = loss.into_scalar();
        }));
        sparse_us.push(time(args.steps, || {
            let loss = sparse
                .train_step(&host_images, &host_labels, &optimizer, lr)
                .expect("labels fit");
            assert!(loss.is_finite());
        }));
        forward_us.push(time(args.steps, || {
            std::hint::black_box(sparse.forward(&host_images, 60));
        }));
    }
    report("STEP", density, &dense_us, &sparse_us, "us");
    println!(
        "SPLIT density={:.0}% sparse_step_us={:.1} sparse_forward_us={:.1}",
        density * 100.0,
        median(sparse_us),
        median(forward_us)
    );
}

fn inference_ratio(density: f64, batch: usize, args: &Args, device: &Device) {
    let model: LeNet = LeNetConfig::lenet_300_100().init_seeded(device, 0);
    let mask = magnitude_mask(&model, 1.0 - density);
    let dense = MaskedParams::new(&mask, device).apply_to_weights(model);
    let mut sparse = SparseMlp::from_module(&dense, &mask).expect("mask fits");
    let (images, _) = synthetic_batch(device, batch, [1, 28, 28]);
    let host_images: Vec<f32> = images.to_data().try_to_vec().expect("f32 images");
    let calls = args.steps * if batch == 1 { 100 } else { 4 };
    let (mut dense_us, mut sparse_us) = (Vec::new(), Vec::new());
    for _ in 0..args.rounds {
        dense_us.push(time(calls, || {
            let logits: Vec<f32> = dense
                .forward(images.clone())
                .into_data()
                .try_to_vec()
                .expect("f32");
            std::hint::black_box(logits);
        }));
        sparse_us.push(time(calls, || {
            std::hint::black_box(sparse.forward(&host_images, batch));
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

/// CPU microseconds (all threads of the process) per call of `f`, over
/// `reps` calls: on a shared machine, preemption inflates wall time but not
/// CPU time.
fn time(reps: usize, mut f: impl FnMut()) -> f64 {
    let start = cpu_ns();
    for _ in 0..reps {
        f();
    }
    (cpu_ns() - start) as f64 / 1e3 / reps as f64
}

/// Nanoseconds this process's threads have run, from
/// `/proc/self/task/*/schedstat` (Linux).
fn cpu_ns() -> u64 {
    let tasks = std::fs::read_dir("/proc/self/task").expect("Linux /proc");
    tasks
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}
