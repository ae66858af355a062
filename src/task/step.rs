//! [`StepTask`]: a [`Task`] made of a model's burn-train [`TrainStep`] and
//! [`InferenceStep`] and burn-train's numeric metrics, so a model already
//! trained with burn's `Learner` runs through IMP with no loss or metric
//! written again.

use std::ops::Range;
use std::sync::Arc;

use burn::data::dataloader::Progress;
use burn::data::dataloader::batcher::Batcher;
use burn::data::dataset::Dataset;
use burn::module::Module;
use burn::tensor::{Device, Tensor};
use burn::train::metric::{
    Adaptor, Metric, MetricAttributes, MetricMetadata, Numeric, NumericAttributes,
};
use burn::train::{
    ClassificationOutput, InferenceStep, MultiLabelClassificationOutput, RegressionOutput,
    SequenceOutput, TrainOutput, TrainStep,
};

use super::items::Items;
use super::{Batches, DataOrder, MetricSpec, Metrics, Split, Task, TaskError};

/// The loss tensor inside a burn-train step output, which the trainer reads
/// now and then and checks is finite. Implemented for burn-train's
/// [`ClassificationOutput`], [`MultiLabelClassificationOutput`],
/// [`RegressionOutput`] and [`SequenceOutput`]; an output type of your own
/// implements it with one line (`self.loss.clone()`).
pub trait StepLoss {
    /// The step's loss, a one-element tensor.
    fn loss(&self) -> Tensor<1>;
}

macro_rules! step_loss_field {
    ($($output:ty),*) => {$(
        impl StepLoss for $output {
            fn loss(&self) -> Tensor<1> {
                self.loss.clone()
            }
        }
    )*};
}

step_loss_field!(
    ClassificationOutput,
    MultiLabelClassificationOutput,
    RegressionOutput,
    SequenceOutput
);

/// A burn-train metric as the task keeps it: a template cloned afresh for
/// every evaluation.
trait MetricTemplate<O>: Send + Sync {
    /// The metric's name as the crate reports it (see [`metric_key`]).
    fn key(&self) -> String;
    /// Whether larger is better, and whether it is a percentage.
    fn attributes(&self) -> NumericAttributes;
    /// A cleared copy to run over one evaluation.
    fn start(&self) -> Box<dyn RunningMetric<O>>;
}

/// One evaluation's state of a burn-train metric.
trait RunningMetric<O> {
    /// Adds one batch's output.
    fn update(&mut self, output: &O, metadata: &MetricMetadata) -> Result<(), String>;
    /// The value over every batch added.
    fn finish(&mut self) -> Result<f64, String>;
}

/// A burn-train metric over outputs `O` (which adapt to the metric's input).
struct Template<Me>(Me);

impl<O, Me> MetricTemplate<O> for Template<Me>
where
    Me: Metric + Numeric + 'static,
    O: Adaptor<Me::Input> + 'static,
{
    fn key(&self) -> String {
        metric_key(&self.0.name())
    }

    fn attributes(&self) -> NumericAttributes {
        match self.0.attributes() {
            MetricAttributes::Numeric(attributes) => attributes,
            MetricAttributes::None => NumericAttributes::default(),
        }
    }

    fn start(&self) -> Box<dyn RunningMetric<O>> {
        let mut metric = self.0.clone();
        metric.clear();
        Box::new(Running(metric))
    }
}

/// A metric being run over one evaluation.
struct Running<Me>(Me);

impl<O, Me> RunningMetric<O> for Running<Me>
where
    Me: Metric + Numeric,
    O: Adaptor<Me::Input>,
{
    fn update(&mut self, output: &O, metadata: &MetricMetadata) -> Result<(), String> {
        let input = output.adapt();
        self.0.update(&input, metadata).map_err(|e| e.to_string())?;
        Ok(())
    }

    fn finish(&mut self) -> Result<f64, String> {
        self.0.compute().map_err(|e| e.to_string())?;
        Ok(self.0.final_value().current())
    }
}

