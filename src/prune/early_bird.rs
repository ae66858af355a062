//! Early-bird tickets (You, Li, Xu, Fu, Wang, Chen, Baraniuk, Wang & Lin,
//! "Drawing Early-Bird Tickets: Towards More Efficient Training of Deep
//! Networks", arXiv 1909.11957): during the dense run, the magnitude mask at
//! the target sparsity is taken at the end of every epoch; once the masks of
//! consecutive epochs stop changing (their normalized Hamming distance stays
//! below `epsilon` for `window` epochs in a row), the ticket is drawn and
//! the dense run stops.
//!
//! The stages are separate: [`mask_distance`] compares two masks,
//! [`EarlyBirdDetector`] decides when to stop, and the IMP runner's
//! [`PruningMethod::EarlyBird`](crate::imp::PruningMethod::EarlyBird) drives
//! the search with the experiment's own magnitude pruner and trains the
//! drawn ticket like any other level.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use super::PruneError;
use crate::mask::{Mask, MaskError};

/// Configuration of the early-bird search. Defaults: the paper's `epsilon`
/// 0.1 and window of the last 5 distances, one mask every 1,000 iterations
/// (one epoch of Fashion-MNIST or MNIST at batch 60).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EarlyBirdConfig {
    /// Iterations of one epoch: a mask is drawn each time this many
    /// iterations of the dense run are done.
    pub epoch_iterations: u64,
    /// The distance every one of the last `window` distances must stay
    /// strictly below.
    pub epsilon: f64,
    /// How many consecutive distances must stay below `epsilon`.
    pub window: usize,
}

impl Default for EarlyBirdConfig {
    fn default() -> Self {
        Self {
            epoch_iterations: 1000,
            epsilon: 0.1,
            window: 5,
        }
    }
}

impl EarlyBirdConfig {
    /// A search drawing a mask every `epoch_iterations`, with the paper's
    /// `epsilon` and window.
    pub fn new(epoch_iterations: u64) -> Self {
        Self {
            epoch_iterations,
            ..Self::default()
        }
    }

    /// Checks every setting.
    pub fn validate(&self) -> Result<(), PruneError> {
        let invalid = |reason: String| Err(PruneError::InvalidEarlyBird(reason));
        if self.epoch_iterations == 0 {
            return invalid("epoch_iterations must be > 0".into());
        }
        if self.window == 0 {
            return invalid("window must be > 0".into());
        }
        if !(self.epsilon.is_finite() && self.epsilon > 0.0 && self.epsilon <= 1.0) {
            return invalid(format!("epsilon must be in (0, 1], got {}", self.epsilon));
        }
        Ok(())
    }
}

/// The normalized Hamming distance between two masks of the same layers:
/// the fraction of prunable weights kept by exactly one of them (0: the
/// same mask, 1: complementary masks).
///
/// ```
/// use burn_lottery::mask::{LayerMask, Mask};
/// use burn_lottery::prune::mask_distance;
/// let layer = |kept: Vec<bool>| LayerMask::from_kept("w", vec![4], kept).unwrap();
/// let a = Mask::from_layers([("w".to_string(), layer(vec![true, true, false, false]))]);
/// let b = Mask::from_layers([("w".to_string(), layer(vec![true, false, true, false]))]);
/// assert_eq!(mask_distance(&a, &b).unwrap(), 0.5);
/// ```
pub fn mask_distance(a: &Mask, b: &Mask) -> Result<f64, MaskError> {
    a.check_same_layers(b)?;
    let differing: usize = a
        .layers()
        .map(|(path, layer)| {
            let other = b.layer(path).expect("same layers, checked above");
            layer
                .kept()
                .iter()
                .zip(other.kept())
                .filter(|(x, y)| x != y)
                .count()
        })
        .sum();
    let total = a.total_count();
    Ok(if total == 0 {
        0.0
    } else {
        differing as f64 / total as f64
    })
}

/// The stopping rule: fires once the last `window` distances pushed are all
/// strictly below `epsilon` (the paper keeps them in a queue of length
/// `window` and stops when its maximum is below `epsilon`).
#[derive(Debug, Clone, PartialEq)]
pub struct EarlyBirdDetector {
    epsilon: f64,
    window: usize,
    recent: VecDeque<f64>,
}

impl EarlyBirdDetector {
    /// A detector with `config`'s `epsilon` and window.
    pub fn new(config: &EarlyBirdConfig) -> Self {
        Self {
            epsilon: config.epsilon,
            window: config.window,
            recent: VecDeque::with_capacity(config.window),
        }
    }

    /// Records the distance between the newest mask and the one before;
    /// returns whether the ticket is drawn now.
    pub fn push(&mut self, distance: f64) -> bool {
        if self.recent.len() == self.window {
            self.recent.pop_front();
        }
        self.recent.push_back(distance);
        self.fired()
    }

    /// Whether the last `window` distances are all below `epsilon`.
    pub fn fired(&self) -> bool {
        self.recent.len() == self.window && self.recent.iter().all(|&d| d < self.epsilon)
    }
}

/// One epoch of an early-bird search: its mask's distance to the previous
/// epoch's (`None` for the first epoch).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EpochDistance {
    /// The epoch (1 = the end of the first epoch).
    pub epoch: u64,
    /// Iterations of the dense run done at the end of the epoch.
    pub iteration: u64,
    /// Normalized Hamming distance to the previous epoch's mask.
    pub distance: Option<f64>,
}

/// The header of an early-bird search's distances CSV.
pub const EARLY_BIRD_CSV_HEADER: &str = "epoch,iteration,distance";

/// The outcome of an early-bird search for one target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EarlyBirdRecord {
    /// The pruning level whose count the ticket keeps.
    pub level: usize,
    /// Weights the ticket keeps.
    pub kept: usize,
    /// Prunable weights.
    pub total: usize,
    /// The search's settings.
    pub config: EarlyBirdConfig,
    /// The epoch at which the ticket was drawn; `None` when the detector
    /// never fired and the mask of the fully trained network was taken.
    pub drawn_epoch: Option<u64>,
    /// Iterations of the dense run done when the ticket was drawn.
    pub drawn_iteration: u64,
    /// Every epoch's distance, in order.
    pub epochs: Vec<EpochDistance>,
}

impl EarlyBirdRecord {
    /// The distances as CSV ([`EARLY_BIRD_CSV_HEADER`]; the first epoch's
    /// distance is empty).
    pub fn distances_csv(&self) -> String {
        let mut out = format!("{EARLY_BIRD_CSV_HEADER}\n");
        for e in &self.epochs {
            let distance = e.distance.map(|d| d.to_string()).unwrap_or_default();
            out.push_str(&format!("{},{},{distance}\n", e.epoch, e.iteration));
        }
        out
    }
}
