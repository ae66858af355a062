//! Real speed from sparsity: masked layers that skip their pruned weights.
//!
//! A ticket at 7% density does 7% of the dense multiply-adds in its masked
//! layers; burn has no sparse tensors, so the crate brings two ways to skip
//! the rest (measured against each other in BENCHMARKS.md, "Sparsity"):
//!
//! * [`SparseWeight`]: the kept entries of a weight, indexed by output and by
//!   input, with host kernels for the forward product, the input gradient
//!   and the weight gradient at the kept entries (CPU only);
//! * [`SparseConv`]: the kept entries of a convolution, with direct host
//!   kernels on channel-major feature maps (CPU only);
//! * [`GatherScatter`]: the same product from burn's differentiable
//!   operations (gather, multiply, scatter-add), on every backend.
//!
//! The [`Trainer`](crate::train::trainer::Trainer) runs a masked range on
//! this path as an execution strategy ([`SparseTraining`]): decided once per
//! range, recorded with its reason ([`Execution`]), checkpointed and resumed
//! like the dense path (the optimizer state converts to and from burn's
//! record).

/// Defines `$vis fn $name($args) -> $ret` running `$body` as an inlined
/// body, through a copy compiled for AVX2 when the CPU has it: the same code
/// (Rust never fuses a multiply and an add on its own), so the same results;
/// only the vector width changes.
macro_rules! avx2_dispatch {
    ($(#[$attr:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) -> $ret:ty $body:block) => {
        $(#[$attr])*
        $vis fn $name($($arg: $ty),*) -> $ret {
            #[inline(always)]
            fn body($($arg: $ty),*) -> $ret $body
            #[cfg(target_arch = "x86_64")]
            if std::is_x86_feature_detected!("avx2") {
                #[target_feature(enable = "avx2")]
                fn avx2($($arg: $ty),*) -> $ret {
                    body($($arg),*)
                }
                // SAFETY: the CPU supports AVX2 (checked above).
                return unsafe { avx2($($arg),*) };
            }
            body($($arg),*)
        }
    };
}

mod batch_norm;
mod conv;
mod conv_kernels;
mod csr;
mod execution;
mod gather;
mod mlp;
pub mod optim;
mod resnet;
mod settings;
mod state;
mod ticket;
mod train;

pub use batch_norm::NormSettings;
pub use conv::{Planes, SparseConv};
pub use csr::{SparseWeight, transpose};
pub use execution::{Execution, ExecutionPath, ExecutionReason};
pub use gather::GatherScatter;
pub use mlp::SparseMlp;
pub use optim::{SparseOptimizer, sparse_optimizer};
pub use resnet::SparseResNet;
pub use settings::{LOSS_CHECK_TOLERANCE, MLP_BELOW_DENSITY, RESNET_BELOW_DENSITY, SparseTraining};
pub use ticket::SparseTicket;
pub(crate) use train::{SparseRequest, Strategy};

/// Errors of the sparse layers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SparseError {
    /// Shapes or lengths that do not fit together.
    #[error("sparse layer shape: {0}")]
    Shape(String),
    /// The model is not a chain of linear layers the sparse path can run.
    #[error("not a multilayer perceptron: {0}")]
    NotAnMlp(String),
    /// The model is not a CIFAR ResNet the sparse path can run.
    #[error("not a CIFAR ResNet: {0}")]
    NotAResNet(String),
    /// The recipe's optimizer has no sparse implementation.
    #[error("no sparse implementation of the optimizer: {0}")]
    UnsupportedOptimizer(String),
    /// Optimizer state that does not convert between burn's record and the
    /// sparse path's.
    #[error("optimizer state: {0}")]
    OptimizerState(String),
    /// The task stopped giving host copies of its batches.
    #[error("host batch: {0}")]
    HostBatch(String),
}
