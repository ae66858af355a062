//! [`DatasetTask`]: a [`Task`] over a burn [`Dataset`] and [`Batcher`], with
//! the loss and the metrics given as closures.

use std::ops::Range;
use std::sync::Arc;

use burn::data::dataloader::batcher::Batcher;
use burn::data::dataset::Dataset;
use burn::module::Module;
use burn::tensor::{Device, Tensor};

use super::items::Items;
use super::{Batches, DataOrder, MetricSpec, Metrics, Split, Task, TaskError};

type LossFn<M, O> = dyn Fn(&M, O) -> Tensor<1> + Send + Sync;
type MetricsFn<M, O> = dyn Fn(&M, O) -> Metrics + Send + Sync;

/// A [`Task`] made of burn's own data types: training and test
/// [`Dataset`]s of items `I`, a [`Batcher`] that turns items into batches
/// `O`, a loss and per-batch metrics.
///
/// * **Data order.** Batch `i` holds the training items of positions
///   `b*B..(b+1)*B` of epoch `e`'s seeded permutation ([`SeededOrder`](crate::data::SeededOrder)), so
///   it is a pure function of the [`DataOrder`] and `i` whatever the
///   dataset. Items are read with [`Dataset::get`] and batched on the
///   training device. `DatasetTask` does not augment: a recipe with
///   `augment = true` is refused (write a [`Task`] of your own for seeded
///   augmentation).
/// * **Evaluation.** The test set (or the first `n` training items) in its
///   stored order, in batches; `metrics(model.valid(), batch)` gives each
///   batch's *mean* metrics, which are averaged weighted by batch size (so
///   report means, e.g. a mean squared error rather than its root).
///
/// ```
/// use std::sync::Arc;
/// use burn::data::dataloader::batcher::Batcher;
/// use burn::data::dataset::InMemDataset;
/// use burn::nn::{Linear, LinearConfig};
/// use burn::tensor::{Device, Tensor};
/// use burn_lottery::task::{DatasetTask, MetricSpec, Metrics};
///
/// #[derive(Clone)]
/// struct Pairs;
/// impl Batcher<(f32, f32), (Tensor<2>, Tensor<2>)> for Pairs {
///     fn batch(&self, items: Vec<(f32, f32)>, device: &Device) -> (Tensor<2>, Tensor<2>) {
///         let n = items.len();
///         let x: Vec<f32> = items.iter().map(|p| p.0).collect();
///         let y: Vec<f32> = items.iter().map(|p| p.1).collect();
///         (
///             Tensor::<1>::from_floats(x.as_slice(), device).reshape([n, 1]),
///             Tensor::<1>::from_floats(y.as_slice(), device).reshape([n, 1]),
///         )
///     }
/// }
///
/// let points: Vec<(f32, f32)> = (0..100).map(|i| (i as f32 / 100.0, 2.0 * i as f32 / 100.0)).collect();
/// let task = DatasetTask::new(
///     InMemDataset::new(points.clone()),
///     InMemDataset::new(points),
///     Pairs,
///     |model: &Linear, (x, y): (Tensor<2>, Tensor<2>)| (model.forward(x) - y).powf_scalar(2.0).mean(),
///     |model: &Linear, (x, y): (Tensor<2>, Tensor<2>)| {
///         let mse: f32 = (model.forward(x) - y).powf_scalar(2.0).mean().into_scalar();
///         Metrics::new().with("mse", f64::from(mse))
///     },
///     MetricSpec::lower_is_better("mse"),
/// );
/// # let _ = task;
/// ```
pub struct DatasetTask<M, I, O> {
    items: Items<I, O>,
    loss: Arc<LossFn<M, O>>,
    metrics: Arc<MetricsFn<M, O>>,
    spec: MetricSpec,
}

impl<M, I, O> DatasetTask<M, I, O> {
    /// A task training on `train` and evaluating on `test`. `loss(model,
    /// batch)` is the training loss (a one-element tensor); `metrics(model,
    /// batch)` the mean metrics of an evaluation batch, which must include
    /// the ones `spec` names.
    pub fn new(
        train: impl Dataset<I> + 'static,
        test: impl Dataset<I> + 'static,
        batcher: impl Batcher<I, O> + 'static,
        loss: impl Fn(&M, O) -> Tensor<1> + Send + Sync + 'static,
        metrics: impl Fn(&M, O) -> Metrics + Send + Sync + 'static,
        spec: MetricSpec,
    ) -> Self {
        Self {
            items: Items::new(train, test, batcher),
            loss: Arc::new(loss),
            metrics: Arc::new(metrics),
            spec,
        }
    }

    /// Number of training items.
    pub fn train_len(&self) -> usize {
        self.items.train_len()
    }

    /// Number of test items.
    pub fn test_len(&self) -> usize {
        self.items.test_len()
    }
}

impl<M: Module, I, O> Task<M> for DatasetTask<M, I, O> {
    type Batch = O;

    fn batches<'a>(
        &'a self,
        order: &DataOrder,
        iterations: Range<u64>,
        device: &'a Device,
    ) -> Result<Batches<'a, O>, TaskError> {
        self.items.batches(order, iterations, device)
    }

    fn loss(&self, model: &M, batch: O) -> Tensor<1> {
        (self.loss)(model, batch)
    }

    fn evaluate(
        &self,
        model: &M,
        split: Split,
        batch_size: usize,
        device: &Device,
    ) -> Result<Metrics, TaskError> {
        // Callers pass an inference-mode model and a plain device: both
        // lines are no-ops then, and make a direct call safe too.
        let model = model.valid();
        let device = device.clone().without_autodiff();
        let (len, batches) = self.items.evaluation(split, batch_size, &device)?;
        let mut sums = Metrics::new();
        for batch in batches {
            let (batch, items) = batch?;
            for (name, value) in (self.metrics)(&model, batch).iter() {
                let sum = sums.get(name).unwrap_or(0.0) + value * items as f64;
                sums.insert(name, sum);
            }
        }
        let mut means = Metrics::new();
        for (name, sum) in sums.iter() {
            means.insert(name, if len == 0 { 0.0 } else { sum / len as f64 });
        }
        for name in [&self.spec.reported, &self.spec.error] {
            means.require(name)?;
        }
        Ok(means)
    }

    fn metrics(&self) -> MetricSpec {
        self.spec.clone()
    }
}
