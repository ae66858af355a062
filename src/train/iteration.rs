//! Training time: [`Iteration`] counts optimizer steps from 0, [`StepSpec`]
//! writes a time in epochs and iterations (`"500it"`, `"2ep"`, `"2ep100it"`,
//! as open_lth's step strings).
//!
//! One epoch has `ceil(dataset_len / batch_size)` iterations
//! ([`iterations_per_epoch`]): 391 for CIFAR-10 at batch 128, so the reference
//! 160 epochs are 62,560 iterations.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub use crate::data::iterations_per_epoch;

/// An optimizer step count: iteration `i` is the state after `i` steps
/// (iteration 0 is the initialization). Serialized as a bare number.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Iteration(pub u64);

impl Iteration {
    /// Iteration 0 (before the first step).
    pub const ZERO: Iteration = Iteration(0);

    /// The raw count.
    pub fn get(self) -> u64 {
        self.0
    }

    /// The next iteration.
    pub fn next(self) -> Iteration {
        Iteration(self.0 + 1)
    }

    /// The iteration of batch `batch` (0-based) of epoch `epoch` (0-based).
    ///
    /// # Panics
    /// If `iterations_per_epoch` is 0 or `batch >= iterations_per_epoch`.
    pub fn from_epoch_batch(epoch: u64, batch: u64, iterations_per_epoch: u64) -> Iteration {
        assert!(iterations_per_epoch > 0, "iterations_per_epoch must be > 0");
        assert!(
            batch < iterations_per_epoch,
            "batch {batch} out of range for {iterations_per_epoch} iterations per epoch"
        );
        Iteration(epoch * iterations_per_epoch + batch)
    }

    /// `(epoch, batch in epoch)`, both 0-based.
    ///
    /// # Panics
    /// If `iterations_per_epoch` is 0.
    pub fn to_epoch_batch(self, iterations_per_epoch: u64) -> (u64, u64) {
        assert!(iterations_per_epoch > 0, "iterations_per_epoch must be > 0");
        (self.0 / iterations_per_epoch, self.0 % iterations_per_epoch)
    }

    /// The 0-based epoch this iteration falls in.
    pub fn epoch(self, iterations_per_epoch: u64) -> u64 {
        self.to_epoch_batch(iterations_per_epoch).0
    }

    /// The 0-based batch within its epoch.
    pub fn batch_in_epoch(self, iterations_per_epoch: u64) -> u64 {
        self.to_epoch_batch(iterations_per_epoch).1
    }

    /// Whether this iteration is the first of an epoch.
    pub fn is_epoch_start(self, iterations_per_epoch: u64) -> bool {
        self.batch_in_epoch(iterations_per_epoch) == 0
    }
}

impl From<u64> for Iteration {
    fn from(value: u64) -> Self {
        Iteration(value)
    }
}

impl From<Iteration> for u64 {
    fn from(value: Iteration) -> Self {
        value.0
    }
}

impl fmt::Display for Iteration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}it", self.0)
    }
}

/// Error parsing a [`StepSpec`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid step string {input:?}: {reason} (expected e.g. \"500it\", \"2ep\", \"2ep100it\")")]
pub struct ParseStepError {
    /// The string that failed to parse.
    pub input: String,
    /// What was wrong.
    pub reason: &'static str,
}

/// A training time in epochs plus iterations (`"2ep100it"`): resolved to an
/// [`Iteration`] once the iterations per epoch are known. Serialized as its
/// string.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct StepSpec {
    /// Whole epochs.
    pub epochs: u64,
    /// Additional iterations.
    pub iterations: u64,
}

impl StepSpec {
    /// `epochs` epochs.
    pub fn epochs(epochs: u64) -> Self {
        StepSpec {
            epochs,
            iterations: 0,
        }
    }

    /// `iterations` iterations.
    pub fn iterations(iterations: u64) -> Self {
        StepSpec {
            epochs: 0,
            iterations,
        }
    }

    /// The iteration this spec names: `epochs * iterations_per_epoch + iterations`.
    pub fn to_iteration(self, iterations_per_epoch: u64) -> Iteration {
        Iteration(self.epochs * iterations_per_epoch + self.iterations)
    }
}

impl FromStr for StepSpec {
    type Err = ParseStepError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |reason| ParseStepError {
            input: s.to_string(),
            reason,
        };
        let t = s.trim();
        if t.is_empty() {
            return Err(err("empty"));
        }
        let mut spec = StepSpec::default();
        let mut rest = t;
        let mut seen_ep = false;
        let mut seen_it = false;
        while !rest.is_empty() {
            let digits = rest
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(rest.len());
            if digits == 0 {
                return Err(err("expected a number"));
            }
            let value: u64 = rest[..digits]
                .parse()
                .map_err(|_| err("number too large"))?;
            rest = &rest[digits..];
            if let Some(r) = rest.strip_prefix("ep") {
                if seen_ep || seen_it {
                    return Err(err("\"ep\" must come once, before \"it\""));
                }
                seen_ep = true;
                spec.epochs = value;
                rest = r;
            } else if let Some(r) = rest.strip_prefix("it") {
                if seen_it {
                    return Err(err("\"it\" must come once"));
                }
                seen_it = true;
                spec.iterations = value;
                rest = r;
            } else {
                return Err(err("a number must be followed by \"ep\" or \"it\""));
            }
        }
        Ok(spec)
    }
}

impl fmt::Display for StepSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.epochs, self.iterations) {
            (0, it) => write!(f, "{it}it"),
            (ep, 0) => write!(f, "{ep}ep"),
            (ep, it) => write!(f, "{ep}ep{it}it"),
        }
    }
}

impl Serialize for StepSpec {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for StepSpec {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}
