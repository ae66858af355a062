//! Instability analysis: the error along the linear path between two
//! trained networks and its error barrier.
//!
//! For two networks W1 (`a`) and W2 (`b`), the error of `alpha*W1 +
//! (1-alpha)*W2` is evaluated at `points` evenly spaced `alpha` in `[0, 1]`
//! (`alpha_i = i / (points - 1)`, both ends included exactly: `alpha = 0`
//! is W2, `alpha = 1` is W1). The error barrier is the maximum error along
//! the path minus the mean of the two endpoint errors.

use burn::module::Module;
use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use super::StabilityError;
use super::distance::host_weights;
use super::interpolate::interpolate;
use crate::task::{DataOrder, Split, Task};

/// How the BatchNorm running statistics of an interpolated network are set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum BnStatistics {
    /// Interpolated like the weights (the default).
    Interpolate,
    /// Recomputed at every alpha (endpoints included): starting from the
    /// interpolated statistics, `batches` training batches of
    /// [`BarrierOptions::eval_batch_size`] examples (no augmentation, order
    /// from `seed`) are run through the network in training mode, so
    /// burn's running averages (momentum 0.1 by default) move to the
    /// statistics of the interpolated network; the starting values keep a
    /// weight of `(1 - momentum)^batches`.
    Recompute {
        /// Training batches per alpha.
        batches: usize,
        /// Data-order seed of those batches.
        seed: u64,
    },
}

impl BnStatistics {
    /// A short description for reports.
    pub fn describe(&self) -> String {
        match self {
            Self::Interpolate => {
                "BatchNorm running statistics interpolated like the weights".into()
            }
            Self::Recompute { batches, .. } => {
                format!(
                    "BatchNorm running statistics recomputed on {batches} training batches at each alpha"
                )
            }
        }
    }
}

/// Options of the instability analysis.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BarrierOptions {
    /// Number of evenly spaced alphas in `[0, 1]`, both ends included
    /// (default 30, as the follow-up paper; at least 2).
    pub points: usize,
    /// BatchNorm statistics of the interpolated networks (default: interpolated).
    #[serde(deserialize_with = "crate::imp::schema::deserialize_strict")]
    pub bn: BnStatistics,
    /// Also evaluate on the first this many training examples.
    pub train_subset: Option<usize>,
    /// Batch size of evaluation and of the batches that recompute BatchNorm
    /// statistics (default 1000).
    pub eval_batch_size: usize,
}

impl Default for BarrierOptions {
    fn default() -> Self {
        Self {
            points: 30,
            bn: BnStatistics::Interpolate,
            train_subset: None,
            eval_batch_size: 1000,
        }
    }
}

impl BarrierOptions {
    /// The alphas, `i / (points - 1)` for `i` in `0..points`.
    pub fn alphas(&self) -> Vec<f64> {
        alphas(self.points)
    }
}

/// `points` evenly spaced values in `[0, 1]`, `0` and `1` exactly included.
pub fn alphas(points: usize) -> Vec<f64> {
    match points {
        0 => Vec::new(),
        1 => vec![0.0],
        _ => (0..points)
            .map(|i| {
                if i + 1 == points {
                    1.0
                } else {
                    i as f64 / (points - 1) as f64
                }
            })
            .collect(),
    }
}

/// Max of `errors` minus the mean of the first and last (the endpoints).
pub fn error_barrier(errors: &[f64]) -> f64 {
    match (errors.first(), errors.last()) {
        (Some(first), Some(last)) => {
            let max = errors.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            max - (first + last) / 2.0
        }
        _ => f64::NAN,
    }
}

/// Errors along the linear path between two networks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InterpolationCurve {
    /// The alphas, ascending from 0 (network `b`) to 1 (network `a`).
    pub alphas: Vec<f64>,
    /// The task's error-like metric on the test set at each alpha (for
    /// classification: the error, a fraction 0..1).
    pub test_errors: Vec<f64>,
    /// Error on the training subset at each alpha, when asked for.
    pub train_errors: Option<Vec<f64>>,
    /// How the BatchNorm statistics were set.
    pub bn: BnStatistics,
}

