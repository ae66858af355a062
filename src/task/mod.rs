//! What IMP, the trainer and the stability analysis need from a learning
//! problem: the [`Task`] trait.
//!
//! A task says what a batch is, which batch iteration `i` of a seeded data
//! order gives, the loss of a model on a batch, and how a model is
//! evaluated. Everything else (masks, rewinding, the experiment directory,
//! branches, instability) is the crate's. Two implementations come with it:
//!
//! * [`ExperimentData`](crate::data::ExperimentData): image classification
//!   with the crate's seeded loader, augmentation, cross-entropy and
//!   accuracy, for any [`Classifier`](crate::models::Classifier);
//! * [`DatasetTask`]: any burn [`Dataset`](burn::data::dataset::Dataset)
//!   and [`Batcher`](burn::data::dataloader::batcher::Batcher), with a loss
//!   and metrics given as closures.
//!
//! Implement [`Task`] directly for anything else (e.g. augmentation of your
//! own): the only rule is that [`Task::batches`] is a pure function of the
//! [`DataOrder`] and the iteration, so that rewinding to `k` and resuming
//! mid-level give the same batches as an uninterrupted run.

mod dataset;
mod error;
mod image;
mod items;
mod metrics;
mod step;

use std::ops::Range;

use burn::module::Module;
use burn::tensor::{Device, Tensor};
use burn::train::TrainOutput;

pub use dataset::DatasetTask;
pub use error::TaskError;
pub use metrics::{MetricSpec, Metrics};
pub use step::{StepLoss, StepTask};

/// Which training batches a run sees. Batch `i` must be a pure function of
/// these settings and `i` (see the [module docs](self)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataOrder {
    /// Examples per batch (the recipe's batch size).
    pub batch_size: usize,
    /// Seeds the order of the examples in each epoch.
    pub order_seed: u64,
    /// Seeds the random augmentation; `None` when the recipe does not
    /// augment.
    pub augment_seed: Option<u64>,
}

/// The examples an evaluation runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    /// The held-out test set (reported at the end of every level).
    Test,
    /// The first `n` training examples, in their stored order, never
    /// augmented.
    TrainSubset(usize),
}

/// The training batches of a run, in iteration order.
pub type Batches<'a, B> = Box<dyn Iterator<Item = Result<B, TaskError>> + 'a>;

/// A learning problem that IMP and the stability analysis can run on, for
/// models of type `M` (any burn [`Module`]).
///
/// ```
/// use burn::module::Module;
/// use burn::nn::{Linear, LinearConfig};
/// use burn::tensor::{Device, Tensor};
/// use burn_lottery::task::{Batches, DataOrder, MetricSpec, Metrics, Split, Task, TaskError};
///
/// /// Fits y = 2x on x in [0, 1): one batch per iteration, no randomness needed.
/// struct Doubling;
///
/// impl Task<Linear> for Doubling {
///     type Batch = (Tensor<2>, Tensor<2>);
///
///     fn batches<'a>(
///         &'a self,
///         order: &DataOrder,
///         iterations: std::ops::Range<u64>,
///         device: &'a Device,
///     ) -> Result<Batches<'a, Self::Batch>, TaskError> {
///         let n = order.batch_size;
///         Ok(Box::new(iterations.map(move |i| {
///             let x: Vec<f32> = (0..n).map(|j| ((i as usize * n + j) % 100) as f32 / 100.0).collect();
///             let y: Vec<f32> = x.iter().map(|x| 2.0 * x).collect();
///             let x = Tensor::<1>::from_floats(x.as_slice(), device).reshape([n, 1]);
///             let y = Tensor::<1>::from_floats(y.as_slice(), device).reshape([n, 1]);
///             Ok((x, y))
///         })))
///     }
///
///     fn loss(&self, model: &Linear, (x, y): Self::Batch) -> Tensor<1> {
///         (model.forward(x) - y).powf_scalar(2.0).mean()
///     }
///
///     fn evaluate(&self, model: &Linear, _: Split, _: usize, device: &Device) -> Result<Metrics, TaskError> {
///         let x = Tensor::<1>::from_floats([0.25f32, 0.5].as_slice(), device).reshape([2, 1]);
///         let y = x.clone() * 2.0;
///         let mse: f32 = (model.forward(x) - y).powf_scalar(2.0).mean().into_scalar();
///         Ok(Metrics::new().with("mse", f64::from(mse)))
///     }
///
///     fn metrics(&self) -> MetricSpec {
///         MetricSpec::lower_is_better("mse")
///     }
/// }
/// ```
pub trait Task<M: Module> {
    /// What one training step consumes (tensors already on the device).
    type Batch;

