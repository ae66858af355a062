//! The crate as a downstream user sees it: a model, data and loss of the
//! user's own (nothing from `burn_lottery::models` or `burn_lottery::data`),
//! pruned with IMP and analyzed for stability through the public API only.
//!
//! * [`OwnTask`] implements [`Task`] directly: its own seeded data order,
//!   cross-entropy loss and accuracy metrics, on a two-class problem with
//!   float features generated here.
//! * The second test goes through [`DatasetTask`] instead: burn's
//!   `InMemDataset` and a `Batcher` of the test's own, a regression with a
//!   mean-squared-error loss and metric (lower is better, no accuracy).

use std::ops::Range;

use burn::data::dataloader::batcher::Batcher;
use burn::data::dataset::InMemDataset;
use burn::module::Module;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Int, Tensor, TensorData};
use burn_lottery::imp::{Imp, ImpConfig, ImpReport, RunOptions, Seeds, Silent};
use burn_lottery::mask::Mask;
use burn_lottery::models::init_weights;
use burn_lottery::prune::MagnitudePrunerConfig;
use burn_lottery::report::MetricLabel;
use burn_lottery::stability::{BarrierOptions, Condition, PairResult, StabilityAnalyzer};
use burn_lottery::task::{
    Batches, DataOrder, DatasetTask, MetricSpec, Metrics, Split, Task, TaskError,
};
use burn_lottery::train::recipe::{OptimizerConfig, TrainingRecipe};
use burn_lottery::train::schedule::LrSchedule;

/// Features of every example.
const FEATURES: usize = 8;
/// Hidden units of the user's network: 8*32 + 32*2 = 320 prunable weights,
/// so 80% and 64% of them are whole numbers of weights (256, 204.8 -> 205).
const HIDDEN: usize = 32;

#[allow(deprecated)]
fn ndarray() -> Device {
    Device::ndarray()
}

/// The user's network: nothing of burn_lottery's.
#[derive(Module, Debug)]
struct Scorer {
    hidden: Linear,
    out: Linear,
}

impl Scorer {
    /// Built with burn's initializers, then made a pure function of `seed`
    /// with the crate's reference initialization (works on any module).
    fn init(device: &Device, seed: u64, outputs: usize) -> Self {
        let model = Self {
            hidden: LinearConfig::new(FEATURES, HIDDEN).init(device),
            out: LinearConfig::new(HIDDEN, outputs).init(device),
        };
        init_weights(model, seed)
    }

    fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        self.out.forward(relu(self.hidden.forward(x)))
    }
}

/// splitmix64: the user's own random numbers.
fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// A value in [-1, 1) drawn from `key`.
fn uniform(key: u64) -> f32 {
    (splitmix(key) >> 40) as f32 / (1u64 << 23) as f32 - 1.0
}

/// `n` examples of `FEATURES` features, seeded by `salt`.
fn features(n: usize, salt: u64) -> Vec<[f32; FEATURES]> {
    (0..n)
        .map(|i| {
            std::array::from_fn(|j| {
                uniform(salt.wrapping_mul(0x100_0000_01b3) ^ (i * FEATURES + j) as u64)
            })
        })
        .collect()
}

/// The class of a point: which side of a fixed plane it lies on.
fn class(x: &[f32; FEATURES]) -> i64 {
    i64::from(x[0] + 0.8 * x[1] - 0.6 * x[2] + 0.3 * x[3] > 0.0)
}

/// A permutation of `0..n` drawn from `seed` (Fisher-Yates).
fn permutation(n: usize, seed: u64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    let mut state = seed;
    for i in (1..n).rev() {
        state = splitmix(state);
        order.swap(i, (state % (i as u64 + 1)) as usize);
    }
    order
}

/// Two-class points, implementing [`Task`] by hand.
struct OwnTask {
    train: Vec<[f32; FEATURES]>,
    test: Vec<[f32; FEATURES]>,
}

impl OwnTask {
    fn new() -> Self {
        Self {
            train: features(256, 0xA11CE),
            test: features(128, 0xB0B),
        }
    }

    /// Features `[n, FEATURES]` and classes `[n]` of `points` on `device`.
    fn tensors(points: &[&[f32; FEATURES]], device: &Device) -> (Tensor<2>, Tensor<1, Int>) {
        let n = points.len();
        let x: Vec<f32> = points.iter().flat_map(|p| p.iter().copied()).collect();
        let y: Vec<i64> = points.iter().map(|p| class(p)).collect();
        (
            Tensor::from_data(TensorData::new(x, [n, FEATURES]), device),
            Tensor::from_data(TensorData::new(y, [n]), device),
        )
    }
}