/// The crate's name for a burn-train metric: lower case, every run of
/// other characters than letters and digits an `_` (`Accuracy` is
/// `accuracy`, `Top-K Accuracy` is `top_k_accuracy`).
fn metric_key(name: &str) -> String {
    let lower = name.to_lowercase();
    let words: Vec<&str> = lower
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|word| !word.is_empty())
        .collect();
    words.join("_")
}

/// A [`Task`] for a model that implements burn-train's [`TrainStep`] and
/// [`InferenceStep`] on the same batch type `B`, with training and test
/// burn [`Dataset`]s of items `I`, one [`Batcher`], and burn-train numeric
/// metrics (`AccuracyMetric`, `LossMetric`, ...) over the inference output.
///
/// * **Training** calls the model's [`TrainStep::step`] (forward and
///   backward, as for burn's `Learner`) on batch `i` of the seeded data
///   order (the items at positions `b*B..(b+1)*B` of epoch `e`'s
///   permutation, like [`DatasetTask`](super::DatasetTask); no
///   augmentation). The step output's [`StepLoss`] is the loss the trainer
///   reads. The loss alone (for SNIP, GraSP and the barrier's statistics
///   pass) comes from [`InferenceStep::step`] on the training batch.
/// * **Evaluation** runs [`InferenceStep::step`] on the test set (or the
///   first `n` training items) in stored order and feeds every output to
///   each metric, as burn's `Learner` does for validation; a metric's value
///   is its final value over the whole split as burn-train computes it
///   (`AccuracyMetric` counts every item; `LossMetric` averages the
///   batches' mean losses, one batch counting once). Metrics with unit `%` (burn's
///   accuracy) are stored as fractions, like the crate's own `accuracy`.
/// * **Names**: a metric is reported under its burn name in lower case with
///   `_` between words (`Accuracy` → `accuracy`, `Loss` → `loss`). The
///   first metric added is the reported one. The instability barrier takes
///   `error` = 1 − the reported metric when that is a higher-is-better
///   percentage, otherwise the first lower-is-better metric
///   ([`StepTask::error_metric`] chooses another).
///
/// ```
/// # use burn::data::dataloader::batcher::Batcher;
/// # use burn::data::dataset::InMemDataset;
/// # use burn::module::Module;
/// # use burn::nn::loss::CrossEntropyLossConfig;
/// # use burn::nn::{Linear, LinearConfig};
/// # use burn::tensor::{Device, Int, Tensor, TensorData};
/// use burn::train::metric::{AccuracyMetric, LossMetric};
/// use burn::train::{ClassificationOutput, InferenceStep, TrainOutput, TrainStep};
/// use burn_lottery::task::{StepTask, Task};
///
/// #[derive(Module, Debug)]
/// struct Model {
///     linear: Linear,
/// }
///
/// impl Model {
///     fn classify(&self, (x, y): (Tensor<2>, Tensor<1, Int>)) -> ClassificationOutput {
///         let logits = self.linear.forward(x);
///         let loss = CrossEntropyLossConfig::new()
///             .init(&logits.device())
///             .forward(logits.clone(), y.clone());
///         ClassificationOutput::new(loss, logits, y)
///     }
/// }
///
/// impl TrainStep for Model {
///     type Input = (Tensor<2>, Tensor<1, Int>);
///     type Output = ClassificationOutput;
///     fn step(&self, batch: Self::Input) -> TrainOutput<ClassificationOutput> {
///         let output = self.classify(batch);
///         TrainOutput::new(self, output.loss.backward(), output)
///     }
/// }
///
/// impl InferenceStep for Model {
///     type Input = (Tensor<2>, Tensor<1, Int>);
///     type Output = ClassificationOutput;
///     fn step(&self, batch: Self::Input) -> ClassificationOutput {
///         self.classify(batch)
///     }
/// }
///
/// #[derive(Clone)]
/// struct Points;
/// impl Batcher<(f32, i64), (Tensor<2>, Tensor<1, Int>)> for Points {
///     fn batch(&self, items: Vec<(f32, i64)>, device: &Device) -> (Tensor<2>, Tensor<1, Int>) {
///         let n = items.len();
///         let x: Vec<f32> = items.iter().map(|p| p.0).collect();
///         let y: Vec<i64> = items.iter().map(|p| p.1).collect();
///         (
///             Tensor::from_data(TensorData::new(x, [n, 1]), device),
///             Tensor::from_data(TensorData::new(y, [n]), device),
///         )
///     }
/// }
///
/// let points: Vec<(f32, i64)> = (0..64).map(|i| (i as f32 / 64.0, (i >= 32) as i64)).collect();
/// let task = StepTask::<Model, _, _>::new(
///     InMemDataset::new(points.clone()),
///     InMemDataset::new(points),
///     Points,
/// )
/// .metric(AccuracyMetric::new())
/// .metric(LossMetric::new());
/// let spec = task.metrics();
/// assert_eq!((spec.reported.as_str(), spec.error.as_str()), ("accuracy", "error"));
/// ```
pub struct StepTask<M, I, B>
where
    M: InferenceStep,
{
    items: Items<I, B>,
    templates: Vec<Arc<dyn MetricTemplate<<M as InferenceStep>::Output>>>,
    error: Option<String>,
}

