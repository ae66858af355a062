//! The reference initialization, deterministic from a seed and identical on
//! every backend.
//!
//! Rules by the burn module that owns each parameter (the layer type) and
//! the parameter's field name. The layers the papers use follow open_lth:
//!
//! | layer | field | value |
//! |---|---|---|
//! | `Conv1d`, `Conv2d`, `Conv3d` | `weight` `[out, in, k...]` | Kaiming normal, `std = sqrt(2 / (in * k...))` (the product of every dimension but the first) |
//! | `Linear` | `weight` `[d_in, d_out]` | Kaiming normal, `std = sqrt(2 / d_in)` |
//! | `Conv*`, `Linear` | `bias` | 0 |
//! | `BatchNorm` | `gamma` / `beta` | uniform in `[0, 1)` / 0 |
//! | `BatchNorm` | `running_mean` / `running_var` | 0 / 1 (a fresh network's statistics) |
//!
//! Every other parameter (`Embedding`, `LayerNorm`, attention layers, a
//! user's own `Param` fields, ...) keeps the values burn built it with,
//! from the initializer its config names (burn's defaults: `Embedding`
//! normal(0, 1), norms' gamma 1 and beta 0). burn draws those from the
//! device's generator: seed it (`device.seed(seed)`) before building the
//! module to make them reproducible.
//! Linear biases are zero (PyTorch's default would be uniform; open_lth
//! leaves them at PyTorch's default, but with Kaiming weights the choice
//! does not matter and zero is reproducible without a fan-in rule).
//!
//! Values are drawn on the host in `f64` with
//! `StdRng::seed_from_u64(derive_seed(seed, path))` (one generator per
//! parameter, so adding a layer does not shift the others), converted to
//! `f32` and uploaded with `Tensor::from_data`. The parameter keeps its
//! `ParamId` and its `require_grad` flag.

use burn::module::{Module, ModuleMapper, Param};
use burn::tensor::{Tensor, TensorData};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

use crate::params::PathStack;
use crate::seed::derive_seed;

/// Applies the reference initialization (see the module docs) to every
/// parameter of `module`, deterministically from `seed`.
pub fn init_weights<M: Module>(module: M, seed: u64) -> M {
    module.map(&mut ReferenceInit {
        seed,
        path: PathStack::default(),
        owners: Vec::new(),
    })
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

/// The rule [`init_weights`] applies to the parameter `field` of a burn
/// module of type `layer` (its struct name, e.g. `Linear`), of shape
/// `dims` (see the module docs).
pub fn init_rule(layer: &str, field: &str, dims: &[usize]) -> InitRule {
    match (layer, field) {
        ("Conv1d" | "Conv2d" | "Conv3d", "weight") if dims.len() >= 3 => {
            kaiming(dims[1..].iter().product())
        }
        ("Linear", "weight") if dims.len() == 2 => kaiming(dims[0]),
        ("Conv1d" | "Conv2d" | "Conv3d" | "Linear", "bias") => InitRule::Constant(0.0),
        ("BatchNorm", "gamma") => InitRule::Uniform01,
        ("BatchNorm", "beta" | "running_mean") => InitRule::Constant(0.0),
        ("BatchNorm", "running_var") => InitRule::Constant(1.0),
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

/// Applies [`init_rule`] to every float parameter, tracking its path and
/// the type of the module that owns it.
struct ReferenceInit {
    seed: u64,
    path: PathStack,
    /// The container type of every entered field (`Struct:Linear`, ...).
    owners: Vec<String>,
}

impl ModuleMapper for ReferenceInit {
    fn enter_module(&mut self, name: &str, container_type: &str) {
        self.path.enter(name);
        self.owners.push(container_type.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.exit();
        self.owners.pop();
    }

    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let path = self.path.current();
        let field = path.rsplit('.').next().unwrap_or(&path);
        let owner = self.owners.last().map_or("", |t| type_name(t));
        let dims = param.lazy_shape().to_vec();
        let rule = init_rule(owner, field, &dims);
        let n = dims.iter().product::<usize>();
        let mut rng = StdRng::seed_from_u64(derive_seed(self.seed, &path));
        let Some(values) = draw(rule, n, &mut rng) else {
            return param;
        };
        param.map(move |tensor| {
            let device = tensor.device();
            let require_grad = tensor.is_require_grad();
            let shape: [usize; D] = tensor.dims();
            Tensor::<D>::from_data(TensorData::new(values, shape), &device)
                .set_require_grad(require_grad)
        })
    }
}

/// `Linear` from burn's container type `Struct:Linear`.
fn type_name(container_type: &str) -> &str {
    container_type
        .split_once(':')
        .map_or(container_type, |(_, name)| name)
}
