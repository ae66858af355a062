//! Lottery tickets and their stability for a tabular regression: an MLP
//! predicting disease progression one year after baseline from ten
//! measurements (age, sex, body mass index, blood pressure, six blood
//! serum values) of the 442 patients of the diabetes data of Efron et al.
//! (2004), as shipped with scikit-learn.
//!
//! The model, the data, the loss and the metrics are this example's own,
//! plugged into the crate through its public API only:
//!
//! * **Data.** Debian's `python3-sklearn` installs the raw data as
//!   `diabetes_data_raw.csv.gz` (442 rows of 10 space-separated features)
//!   and `diabetes_target.csv.gz` under `--data-dir`; they are read with
//!   flate2. The test set is the 20% of rows (88) with the smallest hash of
//!   their text, the other 354 train. Features and target are standardized
//!   with the training set's mean and standard deviation.
//! * **Model.** `Linear(10, 64)`, ReLU, `Linear(64, 64)`, ReLU,
//!   `Linear(64, 1)`, seeded with `burn_lottery::models::init_weights`.
//! * **Loss and metrics.** Huber loss (delta 1, burn's `HuberLoss`) on the
//!   standardized target. Metrics: `mse` (mean squared error on the
//!   standardized target, so 1.0 is as good as predicting the training
//!   mean) and `mae` (mean absolute error in the target's own units).
//!   `mse` is the reported metric and the error-like metric of the
//!   instability analysis (`MetricSpec::lower_is_better("mse")`).
//! * **IMP.** Adam (learning rate 1e-3, weight decay 1e-2 as an L2 term),
//!   batch 32, `--iterations` per level (default 600, about 54 epochs of
//!   the 354 training rows), global magnitude pruning of 20% of the
//!   remaining weights per level for `--levels` levels (default 10, down to
//!   10.7% of the 4,800 weights), rewinding to `--rewind` (default 20), with
//!   both controls (random reinitialization, random pruning).
//! * **Stability.** For `--stability-levels`, two copies of the IMP
//!   subnetwork (and of the random-pruning control) are trained from the
//!   rewind point with data-order seeds `--copy-seeds`; their L2 distance
//!   and angle on the mask, and the test mse along the linear path between
//!   them and its barrier (max along the path minus the endpoints' mean),
//!   are reported. Stability to pruning: the distance between each level's
//!   copy and the dense copy of the same data order.
//!
//! Writes `report.csv`, `report.svg`, `stability.csv`,
//! `stability_curves.csv`, `stability_barrier.svg`, `stability_rewind.svg`
//! and `stability_alpha.svg` to `--report`; prints the tables.
//!
//! ```sh
//! sudo apt-get install -y python3-sklearn
//! cargo run --features wgpu --example diabetes_regression -- \
//!     --report docs/results/diabetes_regression
//! ```
//!
//! (`--features wgpu` only keeps burn's feature set the same as the crate's
//! other targets; the example runs on the CPU, `--device flex` by default.)

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::data::dataloader::batcher::Batcher;
use burn::data::dataset::InMemDataset;
use burn::module::Module;
use burn::nn::loss::{HuberLossConfig, Reduction};
use burn::nn::{Linear, LinearConfig};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor, TensorData};
use burn_lottery::device::device_by_name;
use burn_lottery::models::init_weights;
use burn_lottery::prelude::*;
use burn_lottery::report::MetricLabel;
use burn_lottery::stability::report::write_report;
use burn_lottery::stability::{BarrierOptions, PairResult, StabilityAnalyzer};
use clap::Parser;

mod flags;

/// Features per patient.
const FEATURES: usize = 10;
/// Hidden width.
const HIDDEN: usize = 64;