impl<M: InferenceStep, I, B> StepTask<M, I, B> {
    /// A task training on `train` and evaluating on `test`, both batched by
    /// `batcher`, with no metric yet: add at least one with
    /// [`StepTask::metric`].
    pub fn new(
        train: impl Dataset<I> + 'static,
        test: impl Dataset<I> + 'static,
        batcher: impl Batcher<I, B> + 'static,
    ) -> Self {
        Self {
            items: Items::new(train, test, batcher),
            templates: Vec::new(),
            error: None,
        }
    }

    /// Adds a burn-train numeric metric over the inference output (the
    /// first one added is reported).
    pub fn metric<Me>(mut self, metric: Me) -> Self
    where
        Me: Metric + Numeric + 'static,
        <M as InferenceStep>::Output: Adaptor<Me::Input> + 'static,
    {
        self.templates.push(Arc::new(Template(metric)));
        self
    }

    /// Takes the instability barrier of the metric called `name` (a
    /// lower-is-better one, e.g. `loss`) instead of the default (see the
    /// [type docs](StepTask)).
    pub fn error_metric(mut self, name: impl Into<String>) -> Self {
        self.error = Some(name.into());
        self
    }

    /// Number of training items.
    pub fn train_len(&self) -> usize {
        self.items.train_len()
    }

    /// Refuses a task without metrics, before anything is trained.
    fn check_metrics(&self) -> Result<(), TaskError> {
        if self.templates.is_empty() {
            return Err(TaskError::Invalid(
                "a StepTask needs at least one metric (StepTask::metric)".into(),
            ));
        }
        Ok(())
    }

    /// Whether the reported (first) metric is a higher-is-better percentage,
    /// so `error` = 1 − its fraction.
    fn derived_error(&self) -> bool {
        self.error.is_none()
            && self.templates.first().is_some_and(|first| {
                let attributes = first.attributes();
                attributes.higher_is_better && attributes.unit.as_deref() == Some("%")
            })
    }

    /// What the reports and the barrier use; `None` without metrics.
    fn spec(&self) -> Option<MetricSpec> {
        let first = self.templates.first()?;
        let attributes = first.attributes();
        let error = match &self.error {
            Some(name) => name.clone(),
            None if self.derived_error() => "error".into(),
            None => self
                .templates
                .iter()
                .find(|metric| !metric.attributes().higher_is_better)
                .map_or_else(|| first.key(), |metric| metric.key()),
        };
        Some(MetricSpec {
            reported: first.key(),
            higher_is_better: attributes.higher_is_better,
            percent: attributes.unit.as_deref() == Some("%"),
            error,
        })
    }

