//! Cost of mask enforcement: one training step (forward, cross-entropy,
//! backward, optimizer, mask enforcement) with no mask at all vs. masked at
//! 0%, 80% and 98% sparsity, and the CPU backends side by side.
//!
//! Groups (criterion, 10 samples each):
//! - `masked_step/lenet300100_b60_adam_ndarray`: LeNet-300-100, batch 60,
//!   Adam, on ndarray: `no_mask`, `masked_0pct`, `masked_80pct`, `masked_98pct`.
//! - `masked_step/resnet20_b128_sgd_flex`: ResNet-20, batch 128 of 3x32x32,
//!   SGD momentum 0.9 + weight decay, on flex (burn's fast CPU backend), the
//!   same four variants.
//! - `cpu_backends/<model>`: the unmasked step of LeNet-300-100 (Adam and
//!   SGD) on ndarray and on flex, and ResNet-20 on flex. ResNet-20 on ndarray
//!   takes about 45 s per step here, so it runs only with
//!   `BURN_LOTTERY_BENCH_NDARRAY_RESNET20=1` (about 8 minutes).
//! - With the `wgpu` feature and `BURN_LOTTERY_BENCH_WGPU=1`:
//!   `masked_step/lenet300100_b60_adam_wgpu` and
//!   `masked_step/resnet20_b128_sgd_wgpu` (the four variants each). Off by
//!   default because on a machine without a GPU wgpu runs on a software
//!   Vulkan driver (lavapipe), where one ResNet-20 step takes over 2 minutes.
//!
//! `masked_0pct` runs `MaskedOptimizer` with a dense mask, which skips every
//! layer (nothing to enforce): its difference from `no_mask` is run-to-run
//! noise. The direct cost of enforcement, timed per phase, is printed by
//! `examples/train_step_throughput.rs --phases`.
//!
//! The bench calls `burn_lottery::alloc::retain_freed_memory()` first, as the
//! examples do.
//!
//! Run: `cargo bench --features wgpu --bench masked_training`

use std::hint::black_box;
use std::time::Duration;

use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Int, Tensor, TensorData};
use burn_lottery::device::device_by_name;
use burn_lottery::mask::{Mask, ParamSelector};
use burn_lottery::models::{Classifier, LeNetConfig, ResNetConfig, cross_entropy};
use burn_lottery::prune::{MagnitudePrunerConfig, Pruner};
use burn_lottery::train::masked::MaskedOptimizer;
use burn_lottery::train::recipe::OptimizerConfig;
use criterion::{BenchmarkGroup, BenchmarkId, Criterion, Throughput, measurement::WallTime};

enum Stepper {
    Plain(ModuleOptimizer),
    Masked(Box<MaskedOptimizer>),
}

fn step<M: Classifier>(
    model: M,
    stepper: &mut Stepper,
    lr: f64,
    images: &Tensor<4>,
    labels: &Tensor<1, Int>,
) -> M {
    let loss = cross_entropy(model.forward(images.clone()), labels.clone());
    let grads = GradientsParams::from_grads(loss.backward(), &model);
    let model = match stepper {
        Stepper::Plain(o) => o.step(lr, model, grads),
        Stepper::Masked(o) => o.step(lr, model, grads),
    };
    // Wait for the device (a no-op cost on the CPU backends).
    images.device().sync().expect("device sync");
    model
}

fn batch(device: &Device, shape: [usize; 4]) -> (Tensor<4>, Tensor<1, Int>) {
    let n: usize = shape.iter().product();
    let values: Vec<f32> = (0..n).map(|i| ((i * 7919) % 255) as f32 / 255.0).collect();
    let labels: Vec<i64> = (0..shape[0] as i64).map(|i| i % 10).collect();
    (
        Tensor::from_data(TensorData::new(values, shape), device),
        Tensor::from_data(TensorData::new(labels, [shape[0]]), device),
    )
}

/// One benchmarked network: how to build it, its optimizer and batch shape.
struct Case<M> {
    name: &'static str,
    make: fn(&Device) -> M,
    optimizer: OptimizerConfig,
    shape: [usize; 4],
}

fn lenet_adam() -> Case<burn_lottery::models::LeNet> {
    Case {
        name: "lenet300100_b60_adam",
        make: |d| LeNetConfig::lenet_300_100().init_seeded(d, 0),
        optimizer: OptimizerConfig::adam(1.2e-3),
        shape: [60, 1, 28, 28],
    }
}

fn lenet_sgd() -> Case<burn_lottery::models::LeNet> {
    Case {
        name: "lenet300100_b60_sgd",
        optimizer: OptimizerConfig::sgd_momentum(0.1),
        ..lenet_adam()
    }
}

