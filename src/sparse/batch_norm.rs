//! BatchNorm over channel-major planes on the host, with burn 0.22's
//! arithmetic (`burn-nn`'s `BatchNorm`): biased batch variance for both the
//! normalization and the running statistics, running statistics updated as
//! `running · (1 − momentum) + batch · momentum`.

use rayon::prelude::*;

use super::optim::{SlotState, SparseOptimizer, step};

/// burn's `BatchNormConfig` defaults: `epsilon` 1e-5, `momentum` 0.1.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NormSettings {
    /// Added to the variance before its square root.
    pub epsilon: f64,
    /// Weight of the batch statistics in the running statistics.
    pub momentum: f64,
}

impl Default for NormSettings {
    fn default() -> Self {
        Self {
            epsilon: 1e-5,
            momentum: 0.1,
        }
    }
}

/// One BatchNorm layer: parameters, running statistics, optimizer state,
/// and the batch statistics of the last training forward pass.
#[derive(Debug, Clone)]
pub(super) struct Norm {
    pub(super) gamma: Vec<f32>,
    pub(super) beta: Vec<f32>,
    pub(super) running_mean: Vec<f32>,
    pub(super) running_var: Vec<f32>,
    pub(super) gamma_state: SlotState,
    pub(super) beta_state: SlotState,
    mean: Vec<f32>,
    inv_std: Vec<f32>,
    dgamma: Vec<f32>,
    dbeta: Vec<f32>,
}

impl Norm {
    pub(super) fn new(gamma: Vec<f32>, beta: Vec<f32>, mean: Vec<f32>, var: Vec<f32>) -> Self {
        Self {
            gamma,
            beta,
            running_mean: mean,
            running_var: var,
            gamma_state: SlotState::default(),
            beta_state: SlotState::default(),
            mean: Vec::new(),
            inv_std: Vec::new(),
            dgamma: Vec::new(),
            dbeta: Vec::new(),
        }
    }

    pub(super) fn channels(&self) -> usize {
        self.gamma.len()
    }

    /// Normalizes `z` (`[channels, plane]`) into `y` with the batch's
    /// statistics, keeping them for the backward pass; updates the running
    /// statistics when `update_running`.
    pub(super) fn forward_train(
        &mut self,
        settings: NormSettings,
        z: &[f32],
        y: &mut [f32],
        update_running: bool,
    ) {
        let plane = z.len() / self.channels();
        let stats: Vec<(f32, f32)> = z
            .par_chunks(plane)
            .with_min_len(channels_per_task(plane))
            .map(kernels::stats)
            .collect();
        self.mean = stats.iter().map(|s| s.0).collect();
        let eps = settings.epsilon as f32;
        self.inv_std = stats.iter().map(|s| 1.0 / (s.1 + eps).sqrt()).collect();
        if update_running {
            let m = settings.momentum as f32;
            for (c, &(mean, var)) in stats.iter().enumerate() {
                self.running_mean[c] = self.running_mean[c] * (1.0 - m) + mean * m;
                self.running_var[c] = self.running_var[c] * (1.0 - m) + var * m;
            }
        }
        self.apply(z, y, &self.mean, &self.inv_std);
    }

    /// Normalizes `z` into `y` with the running statistics (inference).
    pub(super) fn forward_eval(&self, settings: NormSettings, z: &[f32], y: &mut [f32]) {
        let eps = settings.epsilon as f32;
        let inv_std: Vec<f32> = self
            .running_var
            .iter()
            .map(|v| 1.0 / (v + eps).sqrt())
            .collect();
        self.apply(z, y, &self.running_mean, &inv_std);
    }

    fn apply(&self, z: &[f32], y: &mut [f32], mean: &[f32], inv_std: &[f32]) {
        let plane = z.len() / self.channels();
        y.par_chunks_mut(plane)
            .zip(z.par_chunks(plane))
            .with_min_len(channels_per_task(plane))
            .enumerate()
            .for_each(|(c, (y, z))| {
                let scale = self.gamma[c] * inv_std[c];
                kernels::affine(z, y, scale, self.beta[c] - mean[c] * scale);
            });
    }

