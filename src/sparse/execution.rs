//! Which implementation trains a range of iterations, and why: the record
//! every level keeps in its summary and the report.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The implementation that trains a range: burn's dense masked step or the
/// host kernels of [`crate::sparse`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExecutionPath {
    /// burn's forward, backward and optimizer step, the mask enforced on
    /// the gradients and the weights.
    Dense,
    /// The host kernels over kept weights only ([`SparseTicket`](super::SparseTicket)).
    Sparse,
}

impl ExecutionPath {
    /// `dense` or `sparse`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Dense => "dense",
            Self::Sparse => "sparse",
        }
    }

    /// The path named `name` ([`ExecutionPath::as_str`]).
    pub fn parse(name: &str) -> Option<Self> {
        [Self::Dense, Self::Sparse]
            .into_iter()
            .find(|p| p.as_str() == name)
    }
}

/// Why a range trains on its path: a stable code (the report's
/// `execution_reason` column); [`Execution::detail`] says it in words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExecutionReason {
    /// Sparse training is off (the default) or the trainer was given no
    /// sparse settings.
    SparseTrainingOff,
    /// The range trains at a fixed learning rate (fine-tuning), which the
    /// sparse path does not follow.
    FixedLearningRate,
    /// The mask keeps every weight.
    DenseMask,
    /// Nothing to train: the range is empty.
    EmptyRange,
    /// The optimizer has no sparse implementation
    /// ([`sparse_optimizer`](super::optim::sparse_optimizer)).
    UnsupportedOptimizer,
    /// The model is neither a chain of linear layers nor a CIFAR ResNet.
    LayoutNotRecognised,
    /// The mask's density is not below the threshold for the model's kind.
    AboveThreshold,
    /// The optimizer's state (restored at a rewind or from a checkpoint)
    /// has no sparse counterpart.
    OptimizerState,
    /// The task gives no host copy of its batches.
    NoHostBatches,
    /// The sparse loss of the range's first batch differs from the task's
    /// loss of the dense model (another forward pass or loss).
    LossMismatch,
    /// Sparse: below the threshold, and every check passed.
    BelowThreshold,
    /// The mask changes during training (gradual pruning, SET, RigL),
    /// which the sparse path does not follow.
    MaskChanges,
}

impl ExecutionReason {
    /// The code as the report writes it (`sparse_training_off`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SparseTrainingOff => "sparse_training_off",
            Self::FixedLearningRate => "fixed_learning_rate",
            Self::DenseMask => "dense_mask",
            Self::EmptyRange => "empty_range",
            Self::UnsupportedOptimizer => "unsupported_optimizer",
            Self::LayoutNotRecognised => "layout_not_recognised",
            Self::AboveThreshold => "above_threshold",
            Self::OptimizerState => "optimizer_state",
            Self::NoHostBatches => "no_host_batches",
            Self::LossMismatch => "loss_mismatch",
            Self::BelowThreshold => "below_threshold",
            Self::MaskChanges => "mask_changes",
        }
    }

    /// The reason of code `code` ([`ExecutionReason::as_str`]).
    pub fn parse(code: &str) -> Option<Self> {
        ALL_REASONS.into_iter().find(|r| r.as_str() == code)
    }
}

const ALL_REASONS: [ExecutionReason; 12] = [
    ExecutionReason::SparseTrainingOff,
    ExecutionReason::FixedLearningRate,
    ExecutionReason::DenseMask,
    ExecutionReason::EmptyRange,
    ExecutionReason::UnsupportedOptimizer,
    ExecutionReason::LayoutNotRecognised,
    ExecutionReason::AboveThreshold,
    ExecutionReason::OptimizerState,
    ExecutionReason::NoHostBatches,
    ExecutionReason::LossMismatch,
    ExecutionReason::BelowThreshold,
    ExecutionReason::MaskChanges,
];

/// Which path trained a range and why, decided once before its first step
/// from the sparse settings, the mask, the model, the optimizer (its
/// configuration and state) and the range's first batch. Every level
/// records it in its summary; a report shows it.
///
/// ```
/// use burn_lottery::sparse::{Execution, ExecutionPath, ExecutionReason};
/// let e = Execution::dense(ExecutionReason::SparseTrainingOff, "sparse training off");
/// assert_eq!(e.path, ExecutionPath::Dense);
/// assert_eq!(e.to_string(), "dense (sparse_training_off: sparse training off)");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Execution {
    /// The path that trained.
    pub path: ExecutionPath,
    /// Why, as a code.
    pub reason: ExecutionReason,
    /// Why, in words (e.g. `density 0.45 is below the ResNet crossover 0.6`).
    pub detail: String,
}

impl Execution {
    /// Dense training for `reason`.
    pub fn dense(reason: ExecutionReason, detail: impl Into<String>) -> Self {
        Self {
            path: ExecutionPath::Dense,
            reason,
            detail: detail.into(),
        }
    }

    /// Sparse training ([`ExecutionReason::BelowThreshold`]).
    pub fn sparse(detail: impl Into<String>) -> Self {
        Self {
            path: ExecutionPath::Sparse,
            reason: ExecutionReason::BelowThreshold,
            detail: detail.into(),
        }
    }

    /// Whether the sparse path trained.
    pub fn is_sparse(&self) -> bool {
        self.path == ExecutionPath::Sparse
    }

    /// Whether this is the default, dense because sparse training is off
    /// (reports show the execution columns only when some row is not).
    pub fn is_default(&self) -> bool {
        self.path == ExecutionPath::Dense && self.reason == ExecutionReason::SparseTrainingOff
    }
}

impl fmt::Display for Execution {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({}: {})",
            self.path.as_str(),
            self.reason.as_str(),
            self.detail
        )
    }
}
