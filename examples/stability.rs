//! Stability analysis of lottery tickets (instability / linear mode
//! connectivity, "Linear Mode Connectivity and the Lottery Ticket
//! Hypothesis"): for chosen levels of the IMP experiments of
//! `fashion_mnist_lenet` (or `cifar10_resnet20 --dataset fashion-mnist`),
//! train two copies of each subnetwork from its rewind point with two data
//! orders different from the main line's, then report their distance on the
//! mask and the test-error barrier along the linear path between them.
//!
//! The experiments are found under `--output` by their configuration hash,
//! built exactly as those examples build it (LeNet: the controls are
//! attached to the first `--rewind` iteration when `--seed` is in
//! `--control-seeds`). Missing experiments are an error unless
//! `--run-missing` is given. The copies are stored as branches of the
//! experiments (`branches/stability/...`), so a re-run reuses them. Do not
//! run it on an experiment that another process is still writing.
//!
//! Writes `stability.csv` (condition, level, weights_remaining,
//! rewind_iteration, l2_distance, l2_normalized, angle, error_barrier,
//! endpoint_error_a, endpoint_error_b), `stability_curves.csv` and the plots
//! `stability_barrier.svg`, `stability_rewind.svg`, `stability_alpha.svg`
//! to `--report`.
//!
//! ```sh
//! cargo run --release --example stability -- --iterations 8000 --output experiments
//! cargo run --release --example stability -- --model resnet20 --device flex
//! ```

mod flags;

use std::path::PathBuf;
use std::time::Instant;

use burn::tensor::Device;
use burn_lottery::data::ExperimentData;
use burn_lottery::device::device_by_name;
use burn_lottery::experiment::Experiment;
use burn_lottery::imp::{Controls, ImpConfig, Layout, RunOptions, Seeds};
use burn_lottery::models::{Classifier, LeNetConfig, ResNetConfig};
use burn_lottery::report::{MetricLabel, Progress};
use burn_lottery::stability::report::write_report;
use burn_lottery::stability::{BarrierOptions, BnStatistics, Condition, PairResult};
use burn_lottery::train::recipe::TrainingRecipe;
use clap::{Parser, ValueEnum};

#[derive(Clone, Copy, Debug, PartialEq, ValueEnum)]
enum Model {
    /// LeNet-300-100 (the experiments of `fashion_mnist_lenet`).
    Lenet,
    /// ResNet-20 with a reduced schedule (the experiments of
    /// `cifar10_resnet20 --dataset fashion-mnist`).
    Resnet20,
}

