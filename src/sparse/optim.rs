//! The recipe's optimizers over kept weights only: state and work in
//! proportion to the kept entries, the same arithmetic as burn's optimizers
//! (`burn-optim` 0.22: SGD with momentum and no dampening, L2 weight decay
//! added to the gradient, Adam with bias corrections folded into the step).
//!
//! A pruned weight's gradient is zero under the dense masked step, so its
//! moments stay zero and burn's update leaves it at zero: skipping it gives
//! the same result.

use crate::train::recipe::OptimizerConfig;

/// Optimizer state of one parameter vector (its kept entries).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SlotState {
    /// SGD velocity or Adam's first moment (empty before the first step).
    first: Vec<f32>,
    /// Adam's second moment (empty before the first step).
    second: Vec<f32>,
    /// Steps taken (Adam's bias correction).
    time: i32,
}

/// Applies one optimizer step to `values` given `grad`, updating `state`,
/// at learning rate `lr`, exactly as burn's optimizer built from `config`
/// (see [`OptimizerConfig::init`]) does.
pub fn step(
    config: &OptimizerConfig,
    lr: f64,
    values: &mut [f32],
    grad: &mut [f32],
    state: &mut SlotState,
) {
    match *config {
        OptimizerConfig::Sgd {
            momentum,
            weight_decay,
            nesterov,
            ..
        } => {
            add_decay(weight_decay, values, grad);
            let (momentum, lr) = (momentum as f32, lr as f32);
            if momentum != 0.0 || nesterov {
                sgd_momentum(momentum, nesterov, grad, state);
            }
            for (v, g) in values.iter_mut().zip(grad.iter()) {
                *v -= g * lr;
            }
        }
        OptimizerConfig::Adam {
            beta_1,
            beta_2,
            epsilon,
            weight_decay,
            ..
        } => {
            add_decay(weight_decay, values, grad);
            adam(
                [beta_1 as f32, beta_2 as f32, epsilon as f32],
                lr as f32,
                values,
                grad,
                state,
            );
        }
        OptimizerConfig::Burn { .. } => {
            unreachable!("the trainer keeps burn's optimizers on the dense path")
        }
    }
}

/// burn's L2 decay: `grad = values * penalty + grad`.
fn add_decay(weight_decay: f64, values: &[f32], grad: &mut [f32]) {
    if weight_decay != 0.0 {
        let penalty = weight_decay as f32;
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
