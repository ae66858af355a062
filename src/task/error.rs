//! The error type of tasks.

use crate::data::DataError;
use crate::models::ModelConfigError;

/// What can go wrong while a [`Task`](super::Task) makes batches or
/// evaluates a model.
#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    /// The crate's data pipeline failed.
    #[error(transparent)]
    Data(#[from] DataError),
    /// The model does not fit the data.
    #[error(transparent)]
    Model(#[from] ModelConfigError),
    /// A user dataset could not give an item.
    #[error("dataset item {index}: {reason}")]
    Item {
        /// The item's index.
        index: usize,
        /// What the dataset said.
        reason: String,
    },
    /// The task cannot serve a request (e.g. an empty dataset, a batch size
    /// of 0, augmentation asked of a task that has none).
    #[error("{0}")]
    Invalid(String),
    /// A burn-train metric could not read its input (see
    /// [`StepTask`](super::StepTask)).
    #[error("metric `{name}`: {reason}")]
    Metric {
        /// The metric's name as reported.
        name: String,
        /// What failed.
        reason: String,
    },
    /// An evaluation did not return a metric that [`Task::metrics`](super::Task::metrics)
    /// names.
    #[error("the evaluation returned no metric `{0}`")]
    MissingMetric(String),
}