impl InterpolationCurve {
    /// Test error barrier: max test error minus the mean of the endpoints'.
    pub fn barrier(&self) -> f64 {
        error_barrier(&self.test_errors)
    }

    /// Training-subset error barrier, when evaluated.
    pub fn train_barrier(&self) -> Option<f64> {
        self.train_errors.as_deref().map(error_barrier)
    }

    /// Test error of network `a` (`alpha = 1`).
    pub fn endpoint_error_a(&self) -> f64 {
        *self.test_errors.last().expect("at least two points")
    }

    /// Test error of network `b` (`alpha = 0`).
    pub fn endpoint_error_b(&self) -> f64 {
        self.test_errors[0]
    }
}

/// Evaluates the task's error-like metric ([`MetricSpec::error`](crate::task::MetricSpec))
/// of `alpha*a + (1-alpha)*b` at the alphas of `options` on the test set
/// (and the training subset). `template(device)` builds a fresh model of the
/// architecture on `device` (its values are replaced); the interpolated
/// models are built on `device.autodiff()`.
pub fn interpolation_curve<M, T, F>(
    a: &M,
    b: &M,
    template: F,
    task: &T,
    options: &BarrierOptions,
    device: &Device,
) -> Result<InterpolationCurve, StabilityError>
where
    M: Module,
    T: Task<M>,
    F: Fn(&Device) -> M,
{
    if options.points < 2 {
        return Err(StabilityError::Config(format!(
            "points must be at least 2, got {}",
            options.points
        )));
    }
    if options.eval_batch_size == 0 {
        return Err(StabilityError::Config("eval_batch_size must be > 0".into()));
    }
    let device = device.clone().autodiff();
    let (wa, wb) = (host_weights(a), host_weights(b));
    let error_name = task.metrics().error;
    let plain = device.clone().without_autodiff();
    let error = |model: &M, split: Split| -> Result<f64, StabilityError> {
        // Inference mode (`valid()`) synchronizes BatchNorm's statistics.
        let model = model.valid();
        let metrics = task.evaluate(&model, split, options.eval_batch_size, &plain)?;
        Ok(metrics.require(&error_name)?)
    };
    let alphas = options.alphas();
    let mut test_errors = Vec::with_capacity(alphas.len());
    let mut train_errors = options
        .train_subset
        .map(|_| Vec::with_capacity(alphas.len()));
    for &alpha in &alphas {
        let model = interpolate(template(&device), &wa, &wb, alpha)?;
        if let BnStatistics::Recompute { batches, seed } = options.bn {
            recompute_bn_statistics(&model, task, batches, seed, options, &device)?;
        }
        test_errors.push(error(&model, Split::Test)?);
        if let (Some(errors), Some(n)) = (train_errors.as_mut(), options.train_subset) {
            errors.push(error(&model, Split::TrainSubset(n))?);
        }
    }
    Ok(InterpolationCurve {
        alphas,
        test_errors,
        train_errors,
        bn: options.bn,
    })
}

/// Runs `batches` training batches (data order `seed`, never augmented)
/// through `model` in training mode on the autodiff `device`, so burn's
/// BatchNorm running averages move to the model's statistics; evaluation
/// then synchronizes them (`valid()`).
fn recompute_bn_statistics<M, T>(
    model: &M,
    task: &T,
    batches: usize,
    seed: u64,
    options: &BarrierOptions,
    device: &Device,
) -> Result<(), StabilityError>
where
    M: Module,
    T: Task<M>,
{
    let order = DataOrder {
        batch_size: options.eval_batch_size,
        order_seed: seed,
        augment_seed: None,
    };
    for batch in task.batches(&order, 0..batches as u64, device)? {
        drop(task.loss(model, batch?));
    }
    Ok(())
}