    /// Runs every metric over the inference outputs of `split`.
    fn run_metrics(
        &self,
        model: &M,
        split: Split,
        batch_size: usize,
        device: &Device,
    ) -> Result<Metrics, TaskError>
    where
        M: InferenceStep<Input = B>,
    {
        let (len, batches) = self.items.evaluation(split, batch_size, device)?;
        if len == 0 {
            return Err(TaskError::Invalid(format!("{split:?} has no items")));
        }
        let mut running: Vec<_> = self.templates.iter().map(|m| m.start()).collect();
        let mut processed = 0;
        for batch in batches {
            let (batch, items) = batch?;
            let output = <M as InferenceStep>::step(model, batch);
            processed += items;
            let metadata = evaluation_metadata(processed, len);
            for (metric, template) in running.iter_mut().zip(&self.templates) {
                metric
                    .update(&output, &metadata)
                    .map_err(|reason| metric_error(template.key(), reason))?;
            }
        }
        let mut metrics = Metrics::new();
        for (metric, template) in running.iter_mut().zip(&self.templates) {
            let value = metric
                .finish()
                .map_err(|reason| metric_error(template.key(), reason))?;
            let percent = template.attributes().unit.as_deref() == Some("%");
            metrics.insert(template.key(), if percent { value / 100.0 } else { value });
        }
        Ok(metrics)
    }
}

/// Progress through an evaluation, as burn's `Learner` gives its metrics.
fn evaluation_metadata(processed: usize, total: usize) -> MetricMetadata {
    MetricMetadata {
        progress: Progress {
            items_processed: processed,
            items_total: total,
            unit: Some("items".into()),
        },
        iteration: None,
        lr: None,
    }
}

fn metric_error(name: String, reason: String) -> TaskError {
    TaskError::Metric { name, reason }
}

impl<M, I, B> Task<M> for StepTask<M, I, B>
where
    M: Module + TrainStep<Input = B> + InferenceStep<Input = B>,
    <M as TrainStep>::Output: StepLoss,
    <M as InferenceStep>::Output: StepLoss,
{
    type Batch = B;

    fn check_model(&self, _: &M, _: &Device) -> Result<(), TaskError> {
        self.check_metrics()
    }

    fn batches<'a>(
        &'a self,
        order: &DataOrder,
        iterations: Range<u64>,
        device: &'a Device,
    ) -> Result<Batches<'a, B>, TaskError> {
        self.items.batches(order, iterations, device)
    }

    fn loss(&self, model: &M, batch: B) -> Tensor<1> {
        <M as InferenceStep>::step(model, batch).loss()
    }

    fn train_step(&self, model: &M, batch: B) -> TrainOutput<Tensor<1>> {
        let output = <M as TrainStep>::step(model, batch);
        TrainOutput {
            grads: output.grads,
            item: output.item.loss(),
        }
    }

    fn evaluate(
        &self,
        model: &M,
        split: Split,
        batch_size: usize,
        device: &Device,
    ) -> Result<Metrics, TaskError> {
        self.check_metrics()?;
        let spec = self.metrics();
        // Callers pass an inference-mode model and a plain device: both
        // lines are no-ops then, and make a direct call safe too.
        let model = model.valid();
        let device = device.clone().without_autodiff();
        let mut metrics = self.run_metrics(&model, split, batch_size, &device)?;
        if self.derived_error() {
            metrics.insert("error", 1.0 - metrics.require(&spec.reported)?);
        }
        for name in [&spec.reported, &spec.error] {
            metrics.require(name)?;
        }
        Ok(metrics)
    }

    fn metrics(&self) -> MetricSpec {
        self.spec()
            .unwrap_or_else(|| MetricSpec::lower_is_better("loss"))
    }
}
