//! Images per second of one training step (forward, cross-entropy, backward,
//! optimizer, mask enforcement) on a fixed synthetic batch: the crate's side
//! of `benches/compare.sh` (PyTorch's is `benches/pytorch/train_step.py`).
//!
//! Prints one `RESULT key=value ...` line per run, the same format as the
//! PyTorch script; with `--phases` also a `PHASES` line (the device is
//! synchronized after every phase, so the phases add up to slightly more
//! than an unsynchronized step), with `--count-launches` too each phase's
//! kernel launches per step (synchronizing also flushes fusion's queue at
//! each phase's end, so kernels are not fused across phases).
//!
//! ```sh
//! cargo run --release --features wgpu --example train_step_throughput -- \
//!     --model resnet20 --device flex --steps 5
//! cargo run --release --features wgpu --example train_step_throughput -- \
//!     --model lenet --optimizer adam --device ndarray --steps 200 --mask 0.8
//! # the host sparse path at 7% density:
//! cargo run --release --features wgpu --example train_step_throughput -- \
//!     --model resnet20 --steps 5 --mask 0.93 --sparse
//! ```
//!
//! burn's CPU backends use one thread per core (rayon); set
//! `RAYON_NUM_THREADS` to pin the count (compare.sh sets it to the PyTorch
//! thread count).

mod common;

use burn::tensor::Device;
use burn_lottery::device::device_by_name;
use clap::Parser;
use common::{
    ModelKind, OptimizerKind, Phases, Reads, StepTiming, cpu_threads, load_average,
    measure_reading, measure_sparse, peak_rss_bytes,
};

/// Time training steps of ResNet-20 or LeNet-300-100.
#[derive(Parser, Debug)]
struct Args {
    /// The network.
    #[arg(long, value_enum, default_value = "resnet20")]
    model: ModelKind,
    /// Device: flex, ndarray or wgpu (as compiled in).
    #[arg(long, default_value = "flex")]
    device: String,
    /// Optimizer (default: SGD for ResNet-20, Adam for LeNet).
    #[arg(long, value_enum)]
    optimizer: Option<OptimizerKind>,
    /// Batch size (default: 128 for ResNet-20, 60 for LeNet).
    #[arg(long)]
    batch_size: Option<usize>,
    /// `none` (no mask at all) or a sparsity in [0, 1) enforced with a
    /// global-magnitude mask.
    #[arg(long, default_value = "none")]
    mask: String,
    /// Untimed steps first.
    #[arg(long, default_value_t = 2)]
    warmup: usize,
    /// Timed steps.
    #[arg(long, default_value_t = 5)]
    steps: usize,
    /// Read the loss back and wait for the device every this many steps
    /// (the trainer's `loss_every`); 1 reads every step, as a loop logging
    /// every loss does.
    #[arg(long, default_value_t = 1)]
    sync_every: usize,
    /// Also time each phase (synchronizing the device after each).
    #[arg(long)]
    phases: bool,
    /// Count the kernel launches of the timed steps (wgpu builds) and print
    /// them per step in a `LAUNCHES` line (the count costs a little time).
    #[arg(long)]
    count_launches: bool,
    /// Train on the host sparse path (`burn_lottery::sparse::SparseTicket`,
    /// needs `--mask`): only the kept weights are computed.
    #[arg(long)]
    sparse: bool,
    /// Leave glibc's malloc at its defaults (by default the example calls
    /// `burn_lottery::alloc::retain_freed_memory`, as the other examples do).
    #[arg(long)]
    default_malloc: bool,
}

fn main() {
    let args = Args::parse();
    let retained = !args.default_malloc && burn_lottery::alloc::retain_freed_memory();
    let device = device_by_name(&args.device).unwrap_or_else(|error| fail(&error.to_string()));
    let sparsity = parse_sparsity(&args.mask);
    if args.steps == 0 {
        fail("--steps must be at least 1");
    }
    let optimizer = args.optimizer.unwrap_or(match args.model {
        ModelKind::Resnet20 => OptimizerKind::Sgd,
        ModelKind::Lenet => OptimizerKind::Adam,
    });
    let batch = args.batch_size.unwrap_or(match args.model {
        ModelKind::Resnet20 => 128,
        ModelKind::Lenet => 60,
    });
    let timing = measure(&args, &device, optimizer, batch, sparsity);
    let implementation = if args.sparse {
        "burn-lottery-sparse".to_string()
    } else {
        format!("burn-{}", args.device)
    };
    print_result(&timing, &implementation, &args, optimizer, batch, retained);
    #[cfg(feature = "cubecl")]
    if let Some(launches) = &timing.launches {
        print_launches(launches, &implementation, &args, timing.steps.len());
    }
    if let Some(phases) = &timing.phases {
        print_phases(phases, &args, timing.steps.len());
    }
}

