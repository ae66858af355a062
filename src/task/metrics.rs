//! Named evaluation metrics and which of them the reports use.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::TaskError;

/// Named metric values of one evaluation, e.g. `accuracy`, `error`, `loss`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Metrics(BTreeMap<String, f64>);

impl Metrics {
    /// No metrics.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) the metric `name`.
    pub fn with(mut self, name: impl Into<String>, value: f64) -> Self {
        self.insert(name, value);
        self
    }

    /// Sets the metric `name`.
    pub fn insert(&mut self, name: impl Into<String>, value: f64) {
        self.0.insert(name.into(), value);
    }

    /// The value of `name`, if present.
    pub fn get(&self, name: &str) -> Option<f64> {
        self.0.get(name).copied()
    }

    /// The value of `name`, or [`TaskError::MissingMetric`].
    pub fn require(&self, name: &str) -> Result<f64, TaskError> {
        self.get(name)
            .ok_or_else(|| TaskError::MissingMetric(name.to_string()))
    }

    /// `(name, value)` in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, f64)> {
        self.0.iter().map(|(k, v)| (k.as_str(), *v))
    }

    /// Number of metrics.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// `name value` pairs in name order, four decimals, comma-separated
/// (`accuracy 0.8873, error 0.1127, loss 0.3301`).
impl std::fmt::Display for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, (name, value)) in self.iter().enumerate() {
            let separator = if i == 0 { "" } else { ", " };
            write!(f, "{separator}{name} {value:.4}")?;
        }
        Ok(())
    }
}

/// Which metrics of a task the reports and the analyses use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricSpec {
    /// The metric in tables, `report.csv` (column `test_<reported>`) and
    /// plots, e.g. `accuracy`.
    pub reported: String,
    /// Whether larger values of the reported metric are better.
    pub higher_is_better: bool,
    /// Show the reported metric as a percentage (for fractions such as
    /// accuracy).
    pub percent: bool,
    /// An error-like metric (lower is better, e.g. `error` = 1 - accuracy,
    /// or a mean squared error): the instability analysis evaluates it along
    /// the linear path and reports its barrier.
    pub error: String,
}

impl MetricSpec {
    /// Classification: `accuracy` reported (as %), `error` for barriers.
    pub fn accuracy() -> Self {
        Self {
            reported: "accuracy".into(),
            higher_is_better: true,
            percent: true,
            error: "error".into(),
        }
    }

    /// One metric where lower is better (e.g. `mse`), reported as is and
    /// used for barriers too.
    pub fn lower_is_better(name: impl Into<String>) -> Self {
        let name = name.into();
        Self {
            reported: name.clone(),
            higher_is_better: false,
            percent: false,
            error: name,
        }
    }

    /// Reports `reported` but takes barriers of `error`.
    pub fn with_error(mut self, error: impl Into<String>) -> Self {
        self.error = error.into();
        self
    }
}
