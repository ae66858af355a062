//! `StepTask`: a model's burn-train `TrainStep`/`InferenceStep` and
//! burn-train metrics as a task, trained and evaluated exactly as the same
//! loss written as a closure.

use burn::data::dataloader::batcher::Batcher;
use burn::data::dataset::InMemDataset;
use burn::module::Module;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::nn::{Linear, LinearConfig};
use burn::optim::AdamWConfig;
use burn::tensor::activation::relu;
use burn::tensor::{Device, Int, Tensor, TensorData};
use burn::train::metric::{AccuracyMetric, LossMetric};
use burn::train::{ClassificationOutput, InferenceStep, TrainOutput, TrainStep};
use burn_lottery::mask::{Mask, ParamSelector};
use burn_lottery::models::init_weights;
use burn_lottery::prelude::*;
use burn_lottery::train::masked::MaskedOptimizer;
use burn_lottery::train::trainer::{NoObserver, Trainer};

use crate::common::{ndarray, state};

type Batch = (Tensor<2>, Tensor<1, Int>);

#[derive(Module, Debug)]
struct Net {
    fc1: Linear,
    fc2: Linear,
}

impl Net {
    fn init(device: &Device, seed: u64) -> Self {
        let net = Self {
            fc1: LinearConfig::new(4, 16).init(device),
            fc2: LinearConfig::new(16, 3).init(device),
        };
        init_weights(net, seed)
    }

    fn logits(&self, x: Tensor<2>) -> Tensor<2> {
        self.fc2.forward(relu(self.fc1.forward(x)))
    }

    fn classify(&self, (x, y): Batch) -> ClassificationOutput {
        let logits = self.logits(x);
        let loss = cross_entropy(logits.clone(), y.clone());
        ClassificationOutput::new(loss, logits, y)
    }
}

fn cross_entropy(logits: Tensor<2>, y: Tensor<1, Int>) -> Tensor<1> {
    CrossEntropyLossConfig::new()
        .init(&logits.device())
        .forward(logits, y)
}

impl TrainStep for Net {
    type Input = Batch;
    type Output = ClassificationOutput;

    fn step(&self, batch: Batch) -> TrainOutput<ClassificationOutput> {
        let output = self.classify(batch);
        TrainOutput::new(self, output.loss.backward(), output)
    }
}

impl InferenceStep for Net {
    type Input = Batch;
    type Output = ClassificationOutput;

    fn step(&self, batch: Batch) -> ClassificationOutput {
        self.classify(batch)
    }
}

/// Three classes of 4 features: class c has feature c large, plus a
/// deterministic wobble.
fn points(n: usize, offset: usize) -> Vec<([f32; 4], i64)> {
    (0..n)
        .map(|i| {
            let class = (i + offset) % 3;
            let wobble = ((i * 7 + offset) % 11) as f32 / 11.0 - 0.5;
            let mut x = [wobble, -wobble, 0.5 * wobble, 0.0];
            x[class] += 2.0;
            (x, class as i64)
        })
        .collect()
}

#[derive(Clone)]
struct Points;

impl Batcher<([f32; 4], i64), Batch> for Points {
    fn batch(&self, items: Vec<([f32; 4], i64)>, device: &Device) -> Batch {
        let n = items.len();
        let x: Vec<f32> = items.iter().flat_map(|p| p.0).collect();
        let y: Vec<i64> = items.iter().map(|p| p.1).collect();
        (
            Tensor::from_data(TensorData::new(x, [n, 4]), device),
            Tensor::from_data(TensorData::new(y, [n]), device),
        )
    }
}

fn step_task() -> StepTask<Net, ([f32; 4], i64), Batch> {
    StepTask::new(
        InMemDataset::new(points(90, 0)),
        InMemDataset::new(points(45, 1)),
        Points,
    )
    .metric(AccuracyMetric::new())
    .metric(LossMetric::new())
}

/// The same data and loss, written as closures.
fn closure_task() -> DatasetTask<Net, ([f32; 4], i64), Batch> {
    DatasetTask::new(
        InMemDataset::new(points(90, 0)),
        InMemDataset::new(points(45, 1)),
        Points,
        |net: &Net, batch: Batch| net.classify(batch).loss,
        |net: &Net, (x, y): Batch| {
            let logits = net.logits(x);
            let loss: f32 = cross_entropy(logits.clone(), y.clone()).into_scalar();
            let n = y.dims()[0] as f64;
            let correct: i64 = logits
                .argmax(1)
                .flatten::<1>(0, 1)
                .equal(y)
                .int()
                .sum()
                .into_scalar();
            Metrics::new()
                .with("accuracy", correct as f64 / n)
                .with("error", 1.0 - correct as f64 / n)
                .with("loss", f64::from(loss))
        },
        MetricSpec::accuracy(),
    )
}

