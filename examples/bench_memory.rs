//! Memory figures for BENCHMARKS.md:
//!
//! 1. the bytes of mask state per parameter of ResNet-20 at 0%, 80% and 98%
//!    sparsity: the host [`Mask`] (one `bool` per weight), its bit-packed
//!    file (`Mask::save`), its safetensors export, and the copy that
//!    `MaskedOptimizer` keeps on the device (one `f32` per weight of every
//!    layer that prunes at least one weight, uploaded at the first step; its
//!    host side keeps one `bool` per such weight to upload it from);
//! 2. the peak resident memory (`VmHWM`) of a process that runs ResNet-20
//!    training steps (batch 128, SGD momentum) on a CPU backend with no mask
//!    and masked at 80% and 98%: each in its own child process (this
//!    program, re-run with `--child`), plus one that only builds the model.
//!
//! ```sh
//! cargo run --release --features wgpu --example bench_memory -- --device flex
//! ```

mod common;

use std::process::Command;

use burn_lottery::device::device_by_name;
use burn_lottery::models::ResNetConfig;
use burn_lottery::params::num_trainable_params;
use clap::Parser;
use common::{ModelKind, OptimizerKind, Reads, magnitude_mask, measure_reading, peak_rss_bytes};

#[derive(Parser, Debug)]
struct Args {
    /// CPU device for the peak-memory runs: flex or ndarray.
    #[arg(long, default_value = "flex")]
    device: String,
    /// Timed training steps per child (after one warm-up step).
    #[arg(long, default_value_t = 2)]
    steps: usize,
    /// Internal: run one measurement (`idle`, `none` or a sparsity) and
    /// print its peak memory.
    #[arg(long)]
    child: Option<String>,
}

fn main() {
    burn_lottery::alloc::retain_freed_memory();
    let args = Args::parse();
    let device = match device_by_name(&args.device) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    };
    if let Some(what) = &args.child {
        child(what, &device, args.steps);
        return;
    }
    mask_state(&device);
    println!();
    println!(
        "## Peak resident memory, ResNet-20 training steps (batch 128, SGD momentum, {}, 1 warm-up + {} steps)",
        args.device, args.steps
    );
    println!();
    println!("| process | peak RSS (VmHWM) |");
    println!("|---|---|");
    let exe = std::env::current_exe().expect("own path");
    for what in ["idle", "none", "0.8", "0.98", "none"] {
        let out = Command::new(&exe)
            .args(["--device", &args.device, "--steps", &args.steps.to_string()])
            .args(["--child", what])
            .output()
            .expect("run child");
        let text = String::from_utf8_lossy(&out.stdout);
        let line = text.lines().find(|l| l.starts_with("PEAK")).unwrap_or("?");
        let mib = line
            .split_whitespace()
            .find_map(|f| f.strip_prefix("peak_rss_mib="))
            .unwrap_or("?");
        let label = match what {
            "idle" => "model built, no step".to_string(),
            "none" => "no mask".to_string(),
            s => format!("masked {}%", (s.parse::<f64>().unwrap() * 100.0).round()),
        };
        println!("| {label} | {mib} MiB |");
    }
}

fn child(what: &str, device: &burn::tensor::Device, steps: usize) {
    match what {
        "idle" => {
            let model = ResNetConfig::resnet20().init_seeded(&device.clone().autodiff(), 0);
            std::hint::black_box(&model);
        }
        "none" => {
            measure_reading(
                ModelKind::Resnet20,
                device,
                OptimizerKind::Sgd,
                128,
                None,
                1,
                steps,
                Reads::Every(1),
                false,
            );
        }
        s => {
            let sparsity: f64 = s.parse().expect("sparsity");
            measure_reading(
                ModelKind::Resnet20,
                device,
                OptimizerKind::Sgd,
                128,
                Some(sparsity),
                1,
                steps,
                Reads::Every(1),
                false,
            );
        }
    }
    println!(
        "PEAK what={what} peak_rss_mib={:.1}",
        peak_rss_bytes().unwrap_or(0) as f64 / (1024.0 * 1024.0)
    );
}

fn mask_state(device: &burn::tensor::Device) {
    let model = ResNetConfig::resnet20().init_seeded(device, 0);
    let trainable = num_trainable_params(&model);
    let dir = tempfile::tempdir().expect("temporary directory");
    println!("## Mask state of ResNet-20 ({trainable} trainable parameters)");
    println!();
    println!(
        "| sparsity | prunable weights | host `Mask` bytes | per weight | file (`Mask::save`) | bits per weight | safetensors | device copy (`MaskedOptimizer`) | per weight |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for sparsity in [0.0, 0.8, 0.98] {
        let mask = magnitude_mask(&model, sparsity);
        let weights = mask.total_count();
        // Heap bytes of the host mask: keep flags, shapes, paths (the map's
        // own nodes not counted).
        let host: usize = mask
            .layers()
            .map(|(path, layer)| {
                std::mem::size_of_val(layer.kept())
                    + std::mem::size_of_val(layer.shape())
                    + path.len()
            })
            .sum();
        let file = dir.path().join(format!("mask-{sparsity}.bin"));
        mask.save(&file).expect("save mask");
        let file_bytes = std::fs::metadata(&file).expect("mask file").len() as usize;
        let st_bytes = mask.to_safetensors().len();
        // MaskedParams keeps one f32 per entry of each layer that prunes
        // something (fully kept layers are skipped).
        let device_bytes: usize = mask
            .layers()
            .filter(|(_, l)| l.kept_count() < l.total_count())
            .map(|(_, l)| l.total_count() * std::mem::size_of::<f32>())
            .sum();
        println!(
            "| {:.0}% | {weights} | {host} | {:.3} B | {file_bytes} B | {:.3} | {st_bytes} B | {device_bytes} B | {:.2} B |",
            sparsity * 100.0,
            host as f64 / weights as f64,
            file_bytes as f64 * 8.0 / weights as f64,
            device_bytes as f64 / weights as f64,
        );
    }
    let _ = dir.close();
}
