//! Whether masked levels train on the sparse path: the settings of an
//! experiment ([`SparseTraining`]) and the measured crossovers.

use serde::{Deserialize, Serialize};

use super::SparseTicket;
use crate::mask::Mask;

/// The density below which the sparse path trains LeNet-300-100 faster than
/// burn's dense masked step (flex, batch 60; BENCHMARKS.md, "Sparsity"):
/// the default for chains of linear layers.
pub const MLP_BELOW_DENSITY: f64 = 0.3;

/// The density below which ResNet-20's sparse step is measured faster than
/// burn's dense masked step (flex, batch 128: 1.11x at 51%; BENCHMARKS.md,
/// "Sparsity"; 80% was not measured): the default for ResNets.
pub const RESNET_BELOW_DENSITY: f64 = 0.6;

/// Whether masked levels train on the sparse path (an [`ImpConfig`]
/// setting: it enters the experiment's hash only when enabled, so stored
/// experiments keep their directories).
///
/// The path applies to models whose parameters are a chain of linear
/// layers (LeNet-300-100; see
/// [`SparseMlp::from_module`](super::SparseMlp::from_module)) or those of a
/// CIFAR ResNet ([`SparseResNet::from_module`](super::SparseResNet::from_module))
/// on tasks that give host batches
/// ([`Task::host_batch`](crate::task::Task::host_batch)), and only where the
/// sparse loss of the level's first batch equals the task's loss of the
/// dense model (relative tolerance [`LOSS_CHECK_TOLERANCE`]): a model whose
/// forward is not the ReLU chain or the ResNet, or a task whose loss is not
/// the mean cross-entropy, stays on the dense path. The recipe's optimizer
/// must be one the path implements
/// ([`sparse_optimizer`](super::optim::sparse_optimizer)).
///
/// Results agree with the dense path to float rounding, not bit for bit
/// (sums run in another order), which is why it is off by default. A
/// sparse level saves the same periodic checkpoints as a dense one (its
/// optimizer state converted to burn's record) and resumes from them; the
/// decision and its reason are recorded per level ([`Execution`]).
///
/// [`Execution`]: super::Execution
///
/// [`ImpConfig`]: crate::imp::ImpConfig
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct SparseTraining {
    /// Train on the sparse path where it applies (default false).
    pub enabled: bool,
    /// Levels whose mask density is below this train sparsely (the dense
    /// level 0 never does). `None` (the default): below the crossover
    /// measured for the model's kind, [`MLP_BELOW_DENSITY`] for a chain of
    /// linear layers, [`RESNET_BELOW_DENSITY`] for a ResNet.
    pub below_density: Option<f64>,
}

/// Relative tolerance of the first-batch loss check.
pub const LOSS_CHECK_TOLERANCE: f64 = 1e-4;

impl SparseTraining {
    /// The sparse path on, below each model kind's measured crossover.
    pub fn on() -> Self {
        Self {
            enabled: true,
            below_density: None,
        }
    }

    /// The sparse path on, below `density` whatever the model.
    pub fn below(density: f64) -> Self {
        Self {
            enabled: true,
            below_density: Some(density),
        }
    }

    /// Checks that a set density is in (0, 1].
    pub fn validate(&self) -> Result<(), String> {
        match self.below_density {
            Some(d) if !(d.is_finite() && d > 0.0 && d <= 1.0) => Err(format!(
                "sparse_training.below_density must be in (0, 1], got {d}"
            )),
            _ => Ok(()),
        }
    }

    /// Whether a level under `mask` may be sparse enough for the path, for
    /// some model kind (the dense level, density 1, never is).
    pub fn applies_to(&self, mask: &Mask) -> bool {
        let limit = self
            .below_density
            .unwrap_or(MLP_BELOW_DENSITY.max(RESNET_BELOW_DENSITY));
        let density = mask.density();
        self.enabled && density < limit && density < 1.0
    }

    /// The density below which a level of `ticket`'s kind trains
    /// sparsely, and its name in words (`the configured 0.7`, `the ResNet
    /// crossover 0.6`).
    pub(super) fn threshold(&self, ticket: &SparseTicket) -> (f64, String) {
        match self.below_density {
            Some(d) => (d, format!("the configured {d}")),
            None => {
                let limit = match ticket {
                    SparseTicket::Mlp(_) => MLP_BELOW_DENSITY,
                    SparseTicket::ResNet(_) => RESNET_BELOW_DENSITY,
                };
                (limit, format!("the {} crossover {limit}", ticket.kind()))
            }
        }
    }
}