fn resnet20_sgd() -> Case<burn_lottery::models::ResNet> {
    Case {
        name: "resnet20_b128_sgd",
        make: |d| ResNetConfig::resnet20().init_seeded(d, 0),
        optimizer: OptimizerConfig::sgd_momentum(0.1),
        shape: [128, 3, 32, 32],
    }
}

/// Adds one benchmark to `group`: the step of `case` on `device`, with no
/// mask (`sparsity = None`) or a global-magnitude mask of that sparsity.
fn bench_step<M: Classifier + 'static>(
    group: &mut BenchmarkGroup<'_, WallTime>,
    id: BenchmarkId,
    case: &Case<M>,
    device: &Device,
    sparsity: Option<f64>,
) {
    let device = device.clone().autodiff();
    let (images, labels) = batch(&device, case.shape);
    let mut model = (case.make)(&device);
    let lr = case
        .optimizer
        .learning_rate()
        .expect("a preset has a base rate");
    let mut stepper = match sparsity {
        None => Stepper::Plain(case.optimizer.init()),
        Some(s) => {
            let dense = Mask::dense(&model, &ParamSelector::default()).expect("prunable weights");
            let mask = if s == 0.0 {
                dense
            } else {
                MagnitudePrunerConfig::new(s)
                    .init()
                    .expect("valid rate")
                    .next_mask(&model, &dense)
                    .expect("mask")
            };
            let masked = MaskedOptimizer::new(case.optimizer.init(), &mask, &model, &device)
                .expect("the mask fits the model");
            model = masked.prepare(model);
            Stepper::Masked(Box::new(masked))
        }
    };
    let mut model = Some(model);
    group.bench_function(id, |b| {
        b.iter(|| {
            let m = step(model.take().unwrap(), &mut stepper, lr, &images, &labels);
            model = Some(black_box(m));
        })
    });
}

/// `no_mask` and masked at 0%, 80%, 98% for one case on one device.
fn masked_variants<M: Classifier + 'static>(
    c: &mut Criterion,
    case: Case<M>,
    device_name: &str,
    measurement: Duration,
) {
    let device = device_by_name(device_name).expect("backend compiled in");
    let mut group = c.benchmark_group("masked_step");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(measurement)
        .throughput(Throughput::Elements(case.shape[0] as u64));
    let variants: [(&str, Option<f64>); 4] = [
        ("no_mask", None),
        ("masked_0pct", Some(0.0)),
        ("masked_80pct", Some(0.8)),
        ("masked_98pct", Some(0.98)),
    ];
    for (label, sparsity) in variants {
        let id = BenchmarkId::new(format!("{}_{device_name}", case.name), label);
        bench_step(&mut group, id, &case, &device, sparsity);
    }
    group.finish();
}

/// The unmasked step of one case on several CPU backends.
fn cpu_backends<M: Classifier + 'static>(
    c: &mut Criterion,
    case: Case<M>,
    devices: &[&str],
    measurement: Duration,
) {
    let mut group = c.benchmark_group("cpu_backends");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(measurement)
        .throughput(Throughput::Elements(case.shape[0] as u64));
    for &name in devices {
        let device = device_by_name(name).expect("backend compiled in");
        bench_step(
            &mut group,
            BenchmarkId::new(case.name, name),
            &case,
            &device,
            None,
        );
    }
    group.finish();
}

fn env_flag(name: &str) -> bool {
    std::env::var(name).is_ok_and(|v| v == "1")
}

fn main() {
    // As the examples do: keep freed buffers for reuse (see burn_lottery::alloc).
    burn_lottery::alloc::retain_freed_memory();
    let mut c = Criterion::default().configure_from_args();
    let short = Duration::from_secs(3);
    let long = Duration::from_secs(15);

    masked_variants(&mut c, lenet_adam(), "ndarray", short);
    masked_variants(&mut c, resnet20_sgd(), "flex", long);

    cpu_backends(&mut c, lenet_adam(), &["ndarray", "flex"], short);
    cpu_backends(&mut c, lenet_sgd(), &["ndarray", "flex"], short);
    if env_flag("BURN_LOTTERY_BENCH_NDARRAY_RESNET20") {
        cpu_backends(&mut c, resnet20_sgd(), &["flex", "ndarray"], long);
    } else {
        cpu_backends(&mut c, resnet20_sgd(), &["flex"], long);
    }

    if env_flag("BURN_LOTTERY_BENCH_WGPU") {
        if cfg!(any(feature = "wgpu", feature = "wgpu-unfused")) {
            masked_variants(&mut c, lenet_adam(), "wgpu", short);
            masked_variants(&mut c, resnet20_sgd(), "wgpu", long);
        } else {
            eprintln!("BURN_LOTTERY_BENCH_WGPU=1 needs `--features wgpu`; wgpu groups not run");
        }
    }
    c.final_summary();
}