#[derive(Parser, Debug)]
#[command(
    about = "Stability analysis (error barrier, distance) of IMP subnetworks on Fashion-MNIST"
)]
struct Args {
    /// Network.
    #[arg(long, value_enum, default_value = "lenet")]
    model: Model,
    /// Directory with the Fashion-MNIST IDX files.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Where the IMP experiments are stored.
    #[arg(long, default_value = "experiments")]
    output: PathBuf,
    /// Where stability.csv and the plots go.
    #[arg(long, default_value = "experiments/stability")]
    report: PathBuf,
    /// Device: flex, ndarray or wgpu (as compiled in).
    #[arg(long, default_value = "flex")]
    device: String,
    /// Pruning levels of the IMP experiments (LeNet 12, ResNet-20 3).
    #[arg(long)]
    levels: Option<usize>,
    /// Training iterations per level (LeNet 8,000; ResNet-20 1,000).
    #[arg(long)]
    iterations: Option<u64>,
    /// Batch size of the ResNet-20 recipe.
    #[arg(long, default_value_t = 32)]
    batch_size: usize,
    /// Rewind iterations, comma-separated (LeNet 0,500; ResNet-20 500).
    #[arg(long, value_delimiter = ',')]
    rewind: Option<Vec<u64>>,
    /// Seed of the experiments (initialization, main data order).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Seeds whose experiments carry the controls (LeNet: on the first
    /// rewind iteration; ResNet-20: `--controls`).
    #[arg(long, value_delimiter = ',', default_value = "0")]
    control_seeds: Vec<u64>,
    /// ResNet-20: the experiment has the random-pruning controls.
    #[arg(long)]
    controls: bool,
    /// Levels to analyze, comma-separated (default 0,3,6,9,12 for LeNet, all for ResNet-20).
    #[arg(long, value_delimiter = ',')]
    analyze: Option<Vec<usize>>,
    /// The two data-order seeds of the copies (different from the main line's).
    #[arg(long, value_delimiter = ',', default_value = "1001,1002")]
    copies: Vec<u64>,
    /// Interpolation points in [0, 1], ends included.
    #[arg(long, default_value_t = 30)]
    points: usize,
    /// Recompute BatchNorm statistics on this many training batches at each
    /// alpha (default: interpolate them like the weights).
    #[arg(long)]
    bn_recompute: Option<usize>,
    /// Also evaluate the path on this many training examples.
    #[arg(long)]
    train_subset: Option<usize>,
    /// Run (or finish) the IMP experiments first if needed.
    #[arg(long)]
    run_missing: bool,
    /// A smoke run: LeNet 3 levels of 300 iterations, rewind 0, 5 points.
    #[arg(long)]
    quick: bool,
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
        args.levels = args.levels.or(Some(3));
        args.iterations = args.iterations.or(Some(300));
        args.rewind = args.rewind.or(Some(vec![0]));
        args.points = 5;
        args.run_missing = true;
    }
    if args.copies.len() != 2
        || args.copies[0] == args.copies[1]
        || args.copies.contains(&args.seed)
    {
        return Err("--copies needs two different seeds, both different from --seed".into());
    }
    flags::no_repeats("--rewind", args.rewind.as_deref().unwrap_or_default())?;
    flags::no_repeats("--analyze", args.analyze.as_deref().unwrap_or_default())?;
    let device = device_by_name(&args.device)?;
    let data = ExperimentData::fashion_mnist(args.data_dir.as_deref())?;
    let options = BarrierOptions {
        points: args.points,
        bn: match args.bn_recompute {
            Some(batches) => BnStatistics::Recompute { batches, seed: 0 },
            None => BnStatistics::Interpolate,
        },
        train_subset: args.train_subset,
        ..BarrierOptions::default()
    };
    let started = Instant::now();
    let results = match args.model {
        Model::Lenet => lenet_results(&args, &data, &device, &options)?,
        Model::Resnet20 => resnet_results(&args, &data, &device, &options)?,
    };
    let title = match args.model {
        Model::Lenet => "LeNet-300-100 on Fashion-MNIST: instability",
        Model::Resnet20 => "ResNet-20 on Fashion-MNIST: instability",
    };
    let error = MetricLabel::new("error", true)?;
    write_report(&results, &error, &args.report, "stability", title)?;
    print_table(&results);
    println!(
        "{} interpolation points; {}; copies with data orders {:?}; report in {} ({:.1} min)",
        options.points,
        options.bn.describe(),
        args.copies,
        args.report.display(),
        started.elapsed().as_secs_f64() / 60.0
    );
    Ok(())
}

/// The pairs as a table on stdout.
fn print_table(results: &[PairResult]) {
    println!(
        "{:<14} {:>5} {:>9} {:>6} {:>9} {:>8} {:>7} {:>8} {:>7} {:>7}",
        "condition",
        "level",
        "weights%",
        "k",
        "l2",
        "l2/norm",
        "angle",
        "barrier%",
        "err_a%",
        "err_b%"
    );
    for r in results.iter().map(PairResult::row) {
        println!(
            "{:<14} {:>5} {:>9.2} {:>6} {:>9.3} {:>8.4} {:>7.4} {:>8.2} {:>7.2} {:>7.2}",
            r.condition,
            r.level,
            100.0 * r.weights_remaining,
            r.rewind_iteration,
            r.l2_distance,
            r.l2_normalized,
            r.angle,
            100.0 * r.error_barrier,
            100.0 * r.endpoint_error_a,
            100.0 * r.endpoint_error_b
        );
    }
}

/// The pairs of the LeNet experiments (one per `--rewind`), configured
/// exactly as examples/fashion_mnist_lenet.rs configures them.
fn lenet_results(
    args: &Args,
    data: &ExperimentData,
    device: &Device,
    options: &BarrierOptions,
) -> Result<Vec<PairResult>, Box<dyn std::error::Error>> {
    let lenet = LeNetConfig::lenet_300_100();
    let levels = args.levels.unwrap_or(12);
    let iterations = args.iterations.unwrap_or(8000);
    let rewinds = args.rewind.clone().unwrap_or(vec![0, 500]);
    let mut results = Vec::new();
    for (i, &rewind) in rewinds.iter().enumerate() {
        let controls = i == 0 && args.control_seeds.contains(&args.seed);
        // Exactly the configuration of examples/fashion_mnist_lenet.rs.
        let config = ImpConfig {
            levels,
            controls: Controls::random(controls),
            ..ImpConfig::lenet_fashion_mnist(iterations, rewind, args.seed)
        };
        let conditions = conditions(controls);
        let analyze = args.analyze.clone().unwrap_or(vec![0, 3, 6, 9, 12]);
        results.extend(analyze_experiment(
            args,
            config,
            data,
            |d: &Device, s| lenet.init_seeded(d, s),
            device,
            options,
            conditions,
            &analyze,
        )?);
    }
    Ok(results)
}