/// Prints `error: {message}` and exits with status 2 (a bad flag).
fn fail(message: &str) -> ! {
    eprintln!("error: {message}");
    std::process::exit(2);
}

/// `--mask`: `none`, or a sparsity in [0, 1).
fn parse_sparsity(mask: &str) -> Option<f64> {
    match mask {
        "none" => None,
        s => match s.parse::<f64>() {
            Ok(v) if (0.0..1.0).contains(&v) => Some(v),
            _ => fail(&format!(
                "--mask must be `none` or a sparsity in [0, 1), got `{s}`"
            )),
        },
    }
}

/// Times the steps the flags ask for: on the host sparse path with
/// `--sparse`, else on `device`.
fn measure(
    args: &Args,
    device: &Device,
    optimizer: OptimizerKind,
    batch: usize,
    sparsity: Option<f64>,
) -> StepTiming {
    match (args.sparse, sparsity) {
        (true, Some(sparsity)) => measure_sparse(
            args.model,
            optimizer,
            batch,
            sparsity,
            args.warmup,
            args.steps,
        ),
        (true, None) => fail("--sparse needs --mask (a sparsity)"),
        (false, _) => measure_reading(
            args.model,
            device,
            optimizer,
            batch,
            sparsity,
            args.warmup,
            args.steps,
            if args.phases {
                Reads::EveryStepWithPhases
            } else {
                Reads::Every(args.sync_every)
            },
            args.count_launches,
        ),
    }
}

/// The `RESULT` line, in the format of the PyTorch script's.
fn print_result(
    timing: &StepTiming,
    implementation: &str,
    args: &Args,
    optimizer: OptimizerKind,
    batch: usize,
    retained: bool,
) {
    let median = timing.median_s();
    println!(
        "RESULT impl={} model={} batch={} optimizer={} mask={} threads={} steps={} \
         sync_every={} median_s={:.6} mean_s={:.6} cpu_s={:.6} images_per_s={:.1} \
         peak_rss_mib={:.1} malloc={} load1={}",
        implementation,
        args.model.name(),
        batch,
        optimizer.name(),
        args.mask,
        cpu_threads(),
        timing.steps.len(),
        args.sync_every,
        median,
        timing.mean_s(),
        timing.cpu_per_step_s(),
        batch as f64 / median,
        peak_rss_bytes().unwrap_or(0) as f64 / (1024.0 * 1024.0),
        if retained { "retain" } else { "default" },
        load_average(),
    );
}

/// The `PHASES` line: each phase's milliseconds per step, and with
/// `--count-launches` its launches per step.
fn print_phases(p: &Phases, args: &Args, steps: usize) {
    let ms = |d: std::time::Duration| d.as_secs_f64() * 1e3 / steps as f64;
    let launches = if args.count_launches {
        let [f, b, g, o, w] = p.launches.map(|n| n as f64 / steps as f64);
        format!(
            " forward_launches={f:.1} backward_launches={b:.1} mask_grads_launches={g:.1} \
             optimizer_launches={o:.1} mask_weights_launches={w:.1}"
        )
    } else {
        String::new()
    };
    println!(
        "PHASES impl=burn-{} model={} mask={} forward_ms={:.2} backward_ms={:.2} \
         mask_grads_ms={:.2} optimizer_ms={:.2} mask_weights_ms={:.2}{launches}",
        args.device,
        args.model.name(),
        args.mask,
        ms(p.forward),
        ms(p.backward),
        ms(p.mask_grads),
        ms(p.optimizer),
        ms(p.mask_weights),
    );
}

/// One `LAUNCHES` line (launches per step, and how many distinct kernels),
/// then one `KERNEL` line per kernel with its launches per step, most
/// launched first.
#[cfg(feature = "cubecl")]
fn print_launches(
    launches: &burn_lottery::launches::LaunchCount,
    implementation: &str,
    args: &Args,
    steps: usize,
) {
    let per_step = |n: usize| n as f64 / steps as f64;
    println!(
        "LAUNCHES impl={implementation} model={} mask={} sync_every={} steps={steps} \
         per_step={:.1} kernels={}",
        args.model.name(),
        args.mask,
        args.sync_every,
        per_step(launches.total()),
        launches.by_kernel().count(),
    );
    for (name, n) in launches.most_launched(usize::MAX) {
        println!("KERNEL per_step={:.1} name={name}", per_step(n));
    }
}
