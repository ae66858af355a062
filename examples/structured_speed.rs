//! The speed of structured pruning: LeNet-300-100 and ResNet-20 with a share
//! of their channels removed by L1-norm pruning and exported to smaller
//! dense networks ([`burn_lottery::models::export`]), against the dense
//! networks, on any burn backend (this is plain dense compute, so the
//! speed-up needs no sparse kernels).
//!
//! Removed: LeNet's hidden neurons (both hidden layers), ResNet-20's inner
//! block channels (`conv1` filters, `bn1`, `conv2` inputs; the stage widths
//! stay, see the export's docs), each layer losing the same share.
//!
//! Per setting it prints `SIZE` (trainable parameters), `STEP` (one
//! training step: forward, cross-entropy, backward, optimizer step; LeNet
//! Adam 1.2e-3 at batch 60, ResNet-20 SGD 0.1 with momentum at
//! `--resnet-batch`) and `INFER` (evaluation-mode forward at batch 1 and at
//! the training batch, logits read back) lines: medians over `--rounds`
//! rounds, each timing the dense network then the exported one, of the CPU
//! time (all threads) and the wall-clock time per call, and the median of
//! the per-round ratios dense / exported (above 1: the exported network is
//! faster).
//!
//! ```sh
//! RAYON_NUM_THREADS=1 cargo run --features wgpu,cli --example structured_speed
//! RAYON_NUM_THREADS=2 cargo run --features wgpu,cli --example structured_speed -- \
//!     --models resnet20 --removed 50,75 --rounds 5
//! ```

mod common;

use burn::optim::GradientsParams;
use burn::tensor::{Device, Int, Tensor};
use burn_lottery::device::device_by_name;
use burn_lottery::mask::{Mask, ParamSelector};
use burn_lottery::models::export::{lenet_channel_groups, resnet_channel_groups, shrink};
use burn_lottery::models::{Classifier, LeNetConfig, ResNetConfig, cross_entropy};
use burn_lottery::params::num_trainable_params;
use burn_lottery::prune::{ChannelGroup, StructuredConfig};
use clap::Parser;
use common::{
    ModelKind, OptimizerKind, cpu_threads, load_average, median, synthetic_batch, time_per_call,
};

#[derive(Parser, Debug)]
struct Args {
    /// Device: flex, ndarray or wgpu (as compiled in).
    #[arg(long, default_value = "flex")]
    device: String,
    /// Networks.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "lenet,resnet20"
    )]
    models: Vec<ModelKind>,
    /// Shares of channels removed, in percent.
    #[arg(long, value_delimiter = ',', default_value = "50,75")]
    removed: Vec<f64>,
    /// Rounds (each times both networks once).
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// ResNet-20's training (and large inference) batch.
    #[arg(long, default_value_t = 32)]
    resnet_batch: usize,
    /// Calls per network and round for ResNet-20 (LeNet: 50 times as many).
    #[arg(long, default_value_t = 3)]
    calls: usize,
}

fn main() {
    let args = Args::parse();
    burn_lottery::alloc::retain_freed_memory();
    let device = device_by_name(&args.device).expect("unknown device");
    println!(
        "# structured_speed {:?} threads {} load {}",
        args,
        cpu_threads(),
        load_average()
    );
    for &model in &args.models {
        for &removed in &args.removed {
            match model {
                ModelKind::Lenet => run(model, removed / 100.0, &args, &device, |d| {
                    let net = LeNetConfig::lenet_300_100().init_seeded(d, 0);
                    (net, lenet_channel_groups())
                }),
                ModelKind::Resnet20 => run(model, removed / 100.0, &args, &device, |d| {
                    let net = ResNetConfig::resnet20().init_seeded(d, 0);
                    let groups = resnet_channel_groups(net.blocks.len());
                    (net, groups)
                }),
            }
        }
    }
    println!("# done, load {}", load_average());
}