#[derive(Parser, Debug)]
#[command(about = "IMP with rewinding and stability analysis: an MLP on the diabetes data")]
struct Args {
    /// Directory of diabetes_data_raw.csv.gz and diabetes_target.csv.gz
    /// (Debian package python3-sklearn).
    #[arg(
        long,
        default_value = "/usr/lib/python3/dist-packages/sklearn/datasets/data"
    )]
    data_dir: PathBuf,
    /// Where experiments are stored (one directory per configuration).
    #[arg(long, default_value = "experiments")]
    output: PathBuf,
    /// Where the reports go.
    #[arg(long, default_value = "experiments/diabetes_regression")]
    report: PathBuf,
    /// Device: flex, ndarray or wgpu (as compiled in).
    #[arg(long, default_value = "flex")]
    device: String,
    /// Training iterations per level.
    #[arg(long, default_value_t = 600)]
    iterations: u64,
    /// Pruning levels after the dense level 0.
    #[arg(long, default_value_t = 10)]
    levels: usize,
    /// Iteration the surviving weights are rewound to.
    #[arg(long, default_value_t = 20)]
    rewind: u64,
    /// Seed of the initialization and of the data order.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Adam's learning rate.
    #[arg(long, default_value_t = 1e-3)]
    learning_rate: f64,
    /// Adam's weight decay (an L2 term added to the gradient).
    #[arg(long, default_value_t = 1e-2)]
    weight_decay: f64,
    /// Levels to analyze for stability, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "0,2,4,6,8,10")]
    stability_levels: Vec<usize>,
    /// Data-order seeds of the two stability copies.
    #[arg(long, value_delimiter = ',', default_value = "1001,1002")]
    copy_seeds: Vec<u64>,
}

/// One patient: standardized features and target.
#[derive(Debug, Clone)]
struct Patient {
    features: [f32; FEATURES],
    target: f32,
}

/// Features `[n, FEATURES]` and targets `[n, 1]`.
#[derive(Clone)]
struct PatientBatcher;

impl Batcher<Patient, (Tensor<2>, Tensor<2>)> for PatientBatcher {
    fn batch(&self, items: Vec<Patient>, device: &Device) -> (Tensor<2>, Tensor<2>) {
        let n = items.len();
        let x: Vec<f32> = items.iter().flat_map(|p| p.features).collect();
        let y: Vec<f32> = items.iter().map(|p| p.target).collect();
        (
            Tensor::from_data(TensorData::new(x, [n, FEATURES]), device),
            Tensor::from_data(TensorData::new(y, [n, 1]), device),
        )
    }
}

#[derive(Module, Debug)]
struct Mlp {
    fc1: Linear,
    fc2: Linear,
    fc3: Linear,
}

impl Mlp {
    fn init(device: &Device, seed: u64) -> Self {
        let model = Self {
            fc1: LinearConfig::new(FEATURES, HIDDEN).init(device),
            fc2: LinearConfig::new(HIDDEN, HIDDEN).init(device),
            fc3: LinearConfig::new(HIDDEN, 1).init(device),
        };
        init_weights(model, seed)
    }

    fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        let x = relu(self.fc1.forward(x));
        let x = relu(self.fc2.forward(x));
        self.fc3.forward(x)
    }
}

/// The lines of a gzipped text file.
fn read_gz_lines(path: &Path) -> Result<Vec<String>, String> {
    let file = std::fs::File::open(path).map_err(|e| {
        format!(
            "{}: {e} (install the data: apt-get install -y python3-sklearn)",
            path.display()
        )
    })?;
    let mut text = String::new();
    flate2::read::GzDecoder::new(file)
        .read_to_string(&mut text)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(String::from)
        .collect())
}

fn parse_floats(line: &str, path: &Path) -> Result<Vec<f64>, String> {
    line.split_whitespace()
        .map(|v| {
            v.parse::<f64>()
                .map_err(|e| format!("{}: `{v}`: {e}", path.display()))
        })
        .collect()
}

/// Mean and (population) standard deviation.
fn mean_std(values: impl Iterator<Item = f64> + Clone) -> (f64, f64) {
    let n = values.clone().count() as f64;
    let mean = values.clone().sum::<f64>() / n;
    let var = values.map(|v| (v - mean).powi(2)).sum::<f64>() / n;
    (mean, var.sqrt().max(1e-12))
}

/// The data set split, standardized, and the target's standard deviation
/// (to report errors in the target's units).
struct Data {
    train: Vec<Patient>,
    test: Vec<Patient>,
    target_std: f64,
}