impl Task<Scorer> for OwnTask {
    type Batch = (Tensor<2>, Tensor<1, Int>);

    fn check_model(&self, model: &Scorer, _device: &Device) -> Result<(), TaskError> {
        match (
            model.hidden.weight.val().dims(),
            model.out.weight.val().dims(),
        ) {
            ([FEATURES, _], [_, 2]) => Ok(()),
            (hidden, out) => Err(TaskError::Invalid(format!(
                "expected {FEATURES} inputs and 2 outputs, got weights {hidden:?} and {out:?}"
            ))),
        }
    }

    /// Batch `i`: positions `b*B..(b+1)*B` of epoch `i / (N / B)`'s
    /// permutation, drawn from the order seed and the epoch only.
    fn batches<'a>(
        &'a self,
        order: &DataOrder,
        iterations: Range<u64>,
        device: &'a Device,
    ) -> Result<Batches<'a, Self::Batch>, TaskError> {
        let size = order.batch_size;
        if size == 0 || size > self.train.len() {
            return Err(TaskError::Invalid(format!("batch size {size}")));
        }
        let per_epoch = (self.train.len() / size) as u64;
        let seed = order.order_seed;
        Ok(Box::new(iterations.map(move |i| {
            let epoch = permutation(self.train.len(), splitmix(seed) ^ (i / per_epoch));
            let start = (i % per_epoch) as usize * size;
            let points: Vec<_> = epoch[start..start + size]
                .iter()
                .map(|&j| &self.train[j])
                .collect();
            Ok(Self::tensors(&points, device))
        })))
    }

    fn loss(&self, model: &Scorer, (x, y): Self::Batch) -> Tensor<1> {
        CrossEntropyLossConfig::new()
            .init(&x.device())
            .forward(model.forward(x), y)
    }

    fn evaluate(
        &self,
        model: &Scorer,
        split: Split,
        batch_size: usize,
        device: &Device,
    ) -> Result<Metrics, TaskError> {
        let points = match split {
            Split::Test => &self.test[..],
            Split::TrainSubset(n) => &self.train[..n.min(self.train.len())],
        };
        let (model, device) = (model.valid(), device.clone().without_autodiff());
        let (mut correct, mut loss_sum) = (0i64, 0.0f64);
        for chunk in points.chunks(batch_size.max(1)) {
            let (x, y) = Self::tensors(&chunk.iter().collect::<Vec<_>>(), &device);
            let logits = model.forward(x);
            let loss: f32 = CrossEntropyLossConfig::new()
                .init(&device)
                .forward(logits.clone(), y.clone())
                .into_scalar();
            loss_sum += f64::from(loss) * chunk.len() as f64;
            let predicted = logits.argmax(1).reshape([chunk.len()]);
            correct += predicted.equal(y).int().sum().into_scalar::<i64>();
        }
        let accuracy = correct as f64 / points.len() as f64;
        Ok(Metrics::new()
            .with("accuracy", accuracy)
            .with("error", 1.0 - accuracy)
            .with("loss", loss_sum / points.len() as f64))
    }

    fn metrics(&self) -> MetricSpec {
        MetricSpec::accuracy()
    }
}

fn recipe(iterations: u64) -> TrainingRecipe {
    TrainingRecipe {
        batch_size: 16,
        training_iterations: iterations,
        optimizer: OptimizerConfig::adam(1e-2),
        schedule: LrSchedule::constant(),
        augment: false,
    }
}

fn config(name: &str, levels: usize) -> ImpConfig {
    ImpConfig {
        name: name.into(),
        training: recipe(80),
        pruning: MagnitudePrunerConfig::new(0.2),
        levels,
        rewind_iteration: 5,
        seeds: Seeds::all(3),
        ..ImpConfig::default()
    }
}

fn options() -> BarrierOptions {
    BarrierOptions {
        points: 7,
        ..BarrierOptions::default()
    }
}

/// The values of a trained parameter, on the host.
fn values(param: &burn::module::Param<Tensor<2>>) -> Vec<f32> {
    param.val().into_data().try_to_vec::<f32>().unwrap()
}

