//! [`SweepSpec`]: what a sweep trains, as a serde (JSON) description.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::SweepError;
use crate::imp::{Condition, Controls, first_repeat};

/// The stability copies of a sweep: for every level of every experiment and
/// every condition, one copy per data-order seed, trained from the rewind
/// point; the report analyzes every pair of them.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StabilitySpec {
    /// Data-order seeds of the copies (none, or at least two). A seed equal
    /// to the experiment's own is its network, not trained again.
    pub copies: Vec<u64>,
    /// Conditions analyzed (default: the IMP line only). `random_prune`
    /// needs the random-pruning control.
    pub conditions: Vec<Condition>,
}

/// A sweep: one IMP experiment per (seed, rewind point), each with
/// `levels` pruning levels, the controls and the stability copies.
///
/// ```json
/// { "network": "lenet_fashion_mnist", "iterations": 300, "levels": 2,
///   "rewind_points": [0, 50], "seeds": [0, 1],
///   "controls": { "random_reinit": true, "random_prune": true },
///   "stability": { "copies": [10, 11] } }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepSpec {
    /// The network and data, as the program that runs the sweep names them
    /// (the `burn-lottery-sweep` program: `lenet_fashion_mnist`,
    /// `resnet20_cifar10`); the library only carries it.
    pub network: String,
    /// Training iterations per level (default: the network's recipe).
    #[serde(default)]
    pub iterations: Option<u64>,
    /// Pruning levels after the dense level 0.
    pub levels: usize,
    /// Rewind iterations k (0 = the original lottery ticket).
    pub rewind_points: Vec<u64>,
    /// Seeds (initialization, data order and augmentation alike).
    pub seeds: Vec<u64>,
    /// Controls trained at every level of every experiment.
    #[serde(default)]
    pub controls: Controls,
    /// Stability copies.
    #[serde(default)]
    pub stability: StabilitySpec,
}

impl SweepSpec {
    /// Reads a sweep description from a JSON file.
    pub fn from_file(path: &Path) -> Result<Self, SweepError> {
        let file_error = |reason: String| SweepError::File {
            path: path.to_path_buf(),
            reason,
        };
        let text = std::fs::read(path).map_err(|e| file_error(e.to_string()))?;
        serde_json::from_slice(&text).map_err(|e| file_error(e.to_string()))
    }

    /// Checks the description against `iterations`, the training length.
    pub fn validate(&self, iterations: u64) -> Result<(), SweepError> {
        let fail = |m: String| Err(SweepError::Spec(m));
        if self.seeds.is_empty() || self.rewind_points.is_empty() {
            return fail("seeds and rewind_points must not be empty".into());
        }
        if first_repeat(&self.seeds).is_some() || first_repeat(&self.rewind_points).is_some() {
            return fail("seeds and rewind_points must not repeat".into());
        }
        if let Some(&k) = self.rewind_points.iter().find(|&&k| k > iterations) {
            return fail(format!(
                "rewind point {k} is beyond the training length {iterations}"
            ));
        }
        let copies = &self.stability.copies;
        if copies.len() == 1 || first_repeat(copies).is_some() {
            return fail("stability.copies needs none or at least two distinct seeds".into());
        }
        if self.stability.conditions.contains(&Condition::RandomPrune)
            && !self.controls.random_prune
        {
            return fail("the random_prune stability condition needs controls.random_prune".into());
        }
        Ok(())
    }

    /// The stability conditions (the IMP line when none are named).
    pub fn stability_conditions(&self) -> Vec<Condition> {
        if self.stability.conditions.is_empty() {
            vec![Condition::Imp]
        } else {
            self.stability.conditions.clone()
        }
    }
}
