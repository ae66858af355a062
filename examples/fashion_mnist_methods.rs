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
//!   rewound to `--rewind`;
//! * `gmp`: gradual magnitude pruning (Zhu & Gupta) in one run from the
//!   initialization to the level's per-layer counts (cubic schedule from 10%
//!   to 75% of training, every `--update-every` steps, default 100);
//! * `set`, `rigl`: dynamic sparse training in one run from the
//!   initialization at the level's total count, ERK densities, drop fraction
//!   0.3 decayed by a cosine, an update every `--update-every` steps until
//!   75% of training;
//! * `two_of_four`: one level of layer-wise magnitude pruning to exactly 2:4
//!   (50% of every layer), weights rewound to `--rewind`; `half` is the same
//!   level unstructured, its reference (rows `imp_2of4_rewind<k>` and
//!   `imp_half_rewind<k>`);
//! * `structured`: iterative L1 pruning of 20% of the hidden neurons per
//!   level (Li et al.), weights rewound to `--rewind`.
//!
//! `--levels-only 3,7,10` trains only level 0 and these levels of a method
//! whose levels do not build on each other (`oneshot`, the criteria at
//! initialization, `early_bird`, `gmp`, `set`, `rigl`).
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
use burn_lottery::imp::Seeds;
use burn_lottery::imp::{Branch, LevelSummary};
use burn_lottery::models::Classifier;
use burn_lottery::models::export::{lenet_channel_groups, resnet_channel_groups};
use burn_lottery::prelude::*;
use burn_lottery::prune::{DensityRule, EarlyBirdConfig, NOfM, PruningScope, StructuredConfig};
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
    Gmp,
    Set,
    Rigl,
    TwoOfFour,
    Half,
    Structured,
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
        let base = base_config(args, seed);
        let at_init = |criterion| at_initialization(args, base.clone(), criterion);
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
            Self::Gmp => ImpConfig {
                method: PruningMethod::Gradual(GradualConfig::new().with_every(args.update_every)),
                ..base
            },
            Self::Set | Self::Rigl => ImpConfig {
                method: PruningMethod::Dynamic(
                    match self {
                        Self::Set => DynamicConfig::set(),
                        _ => DynamicConfig::rigl(),
                    }
                    .with_update_every(args.update_every),
                ),
                ..base
            },
            Self::TwoOfFour => half_of_each_layer(args, base, Some(NOfM::two_of_four())),
            Self::Half => half_of_each_layer(args, base, None),
            Self::Structured => ImpConfig {
                method: PruningMethod::Structured(StructuredConfig::new(
                    args.fraction,
                    match args.model {
                        Model::Lenet => lenet_channel_groups(),
                        Model::Resnet8 => resnet_channel_groups(3),
                    },
                )),
                ..base
            },
        }
    }

    /// The condition its rows carry: the experiment's, told apart for the
    /// two single-level N:M references.
    fn row_condition(self, config: &ImpConfig) -> String {
        let k = config.rewind_iteration;
        match self {
            Self::TwoOfFour => format!("imp_2of4_rewind{k}"),
            Self::Half => format!("imp_half_rewind{k}"),
            _ => config.condition(),
        }
    }
}

/// `base` pruned once at initialization by `criterion` (no rewinding: the
/// mask is found before training), layers' densities by `--density-rule`.
fn at_initialization(args: &Args, base: ImpConfig, criterion: InitCriterion) -> ImpConfig {
    let rule = match args.density_rule {
        Rule::Global => DensityRule::Global,
        Rule::Uniform => DensityRule::Uniform,
        Rule::Erk => DensityRule::Erk,
    };
    ImpConfig {
        rewind_iteration: 0,
        method: PruningMethod::AtInitialization(
            AtInitConfig::new(criterion).with_density_rule(rule),
        ),
        ..base
    }
}

/// The experiment every method starts from: `--model`'s recipe shortened
/// to `--iterations` with rewinding to `--rewind`, and the optimizer
/// `--decaying` or `--sgd` asks for.
fn base_config(args: &Args, seed: u64) -> ImpConfig {
    let (iterations, k) = (args.iterations, args.rewind);
    let mut base = match args.model {
        Model::Lenet => ImpConfig {
            levels: args.levels,
            ..ImpConfig::lenet_fashion_mnist(iterations, k, seed)
        },
        Model::Resnet8 => ImpConfig {
            name: "resnet8_fashion_mnist".into(),
            training: TrainingRecipe {
                batch_size: args.batch_size,
                augment: false,
                ..TrainingRecipe::resnet20_cifar10().shortened(iterations)
            },
            pruning: MagnitudePrunerConfig::new(args.fraction),
            levels: args.levels,
            rewind_iteration: k,
            seeds: Seeds::all(seed),
            ..ImpConfig::resnet20_cifar10()
        },
    };
    if args.decaying {
        base.training = TrainingRecipe::lenet_fashion_mnist_decaying().shortened(iterations);
    }
    if let Some(rate) = args.sgd {
        // SGD with momentum 0.9 and no weight decay at base rate `rate`.
        base.training.optimizer = OptimizerConfig::sgd_momentum(rate).with_weight_decay(0.0);
    }
    base
}

