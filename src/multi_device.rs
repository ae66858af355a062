//! Data-parallel training on several devices through burn's own mechanism,
//! and what burn 0.22 supports of it.
//!
//! # burn 0.22's mechanism
//!
//! 1. One copy of the model per device ([`Module::fork`]), every float
//!    parameter marked distributed with its [`ParamId`] (the same on every
//!    device): [`mark_distributed`], i.e. burn's
//!    `Tensor::set_distributed(param_id)`. burn's optimizers keep the mark
//!    across steps.
//! 2. A communication server over the devices: [`DataParallel::new`], i.e.
//!    `burn::tensor::distributed::DistributedContext::init(devices,
//!    DistributedConfig { all_reduce_op: ReduceOperation::Mean })`.
//! 3. Each device, in its own thread, runs forward and backward on its part
//!    of the batch; autodiff submits each marked parameter's gradient to
//!    the server as soon as it is complete, and the server all-reduces it
//!    across the devices (`DistributedOps::all_reduce`) before `backward`
//!    returns.
//!
//! For IMP this keeps the mask identical on every device by construction:
//! every copy starts from the same rewound weights and the same [`Mask`],
//! the averaged gradients are identical, and the masked step
//! ([`MaskedOptimizer`](crate::train::masked::MaskedOptimizer)) zeroes the
//! pruned entries of the gradient and re-applies the mask after the update
//! on each copy, so pruned weights are exactly zero after every
//! synchronized step and the copies stay bit-identical.
//!
//! # What burn 0.22.1 supports (read in its sources, and tested)
//!
//! - **ndarray and flex (the CPU backends): no.** burn's backend catalog
//!   (`burn-backend-extension`, `catalog.rs`) marks them `distributed:
//!   false`, so burn-dispatch has no distributed arm for them: marking a
//!   parameter, `Tensor::set_distributed(param_id)` on an ndarray autodiff
//!   tensor, panics with "Distributed operations are not supported for
//!   tensor kind NdArray(Autodiff(..))" (`burn-dispatch/src/backend.rs`),
//!   and `burn::tensor::distributed::all_reduce(tensor,
//!   ReduceOperation::Mean, vec![Device::flex()])` panics with the same
//!   message for `Flex(..)` (`burn-dispatch/src/ops/distributed.rs`); both
//!   are tested. Below the dispatch, `impl DistributedOps<Self> for NdArray
//!   {}` and `impl DistributedOps<Flex> for Flex {}` keep the trait's
//!   `all_reduce`, `unimplemented!()`. Neither backend has a second device
//!   either: `NdArrayDevice` has the one variant `Cpu` and `FlexDevice` is a
//!   unit struct whose id is always `(0, 0)`, so two CPU devices cannot even
//!   be named.
//! - **wgpu: no.** The cubecl backend is marked distributed as a whole, so
//!   marking works, but its all-reduce goes to cubecl's compute server and
//!   cubecl-wgpu 0.11 does not implement it: the default
//!   `ComputeServer::all_reduce` returns
//!   `ServerError::no_device_transport(Collective::AllReduce)`, which the
//!   catalog's own comment says ends in a panic from cubecl.
//! - **CUDA: yes**, through NCCL (cubecl-cuda's `compute/communication.rs`),
//!   with this crate's `cuda` feature (devices `cuda:0`, `cuda:1`, ...);
//!   [`DataParallel::new`] then accepts CUDA devices. This code path has not
//!   run: no machine with two GPUs was available.
//!
//! [`DataParallel::new`] refuses the backends above with
//! [`DataParallelError::Unsupported`] (naming the reason) instead of
//! letting a training step panic inside burn.

use burn::module::{Module, ModuleMapper, Param, ParamId};
use burn::tensor::distributed::{DistributedConfig, DistributedContext, ReduceOperation};
use burn::tensor::{Device, Tensor};

use crate::mask::Mask;

/// Why data-parallel training cannot run on some devices.
#[derive(Debug, thiserror::Error)]
pub enum DataParallelError {
    /// Fewer than two devices.
    #[error("data-parallel training needs at least two devices, got {0}")]
    TooFewDevices(usize),
    /// burn 0.22 has no all-reduce on this backend.
    #[error("burn 0.22 cannot all-reduce on {device}: {reason}")]
    Unsupported {
        /// The device, as burn prints it.
        device: String,
        /// Why (see the [module docs](self)).
        reason: &'static str,
    },
    /// A device appears twice.
    #[error("device {0} appears twice")]
    Duplicate(String),
}

/// Whether burn 0.22 can all-reduce gradients across `devices` (see the
/// [module docs](self)).
pub fn check_devices(devices: &[Device]) -> Result<(), DataParallelError> {
    if devices.len() < 2 {
        return Err(DataParallelError::TooFewDevices(devices.len()));
    }
    let names: Vec<String> = devices
        .iter()
        .map(|d| format!("{:?}", d.clone().inner()))
        .collect();
    for (i, name) in names.iter().enumerate() {
        if names[..i].contains(name) {
            return Err(DataParallelError::Duplicate(name.clone()));
        }
    }
    for name in &names {
        let lower = name.to_lowercase();
        let reason = if lower.contains("ndarray") || lower.contains("flex") {
            "burn-dispatch has no distributed operations for it (set_distributed and all_reduce panic), and it has a single device"
        } else if lower.contains("wgpu") || lower.contains("vulkan") || lower.contains("metal") {
            "cubecl-wgpu does not implement ComputeServer::all_reduce (no device transport)"
        } else if lower.contains("cuda") {
            continue;
        } else {
            "only CUDA (NCCL) implements all_reduce in burn 0.22"
        };
        return Err(DataParallelError::Unsupported {
            device: name.clone(),
            reason,
        });
    }
    Ok(())
}

/// burn's communication server over several devices, averaging gradients
/// (see the [module docs](self)); stopped when dropped.
#[derive(Debug)]
pub struct DataParallel {
    devices: Vec<Device>,
    _context: DistributedContext,
}

impl DataParallel {
    /// Starts burn's communication server over `devices` (gradients are
    /// averaged), after [`check_devices`].
    pub fn new(devices: Vec<Device>) -> Result<Self, DataParallelError> {
        check_devices(&devices)?;
        let config = DistributedConfig {
            all_reduce_op: ReduceOperation::Mean,
        };
        let context = DistributedContext::init(devices.clone(), config);
        Ok(Self {
            devices,
            _context: context,
        })
    }

    /// The devices.
    pub fn devices(&self) -> &[Device] {
        &self.devices
    }

    /// One copy of `model` per device, each masked by `mask` and marked
    /// distributed, to train in one thread per device.
    pub fn replicate<M: Module>(
        &self,
        model: &M,
        mask: &Mask,
    ) -> Result<Vec<M>, crate::mask::MaskError> {
        self.devices
            .iter()
            .map(|device| Ok(mark_distributed(mask.apply(model.clone().fork(device))?)))
            .collect()
    }
}

/// Marks every float parameter of `model` distributed under its own
/// [`ParamId`] (burn's `Tensor::set_distributed`), so that backward passes
/// on several devices all-reduce its gradient. `model` must be on an
/// autodiff device of a backend with distributed operations (see the
/// [module docs](self)): burn 0.22 panics on the others.
pub fn mark_distributed<M: Module>(model: M) -> M {
    struct Marker;
    impl ModuleMapper for Marker {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            let id: ParamId = param.id;
            param.map(|t| t.set_distributed(id))
        }
    }
    model.map(&mut Marker)
}
