//! A sweep (networks' rewind points x seeds x levels, with controls and
//! stability copies) as a list of independent jobs, for the schedulers
//! researchers already have (Slurm job arrays, Kubernetes Indexed Jobs).
//!
//! A [`SweepSpec`] (a JSON file) expands into one IMP experiment per (seed,
//! rewind point k) and into [`Job`]s: one per trained network, i.e. one per
//! level of the main line, of each control and of each stability copy. A job
//! names the jobs it depends on: the main line's level `L` needs the level
//! its mask is made from ([`PruningMethod::builds_on`](crate::imp::PruningMethod::builds_on):
//! `L - 1` for IMP, the dense level 0 for one-shot pruning, pruning at
//! initialization, early-bird tickets, GMP, SET and RigL, whose levels then
//! train side by side); a control, another data order or a stability copy
//! of level `L` needs only the level-`L` mask (the main line's, or the
//! random-pruning control's) and the rewind point. Jobs are numbered in
//! waves (for IMP, wave `w` is the main line's level `w` with the controls of
//! level `w - 1`), so a job's dependencies always have smaller numbers.
//!
//! One job per level rather than one per chain: a chain of `L` levels would
//! make every control of level 1 wait for the whole chain; per level, the
//! controls of level `L` train while the main line trains `L + 1`. A level
//! is also the unit the runner resumes, and the unit a scheduler's time
//! limit has to cover (one ResNet-20 level is 62,560 iterations).
//!
//! Every job runs through [`Imp::run_level`] into the experiment directory
//! that [`Imp::run`] would use, so the results are those of a single
//! process; several jobs can run at once on one experiment root (see
//! [`crate::imp::lock`]). [`Sweep::report`] merges every finished job into
//! one report and one stability table and lists what is missing;
//! [`Sweep::run_single_process`] runs the same sweep in one process with
//! [`Imp::run`] and the [`StabilityAnalyzer`](crate::stability::StabilityAnalyzer),
//! the reference a cluster run is compared with.
//!
//! The library is generic over the [`Task`](crate::task::Task) and model
//! initializer (like [`Imp::run`]); the `burn-lottery-sweep` program (cargo
//! feature `cli`) covers the built-in networks.
//!
//! [`Imp::run`]: crate::imp::Imp::run
//! [`Imp::run_level`]: crate::imp::Imp::run_level

mod job;
mod local;
mod merge;
mod run;
mod spec;

pub use job::{Job, JobState};
pub use local::LocalJob;
pub use merge::{STABILITY_CSV_HEADER, StabilityEntry, SweepReport};
pub use run::Sweep;
pub use spec::{StabilitySpec, SweepSpec};

use std::path::PathBuf;

use crate::imp::ImpError;
use crate::report::ReportError;
use crate::stability::StabilityError;

/// Errors of a sweep.
#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    /// The sweep description is invalid.
    #[error("invalid sweep: {0}")]
    Spec(String),
    /// The sweep file cannot be read or parsed.
    #[error("{}: {reason}", .path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// No job has this number.
    #[error("job {index} does not exist: the sweep has {count} jobs (0..{count})")]
    NoSuchJob {
        /// The number asked for.
        index: usize,
        /// How many jobs there are.
        count: usize,
    },
    /// A job's dependency is not finished.
    #[error("job {job} needs job {dependency} ({description}), which is not finished")]
    NotReady {
        /// The job.
        job: usize,
        /// Its unfinished dependency.
        dependency: usize,
        /// The dependency, in words.
        description: String,
    },
    /// A job's process (of [`Sweep::run_local`]) failed or could not run.
    #[error("job {job} failed: {status}")]
    JobFailed {
        /// The job.
        job: usize,
        /// Its exit status, or why it could not run.
        status: String,
    },
    /// Training or reading an experiment failed.
    #[error(transparent)]
    Imp(#[from] ImpError),
    /// The stability analysis failed.
    #[error(transparent)]
    Stability(#[from] StabilityError),
    /// Writing the report failed.
    #[error(transparent)]
    Report(#[from] ReportError),
}