/// One level pruning half of each layer by magnitude, in `n_of_m` groups
/// (2:4) or anywhere in the layer: the N:M references.
fn half_of_each_layer(args: &Args, base: ImpConfig, n_of_m: Option<NOfM>) -> ImpConfig {
    let half = MagnitudePrunerConfig::new(0.5).with_scope(PruningScope::LayerWise);
    ImpConfig {
        levels: 1,
        pruning: match n_of_m {
            Some(groups) => half.with_n_of_m(groups),
            None => half,
        },
        // A ResNet's stem has 9 weights per filter: no 2:4 groups.
        selector: match args.model {
            Model::Lenet => base.selector.clone(),
            Model::Resnet8 => base.selector.clone().exclude("conv.weight"),
        },
        ..base
    }
}

/// The network compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Model {
    /// LeNet-300-100 (the README's protocol).
    Lenet,
    /// ResNet-8 (three basic blocks, widths 16-32-64) on 1-channel images,
    /// the CIFAR ResNet recipe (SGD momentum 0.9, weight decay 1e-4, rate
    /// 0.1, x0.1 at 50% and 75%) shortened to `--iterations` at `--batch-size`,
    /// global pruning of `--fraction` per level over every convolution and
    /// the output layer.
    Resnet8,
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
    /// Train with SGD (momentum 0.9, no weight decay) at this base rate
    /// instead of the recipe's optimizer (the recipe's schedule is kept).
    #[arg(long)]
    sgd: Option<f64>,
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
    /// The network: LeNet-300-100 or ResNet-8.
    #[arg(long, value_enum, default_value = "lenet")]
    model: Model,
    /// Batch size of the ResNet-8 recipe.
    #[arg(long, default_value_t = 32)]
    batch_size: usize,
    /// Fraction of the remaining weights (or, structured, units) pruned per
    /// level for ResNet-8 (LeNet keeps its protocol's 20% and 10%).
    #[arg(long, default_value_t = 0.2)]
    fraction: f64,
    /// Steps between two mask updates of GMP, SET and RigL (their papers'
    /// 100; fewer for a shortened recipe).
    #[arg(long, default_value_t = 100)]
    update_every: u64,
    /// Train only level 0 and these levels (comma-separated) of a method
    /// whose levels do not build on each other; ignored by the others.
    #[arg(long, value_delimiter = ',')]
    levels_only: Vec<usize>,
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
        let title = match args.model {
            Model::Lenet => "Pruning methods: LeNet-300-100 on Fashion-MNIST",
            Model::Resnet8 => "Pruning methods: ResNet-8 on Fashion-MNIST",
        };
        return write_report(&args.root, &args.report_dir, &args.report_name, title);
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
    match args.model {
        Model::Lenet => run_methods(&args, &device, &data, |d, s| {
            LeNetConfig::lenet_300_100().init_seeded(d, s)
        }),
        Model::Resnet8 => {
            let resnet8 = ResNetConfig::new().with_depth(8).with_input_channels(1);
            run_methods(&args, &device, &data, |d, s| resnet8.init_seeded(d, s))
        }
    }
}

