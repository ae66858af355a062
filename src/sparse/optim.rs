//! The recipe's optimizers over kept weights only: state and work in
//! proportion to the kept entries, the same arithmetic as burn's optimizers
//! (`burn-optim` 0.22: SGD with momentum and no dampening, L2 weight decay
//! added to the gradient, Adam with bias corrections folded into the step).
//!
//! A pruned weight's gradient is zero under the dense masked step, so its
//! moments stay zero and burn's update leaves it at zero: skipping it gives
//! the same result.
//!
//! [`sparse_optimizer`] is the one place that decides which of the recipe's
//! optimizers the sparse path runs; any other trains densely, with the
//! reason recorded (see [`Execution`](super::Execution)).

use super::SparseError;
use crate::train::recipe::OptimizerConfig;

/// An optimizer the sparse path implements, with its hyperparameters (the
/// learning rate comes with each step).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SparseOptimizer {
    /// SGD, with momentum (no dampening) unless `momentum` is 0 and
    /// `nesterov` is false.
    Sgd {
        /// Momentum factor.
        momentum: f32,
        /// L2 penalty added to the gradient.
        weight_decay: f32,
        /// Nesterov momentum.
        nesterov: bool,
    },
    /// Adam without AMSGrad, L2 penalty added to the gradient.
    Adam {
        /// Decay of the first moment.
        beta_1: f32,
        /// Decay of the second moment.
        beta_2: f32,
        /// Added to the denominator.
        epsilon: f32,
        /// L2 penalty added to the gradient.
        weight_decay: f32,
    },
}

/// The sparse form of the recipe's `optimizer`, or why the sparse path
/// cannot run it ([`SparseError::UnsupportedOptimizer`]). Every optimizer
/// of the recipe is matched here and nowhere else in the sparse path: one
/// it cannot run makes a level train densely, the reason recorded.
pub fn sparse_optimizer(optimizer: &OptimizerConfig) -> Result<SparseOptimizer, SparseError> {
    match *optimizer {
        OptimizerConfig::Sgd {
            momentum,
            weight_decay,
            nesterov,
            ..
        } => Ok(SparseOptimizer::Sgd {
            momentum: momentum as f32,
            weight_decay: weight_decay as f32,
            nesterov,
        }),
        OptimizerConfig::Adam {
            beta_1,
            beta_2,
            epsilon,
            weight_decay,
            ..
        } => Ok(SparseOptimizer::Adam {
            beta_1: beta_1 as f32,
            beta_2: beta_2 as f32,
            epsilon: epsilon as f32,
            weight_decay: weight_decay as f32,
        }),
        OptimizerConfig::Burn { ref optimizer, .. } => {
            Err(SparseError::UnsupportedOptimizer(format!(
                "burn's {} has no sparse implementation (the PyTorch-semantics presets sgd and adam have)",
                optimizer.kind()
            )))
        }
    }
}

/// Optimizer state of one parameter vector (its kept entries).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SlotState {
    /// SGD velocity or Adam's first moment (empty before the first step).
    pub(super) first: Vec<f32>,
    /// Adam's second moment (empty before the first step).
    pub(super) second: Vec<f32>,
    /// Steps taken (Adam's bias correction).
    pub(super) time: i32,
}

/// One trainable parameter of a sparse model: its module path, its dense
/// shape, where its stored entries sit in the dense tensor (`None`: all of
/// them, in order) and its optimizer state.
pub(super) struct Slot<'a> {
    pub(super) path: String,
    pub(super) shape: Vec<usize>,
    pub(super) positions: Option<Vec<usize>>,
    pub(super) state: &'a mut SlotState,
}

impl<'a> Slot<'a> {
    /// A parameter stored whole.
    pub(super) fn dense(path: String, len: usize, state: &'a mut SlotState) -> Self {
        Self {
            path,
            shape: vec![len],
            positions: None,
            state,
        }
    }
}

/// A dense vector of `len` zeros holding `values` at `positions`.
pub(super) fn scatter(positions: &[usize], values: &[f32], len: usize) -> Vec<f32> {
    let mut dense = vec![0.0; len];
    for (&p, &v) in positions.iter().zip(values) {
        dense[p] = v;
    }
    dense
}

/// Applies one optimizer step to `values` given `grad`, updating `state`,
/// at learning rate `lr`, exactly as burn's optimizer built from the
/// recipe's configuration (see [`OptimizerConfig::init`]) does.
pub fn step(
    optimizer: &SparseOptimizer,
    lr: f64,
    values: &mut [f32],
    grad: &mut [f32],
    state: &mut SlotState,
) {
    match *optimizer {
        SparseOptimizer::Sgd {
            momentum,
            weight_decay,
            nesterov,
        } => {
            add_decay(weight_decay, values, grad);
            let lr = lr as f32;
            if momentum != 0.0 || nesterov {
                sgd_momentum(momentum, nesterov, grad, state);
            }
            for (v, g) in values.iter_mut().zip(grad.iter()) {
                *v -= g * lr;
            }
        }
        SparseOptimizer::Adam {
            beta_1,
            beta_2,
            epsilon,
            weight_decay,
        } => {
            add_decay(weight_decay, values, grad);
            adam([beta_1, beta_2, epsilon], lr as f32, values, grad, state);
        }
    }
}

/// burn's L2 decay: `grad = values * penalty + grad`.
fn add_decay(penalty: f32, values: &[f32], grad: &mut [f32]) {
    if penalty != 0.0 {
        for (g, v) in grad.iter_mut().zip(values) {
            *g += v * penalty;
        }
    }
}

/// burn's momentum without dampening; leaves the step direction in `grad`.
fn sgd_momentum(momentum: f32, nesterov: bool, grad: &mut [f32], state: &mut SlotState) {
    if state.first.is_empty() {
        state.first = grad.to_vec();
    } else {
        for (v, g) in state.first.iter_mut().zip(grad.iter()) {
            *v = g * 1.0 + *v * momentum;
        }
    }
    for (g, v) in grad.iter_mut().zip(&state.first) {
        *g = if nesterov { v * momentum + *g } else { *v };
    }
}

/// burn's Adam step (no AMSGrad).
fn adam(
    [beta_1, beta_2, epsilon]: [f32; 3],
    lr: f32,
    values: &mut [f32],
    grad: &[f32],
    state: &mut SlotState,
) {
    if state.first.is_empty() {
        state.first = grad.iter().map(|g| g * (1.0 - beta_1)).collect();
        state.second = grad.iter().map(|g| g * g * (1.0 - beta_2)).collect();
        state.time = 1;
    } else {
        let (f1, f2) = (1.0 - beta_1, 1.0 - beta_2);
        for ((m, v), g) in state.first.iter_mut().zip(&mut state.second).zip(grad) {
            *m = *m * beta_1 + g * f1;
            *v = *v * beta_2 + g * g * f2;
        }
        state.time += 1;
    }
    let correction2 = (1.0 - beta_2.powi(state.time)).sqrt();
    let factor = correction2 / (1.0 - beta_1.powi(state.time));
    let eps = epsilon * correction2;
    for ((w, m), v) in values.iter_mut().zip(&state.first).zip(&state.second) {
        *w -= (m * factor) / (v.sqrt() + eps) * lr;
    }
}
