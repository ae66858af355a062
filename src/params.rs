//! Parameter paths of a burn module.
//!
//! burn 0.22 gives a [`ModuleVisitor`] only the parameter itself; the path
//! (`blocks.0.conv1.weight`) comes from `enter_module`/`exit_module`. This
//! module keeps that bookkeeping in one place. A parameter's identity across
//! save, load and pruning is its path: `ParamId`s are random per process.

use std::collections::BTreeMap;

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::tensor::Tensor;

/// A floating-point tensor of a module, as seen by a visitor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamInfo {
    /// Module path, e.g. `layer1.0.conv1.weight`.
    pub path: String,
    /// burn's id of the parameter in this process.
    pub id: ParamId,
    /// Tensor shape.
    pub shape: Vec<usize>,
    /// `true` for BatchNorm running statistics (`running_mean`, `running_var`),
    /// which are state, not trainable parameters.
    pub is_running_stat: bool,
}

impl ParamInfo {
    /// Number of scalar entries.
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }
}

/// Tracks the current module path during a traversal.
#[derive(Debug, Default, Clone)]
pub(crate) struct PathStack {
    names: Vec<String>,
}

impl PathStack {
    pub(crate) fn enter(&mut self, name: &str) {
        self.names.push(name.to_string());
    }

    pub(crate) fn exit(&mut self) {
        self.names.pop();
    }

    pub(crate) fn current(&self) -> String {
        self.names.join(".")
    }
}

/// A read-only pass over the float tensors of a module that is told each
/// tensor's path (see [`visit_with_paths`]).
pub(crate) trait PathVisitor {
    fn visit_float<const D: usize>(&mut self, path: &str, param: &Param<Tensor<D>>);
}

/// A rewrite of the float tensors of a module that is told each tensor's
/// path (see [`map_with_paths`]).
pub(crate) trait PathMapper {
    fn map_float<const D: usize>(
        &mut self,
        path: &str,
        param: Param<Tensor<D>>,
    ) -> Param<Tensor<D>>;
}

/// Adapts a [`PathVisitor`] or [`PathMapper`] to burn's traversal, keeping
/// the path bookkeeping.
struct WithPaths<'a, T> {
    inner: &'a mut T,
    path: PathStack,
}

impl<T: PathVisitor> ModuleVisitor for WithPaths<'_, T> {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.enter(name);
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.exit();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        self.inner.visit_float(&self.path.current(), param);
    }
}

impl<T: PathMapper> ModuleMapper for WithPaths<'_, T> {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.enter(name);
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.exit();
    }

    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        self.inner.map_float(&self.path.current(), param)
    }
}

/// Runs `visitor` over every float tensor of `module`, with its path.
pub(crate) fn visit_with_paths<M: Module, V: PathVisitor>(module: &M, visitor: &mut V) {
    module.visit(&mut WithPaths {
        inner: visitor,
        path: PathStack::default(),
    });
}

/// Rewrites every float tensor of `module` with `mapper`, given its path.
pub(crate) fn map_with_paths<M: Module, T: PathMapper>(module: M, mapper: &mut T) -> M {
    module.map(&mut WithPaths {
        inner: mapper,
        path: PathStack::default(),
    })
}

/// Whether a path names BatchNorm running statistics.
pub(crate) fn is_running_stat_path(path: &str) -> bool {
    let last = path.rsplit('.').next().unwrap_or(path);
    last == "running_mean" || last == "running_var"
}

struct InfoCollector {
    params: Vec<ParamInfo>,
}

impl PathVisitor for InfoCollector {
    fn visit_float<const D: usize>(&mut self, path: &str, param: &Param<Tensor<D>>) {
        self.params.push(ParamInfo {
            is_running_stat: is_running_stat_path(path),
            path: path.to_string(),
            id: param.id,
            shape: param.lazy_shape().to_vec(),
        });
    }
}

/// Every floating-point tensor of `module` (parameters and running
/// statistics), in traversal order, with its path and shape.
///
/// ```
/// # #[allow(deprecated)] let device = burn::tensor::Device::ndarray();
/// use burn::nn::LinearConfig;
/// let linear = LinearConfig::new(4, 3).init(&device);
/// let params = burn_lottery::params::float_params(&linear);
/// assert_eq!(params[0].path, "weight");
/// assert_eq!(params[0].shape, vec![4, 3]);
/// ```
pub fn float_params<M: Module>(module: &M) -> Vec<ParamInfo> {
    let mut collector = InfoCollector { params: Vec::new() };
    visit_with_paths(module, &mut collector);
    collector.params
}

struct ValueCollector<'a, F: Fn(&str) -> bool> {
    wanted: &'a F,
    values: BTreeMap<String, Vec<f32>>,
}

impl<F: Fn(&str) -> bool> PathVisitor for ValueCollector<'_, F> {
    fn visit_float<const D: usize>(&mut self, path: &str, param: &Param<Tensor<D>>) {
        if (self.wanted)(path) {
            let values = param
                .val()
                .into_data()
                .convert::<f32>()
                .try_into_vec::<f32>()
                .expect("converted to f32 above");
            self.values.insert(path.to_string(), values);
        }
    }
}

/// Host copies (row-major f32) of the float tensors of `module` whose path
/// `wanted` accepts, keyed by path.
pub fn float_values<M: Module>(
    module: &M,
    wanted: impl Fn(&str) -> bool,
) -> BTreeMap<String, Vec<f32>> {
    let mut collector = ValueCollector {
        wanted: &wanted,
        values: BTreeMap::new(),
    };
    visit_with_paths(module, &mut collector);
    collector.values
}

/// Number of trainable scalars: every float parameter except BatchNorm
/// running statistics (burn's `num_params()` counts those too).
pub fn num_trainable_params<M: Module>(module: &M) -> usize {
    float_params(module)
        .iter()
        .filter(|p| !p.is_running_stat)
        .map(ParamInfo::numel)
        .sum()
}
