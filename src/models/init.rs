//! The reference initialization, deterministic from a seed and identical on
//! every backend.
//!
//! Rules (open_lth's, by the last segment of each parameter's path):
//!
//! | path ends in | rank | value |
//! |---|---|---|
//! | `weight` | 3 to 5 (conv `[out, in, k...]`, e.g. Conv2d `[out, in, kh, kw]`) | Kaiming normal, `std = sqrt(2 / (in * kh * kw))` (the product of every dimension but the first) |
//! | `weight` | 2 (burn Linear `[d_in, d_out]`) | Kaiming normal, `std = sqrt(2 / d_in)` |
//! | `bias` | any | 0 |
//! | `gamma` (BatchNorm) | 1 | uniform in `[0, 1)` |
//! | `beta` (BatchNorm) | 1 | 0 |
//! | `running_mean` / `running_var` | 1 | 0 / 1 (a fresh network's statistics) |
//!
//! Anything else is left as it is. Linear biases are zero (PyTorch's default
//! would be uniform; open_lth leaves them at PyTorch's default, but with
//! Kaiming weights the choice does not matter and zero is reproducible
//! without a fan-in rule).
//!
//! Values are drawn on the host in `f64` with
//! `StdRng::seed_from_u64(derive_seed(seed, path))` (one generator per
//! parameter, so adding a layer does not shift the others), converted to
//! `f32` and uploaded with `Tensor::from_data`. The parameter keeps its
//! `ParamId` and its `require_grad` flag.

use burn::module::{Module, Param};
use burn::tensor::{Tensor, TensorData};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

use crate::params::{PathMapper, map_with_paths};
use crate::seed::derive_seed;

/// Applies the reference initialization (see the module docs) to every
/// parameter of `module`, deterministically from `seed`.
pub fn init_weights<M: Module>(module: M, seed: u64) -> M {
    map_with_paths(module, &mut ReferenceInit { seed })
}

/// What [`init_weights`] puts into a parameter of a given path and shape.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum InitRule {
    /// Normal with mean 0 and this standard deviation.
    Normal {
        /// Standard deviation.
        std: f64,
    },
    /// Uniform in `[0, 1)`.
    Uniform01,
    /// Every entry equal to this value.
    Constant(f64),
    /// Left unchanged.
    Keep,
}

/// The rule [`init_weights`] applies to a parameter (see the module docs).
pub fn init_rule(path: &str, dims: &[usize]) -> InitRule {
    let last = path.rsplit('.').next().unwrap_or(path);
    match (last, dims.len()) {
        // Convolutions of any dimension, `[out, in, k...]` (Conv1d: rank 3,
        // Conv2d: rank 4, Conv3d: rank 5).
        ("weight", rank) if rank >= 3 => kaiming(dims[1..].iter().product()),
        ("weight", 2) => kaiming(dims[0]),
        ("bias", _) | ("beta", _) | ("running_mean", _) => InitRule::Constant(0.0),
        ("gamma", _) => InitRule::Uniform01,
        ("running_var", _) => InitRule::Constant(1.0),
        _ => InitRule::Keep,
    }
}

fn kaiming(fan_in: usize) -> InitRule {
    InitRule::Normal {
        std: (2.0 / fan_in.max(1) as f64).sqrt(),
    }
}

/// Draws `n` values for `rule` from `rng` (`None` for [`InitRule::Keep`]).
fn draw(rule: InitRule, n: usize, rng: &mut StdRng) -> Option<Vec<f32>> {
    match rule {
        InitRule::Keep => None,
        InitRule::Constant(c) => Some(vec![c as f32; n]),
        InitRule::Uniform01 => Some(
            (0..n)
                .map(|_| {
                    // Rounding to f32 can give exactly 1.0: stay in [0, 1).
                    let v = rng.random::<f64>() as f32;
                    if v >= 1.0 { 0.0 } else { v }
                })
                .collect(),
        ),
        InitRule::Normal { std } => {
            let mut out = Vec::with_capacity(n + 1);
            while out.len() < n {
                // Box-Muller: u1 in (0, 1] so ln(u1) is finite.
                let u1 = 1.0 - rng.random::<f64>();
                let u2 = rng.random::<f64>();
                let r = (-2.0 * u1.ln()).sqrt();
                let theta = std::f64::consts::TAU * u2;
                out.push((std * r * theta.cos()) as f32);
                out.push((std * r * theta.sin()) as f32);
            }
            out.truncate(n);
            Some(out)
        }
    }
}

struct ReferenceInit {
    seed: u64,
}

impl PathMapper for ReferenceInit {
    fn map_float<const D: usize>(
        &mut self,
        path: &str,
        param: Param<Tensor<D>>,
    ) -> Param<Tensor<D>> {
        let dims = param.lazy_shape().to_vec();
        let rule = init_rule(path, &dims);
        if rule == InitRule::Keep {
            return param;
        }
        let n = dims.iter().product::<usize>();
        let mut rng = StdRng::seed_from_u64(derive_seed(self.seed, path));
        let values = draw(rule, n, &mut rng).expect("rule is not Keep");
        param.map(move |tensor| {
            let device = tensor.device();
            let require_grad = tensor.is_require_grad();
            let shape: [usize; D] = tensor.dims();
            Tensor::<D>::from_data(TensorData::new(values, shape), &device)
                .set_require_grad(require_grad)
        })
    }
}