/// Runs every (seed, method) of `args` on `data` with the model `init`
/// builds, writing each one's rows under `<root>/rows`.
fn run_methods<M: Classifier>(
    args: &Args,
    device: &burn::tensor::Device,
    data: &ExperimentData,
    init: impl Fn(&burn::tensor::Device, u64) -> M,
) -> Result<(), Box<dyn std::error::Error>> {
    let experiment = Experiment::new(&args.root, device, data, init).options(RunOptions {
        checkpoint_every: args.checkpoint_every,
        ..RunOptions::default()
    });
    // Every configuration is checked before the first trains.
    for &seed in &args.seed {
        for &method in &args.method {
            experiment
                .imp(|_| method.config(args, seed))
                .imp()
                .validate()?;
        }
    }
    for &seed in &args.seed {
        for &method in &args.method {
            let started = Instant::now();
            let config = method.config(args, seed);
            let imp = experiment.imp(|_| config.clone());
            eprintln!(
                "seed {seed}, {}: {}",
                method.file_name(),
                imp.directory().display()
            );
            let independent = (1..=config.levels).all(|l| config.method.builds_on(l) == 0);
            let mut rows = if independent && !args.levels_only.is_empty() {
                let mut summaries = Vec::new();
                for level in std::iter::once(0).chain(args.levels_only.iter().copied()) {
                    summaries.push(imp.run_level(Branch::Main, level, &mut Progress::new())?);
                }
                summaries.iter().map(|s| row(s, seed)).collect()
            } else {
                imp.run_with(&mut Progress::new())?.rows
            };
            let name = method.row_condition(&config);
            rows.iter_mut().for_each(|r| r.condition = name.clone());
            let rows_dir = args.root.join("rows");
            std::fs::create_dir_all(&rows_dir)?;
            let path = rows_dir.join(format!("{name}_seed{seed}.csv"));
            report::write_csv(&rows, &MetricLabel::accuracy(), &path)?;
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

/// The report row of a level trained on its own.
fn row(summary: &LevelSummary, seed: u64) -> ReportRow {
    ReportRow {
        condition: summary.condition.clone(),
        seed,
        level: summary.level,
        weights_remaining: summary.weights_remaining,
        value: summary.metric("accuracy").unwrap_or(f64::NAN),
        execution: None,
        execution_reason: None,
    }
    .with_execution(summary.execution.as_ref())
}

/// Merges `<root>/rows/*.csv` into `<name>.csv` and `<name>.svg` under
/// `out`, and prints the mean over seeds per level and condition.
fn write_report(
    root: &Path,
    out: &Path,
    name: &str,
    title: &str,
) -> Result<(), Box<dyn std::error::Error>> {
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
    report::plot_accuracy_vs_weights(&rows, title, &svg)?;
    print!("{}", mean_table(&rows));
    print!("{}", orderings(&rows));
    println!(
        "{} rows from {} files: {} and {}",
        rows.len(),
        files.len(),
        csv.display(),
        svg.display()
    );
    Ok(())
}

/// The mean over seeds of every (condition, level): (density, accuracy).
fn means(rows: &[ReportRow]) -> std::collections::BTreeMap<(String, usize), (f64, f64)> {
    let mut sums: std::collections::BTreeMap<(String, usize), (f64, f64, usize)> =
        Default::default();
    for r in rows {
        let cell = sums.entry((r.condition.clone(), r.level)).or_default();
        *cell = (r.weights_remaining, cell.1 + r.value, cell.2 + 1);
    }
    sums.into_iter()
        .map(|(key, (density, sum, n))| (key, (density, sum / n as f64)))
        .collect()
}

/// The orderings the papers report, checked on the mean accuracies of the
/// methods present: RigL >= SET at the sparsest common level; GMP within a
/// point of IMP at every common level with 20-60% of the weights; 2:4
/// within a point of the same level unstructured; structured below IMP at
/// the same fraction of weights (IMP interpolated linearly in log density
/// between its levels).
fn orderings(rows: &[ReportRow]) -> String {
    let means = Means(means(rows));
    let imp = means.find(|c| c.starts_with("imp_rewind"));
    let imp = imp.as_deref().map(|c| means.curve(c)).unwrap_or_default();
    let mut out = String::from("\norderings (mean of the seeds):\n");
    out += &rigl_above_set(&means);
    out += &gmp_near_imp(&means, &imp);
    out += &two_of_four_near_half(&means);
    out += &structured_below_imp(&means, &imp);
    out
}

/// The mean accuracies by (condition, level), as [`means`] gives them.
struct Means(std::collections::BTreeMap<(String, usize), (f64, f64)>);

impl Means {
    /// The first condition (in name order) that `pred` accepts.
    fn find(&self, pred: impl Fn(&str) -> bool) -> Option<String> {
        self.0.keys().map(|(c, _)| c.clone()).find(|c| pred(c))
    }

    /// The (level, density, accuracy) of `condition`'s levels, in order.
    fn curve(&self, condition: &str) -> Vec<(usize, f64, f64)> {
        self.0
            .iter()
            .filter(|((c, _), _)| c == condition)
            .map(|((_, l), (d, a))| (*l, *d, *a))
            .collect()
    }
}

fn pct(x: f64) -> String {
    format!("{:.2}%", 100.0 * x)
}

fn verdict(holds: bool) -> &'static str {
    if holds { "holds" } else { "does not hold" }
}

/// RigL at least SET's accuracy at the sparsest level both have.
fn rigl_above_set(means: &Means) -> String {
    let (Some(rigl), Some(set)) = (means.find(|c| c == "rigl"), means.find(|c| c == "set")) else {
        return String::new();
    };
    let (r, s) = (means.curve(&rigl), means.curve(&set));
    let Some(&(level, density, a)) = r.iter().rev().find(|x| s.iter().any(|y| y.0 == x.0)) else {
        return String::new();
    };
    let b = s.iter().find(|y| y.0 == level).expect("common level").2;
    format!(
        "* RigL >= SET at {} of the weights (level {level}): {} vs {}: {}\n",
        pct(density),
        pct(a),
        pct(b),
        verdict(a >= b)
    )
}

/// GMP within a point of IMP (`imp`) at the levels between 20% and 60%
/// of the weights.
fn gmp_near_imp(means: &Means, imp: &[(usize, f64, f64)]) -> String {
    let Some(gmp) = means.find(|c| c == "gmp") else {
        return String::new();
    };
    let mut out = String::new();
    for (level, density, a) in means.curve(&gmp) {
        let Some(&(_, _, b)) = imp.iter().find(|y| y.0 == level) else {
            continue;
        };
        if (0.2..=0.6).contains(&density) {
            out += &format!(
                "* GMP within 1 point of IMP at {} (level {level}): {} vs {}: {}\n",
                pct(density),
                pct(a),
                pct(b),
                verdict((a - b).abs() <= 0.01)
            );
        }
    }
    out
}

/// 2:4 within a point of the same level unstructured.
fn two_of_four_near_half(means: &Means) -> String {
    let two = means.find(|c| c.starts_with("imp_2of4"));
    let half = means.find(|c| c.starts_with("imp_half"));
    let Some((two, half)) = two
        .zip(half)
        .map(|(t, h)| (means.curve(&t), means.curve(&h)))
    else {
        return String::new();
    };
    let (Some(&(_, d, a)), Some(&(_, _, b))) = (two.last(), half.last()) else {
        return String::new();
    };
    format!(
        "* 2:4 within 1 point of unstructured at {}: {} vs {}: {}\n",
        pct(d),
        pct(a),
        pct(b),
        verdict((a - b).abs() <= 0.01)
    )
}

/// Structured pruning below IMP (`imp`, interpolated) at each of its
/// pruned levels' fraction of weights.
fn structured_below_imp(means: &Means, imp: &[(usize, f64, f64)]) -> String {
    let Some(structured) = means.find(|c| c.starts_with("structured")) else {
        return String::new();
    };
    let mut out = String::new();
    for (level, density, a) in means.curve(&structured).into_iter().filter(|x| x.0 > 0) {
        let Some(b) = interpolate(imp, density) else {
            continue;
        };
        out += &format!(
            "* structured below IMP at {} (structured level {level}): {} vs {} (IMP interpolated): {}\n",
            pct(density),
            pct(a),
            pct(b),
            verdict(a < b)
        );
    }
    out
}

/// The accuracy of `curve` (level, density, accuracy; densities falling)
/// at `density`, linear in log density between the two levels around it.
fn interpolate(curve: &[(usize, f64, f64)], density: f64) -> Option<f64> {
    curve.windows(2).find_map(|w| {
        let ((_, d0, a0), (_, d1, a1)) = (w[0], w[1]);
        (d1 <= density && density <= d0).then(|| {
            let t = (d0.ln() - density.ln()) / (d0.ln() - d1.ln());
            a0 + t * (a1 - a0)
        })
    })
}

/// A markdown table: one line per level, one column per condition, the mean
/// test accuracy over seeds (and the number of seeds when they differ).
fn mean_table(rows: &[ReportRow]) -> String {
    use std::collections::BTreeMap;
    let mut conditions: Vec<&str> = rows.iter().map(|r| r.condition.as_str()).collect();
    conditions.sort();
    conditions.dedup();
    // One line per (level, density): methods that reach other densities at
    // the same level (structured pruning, 2:4) get lines of their own.
    let line = |r: &ReportRow| (r.level, (r.weights_remaining * 1e6).round() as u64);
    let mut cells: BTreeMap<((usize, u64), &str), Vec<f64>> = BTreeMap::new();
    for r in rows {
        cells
            .entry((line(r), r.condition.as_str()))
            .or_default()
            .push(r.value);
    }
    let mut lines: Vec<(usize, u64)> = cells.keys().map(|(l, _)| *l).collect();
    lines.dedup();
    lines.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
    let mut table = format!(
        "| level | weights remaining | {} |\n",
        conditions.join(" | ")
    );
    table.push_str(&format!("|---|---|{}\n", "---|".repeat(conditions.len())));
    for (level, weights) in lines {
        let values: Vec<String> = conditions
            .iter()
            .map(|c| match cells.get(&((level, weights), *c)) {
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
            weights as f64 / 1e4,
            values.join(" | ")
        ));
    }
    table
}
