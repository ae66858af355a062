//! [`Job`]: one network of a sweep to train, with its dependencies.

use std::fmt;

use crate::imp::Branch;

/// One job of a sweep: train `branch` at `level` of one experiment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    /// The job's number (its index in [`Sweep::jobs`](super::Sweep::jobs)).
    pub index: usize,
    /// The experiment's index in [`Sweep::experiments`](super::Sweep::experiments).
    pub experiment: usize,
    /// The experiment's seed.
    pub seed: u64,
    /// The experiment's rewind iteration k.
    pub rewind_iteration: u64,
    /// What is trained.
    pub branch: Branch,
    /// The condition name of the branch (`imp_rewind50`, `random_prune`, ...).
    pub condition: String,
    /// The pruning level.
    pub level: usize,
    /// Jobs that must be finished first (smaller numbers).
    pub depends_on: Vec<usize>,
    /// The wave: every dependency is in an earlier wave, so the waves can be
    /// submitted one after the other (`afterok` on the previous wave).
    pub wave: usize,
}

impl fmt::Display for Job {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "seed {} k {}: {} level {}",
            self.seed, self.rewind_iteration, self.condition, self.level
        )
    }
}

/// Where a job stands, as the files under the experiment root say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobState {
    /// Its level is finished (summary recorded).
    Finished,
    /// Every dependency is finished: it can run (or is running).
    Ready,
    /// These dependencies are not finished.
    Waiting(Vec<usize>),
}

impl fmt::Display for JobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Finished => write!(f, "finished"),
            Self::Ready => write!(f, "ready"),
            Self::Waiting(jobs) => {
                let jobs: Vec<String> = jobs.iter().map(usize::to_string).collect();
                write!(f, "waiting for {}", jobs.join(","))
            }
        }
    }
}