/// Times the dense network and its export with `removed` of its channels
/// pruned (L1 norm of the initial weights, one step).
fn run<M: Classifier>(
    kind: ModelKind,
    removed: f64,
    args: &Args,
    device: &Device,
    init: impl Fn(&Device) -> (M, Vec<ChannelGroup>),
) {
    let autodiff = device.clone().autodiff();
    let (dense, groups) = init(&autodiff);
    let all = Mask::dense(&dense, &ParamSelector::default()).expect("prunable weights");
    let mask = StructuredConfig::new(removed, groups.clone())
        .init()
        .expect("valid share")
        .one_shot(&dense, &all, 1)
        .expect("mask fits");
    let exported = shrink(&dense, &mask, &groups).expect("export");
    let label = format!("model={} removed={:.0}%", kind.name(), removed * 100.0);
    println!(
        "SIZE {label} params_dense={} params_exported={}",
        num_trainable_params(&dense),
        num_trainable_params(&exported)
    );
    let (optimizer, batch, calls) = match kind {
        ModelKind::Lenet => (OptimizerKind::Adam, 60, args.calls * 50),
        ModelKind::Resnet20 => (OptimizerKind::Sgd, args.resnet_batch, args.calls),
    };
    let pair = (dense.valid(), exported.clone());
    for b in [1, batch] {
        let (images, _) = synthetic_batch(device, b, kind.image_shape());
        let calls = if b == 1 { calls * 10 } else { calls };
        let times = alternate(args.rounds, |net| {
            let model = if net == 0 { &pair.0 } else { &pair.1 };
            time_per_call(calls, || {
                let logits: Vec<f32> = model
                    .forward(images.clone())
                    .into_data()
                    .try_to_vec()
                    .expect("f32");
                std::hint::black_box(logits);
            })
        });
        report(&format!("INFER {label} batch={b}"), &times);
    }
    let (images, labels) = synthetic_batch(&autodiff, batch, kind.image_shape());
    let mut nets = [dense, exported.train()];
    let mut optims = [optimizer.config().init(), optimizer.config().init()];
    let lr = optimizer
        .config()
        .learning_rate()
        .expect("a preset has a base rate");
    let times = alternate(args.rounds, |net| {
        time_per_call(calls, || {
            nets[net] = step(&nets[net], &mut optims[net], lr, &images, &labels);
        })
    });
    report(&format!("STEP {label} batch={batch}"), &times);
}

/// One training step of `model`.
fn step<M: Classifier>(
    model: &M,
    optim: &mut burn::optim::ModuleOptimizer,
    lr: f64,
    images: &Tensor<4>,
    labels: &Tensor<1, Int>,
) -> M {
    let loss = cross_entropy(model.forward(images.clone()), labels.clone());
    let grads = GradientsParams::from_grads(loss.backward(), model);
    let stepped = optim.step(lr, model.clone(), grads);
    let value: f32 = loss.into_scalar();
    assert!(value.is_finite(), "loss diverged");
    stepped
}

/// `rounds` rounds of timing network 0 (dense), then 1 (exported).
fn alternate(rounds: usize, mut time: impl FnMut(usize) -> (f64, f64)) -> [Vec<(f64, f64)>; 2] {
    let mut out = [Vec::new(), Vec::new()];
    for _ in 0..rounds {
        for (net, times) in out.iter_mut().enumerate() {
            times.push(time(net));
        }
    }
    out
}

/// Medians of CPU and wall-clock microseconds per call, and of the
/// per-round ratios dense / exported.
fn report(what: &str, [dense, exported]: &[Vec<(f64, f64)>; 2]) {
    let pick = |v: &[(f64, f64)], f: fn(&(f64, f64)) -> f64| v.iter().map(f).collect::<Vec<_>>();
    let ratios = |f: fn(&(f64, f64)) -> f64| -> Vec<f64> {
        dense
            .iter()
            .zip(exported)
            .map(|(d, e)| f(d) / f(e))
            .collect()
    };
    let (cpu, wall) = (ratios(|t| t.0), ratios(|t| t.1));
    let rounded = |v: &[f64]| {
        v.iter()
            .map(|r| (r * 100.0).round() / 100.0)
            .collect::<Vec<_>>()
    };
    println!(
        "{what} dense_cpu_us={:.1} exported_cpu_us={:.1} speedup_cpu={:.2} dense_wall_us={:.1} exported_wall_us={:.1} speedup_wall={:.2} speedups_wall={:?}",
        median(pick(dense, |t| t.0)),
        median(pick(exported, |t| t.0)),
        median(cpu.clone()),
        median(pick(dense, |t| t.1)),
        median(pick(exported, |t| t.1)),
        median(wall.clone()),
        rounded(&wall),
    );
}