fn load(dir: &Path) -> Result<Data, String> {
    let features_path = dir.join("diabetes_data_raw.csv.gz");
    let target_path = dir.join("diabetes_target.csv.gz");
    let lines = read_gz_lines(&features_path)?;
    let targets = read_gz_lines(&target_path)?;
    if lines.len() != targets.len() {
        return Err(format!(
            "{} rows of features but {} targets",
            lines.len(),
            targets.len()
        ));
    }
    let mut rows: Vec<(u64, Vec<f64>, f64)> = Vec::with_capacity(lines.len());
    for (line, target) in lines.iter().zip(&targets) {
        let x = parse_floats(line, &features_path)?;
        if x.len() != FEATURES {
            return Err(format!("a row of {} features: `{line}`", x.len()));
        }
        let y = parse_floats(target, &target_path)?;
        let &[y] = y.as_slice() else {
            return Err(format!("a target line `{target}`"));
        };
        // 64-bit FNV-1a of the row's text: the split ignores file order.
        let hash = line.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
        rows.push((hash, x, y));
    }
    rows.sort_by_key(|r| r.0);
    let test_len = rows.len() / 5;
    let (test, train) = rows.split_at(test_len);

    let feature_stats: Vec<(f64, f64)> = (0..FEATURES)
        .map(|j| mean_std(train.iter().map(move |r| r.1[j])))
        .collect();
    let (target_mean, target_std) = mean_std(train.iter().map(|r| r.2));
    let standardize = |rows: &[(u64, Vec<f64>, f64)]| -> Vec<Patient> {
        rows.iter()
            .map(|(_, x, y)| Patient {
                features: std::array::from_fn(|j| {
                    ((x[j] - feature_stats[j].0) / feature_stats[j].1) as f32
                }),
                target: ((y - target_mean) / target_std) as f32,
            })
            .collect()
    };
    eprintln!(
        "diabetes: {} training and {} test patients; target mean {target_mean:.1}, std {target_std:.1}",
        train.len(),
        test.len()
    );
    Ok(Data {
        train: standardize(train),
        test: standardize(test),
        target_std,
    })
}

/// The IMP table with both of this task's metrics and the training loss
/// (the crate's `report.table()` shows the reported metric only).
fn imp_table(report: &ImpReport) -> String {
    let mut out = format!(
        "{:<14} {:>5} {:>9} {:>9} {:>9} {:>11}\n",
        "condition", "level", "weights", "test mse", "test mae", "train loss"
    );
    for s in &report.summaries {
        out.push_str(&format!(
            "{:<14} {:>5} {:>8.2}% {:>9.4} {:>9.2} {:>11.4}\n",
            s.condition,
            s.level,
            100.0 * s.weights_remaining,
            s.metric("mse").unwrap_or(f64::NAN),
            s.metric("mae").unwrap_or(f64::NAN),
            s.final_train_loss.unwrap_or(f64::NAN),
        ));
    }
    out
}

fn stability_table(results: &[PairResult]) -> String {
    let mut out = format!(
        "{:<14} {:>5} {:>9} {:>8} {:>10} {:>7} {:>9} {:>9} {:>9}\n",
        "condition", "level", "weights", "L2", "L2 / norm", "angle", "mse a", "mse b", "barrier"
    );
    for r in results {
        let row = r.row();
        out.push_str(&format!(
            "{:<14} {:>5} {:>8.2}% {:>8.3} {:>10.4} {:>7.4} {:>9.4} {:>9.4} {:>9.4}\n",
            row.condition,
            row.level,
            100.0 * row.weights_remaining,
            row.l2_distance,
            row.l2_normalized,
            row.angle,
            row.endpoint_error_a,
            row.endpoint_error_b,
            row.error_barrier
        ));
    }
    out
}