    /// Checks that `model` fits the task's data, before anything is trained
    /// or stored. The default accepts every model.
    fn check_model(&self, model: &M, device: &Device) -> Result<(), TaskError> {
        let _ = (model, device);
        Ok(())
    }

    /// The training batches of `iterations` in the data order `order`, on
    /// `device` (an autodiff device). Batch `i` must depend on `order` and
    /// `i` only.
    fn batches<'a>(
        &'a self,
        order: &DataOrder,
        iterations: Range<u64>,
        device: &'a Device,
    ) -> Result<Batches<'a, Self::Batch>, TaskError>;

    /// The loss of `model` on `batch`, a one-element tensor to minimize.
    /// Called in training mode on an autodiff device (so BatchNorm updates
    /// its running statistics).
    fn loss(&self, model: &M, batch: Self::Batch) -> Tensor<1>;

    /// One training step on `batch`: the gradients of `model`'s parameters
    /// and the step's loss (a one-element tensor, read by the trainer only
    /// now and then). The default differentiates [`Task::loss`]; a task
    /// whose model computes its own gradients overrides it (a
    /// [`StepTask`] calls the model's burn-train `TrainStep`).
    fn train_step(&self, model: &M, batch: Self::Batch) -> TrainOutput<Tensor<1>> {
        let loss = self.loss(model, batch);
        TrainOutput::new(model, loss.backward(), loss)
    }

    /// Evaluates `model` on `split` in batches of `batch_size` examples,
    /// creating tensors on `device`. The callers pass the model in inference
    /// mode (`valid()`: BatchNorm on its running statistics) and a device
    /// without autodiff. Must return every metric [`Task::metrics`] names.
    fn evaluate(
        &self,
        model: &M,
        split: Split,
        batch_size: usize,
        device: &Device,
    ) -> Result<Metrics, TaskError>;

    /// Which metric is reported (tables, CSV, plots) and which one is
    /// error-like (the instability analysis takes its barrier).
    fn metrics(&self) -> MetricSpec;

    /// SynFlow's data-free objective: the sum of `model`'s outputs on one
    /// all-ones input of the task's input shape, a one-element tensor
    /// (`model` on the autodiff `device`). Needed only by SynFlow pruning
    /// ([`crate::prune::synflow_mask`]); the default says the task has none.
    fn synflow_objective(&self, model: &M, device: &Device) -> Result<Tensor<1>, TaskError> {
        let _ = (model, device);
        Err(TaskError::Invalid(
            "this task defines no SynFlow objective (an all-ones input of its shape)".into(),
        ))
    }

    /// A batch's inputs (row-major, one flattened example per row) and
    /// class labels on the host, for the sparse training path
    /// ([`crate::sparse`]), which also checks that its loss is this task's.
    /// The default, `None`, keeps the task on the dense path.
    fn host_batch(&self, batch: &Self::Batch) -> Option<(Vec<f32>, Vec<i64>)> {
        let _ = batch;
        None
    }
}

/// A borrowed task is the task: an [`Experiment`](crate::experiment::Experiment)
/// (or anything else taking a task by value) can borrow one that lives on.
impl<M: Module, T: Task<M>> Task<M> for &T {
    type Batch = T::Batch;

    fn check_model(&self, model: &M, device: &Device) -> Result<(), TaskError> {
        (**self).check_model(model, device)
    }

    fn batches<'a>(
        &'a self,
        order: &DataOrder,
        iterations: Range<u64>,
        device: &'a Device,
    ) -> Result<Batches<'a, Self::Batch>, TaskError> {
        (**self).batches(order, iterations, device)
    }

    fn loss(&self, model: &M, batch: Self::Batch) -> Tensor<1> {
        (**self).loss(model, batch)
    }

    fn train_step(&self, model: &M, batch: Self::Batch) -> TrainOutput<Tensor<1>> {
        (**self).train_step(model, batch)
    }

    fn evaluate(
        &self,
        model: &M,
        split: Split,
        batch_size: usize,
        device: &Device,
    ) -> Result<Metrics, TaskError> {
        (**self).evaluate(model, split, batch_size, device)
    }

    fn metrics(&self) -> MetricSpec {
        (**self).metrics()
    }

    fn synflow_objective(&self, model: &M, device: &Device) -> Result<Tensor<1>, TaskError> {
        (**self).synflow_objective(model, device)
    }

    fn host_batch(&self, batch: &Self::Batch) -> Option<(Vec<f32>, Vec<i64>)> {
        (**self).host_batch(batch)
    }
}
