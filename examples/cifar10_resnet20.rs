//! The paper's experiment: lottery tickets of ResNet-20 on CIFAR-10 with
//! rewinding to iteration 500 (Frankle et al., "Stabilizing the Lottery
//! Ticket Hypothesis"). Defaults reproduce the reference recipe: SGD lr 0.1,
//! momentum 0.9, weight decay 1e-4, batch 128, 62,560 iterations with lr
//! x0.1 at 31,280 and 46,920, augmentation, global magnitude pruning of 20%
//! of the remaining conv and fc weights per level.
//!
//! A full level is a GPU job (about 29 hours on the flex CPU backend here);
//! `--iterations` shortens every level (milestones scale along) and
//! `--dataset fashion-mnist` runs the same loop on 1-channel 28x28 images.
//!
//! ```sh
//! cargo run --release --features wgpu --example cifar10_resnet20 -- --device wgpu
//! cargo run --release --example cifar10_resnet20 -- --quick
//! ```

use std::path::PathBuf;

use burn_lottery::device::device_by_name;
use burn_lottery::prelude::*;
use burn_lottery::sparse::SparseTraining;
use clap::{Parser, ValueEnum};

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Dataset {
    Cifar10,
    FashionMnist,
}

#[derive(Parser, Debug)]
#[command(about = "IMP with rewinding: ResNet-20 on CIFAR-10")]
struct Args {
    /// Dataset.
    #[arg(long, value_enum, default_value = "cifar10")]
    dataset: Dataset,
    /// Directory with the dataset files (default: $CIFAR10_DIR /
    /// $FASHION_MNIST_DIR, the cache directory, or a download).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Where experiments are stored (one directory per configuration).
    #[arg(long, default_value = "experiments")]
    output: PathBuf,
    /// Device: flex, ndarray or wgpu (as compiled in).
    #[arg(long, default_value = "flex")]
    device: String,
    /// Pruning levels after the dense level 0.
    #[arg(long, default_value_t = 10)]
    levels: usize,
    /// Rewind iteration k.
    #[arg(long, default_value_t = 500)]
    rewind: u64,
    /// Train the random-reinitialization and random-pruning controls.
    #[arg(long)]
    controls: bool,
    /// Seed of initialization, data order and augmentation.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Training iterations per level (default: the recipe's 62,560).
    #[arg(long)]
    iterations: Option<u64>,
    /// Batch size (default: the recipe's 128).
    #[arg(long)]
    batch_size: Option<usize>,
    /// Save a resumable checkpoint every this many iterations.
    #[arg(long, default_value_t = 1000)]
    checkpoint_every: u64,
    /// A smoke run: 2 levels of 40 iterations at batch 32, rewinding to 10.
    #[arg(long)]
    quick: bool,
    /// Train levels below this density on the host sparse path
    /// (burn_lottery::sparse; `--sparse` alone: below 0.6, where ResNet-20's
    /// sparse step is faster than flex's dense one; its own experiment
    /// directories, results equal to rounding).
    #[arg(long, value_name = "DENSITY", num_args = 0..=1, default_missing_value = "0.6")]
    sparse: Option<f64>,
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
        args.levels = 2;
        args.iterations = Some(40);
        args.batch_size = Some(32);
        args.rewind = 10;
    }
    let device = device_by_name(&args.device)?;
    let data_dir = args.data_dir.as_deref();
    let (data, channels, name) = match args.dataset {
        Dataset::Cifar10 => (ExperimentData::cifar10(data_dir)?, 3, "resnet20_cifar10"),
        Dataset::FashionMnist => (
            ExperimentData::fashion_mnist(data_dir)?,
            1,
            "resnet20_fashion_mnist",
        ),
    };
    let mut training = TrainingRecipe::resnet20_cifar10();
    if let Some(iterations) = args.iterations {
        training = training.shortened(iterations);
    }
    if let Some(batch_size) = args.batch_size {
        training.batch_size = batch_size;
    }
    training.augment = data.augmentation.is_some();
    let config = ImpConfig {
        name: name.into(),
        training,
        levels: args.levels,
        rewind_iteration: args.rewind,
        seeds: Seeds::all(args.seed),
        controls: Controls::random(args.controls),
        sparse_training: args
            .sparse
            .map_or_else(SparseTraining::default, SparseTraining::below),
        ..ImpConfig::resnet20_cifar10()
    };
    let model = ResNetConfig::resnet20().with_input_channels(channels);
    let experiment = Experiment::new(&args.output, &device, &data, |d, s| model.init_seeded(d, s))
        .options(RunOptions {
            checkpoint_every: args.checkpoint_every,
            ..RunOptions::default()
        });
    let imp = experiment.imp(|_| config);
    eprintln!("experiment: {}", imp.directory().display());
    let report = imp.run_with(&mut Progress::new())?;
    println!("{}", report.table());
    println!(
        "report: {} and {}",
        report.directory.join("report.csv").display(),
        report.directory.join("report.svg").display()
    );
    Ok(())
}
