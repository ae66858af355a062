//! Lottery tickets of LeNet-300-100 on Fashion-MNIST (the original lottery
//! ticket protocol): Adam 1.2e-3, batch 60, global magnitude pruning of 20%
//! per level over the hidden layers' weights and 10% per level (layer-wise)
//! of the output layer, biases never pruned.
//!
//! Runs IMP rewinding to each `--rewind` iteration for each `--seeds` seed,
//! plus the random-reinitialization and random-pruning controls for the
//! `--control-seeds`, then prints one table and writes `report.csv` and
//! `report.svg` to `--report`.
//!
//! ```sh
//! cargo run --release --example fashion_mnist_lenet -- --iterations 8000
//! ```

mod flags;

use std::path::PathBuf;
use std::time::Instant;

use burn_lottery::device::device_by_name;
use burn_lottery::prelude::*;
use burn_lottery::report::{self, MetricLabel, ReportRow, Table};
use burn_lottery::sparse::SparseTraining;
use clap::Parser;

#[derive(Parser, Debug)]
#[command(about = "IMP with rewinding: LeNet-300-100 on Fashion-MNIST")]
struct Args {
    /// Directory with the Fashion-MNIST IDX files (default: $FASHION_MNIST_DIR,
    /// Debian's /usr/share/datasets/fashion-mnist, or a download).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Where experiments are stored (one directory per configuration).
    #[arg(long, default_value = "experiments")]
    output: PathBuf,
    /// Where the combined report.csv and report.svg go.
    #[arg(long, default_value = "experiments/fashion_mnist_lenet")]
    report: PathBuf,
    /// Device: flex, ndarray or wgpu (as compiled in). flex is the fastest
    /// CPU backend for this network (BENCHMARKS.md); ndarray gives
    /// bit-identical results across runs and interruptions (tested).
    #[arg(long, default_value = "flex")]
    device: String,
    /// Pruning levels after the dense level 0.
    #[arg(long, default_value_t = 12)]
    levels: usize,
    /// Training iterations per level (the paper: 50,000).
    #[arg(long, default_value_t = 50_000)]
    iterations: u64,
    /// Rewind iterations to run, comma-separated (0 = the original lottery ticket).
    #[arg(long, value_delimiter = ',', default_value = "0,500")]
    rewind: Vec<u64>,
    /// Seeds (initialization, data order), comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "0")]
    seeds: Vec<u64>,
    /// Seeds for which the controls (random reinit, random pruning) run,
    /// attached to the first rewind iteration.
    #[arg(long, value_delimiter = ',', default_value = "0")]
    control_seeds: Vec<u64>,
    /// Save a resumable checkpoint every this many iterations.
    #[arg(long, default_value_t = 2000)]
    checkpoint_every: u64,
    /// A smoke run: 3 levels of 300 iterations.
    #[arg(long)]
    quick: bool,
    /// Train sparse levels on the sparse path (burn_lottery::sparse; its
    /// own experiment directories, results equal to rounding).
    #[arg(long)]
    sparse: bool,
}

fn main() {
    // Keep freed buffers for reuse (faster CPU steps; see burn_lottery::alloc).
    burn_lottery::alloc::retain_freed_memory();
    if let Err(error) = run() {
        eprintln!("error: {error}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = Args::parse();
    if args.quick {
        args.levels = 3;
        args.iterations = 300;
        args.rewind.retain(|&k| k < 300);
    }
    check_lists(&args)?;
    let device = device_by_name(&args.device)?;
    let data = ExperimentData::fashion_mnist(args.data_dir.as_deref())?;

    let started = Instant::now();
    let mut rows: Vec<ReportRow> = Vec::new();
    let experiment = Experiment::new(&args.output, &device, &data, |d, s| {
        LeNetConfig::lenet_300_100().init_seeded(d, s)
    })
    .options(RunOptions {
        checkpoint_every: args.checkpoint_every,
        ..RunOptions::default()
    });
    let mut studies = Vec::new();
    for &seed in &args.seeds {
        for (i, &rewind) in args.rewind.iter().enumerate() {
            let controls = i == 0 && args.control_seeds.contains(&seed);
            let study = experiment.imp(|_| lenet_config(&args, seed, rewind, controls));
            // Checked before anything trains: a bad flag (a rewind point
            // past --iterations) fails now, not after the first chains.
            study.imp().validate()?;
            studies.push((seed, rewind, study));
        }
    }
    for (seed, rewind, study) in &studies {
        eprintln!(
            "seed {seed}, rewind to iteration {rewind}: {}",
            study.directory().display()
        );
        rows.extend(study.run_with(&mut Progress::new())?.rows);
    }
    std::fs::create_dir_all(&args.report)?;
    let accuracy = MetricLabel::accuracy();
    report::write_csv(&rows, &accuracy, &args.report.join("report.csv"))?;
    report::plot_accuracy_vs_weights(
        &rows,
        "LeNet-300-100 on Fashion-MNIST",
        &args.report.join("report.svg"),
    )?;
    println!("{}", Table::new(&rows, accuracy));
    println!(
        "report: {} and {} ({:.1} min)",
        args.report.join("report.csv").display(),
        args.report.join("report.svg").display(),
        started.elapsed().as_secs_f64() / 60.0
    );
    Ok(())
}

/// `--seeds` and `--rewind` each name something to run, and nothing twice
/// ([`flags::no_repeats`]).
fn check_lists(args: &Args) -> Result<(), String> {
    for (flag, values) in [("--seeds", &args.seeds), ("--rewind", &args.rewind)] {
        if values.is_empty() {
            let quick = if args.quick {
                " (--quick keeps rewind points below 300)"
            } else {
                ""
            };
            return Err(format!("{flag} leaves nothing to run{quick}"));
        }
        flags::no_repeats(flag, values)?;
    }
    Ok(())
}

/// The paper's protocol (a preset), with this run's levels and controls.
fn lenet_config(args: &Args, seed: u64, rewind: u64, controls: bool) -> ImpConfig {
    ImpConfig {
        levels: args.levels,
        controls: Controls::random(controls),
        sparse_training: if args.sparse {
            SparseTraining::on()
        } else {
            SparseTraining::default()
        },
        ..ImpConfig::lenet_fashion_mnist(args.iterations, rewind, seed)
    }
}