/// The pairs of the ResNet-20 experiments (one per `--rewind`), configured
/// exactly as examples/cifar10_resnet20.rs configures them.
fn resnet_results(
    args: &Args,
    data: &ExperimentData,
    device: &Device,
    options: &BarrierOptions,
) -> Result<Vec<PairResult>, Box<dyn std::error::Error>> {
    let levels = args.levels.unwrap_or(3);
    let mut training =
        TrainingRecipe::resnet20_cifar10().shortened(args.iterations.unwrap_or(1000));
    training.batch_size = args.batch_size;
    training.augment = false;
    let model = ResNetConfig::resnet20().with_input_channels(1);
    let mut results = Vec::new();
    for &rewind in &args.rewind.clone().unwrap_or(vec![500]) {
        // Exactly the configuration of examples/cifar10_resnet20.rs.
        let config = ImpConfig {
            name: "resnet20_fashion_mnist".into(),
            training: training.clone(),
            levels,
            rewind_iteration: rewind,
            seeds: Seeds::all(args.seed),
            controls: Controls::random(args.controls),
            ..ImpConfig::resnet20_cifar10()
        };
        let conditions = conditions(args.controls);
        let analyze = args.analyze.clone().unwrap_or((0..=levels).collect());
        results.extend(analyze_experiment(
            args,
            config,
            data,
            |d: &Device, s| model.init_seeded(d, s),
            device,
            options,
            conditions,
            &analyze,
        )?);
    }
    Ok(results)
}

/// The conditions analyzed: IMP, and the random-pruning control when the
/// experiment has it.
fn conditions(controls: bool) -> &'static [Condition] {
    if controls {
        &[Condition::Imp, Condition::RandomPrune]
    } else {
        &[Condition::Imp]
    }
}

#[allow(clippy::too_many_arguments)]
fn analyze_experiment<M: Classifier>(
    args: &Args,
    config: ImpConfig,
    data: &ExperimentData,
    init: impl Fn(&Device, u64) -> M,
    device: &Device,
    options: &BarrierOptions,
    conditions: &[Condition],
    levels: &[usize],
) -> Result<Vec<PairResult>, Box<dyn std::error::Error>> {
    let max_level = config.levels;
    // The default levels are cut to the experiment's; levels asked for are not.
    let beyond = levels.iter().find(|&&l| l > max_level);
    if let Some(level) = beyond.filter(|_| args.analyze.is_some()) {
        let message = format!("--analyze {level}: the experiment has levels 0 to {max_level}");
        return Err(message.into());
    }
    let experiment = Experiment::new(&args.output, device, data, init).options(RunOptions {
        checkpoint_every: 2000,
        ..RunOptions::default()
    });
    let imp = experiment.imp(|_| config);
    eprintln!("experiment: {}", imp.directory().display());
    let analyzer = imp
        .stability()
        .with_options(options.clone())
        .with_progress(true);
    if args.run_missing {
        analyzer.run_experiment(&mut Progress::new())?;
    } else if !imp.directory().join(Layout::CONFIG).is_file() {
        let maker = match args.model {
            Model::Lenet => "fashion_mnist_lenet",
            Model::Resnet20 => "cifar10_resnet20 --dataset fashion-mnist",
        };
        let message = format!(
            "no experiment at {}: run `{maker}` first with the same --output, --iterations, \
             --levels and --rewind, or add --run-missing",
            imp.directory().display()
        );
        return Err(message.into());
    }
    let levels: Vec<usize> = levels.iter().copied().filter(|&l| l <= max_level).collect();
    Ok(
        analyzer.sweep(conditions, &levels, (args.copies[0], args.copies[1]), |r| {
            let row = r.row();
            eprintln!(
                "{} level {}: l2 {:.3}, barrier {:.2}%",
                row.condition,
                row.level,
                row.l2_distance,
                100.0 * row.error_barrier
            );
        })?,
    )
}
