//! Linear interpolation between two networks: `alpha*W1 + (1-alpha)*W2`.
//!
//! The interpolated model is built by mapping a fresh template (a model of
//! the same architecture) with a path-tracking mapper that writes the blend
//! of the two endpoints' host values into every float tensor: parameters
//! and, with [`interpolate`], BatchNorm running statistics too. Nothing of
//! the result shares state with the endpoints (burn's `RunningState` clones
//! share their value, so cloning an endpoint would not do).
//!
//! The blend is computed in f64 as `b + alpha*(a - b)` and rounded to f32,
//! so `alpha = 1` gives `a` and `alpha = 0` gives `b` bit for bit, and the
//! interpolation of a network with itself is the network at every alpha.

use burn::module::{Module, Param};
use burn::tensor::{Tensor, TensorData};

use super::StabilityError;
use super::distance::HostWeights;
use crate::params::{PathMapper, is_running_stat_path, map_with_paths};

/// One blended entry: `b + alpha*(a - b)`, exact at `alpha` 0 and 1.
pub fn blend(a: f32, b: f32, alpha: f64) -> f32 {
    if alpha == 1.0 {
        a
    } else if alpha == 0.0 {
        b
    } else {
        let (a, b) = (f64::from(a), f64::from(b));
        (b + alpha * (a - b)) as f32
    }
}

struct Interpolator<'a> {
    a: &'a HostWeights,
    b: &'a HostWeights,
    alpha: f64,
    running_stats: bool,
    error: Option<String>,
}

impl PathMapper for Interpolator<'_> {
    fn map_float<const D: usize>(
        &mut self,
        path: &str,
        param: Param<Tensor<D>>,
    ) -> Param<Tensor<D>> {
        if !self.running_stats && is_running_stat_path(path) {
            return param;
        }
        let (Some(a), Some(b)) = (self.a.get(path), self.b.get(path)) else {
            self.error
                .get_or_insert(format!("{path} is missing from an endpoint"));
            return param;
        };
        let shape = param.lazy_shape().to_vec();
        let n: usize = shape.iter().product();
        if a.len() != n || b.len() != n {
            self.error.get_or_insert(format!(
                "{path}: the template has {n} entries, the endpoints {} and {}",
                a.len(),
                b.len()
            ));
            return param;
        }
        let values: Vec<f32> = a
            .iter()
            .zip(b)
            .map(|(&x, &y)| blend(x, y, self.alpha))
            .collect();
        param.map(|t| {
            let require_grad = t.is_require_grad();
            Tensor::<D>::from_data(TensorData::new(values, shape), &t.device())
                .set_require_grad(require_grad)
        })
    }
}

fn map<M: Module>(
    template: M,
    a: &HostWeights,
    b: &HostWeights,
    alpha: f64,
    running_stats: bool,
) -> Result<M, StabilityError> {
    if !alpha.is_finite() {
        return Err(StabilityError::Mismatch(format!(
            "alpha {alpha} is not finite"
        )));
    }
    let mut mapper = Interpolator {
        a,
        b,
        alpha,
        running_stats,
        error: None,
    };
    let model = map_with_paths(template, &mut mapper);
    match mapper.error {
        Some(e) => Err(StabilityError::Mismatch(e)),
        None => Ok(model),
    }
}

/// `template` with every float tensor (parameters and BatchNorm running
/// statistics) set to `alpha*a + (1-alpha)*b`, where `a` and `b` are host
/// weights of two networks of `template`'s architecture (see
/// [`host_weights`](super::host_weights)).
pub fn interpolate<M: Module>(
    template: M,
    a: &HostWeights,
    b: &HostWeights,
    alpha: f64,
) -> Result<M, StabilityError> {
    map(template, a, b, alpha, true)
}

/// Like [`interpolate`] but only the parameters: BatchNorm running
/// statistics keep the template's values (to be recomputed on data).
pub fn interpolate_parameters<M: Module>(
    template: M,
    a: &HostWeights,
    b: &HostWeights,
    alpha: f64,
) -> Result<M, StabilityError> {
    map(template, a, b, alpha, false)
}
