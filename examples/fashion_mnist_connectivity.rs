//! Connectivity between IMP levels (Paul et al., ICLR 2023, arXiv
//! 2210.03044) on the IMP experiments of `fashion_mnist_methods` (method
//! `imp`, or `lr_rewind` with `--lr-rewind`): the test-error barrier on the
//! linear path between the trained networks of every pair of consecutive
//! finished levels. The experiment is found under `--root` by its
//! configuration hash, built as `fashion_mnist_methods` builds it; the rows
//! are stored in its `connectivity.csv` (pairs already there are read back)
//! and copied to `--out`.
//!
//! ```sh
//! cargo run --features cli --example fashion_mnist_connectivity -- \
//!     --root experiments/methods_decaying --decaying --seed 0 --out connectivity.csv
//! ```

use std::path::PathBuf;

use burn_lottery::device::device_by_name;
use burn_lottery::prelude::*;
use burn_lottery::stability::{BarrierOptions, connectivity_csv};
use clap::Parser;

#[derive(Parser, Debug)]
#[command(about = "Error barriers between consecutive IMP levels: LeNet-300-100 on Fashion-MNIST")]
struct Args {
    /// Where `fashion_mnist_methods` stored the experiments.
    #[arg(long, default_value = "experiments/methods")]
    root: PathBuf,
    /// The experiment's seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// The experiment used the decaying-rate recipe.
    #[arg(long)]
    decaying: bool,
    /// The experiment retrained by learning-rate rewinding.
    #[arg(long)]
    lr_rewind: bool,
    /// Training iterations per level.
    #[arg(long, default_value_t = 8000)]
    iterations: u64,
    /// Pruning levels after the dense level 0.
    #[arg(long, default_value_t = 12)]
    levels: usize,
    /// Rewind iteration k.
    #[arg(long, default_value_t = 500)]
    rewind: u64,
    /// Points on each path (both ends included).
    #[arg(long, default_value_t = 30)]
    points: usize,
    /// Device: ndarray, flex or wgpu (as compiled in).
    #[arg(long, default_value = "flex")]
    device: String,
    /// Directory with the Fashion-MNIST IDX files.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Also write the rows to this CSV file.
    #[arg(long)]
    out: Option<PathBuf>,
}

fn main() {
    if let Err(error) = run() {
        eprintln!("error: {error}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let device = device_by_name(&args.device)?;
    let data = ExperimentData::fashion_mnist(args.data_dir.as_deref())?;
    let experiment = Experiment::new(&args.root, &device, &data, |d, s| {
        LeNetConfig::lenet_300_100().init_seeded(d, s)
    });
    let (iterations, k) = (args.iterations, args.rewind);
    let mut config = ImpConfig {
        levels: args.levels,
        ..ImpConfig::lenet_fashion_mnist(iterations, k, args.seed)
    };
    if args.decaying {
        config.training = TrainingRecipe::lenet_fashion_mnist_decaying().shortened(iterations);
    }
    if args.lr_rewind {
        config.retrain = Retrain::LearningRateRewinding;
    }
    let imp = experiment.imp(|_| config);
    eprintln!("{}", imp.directory().display());
    if !imp.directory().is_dir() {
        let method = if args.lr_rewind { "lr_rewind" } else { "imp" };
        return Err(format!(
            "no experiment at {}: fashion_mnist_methods --method {method} makes it, with the same \
             --root, --seed, --iterations, --levels and --rewind",
            imp.directory().display()
        )
        .into());
    }
    let analyzer = imp.stability().with_options(BarrierOptions {
        points: args.points,
        ..BarrierOptions::default()
    });
    let connectivity = analyzer.level_connectivity(Condition::Imp)?;
    eprintln!(
        "{} pairs ({} computed now)",
        connectivity.rows.len(),
        connectivity.computed
    );
    println!("| levels | weights | error L | error L+1 | barrier |");
    println!("|---|---|---|---|---|");
    for r in &connectivity.rows {
        println!(
            "| {} -> {} | {:.2}% -> {:.2}% | {:.2}% | {:.2}% | {:.2} points |",
            r.level_a,
            r.level_b,
            100.0 * r.weights_remaining_a,
            100.0 * r.weights_remaining_b,
            100.0 * r.endpoint_error_a,
            100.0 * r.endpoint_error_b,
            100.0 * r.error_barrier
        );
    }
    if let Some(out) = &args.out {
        std::fs::write(out, connectivity_csv(&connectivity.rows))?;
    }
    Ok(())
}