/// Checks what every run of the user's task must show: one row per level at
/// the expected densities, finite metrics, nested masks, a finite barrier.
fn check_report(report: &ImpReport, levels: usize, metric: &str) {
    let expected = [1.0, 0.8, 0.64];
    assert_eq!(report.rows.len(), levels + 1);
    for (row, want) in report.rows.iter().zip(expected) {
        assert_eq!(row.condition, "imp_rewind5");
        assert!(
            (row.weights_remaining - want).abs() < 0.005,
            "level {}: {} weights remaining, expected {want}",
            row.level,
            row.weights_remaining
        );
        assert!(row.value.is_finite(), "{row:?}");
    }
    for summary in &report.summaries {
        let value = summary.metric(metric).expect("the reported metric");
        assert!(value.is_finite(), "{summary:?}");
        assert!(summary.final_train_loss.is_some_and(f64::is_finite));
    }
}

fn check_nested(masks: &[Mask]) {
    for pair in masks.windows(2) {
        assert!(pair[1].is_subset_of(&pair[0]).unwrap());
        assert!(pair[1].kept_count() < pair[0].kept_count());
    }
}

fn check_pair(pair: &PairResult, weights_remaining: f64) {
    assert!((pair.weights_remaining - weights_remaining).abs() < 1e-12);
    let row = pair.row();
    for value in [
        row.l2_distance,
        row.l2_normalized,
        row.angle,
        row.error_barrier,
        row.endpoint_error_a,
        row.endpoint_error_b,
    ] {
        assert!(value.is_finite(), "{row:?}");
    }
    // Two data orders from the same rewind point end in different networks.
    assert!(row.l2_distance > 0.0, "{row:?}");
    // The barrier is the path's maximum minus the endpoints' mean: never
    // below half the endpoints' difference in magnitude.
    let half_gap = (row.endpoint_error_a - row.endpoint_error_b).abs() / 2.0;
    assert!(row.error_barrier >= half_gap - 1e-12, "{row:?}");
    assert_eq!(pair.curve.test_errors.len(), options().points);
}

