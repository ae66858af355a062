//! The pruning methods that followed the lottery-ticket paper, compared on
//! the README's Fashion-MNIST LeNet-300-100 protocol (Adam 1.2e-3, batch 60,
//! `--iterations` per level, 12 levels; global magnitude pruning of 20% per
//! level over the hidden layers and 10% of the output layer): at every
//! level's density,
//!
//! * `imp`: IMP with weight rewinding to `--rewind` (the main job);
//! * `lr_rewind`: IMP with learning-rate rewinding (trained weights kept,
//!   schedule replayed from `--rewind`);
//! * `finetune`: IMP with fine-tuning (trained weights kept, `T - k`
//!   iterations at the final rate: the same budget);
//! * `oneshot`: one-shot magnitude pruning of the dense trained network to
//!   the level's per-layer counts, weights rewound to `--rewind`;
//! * `snip`, `grasp`, `synflow`, `magnitude_init`, `random_init`: pruning at
//!   initialization to the level's total count (global ranking), trained from
//!   the initialization;
//! * `early_bird`: early-bird tickets (You et al.): the magnitude mask at
//!   the level's per-layer counts taken every `--epoch-iterations` of the
//!   dense run, drawn once 5 consecutive distances stay below 0.1, weights
//!   rewound to `--rewind`.
//!
//! `--decaying` trains every level with the decaying-rate recipe
//! (`TrainingRecipe::lenet_fashion_mnist_decaying`: x0.1 at 50% and 75% of
//! `--iterations`), under which learning-rate rewinding and fine-tuning
//! differ (Renda et al.); use its own `--root` and `--report-name`.
//!
//! Each (seed, method) is an independent experiment under `--root`, so they
//! can run as separate processes in parallel; each writes its rows to
//! `<root>/rows/<condition>_seed<seed>.csv`. `--report` merges every rows file
//! into `methods.csv` and `methods.svg` (mean over seeds) in `--report-dir`
//! and prints the table.
//!
//! ```sh
//! # one condition (run every method for seeds 0 and 1, e.g. in parallel):
//! RAYON_NUM_THREADS=1 cargo run --release --example fashion_mnist_methods -- \
//!     --seed 0 --method snip --root experiments/methods
//! # then the report:
//! cargo run --release --example fashion_mnist_methods -- --report --root experiments/methods
//! ```

use std::path::{Path, PathBuf};
use std::time::Instant;

use burn_lottery::device::device_by_name;
use burn_lottery::prelude::*;
use burn_lottery::prune::{DensityRule, EarlyBirdConfig};
use burn_lottery::report::{self, MetricLabel, ReportRow};
use clap::{Parser, ValueEnum};

/// A compared condition.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
#[value(rename_all = "snake_case")]
enum Method {
    Imp,
    LrRewind,
    Finetune,
    Oneshot,
    Snip,
    Grasp,
    Synflow,
    MagnitudeInit,
    RandomInit,
    EarlyBird,
}

impl Method {
    fn file_name(self) -> String {
        self.to_possible_value()
            .expect("no skipped values")
            .get_name()
            .to_string()
    }

    /// The experiment of this method for `args` and `seed`.
    fn config(self, args: &Args, seed: u64) -> ImpConfig {
        let (iterations, k) = (args.iterations, args.rewind);
        let mut base = ImpConfig {
            levels: args.levels,
            ..ImpConfig::lenet_fashion_mnist(iterations, k, seed)
        };
        if args.decaying {
            base.training = TrainingRecipe::lenet_fashion_mnist_decaying().shortened(iterations);
        }
        let rule = match args.density_rule {
            Rule::Global => DensityRule::Global,
            Rule::Uniform => DensityRule::Uniform,
            Rule::Erk => DensityRule::Erk,
        };
        let at_init = |criterion| ImpConfig {
            rewind_iteration: 0,
            method: PruningMethod::AtInitialization(
                AtInitConfig::new(criterion).with_density_rule(rule),
            ),
            ..base.clone()
        };
        match self {
            Self::Imp => base,
            Self::LrRewind => ImpConfig {
                retrain: Retrain::LearningRateRewinding,
                ..base
            },
            Self::Finetune => ImpConfig {
                retrain: Retrain::FineTuning {
                    iterations: iterations - k,
                },
                ..base
            },
            Self::Oneshot => ImpConfig {
                method: PruningMethod::OneShot,
                ..base
            },
            Self::Snip => at_init(InitCriterion::Snip),
            Self::Grasp => at_init(InitCriterion::Grasp),
            Self::Synflow => at_init(InitCriterion::Synflow),
            Self::MagnitudeInit => at_init(InitCriterion::Magnitude),
            Self::RandomInit => at_init(InitCriterion::Random),
            Self::EarlyBird => ImpConfig {
                method: PruningMethod::EarlyBird(EarlyBirdConfig::new(args.epoch_iterations)),
                ..base
            },
        }
    }
}

