//! Cost of mask enforcement: one training step (forward, cross-entropy,
//! backward, optimizer, mask enforcement) with no mask at all vs. masked at
//! 0%, 80% and 98% sparsity.
//!
//! Models: LeNet-300-100 (batch 60, Adam, ndarray), a small conv net
//! (ResNet-8: the CIFAR ResNet with one block per stage, batch 32, SGD
//! momentum, ndarray), and
//! ResNet-20 (batch 128, SGD momentum) on flex, the fast CPU backend
//! (ndarray needs ~30 s per ResNet-20 step). Set `BENCH_RESNET20_DEVICE`
//! (`flex`, `ndarray`, `wgpu`) to change the last one, or to `none` to skip it.
//!
//! Run: `cargo bench --features wgpu --bench masked_training`

use std::hint::black_box;

use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Int, Tensor, TensorData};
use burn_lottery::device::device_by_name;
use burn_lottery::mask::{Mask, ParamSelector};
use burn_lottery::models::{Classifier, LeNetConfig, ResNetConfig, cross_entropy};
use burn_lottery::prune::{MagnitudePrunerConfig, Pruner};
use burn_lottery::train::masked::MaskedOptimizer;
use burn_lottery::train::recipe::OptimizerConfig;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

enum Stepper {
    Plain(ModuleOptimizer),
    Masked(MaskedOptimizer),
}

fn step<M: Classifier>(
    model: M,
    stepper: &mut Stepper,
    images: &Tensor<4>,
    labels: &Tensor<1, Int>,
) -> M {
    let loss = cross_entropy(model.forward(images.clone()), labels.clone());
    let grads = GradientsParams::from_grads(loss.backward(), &model);
    match stepper {
        Stepper::Plain(o) => o.step(0.01, model, grads),
        Stepper::Masked(o) => o.step(0.01, model, grads),
    }
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

/// Benchmarks one model at all sparsities.
fn bench_model<M: Classifier + 'static>(
    c: &mut Criterion,
    name: &str,
    device: &Device,
    make: impl Fn(&Device) -> M,
    optimizer: OptimizerConfig,
    shape: [usize; 4],
) {
    let device = device.clone().autodiff();
    let (images, labels) = batch(&device, shape);
    let base = make(&device);
    let dense = Mask::dense(&base, &ParamSelector::default()).unwrap();
    let mut group = c.benchmark_group(name);
    group.sample_size(10);
    group.throughput(Throughput::Elements(shape[0] as u64));
    let variants: [(&str, Option<f64>); 4] = [
        ("no_mask", None),
        ("masked_0pct", Some(0.0)),
        ("masked_80pct", Some(0.8)),
        ("masked_98pct", Some(0.98)),
    ];
    for (label, sparsity) in variants {
        let mut model = Some(make(&device));
        let mut stepper = match sparsity {
            None => Stepper::Plain(optimizer.init()),
            Some(s) => {
                let mask = if s == 0.0 {
                    dense.clone()
                } else {
                    MagnitudePrunerConfig::new(s)
                        .init()
                        .unwrap()
                        .next_mask(&base, &dense)
                        .unwrap()
                };
                let masked = MaskedOptimizer::new(optimizer.init(), &mask, &device);
                model = Some(masked.prepare(model.take().unwrap()));
                Stepper::Masked(masked)
            }
        };
        group.bench_function(BenchmarkId::from_parameter(label), |b| {
            b.iter(|| {
                let m = step(model.take().unwrap(), &mut stepper, &images, &labels);
                model = Some(black_box(m));
            })
        });
    }
    group.finish();
}

fn masked_training(c: &mut Criterion) {
    let ndarray = device_by_name("ndarray").expect("ndarray backend compiled in");
    bench_model(
        c,
        "lenet_300_100_b60_adam_ndarray",
        &ndarray,
        |d| LeNetConfig::lenet_300_100().init_seeded(d, 0),
        OptimizerConfig::adam(1.2e-3),
        [60, 1, 28, 28],
    );
    bench_model(
        c,
        "resnet8_b32_sgd_ndarray",
        &ndarray,
        |d| ResNetConfig::new().with_depth(8).init_seeded(d, 0),
        OptimizerConfig::sgd_momentum(0.1),
        [32, 3, 32, 32],
    );
    let resnet_device = std::env::var("BENCH_RESNET20_DEVICE").unwrap_or_else(|_| "flex".into());
    if resnet_device != "none" {
        let device = device_by_name(&resnet_device).expect("BENCH_RESNET20_DEVICE");
        bench_model(
            c,
            &format!("resnet20_b128_sgd_{resnet_device}"),
            &device,
            |d| ResNetConfig::resnet20().init_seeded(d, 0),
            OptimizerConfig::sgd_momentum(0.1),
            [128, 3, 32, 32],
        );
    }
}

criterion_group!(benches, masked_training);
criterion_main!(benches);
