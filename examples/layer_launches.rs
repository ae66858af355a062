//! Kernel launches of single layers, forward and forward with backward, at
//! the shape of ResNet-20's first stage (batch 8, 16 channels, 32x32): which
//! of burn's layers the launches of a ResNet-20 step come from (BENCHMARKS.md,
//! "The launches by phase"). Each row is one pass after warm-up, the device
//! synchronized before and after it; a backward row includes the `sum` that
//! makes the scalar it starts from, and the input's gradient, as inside a
//! network.
//!
//! With `--kernels`, each row is followed by the kernels its last counted
//! pass launched (`KERNEL` lines, the input's random fill among them).
//!
//! ```sh
//! cargo run --features wgpu,cli --example layer_launches -- --kernels
//! # each operation its own kernel:
//! BURN_FUSION_MAX_EXPLORATIONS=0 cargo run --features wgpu,cli --example layer_launches
//! ```

use burn::nn::conv::Conv2dConfig;
use burn::nn::{BatchNormConfig, PaddingConfig2d};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Distribution, Tensor};
use burn_lottery::device::device_by_name;
use burn_lottery::launches::{LaunchCount, LaunchCounter};

/// Passes before counting (autotune tries kernels on a shape's first use).
const WARMUP: usize = 3;
/// Passes counted; each row is their mean.
const COUNTED: usize = 5;

fn main() {
    let device = device_by_name("wgpu").expect("a wgpu build").autodiff();
    let conv = Conv2dConfig::new([16, 16], [3, 3])
        .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
        .with_bias(false)
        .init(&device);
    let norm = BatchNormConfig::new(16).init(&device);
    let layers: [(&str, &dyn Fn(Tensor<4>) -> Tensor<4>); 5] = [
        ("identity", &|x| x),
        ("relu", &|x| relu(x)),
        ("conv3x3", &|x| conv.forward(x)),
        ("batchnorm", &|x| norm.forward(x)),
        ("conv3x3+batchnorm+relu", &|x| {
            relu(norm.forward(conv.forward(x)))
        }),
    ];
    let kernels = std::env::args().any(|a| a == "--kernels");
    for (name, layer) in layers {
        let (forward, forward_kernels) = launches(&device, || layer(input(&device)));
        let (backward, backward_kernels) = launches(&device, || {
            let output = layer(input(&device));
            let grads = output.clone().sum().backward();
            (output, grads)
        });
        println!("LAYER name={name} forward={forward:.1} forward_backward={backward:.1}");
        if kernels {
            for (pass, count) in [
                ("forward", forward_kernels),
                ("forward_backward", backward_kernels),
            ] {
                for (kernel, n) in count.most_launched(usize::MAX) {
                    println!("KERNEL layer={name} pass={pass} n={n} name={kernel}");
                }
            }
        }
    }
}

/// A batch in the middle of a network: its gradient is wanted.
fn input(device: &Device) -> Tensor<4> {
    Tensor::random([8, 16, 32, 32], Distribution::Default, device).require_grad()
}

/// The mean launches of `COUNTED` runs of `pass` after `WARMUP`, less the
/// input's own (its random fill), and the last run's kernels. What `pass`
/// returns is held until the device is synchronized: fusion skips work
/// whose result nobody holds.
fn launches<R>(device: &Device, pass: impl Fn() -> R) -> (f64, LaunchCount) {
    let mut total = 0.0;
    let mut last = LaunchCount::default();
    for i in 0..WARMUP + COUNTED {
        device.sync().expect("device sync");
        let counter = LaunchCounter::start();
        let held = pass();
        last = counter.finish(device).expect("device sync");
        let n = last.total();
        drop(held);
        let counter = LaunchCounter::start();
        let held = input(device);
        let fill = counter.finish(device).expect("device sync").total();
        drop(held);
        if i >= WARMUP {
            total += n as f64 - fill as f64;
        }
    }
    (total / COUNTED as f64, last)
}
