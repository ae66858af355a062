//! The schedule stage ([`MaskSchedule`]).

use super::{PruneError, Weights};
use crate::mask::Mask;

/// What a mask update before a step needs and does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaskUpdate {
    /// The update reads the dense gradient of the step's batch (every
    /// weight's, pruned ones included).
    pub gradients: bool,
    /// The update takes the place of the step's optimizer step (RigL and
    /// SET update the mask instead of the weights at an update step); the
    /// learning-rate schedule still advances.
    pub replaces_step: bool,
}

/// A mask that changes during one training run (the schedule stage).
///
/// A `MaskSchedule` says before which steps the mask changes and what it
/// becomes; the [`Trainer`](crate::train::trainer::Trainer) asks it every
/// step (see [`Trainer::with_mask_schedule`](crate::train::trainer::Trainer::with_mask_schedule)),
/// hands it host copies of the masked weights (and of the step's dense
/// gradients when it asks for them), and enforces the new mask through the
/// [`MaskedOptimizer`](crate::train::masked::MaskedOptimizer): weights
/// outside it are zeroed, and so is their optimizer state, so a weight that
/// comes back starts at zero with zero momentum and moments.
///
/// Two schedules are built on the shared stages: [`GradualPruning`]
/// (magnitude pruning on the cubic schedule of Zhu & Gupta) and
/// [`DynamicSparsity`] (SET and RigL: drop the smallest kept weights,
/// regrow at random or where the gradient is largest).
///
/// [`GradualPruning`]: super::GradualPruning
/// [`DynamicSparsity`]: super::DynamicSparsity
pub trait MaskSchedule {
    /// The mask training starts under (iteration 0).
    fn initial_mask(&self) -> &Mask;

    /// Whether the mask changes before the step of `iteration` (0-based),
    /// and what the change needs. A function of the iteration only, so a
    /// resumed run updates at the same steps.
    fn update_at(&self, iteration: u64) -> Option<MaskUpdate>;

    /// The mask after the update before the step of `iteration`, from the
    /// mask in force, host copies of the weights it covers and, when
    /// [`MaskUpdate::gradients`], of the step's dense gradients.
    fn next_mask(
        &self,
        iteration: u64,
        current: &Mask,
        weights: &Weights,
        gradients: Option<&Weights>,
    ) -> Result<Mask, PruneError>;

    /// The number of weights the run ends with.
    fn final_kept(&self) -> usize;
}