fn recipe() -> TrainingRecipe {
    TrainingRecipe {
        batch_size: 15,
        training_iterations: 24,
        optimizer: OptimizerConfig::burn(1e-2, AdamWConfig::new().with_weight_decay(1e-3)),
        schedule: LrSchedule::constant(),
        augment: false,
    }
}

fn order() -> DataOrder {
    DataOrder {
        batch_size: 15,
        order_seed: 3,
        augment_seed: None,
    }
}

/// Trains `task` for the recipe's 24 steps from the same init and mask.
fn train<T: Task<Net>>(task: &T) -> Net {
    let device = ndarray().autodiff();
    let model = Net::init(&device, 5);
    let mask = Mask::dense(&model, &ParamSelector::default()).unwrap();
    let recipe = recipe();
    let mut optimizer =
        MaskedOptimizer::new(recipe.optimizer.init(), &mask, &model, &device).unwrap();
    let model = optimizer.prepare(model);
    Trainer::new(&recipe, task, &device)
        .train(model, &mut optimizer, 0..24, &order(), &mut NoObserver)
        .unwrap()
}

#[test]
fn the_model_s_train_step_trains_exactly_as_its_loss() {
    let by_step = train(&step_task());
    let by_closure = train(&closure_task());
    assert_eq!(state(&by_step), state(&by_closure));
    assert_ne!(state(&by_step), state(&Net::init(&ndarray(), 5)));
}

#[test]
fn burn_train_metrics_are_reported_under_the_crate_s_names() {
    let task = step_task();
    let spec = task.metrics();
    assert_eq!(spec, MetricSpec::accuracy());
    let device = ndarray();
    let model = train(&task).valid();
    // Accuracy over the whole split whatever the batch size; burn-train's
    // loss metric averages the batches' mean losses (one batch here for 45
    // and 100).
    let by_batch: Vec<Metrics> = [7, 45, 100]
        .iter()
        .map(|&b| task.evaluate(&model, Split::Test, b, &device).unwrap())
        .collect();
    let closure = closure_task()
        .evaluate(&model, Split::Test, 45, &device)
        .unwrap();
    for metrics in &by_batch {
        let accuracy = metrics.require("accuracy").unwrap();
        assert!((0.0..=1.0).contains(&accuracy), "{metrics}");
        assert!((accuracy - closure.require("accuracy").unwrap()).abs() < 1e-9);
        assert!((metrics.require("error").unwrap() - (1.0 - accuracy)).abs() < 1e-12);
    }
    for metrics in &by_batch[1..] {
        let loss = metrics.require("loss").unwrap();
        assert!(
            (loss - closure.require("loss").unwrap()).abs() < 1e-6,
            "{loss}"
        );
    }
    assert!(by_batch[0].require("accuracy").unwrap() > 0.9);

    // The barrier can be taken of another metric, named.
    let spec = step_task().error_metric("loss").metrics();
    assert_eq!(
        (spec.reported.as_str(), spec.error.as_str()),
        ("accuracy", "loss")
    );
}

#[test]
fn imp_runs_on_a_burn_train_model_and_a_task_without_metrics_is_refused() {
    let root = tempfile::tempdir().unwrap();
    let device = ndarray();
    let experiment = Experiment::new(root.path(), &device, step_task(), Net::init)
        .name("step_task")
        .recipe(recipe());
    let imp = experiment.imp(|c| ImpConfig {
        levels: 2,
        rewind_iteration: 4,
        ..c
    });
    let report = imp.run().unwrap();
    assert_eq!(report.rows.len(), 3);
    assert_eq!(report.metric.name(), "accuracy");
    assert!(report.rows.iter().all(|r| (0.0..=1.0).contains(&r.value)));

    let bare = StepTask::<Net, _, _>::new(
        InMemDataset::new(points(30, 0)),
        InMemDataset::new(points(30, 1)),
        Points,
    );
    let err = Experiment::new(root.path(), &device, bare, Net::init)
        .name("no_metrics")
        .recipe(recipe())
        .imp(|c| ImpConfig {
            rewind_iteration: 0,
            ..c
        })
        .run()
        .unwrap_err();
    assert!(err.to_string().contains("at least one metric"), "{err}");
}