/// How pruning at initialization spreads the kept weights over layers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Rule {
    /// One ranking over all layers (the criteria's own papers).
    Global,
    /// The same density in every layer.
    Uniform,
    /// Erdős–Rényi-Kernel densities.
    Erk,
}

#[derive(Parser, Debug)]
#[command(about = "Pruning methods compared: LeNet-300-100 on Fashion-MNIST")]
struct Args {
    /// Seeds to run (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "0")]
    seed: Vec<u64>,
    /// Methods to run (comma-separated; default all).
    #[arg(long, value_delimiter = ',')]
    method: Vec<Method>,
    /// Where the experiments and their rows files are stored.
    #[arg(long, default_value = "experiments/methods")]
    root: PathBuf,
    /// Merge the rows files under `--root` into methods.csv and methods.svg
    /// in `--report-dir` (trains nothing).
    #[arg(long)]
    report: bool,
    /// Where `--report` writes.
    #[arg(long, default_value = "docs/results/fashion_mnist_lenet")]
    report_dir: PathBuf,
    /// Directory with the Fashion-MNIST IDX files (default: $FASHION_MNIST_DIR,
    /// Debian's /usr/share/datasets/fashion-mnist, or a download).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Device: ndarray (bit-identical across runs; the README's main job),
    /// flex or wgpu (as compiled in).
    #[arg(long, default_value = "ndarray")]
    device: String,
    /// Training iterations per level (the README's protocol: 8,000).
    #[arg(long, default_value_t = 8000)]
    iterations: u64,
    /// Pruning levels after the dense level 0.
    #[arg(long, default_value_t = 12)]
    levels: usize,
    /// Rewind iteration k of IMP (weight and learning-rate rewinding,
    /// one-shot); fine-tuning trains T - k iterations.
    #[arg(long, default_value_t = 500)]
    rewind: u64,
    /// Layer allocation of the pruning-at-initialization methods (their
    /// condition names get `_uniform` or `_erk` unless global).
    #[arg(long, value_enum, default_value = "global")]
    density_rule: Rule,
    /// Train with the decaying-rate recipe (x0.1 at 50% and 75%).
    #[arg(long)]
    decaying: bool,
    /// Iterations between two masks of the early-bird search (1,000: one
    /// epoch of Fashion-MNIST at batch 60).
    #[arg(long, default_value_t = 1000)]
    epoch_iterations: u64,
    /// File name (without extension) `--report` writes in `--report-dir`.
    #[arg(long, default_value = "methods")]
    report_name: String,
    /// Save a resumable checkpoint every this many iterations.
    #[arg(long, default_value_t = 2000)]
    checkpoint_every: u64,
}