    /// The gradient of the input `z` of the last training forward pass into
    /// `dz`, given the gradient `dy` of its output; keeps the gradients of
    /// `gamma` and `beta` for [`Norm::step`].
    pub(super) fn backward(&mut self, z: &[f32], dy: &[f32], dz: &mut [f32]) {
        let plane = z.len() / self.channels();
        let grads: Vec<(f32, f32)> = dz
            .par_chunks_mut(plane)
            .zip(z.par_chunks(plane).zip(dy.par_chunks(plane)))
            .with_min_len(channels_per_task(plane))
            .enumerate()
            .map(|(c, (dz, (z, dy)))| {
                let stats = [self.mean[c], self.inv_std[c], self.gamma[c]];
                kernels::backward(z, dy, dz, stats)
            })
            .collect();
        self.dgamma = grads.iter().map(|g| g.0).collect();
        self.dbeta = grads.iter().map(|g| g.1).collect();
    }

    /// One optimizer step of `gamma` and `beta` with the gradients of the
    /// last [`Norm::backward`].
    pub(super) fn step(&mut self, optimizer: &SparseOptimizer, lr: f64) {
        step(
            optimizer,
            lr,
            &mut self.gamma,
            &mut self.dgamma,
            &mut self.gamma_state,
        );
        step(
            optimizer,
            lr,
            &mut self.beta,
            &mut self.dbeta,
            &mut self.beta_state,
        );
    }
}

/// Channels per parallel task: small planes (a batch of one) are grouped so
/// a task is worth rayon's overhead.
fn channels_per_task(plane: usize) -> usize {
    (super::conv_kernels::MIN_TASK_FLOATS / plane.max(1)).max(1)
}

/// The per-channel loops, compiled for AVX2 where the CPU has it (the same
/// code as the portable bodies, so the same results).
mod kernels {
    avx2_dispatch!(
        pub(super) fn stats(c: &[f32]) -> (f32, f32) {
            let n = c.len() as f64;
            let mean = (super::sum_lanes(c, c, |v, _| v) / n) as f32;
            let var = super::sum_lanes(c, c, |v, _| (v - mean) * (v - mean)) / n;
            (mean, var as f32)
        }
    );

    avx2_dispatch!(
        pub(super) fn affine(z: &[f32], y: &mut [f32], scale: f32, shift: f32) -> () {
            for (y, z) in y.iter_mut().zip(z) {
                *y = z * scale + shift;
            }
        }
    );

    avx2_dispatch!(
        pub(super) fn backward(
            z: &[f32],
            dy: &[f32],
            dz: &mut [f32],
            stats: [f32; 3],
        ) -> (f32, f32) {
            let [mean, inv_std, gamma] = stats;
            let dbeta = super::sum_lanes(dy, dy, |dy, _| dy) as f32;
            let dgamma = super::sum_lanes(z, dy, |z, dy| dy * ((z - mean) * inv_std)) as f32;
            let scale = gamma * inv_std;
            let n = z.len() as f32;
            let (mean_dy, mean_dy_xhat) = (dbeta / n, dgamma / n);
            for ((dz, &z), &dy) in dz.iter_mut().zip(z).zip(dy) {
                let xhat = (z - mean) * inv_std;
                *dz = scale * (dy - mean_dy - xhat * mean_dy_xhat);
            }
            (dgamma, dbeta)
        }
    );
}

/// `Σ f(a_k, b_k)`: eight f32 lanes within blocks of 1,024 values, the
/// block sums added in f64 (vectorizable, and accurate over the hundreds
/// of thousands of values of a channel).
#[inline(always)]
fn sum_lanes(a: &[f32], b: &[f32], f: impl Fn(f32, f32) -> f32) -> f64 {
    let mut total = 0.0f64;
    for (a, b) in a.chunks(1024).zip(b.chunks(1024)) {
        let mut lanes = [0.0f32; 8];
        let (ac, bc) = (a.chunks_exact(8), b.chunks_exact(8));
        let tail: f32 = ac
            .remainder()
            .iter()
            .zip(bc.remainder())
            .map(|(&x, &y)| f(x, y))
            .sum();
        for (x, y) in ac.zip(bc) {
            for l in 0..8 {
                lanes[l] += f(x[l], y[l]);
            }
        }
        total += f64::from(lanes.iter().sum::<f32>() + tail);
    }
    total
}