#[test]
fn imp_and_stability_on_a_task_written_against_the_trait() {
    let out = tempfile::tempdir().unwrap();
    let device = ndarray();
    let task = OwnTask::new();
    let init = |device: &Device, seed: u64| Scorer::init(device, seed, 2);
    let imp = Imp::new(config("downstream_trait", 2));

    let report = imp
        .run(out.path(), &device, &task, init, &mut Silent)
        .unwrap();
    check_report(&report, 2, "accuracy");
    assert_eq!(report.trained_levels, 3);
    assert_eq!(report.metric, MetricLabel::accuracy());
    // The dense network learned the plane (chance is about 50%).
    assert!(report.rows[0].value > 0.8, "{:?}", report.rows[0]);

    let analyzer = StabilityAnalyzer::new(imp.clone(), out.path(), &task, init, &device)
        .with_options(options());
    let masks: Vec<Mask> = (0..=2)
        .map(|level| analyzer.mask(Condition::Imp, level).unwrap())
        .collect();
    check_nested(&masks);
    // The user's network really is pruned: every weight the mask drops is 0.
    let copy = analyzer.trained_copy(Condition::Imp, 2, 11).unwrap();
    for (path, param) in [
        ("hidden.weight", &copy.hidden.weight),
        ("out.weight", &copy.out.weight),
    ] {
        let kept = masks[2].layer(path).unwrap().kept();
        let weights = values(param);
        assert_eq!(kept.len(), weights.len());
        assert!(kept.iter().zip(&weights).all(|(&k, &w)| k || w == 0.0));
        assert!(kept.iter().zip(&weights).any(|(&k, &w)| k && w != 0.0));
    }

    let pair = analyzer.analyze_pair(Condition::Imp, 2, (11, 12)).unwrap();
    check_pair(&pair, masks[2].density());

    // A re-run reads everything back: nothing is trained, same results.
    let again = imp
        .run(out.path(), &device, &task, init, &mut Silent)
        .unwrap();
    assert_eq!(again.trained_levels, 0);
    assert_eq!(again.rows, report.rows);
    let metrics = |r: &ImpReport| {
        r.summaries
            .iter()
            .map(|s| s.metrics.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(metrics(&again), metrics(&report));
    assert_eq!(
        analyzer.analyze_pair(Condition::Imp, 2, (11, 12)).unwrap(),
        pair
    );
}

/// One example of the regression: features and a target.
#[derive(Debug, Clone)]
struct Point {
    x: [f32; FEATURES],
    y: f32,
}

/// The user's batcher: features `[n, FEATURES]`, targets `[n, 1]`.
#[derive(Clone)]
struct PointBatcher;

impl Batcher<Point, (Tensor<2>, Tensor<2>)> for PointBatcher {
    fn batch(&self, items: Vec<Point>, device: &Device) -> (Tensor<2>, Tensor<2>) {
        let n = items.len();
        let x: Vec<f32> = items.iter().flat_map(|p| p.x).collect();
        let y: Vec<f32> = items.iter().map(|p| p.y).collect();
        (
            Tensor::from_data(TensorData::new(x, [n, FEATURES]), device),
            Tensor::from_data(TensorData::new(y, [n, 1]), device),
        )
    }
}

fn points(n: usize, salt: u64) -> Vec<Point> {
    features(n, salt)
        .into_iter()
        .map(|x| Point {
            y: x[0] - 0.5 * x[1] + x[2] * x[3],
            x,
        })
        .collect()
}

fn mse(model: &Scorer, (x, y): (Tensor<2>, Tensor<2>)) -> Tensor<1> {
    (model.forward(x) - y).powf_scalar(2.0).mean()
}

#[test]
fn imp_and_stability_on_a_dataset_task_with_a_lower_is_better_metric() {
    let out = tempfile::tempdir().unwrap();
    let device = ndarray();
    let task = DatasetTask::new(
        InMemDataset::new(points(256, 0xC0FFEE)),
        InMemDataset::new(points(128, 0xD00D)),
        PointBatcher,
        mse,
        |model: &Scorer, batch: (Tensor<2>, Tensor<2>)| {
            let n = batch.0.dims()[0];
            let residuals = model.forward(batch.0) - batch.1;
            let mse: f32 = residuals.clone().powf_scalar(2.0).mean().into_scalar();
            let mae: f32 = residuals.abs().sum().into_scalar();
            Metrics::new()
                .with("mse", f64::from(mse))
                .with("mae", f64::from(mae) / n as f64)
        },
        MetricSpec::lower_is_better("mae").with_error("mse"),
    );
    let init = |device: &Device, seed: u64| Scorer::init(device, seed, 1);
    let imp = Imp::new(config("downstream_dataset", 1)).with_options(RunOptions {
        eval_batch_size: 50, // several evaluation batches, averaged
        ..RunOptions::default()
    });

    let report = imp
        .run(out.path(), &device, &task, init, &mut Silent)
        .unwrap();
    check_report(&report, 1, "mse");
    // The reported metric is the mean absolute error, named as such.
    assert_eq!(report.metric, MetricLabel::new("mae", false).unwrap());
    for (row, summary) in report.rows.iter().zip(&report.summaries) {
        assert_eq!(row.value, summary.metric("mae").unwrap());
    }
    assert!(report.table().to_string().contains("test mae"));
    // Better than predicting 0 (the targets' mean square is about 0.5).
    assert!(report.summaries[0].metric("mse").unwrap() < 0.3);

    let analyzer = StabilityAnalyzer::new(imp.clone(), out.path(), &task, init, &device)
        .with_options(BarrierOptions {
            eval_batch_size: 50,
            ..options()
        });
    check_nested(&[
        analyzer.mask(Condition::Imp, 0).unwrap(),
        analyzer.mask(Condition::Imp, 1).unwrap(),
    ]);
    // Seed 3 is the experiment's own data order: copy `a` is the level's
    // IMP network, so the path's `alpha = 1` end is its test mse.
    let pair = analyzer.analyze_pair(Condition::Imp, 1, (3, 12)).unwrap();
    check_pair(&pair, report.rows[1].weights_remaining);
    let level_mse = report.summaries[1].metric("mse").unwrap();
    assert!(
        (pair.curve.endpoint_error_a() - level_mse).abs() < 1e-6,
        "{} vs {level_mse}",
        pair.curve.endpoint_error_a()
    );

    let again = imp
        .run(out.path(), &device, &task, init, &mut Silent)
        .unwrap();
    assert_eq!(again.trained_levels, 0);
    assert_eq!(again.rows, report.rows);
}