fn main() {
    burn_lottery::alloc::retain_freed_memory();
    if let Err(error) = run() {
        eprintln!("error: {error}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = Args::parse();
    if args.report {
        return write_report(&args.root, &args.report_dir, &args.report_name);
    }
    if args.rewind >= args.iterations {
        return Err(format!(
            "--rewind {} must be below --iterations {}",
            args.rewind, args.iterations
        )
        .into());
    }
    if args.method.is_empty() {
        args.method = Method::value_variants().to_vec();
    }
    let device = device_by_name(&args.device)?;
    let data = ExperimentData::fashion_mnist(args.data_dir.as_deref())?;
    let experiment = Experiment::new(&args.root, &device, &data, |d, s| {
        LeNetConfig::lenet_300_100().init_seeded(d, s)
    })
    .options(RunOptions {
        checkpoint_every: args.checkpoint_every,
        ..RunOptions::default()
    });
    for &seed in &args.seed {
        for &method in &args.method {
            let started = Instant::now();
            let imp = experiment.imp(|_| method.config(&args, seed));
            eprintln!(
                "seed {seed}, {}: {}",
                method.file_name(),
                imp.directory().display()
            );
            let result = imp.run_with(&mut Progress::new())?;
            let rows_dir = args.root.join("rows");
            std::fs::create_dir_all(&rows_dir)?;
            let name = imp.imp().config().condition();
            let path = rows_dir.join(format!("{name}_seed{seed}.csv"));
            report::write_csv(&result.rows, &MetricLabel::accuracy(), &path)?;
            eprintln!(
                "seed {seed}, {}: {} ({:.1} min)",
                method.file_name(),
                path.display(),
                started.elapsed().as_secs_f64() / 60.0
            );
        }
    }
    Ok(())
}

/// Merges `<root>/rows/*.csv` into `<name>.csv` and `<name>.svg` under
/// `out`, and prints the mean over seeds per level and condition.
fn write_report(root: &Path, out: &Path, name: &str) -> Result<(), Box<dyn std::error::Error>> {
    let rows_dir = root.join("rows");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&rows_dir)
        .map_err(|e| format!("{}: {e}", rows_dir.display()))?
        .map(|entry| entry.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    files.retain(|p| p.extension().is_some_and(|e| e == "csv"));
    files.sort();
    if files.is_empty() {
        return Err(format!("no rows files in {}", rows_dir.display()).into());
    }
    let mut rows: Vec<ReportRow> = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file)?;
        let (file_rows, _) =
            report::from_csv(&text).map_err(|e| format!("{}: {e}", file.display()))?;
        rows.extend(file_rows);
    }
    rows.sort_by(|a, b| (a.level, &a.condition, a.seed).cmp(&(b.level, &b.condition, b.seed)));
    std::fs::create_dir_all(out)?;
    let accuracy = MetricLabel::accuracy();
    let (csv, svg) = (
        out.join(format!("{name}.csv")),
        out.join(format!("{name}.svg")),
    );
    report::write_csv(&rows, &accuracy, &csv)?;
    report::plot_accuracy_vs_weights(
        &rows,
        "Pruning methods: LeNet-300-100 on Fashion-MNIST",
        &svg,
    )?;
    print!("{}", mean_table(&rows));
    println!(
        "{} rows from {} files: {} and {}",
        rows.len(),
        files.len(),
        csv.display(),
        svg.display()
    );
    Ok(())
}

/// A markdown table: one line per level, one column per condition, the mean
/// test accuracy over seeds (and the number of seeds when they differ).
fn mean_table(rows: &[ReportRow]) -> String {
    use std::collections::BTreeMap;
    let mut conditions: Vec<&str> = rows.iter().map(|r| r.condition.as_str()).collect();
    conditions.sort();
    conditions.dedup();
    let mut cells: BTreeMap<(usize, &str), Vec<f64>> = BTreeMap::new();
    let mut density: BTreeMap<usize, f64> = BTreeMap::new();
    for r in rows {
        cells
            .entry((r.level, r.condition.as_str()))
            .or_default()
            .push(r.value);
        density.entry(r.level).or_insert(r.weights_remaining);
    }
    let mut table = format!(
        "| level | weights remaining | {} |\n",
        conditions.join(" | ")
    );
    table.push_str(&format!("|---|---|{}\n", "---|".repeat(conditions.len())));
    for (level, weights) in density {
        let values: Vec<String> = conditions
            .iter()
            .map(|c| match cells.get(&(level, *c)) {
                Some(v) => format!(
                    "{:.2}% (n={})",
                    100.0 * v.iter().sum::<f64>() / v.len() as f64,
                    v.len()
                ),
                None => "–".into(),
            })
            .collect();
        table.push_str(&format!(
            "| {level} | {:.2}% | {} |\n",
            100.0 * weights,
            values.join(" | ")
        ));
    }
    table
}