fn main() {
    if let Err(error) = run() {
        eprintln!("error: {error}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let &[seed_a, seed_b] = args.copy_seeds.as_slice() else {
        return Err("--copy-seeds takes two seeds".into());
    };
    flags::no_repeats("--copy-seeds", &args.copy_seeds)?;
    flags::no_repeats("--stability-levels", &args.stability_levels)?;
    if let Some(&level) = args.stability_levels.iter().find(|&&l| l > args.levels) {
        return Err(format!("stability level {level} is beyond --levels {}", args.levels).into());
    }
    let device = device_by_name(&args.device)?;
    let experiment = Experiment::new(
        &args.output,
        &device,
        task(load(&args.data_dir)?),
        Mlp::init,
    )
    .name("diabetes_mlp")
    .batches(32, args.iterations)
    .optimizer_config(
        OptimizerConfig::adam(args.learning_rate).with_weight_decay(args.weight_decay),
    )
    .seeds(Seeds::all(args.seed));
    let imp = experiment.imp(|c| ImpConfig {
        pruning: MagnitudePrunerConfig::new(0.2),
        levels: args.levels,
        rewind_iteration: args.rewind,
        controls: Controls::random(true),
        ..c
    });
    eprintln!("experiment: {}", imp.directory().display());
    let started = Instant::now();
    let result = imp.run_with(&mut Progress::new())?;
    let imp_seconds = started.elapsed().as_secs_f64();
    result.write_to(&args.report, "Diabetes MLP: test mse (standardized target)")?;
    println!("{}", imp_table(&result));

    let started = Instant::now();
    stability(imp.stability(), &args, (seed_a, seed_b))?;
    println!(
        "{} IMP networks trained in {:.1} s, stability {:.1} s; reports in {}",
        result.trained_levels,
        imp_seconds,
        started.elapsed().as_secs_f64(),
        args.report.display()
    );
    Ok(())
}

/// The task: Huber loss for training, test `mse` (standardized, the
/// reported metric, lower is better) and `mae` (in the target's units).
fn task(data: Data) -> impl Task<Mlp> {
    let huber = HuberLossConfig::new(1.0).init();
    let target_std = data.target_std;
    DatasetTask::new(
        InMemDataset::new(data.train),
        InMemDataset::new(data.test),
        PatientBatcher,
        move |model: &Mlp, (x, y): (Tensor<2>, Tensor<2>)| {
            huber.forward(model.forward(x), y, Reduction::Mean)
        },
        move |model: &Mlp, (x, y): (Tensor<2>, Tensor<2>)| {
            let residuals = model.forward(x) - y;
            let mse: f32 = residuals.clone().powf_scalar(2.0).mean().into_scalar();
            let mae: f32 = residuals.abs().mean().into_scalar();
            Metrics::new()
                .with("mse", f64::from(mse))
                .with("mae", f64::from(mae) * target_std)
        },
        MetricSpec::lower_is_better("mse"),
    )
}

/// Trains the copies of `--stability-levels` (data orders `seed_a`,
/// `seed_b`), writes the stability report and prints its table and the
/// stability to pruning.
fn stability<T, F>(
    analyzer: StabilityAnalyzer<'_, T, F>,
    args: &Args,
    (seed_a, seed_b): (u64, u64),
) -> Result<(), Box<dyn std::error::Error>>
where
    T: Task<Mlp>,
    F: Fn(&Device, u64) -> Mlp,
{
    let analyzer = analyzer
        .with_options(BarrierOptions::default())
        .with_progress(true);
    let results = analyzer.sweep(
        &[Condition::Imp, Condition::RandomPrune],
        &args.stability_levels,
        (seed_a, seed_b),
        |r| {
            eprintln!(
                "{} level {}: barrier {:.4}",
                r.condition,
                r.level,
                r.curve.barrier()
            )
        },
    )?;
    write_report(
        &results,
        &MetricLabel::new("mse", false)?,
        &args.report,
        "stability",
        "Diabetes MLP: instability",
    )?;
    let mut pruning = Vec::new();
    for &level in args.stability_levels.iter().filter(|&&l| l > 0) {
        let weights = analyzer.mask(Condition::Imp, level)?.density();
        pruning.push((level, weights, analyzer.pruning_distance(level, seed_a)?));
    }
    println!("{}", stability_table(&results));
    println!("stability to pruning (copy with data order {seed_a} vs the dense copy):");
    println!(
        "{:>5} {:>9} {:>8} {:>10} {:>7}",
        "level", "weights", "L2", "L2 / norm", "angle"
    );
    for (level, weights, d) in pruning {
        println!(
            "{level:>5} {:>8.2}% {:>8.3} {:>10.4} {:>7.4}",
            100.0 * weights,
            d.l2,
            d.l2_normalized,
            d.angle
        );
    }
    Ok(())
}
