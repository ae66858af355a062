//! What one trained network achieved ([`LevelSummary`]) and the progress
//! callbacks of an experiment ([`ImpObserver`]).

use std::path::Path;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::mask::Mask;
use crate::sparse::Execution;
use crate::task::Metrics;

/// What one trained network (a level of a branch) achieved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(from = "StoredSummary")]
pub struct LevelSummary {
    /// Condition: the branch's name (`imp_rewind500`, `random_reinit`,
    /// `random_prune`, `data_order_7`, ...).
    pub condition: String,
    /// Pruning level.
    pub level: usize,
    /// Kept prunable weights.
    pub kept: usize,
    /// All prunable weights.
    pub total: usize,
    /// `kept / total`.
    pub weights_remaining: f64,
    /// The task's test metrics at the end of training, by name (image
    /// classification: `accuracy`, `error`, `loss`).
    pub metrics: Metrics,
    /// The last recorded training loss.
    pub final_train_loss: Option<f64>,
    /// Wall-clock seconds of training and evaluation (of the last session
    /// that worked on the level).
    pub wall_seconds: f64,
    /// Which path trained the level (of the last session that worked on
    /// it) and why; `None` in summaries written before it was recorded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub execution: Option<Execution>,
}

impl LevelSummary {
    /// The summary of a network trained under `mask` since `started` and
    /// evaluated as `metrics`.
    pub(crate) fn new(
        condition: String,
        level: usize,
        mask: &Mask,
        metrics: Metrics,
        final_train_loss: Option<f64>,
        started: Instant,
    ) -> Self {
        Self {
            condition,
            level,
            kept: mask.kept_count(),
            total: mask.total_count(),
            weights_remaining: mask.density(),
            metrics,
            final_train_loss,
            wall_seconds: started.elapsed().as_secs_f64(),
            execution: None,
        }
    }

    /// The same summary recording `execution`.
    pub(crate) fn with_execution(mut self, execution: Option<Execution>) -> Self {
        self.execution = execution;
        self
    }

    /// The test value of the metric `name` (`None` when the task did not
    /// report it).
    pub fn metric(&self, name: &str) -> Option<f64> {
        self.metrics.get(name)
    }
}

/// A summary as stored: summaries written before tasks became generic hold
/// `test_accuracy` and `test_loss` instead of `metrics`.
#[derive(Deserialize)]
struct StoredSummary {
    condition: String,
    level: usize,
    kept: usize,
    total: usize,
    weights_remaining: f64,
    #[serde(default)]
    metrics: Metrics,
    #[serde(default)]
    test_accuracy: Option<f64>,
    #[serde(default)]
    test_loss: Option<f64>,
    final_train_loss: Option<f64>,
    wall_seconds: f64,
    #[serde(default)]
    execution: Option<Execution>,
}

impl From<StoredSummary> for LevelSummary {
    fn from(stored: StoredSummary) -> Self {
        let mut metrics = stored.metrics;
        if let Some(accuracy) = stored.test_accuracy {
            metrics.insert("accuracy", accuracy);
            metrics.insert("error", 1.0 - accuracy);
        }
        if let Some(loss) = stored.test_loss {
            metrics.insert("loss", loss);
        }
        // The density is recomputed from the counts: a decimal read back
        // from JSON may be one unit in the last place off.
        let weights_remaining = if stored.total > 0 {
            stored.kept as f64 / stored.total as f64
        } else {
            stored.weights_remaining
        };
        Self {
            condition: stored.condition,
            level: stored.level,
            kept: stored.kept,
            total: stored.total,
            weights_remaining,
            metrics,
            final_train_loss: stored.final_train_loss,
            wall_seconds: stored.wall_seconds,
            execution: stored.execution,
        }
    }
}

/// Receives progress of an experiment; every method defaults to nothing.
pub trait ImpObserver {
    /// A level starts training (or is found finished, `skipped = true`).
    fn level_started(&mut self, condition: &str, level: usize, density: f64, range: (u64, u64)) {
        let _ = (condition, level, density, range);
    }
    /// A training step finished; `loss` when it was read.
    fn step(&mut self, completed: u64, loss: Option<f64>) {
        let _ = (completed, loss);
    }
    /// A level is done (`skipped`: it was already stored and was not trained).
    fn level_finished(&mut self, summary: &LevelSummary, skipped: bool) {
        let _ = (summary, skipped);
    }
    /// A stored file was found unusable (it fails its checksum or does not
    /// parse) and was discarded; the work it held is recomputed. Only
    /// resumable progress is discarded this way: a finished level's file that
    /// fails stops the run with an error naming it.
    fn file_discarded(&mut self, file: &Path, reason: &str) {
        let _ = (file, reason);
    }
    /// Asked after every step: `true` stops the run (as an interruption
    /// would: the level resumes from its last periodic checkpoint next time).
    fn should_stop(&mut self) -> bool {
        false
    }
}

/// An observer that does nothing.
pub struct Silent;

impl ImpObserver for Silent {}
