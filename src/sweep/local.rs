//! Running a sweep's jobs K at a time on one machine, each in its own
//! process: [`Sweep::run_local`].
//!
//! A job starts as soon as every job it depends on has finished, in job
//! order, while fewer than K run; each running job holds a slot, and slot
//! `s` trains on device `devices[s % devices.len()]` (one GPU shared by K
//! processes, or K processes spread over several). The processes share the
//! experiment root, whose locks keep it consistent (see
//! [`crate::imp::lock`]); the results are those of a one-at-a-time run.

use std::path::Path;
use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

use super::{JobState, Sweep, SweepError};

/// How a job of [`Sweep::run_local`] ran.
#[derive(Debug, Clone, PartialEq)]
pub struct LocalJob {
    /// The job's number.
    pub index: usize,
    /// The device it trained on.
    pub device: String,
    /// Wall time of its process, in seconds.
    pub seconds: f64,
}

/// A job's process running in a slot.
struct Running {
    index: usize,
    slot: usize,
    device: String,
    child: Child,
    started: Instant,
}

/// How often finished processes are looked for.
const POLL: Duration = Duration::from_millis(50);

impl Sweep {
    /// Runs every unfinished job of the sweep stored under `root`, at most
    /// `parallel` at a time, each as the process `command(job, device)`
    /// gives (typically `burn-lottery-sweep run --job N --device D ...`;
    /// the program's `local` command does this). Returns the jobs run, in
    /// the order they finished. When a process fails, no new job starts,
    /// the running ones are waited for, and the first failure is returned.
    pub fn run_local(
        &self,
        root: &Path,
        parallel: usize,
        devices: &[String],
        command: impl Fn(usize, &str) -> Command,
    ) -> Result<Vec<LocalJob>, SweepError> {
        if parallel == 0 || devices.is_empty() {
            return Err(SweepError::Spec(
                "a local run needs at least one process and one device".into(),
            ));
        }
        let mut done: Vec<bool> = self
            .status(root)
            .iter()
            .map(|state| *state == JobState::Finished)
            .collect();
        let mut started = done.clone();
        let mut running: Vec<Running> = Vec::new();
        let mut finished = Vec::new();
        let mut failure: Option<SweepError> = None;
        loop {
            if failure.is_none() {
                self.start_ready(
                    &done,
                    &mut started,
                    &mut running,
                    parallel,
                    devices,
                    &command,
                )
                .unwrap_or_else(|e| failure = Some(e));
            }
            if running.is_empty() {
                break;
            }
            std::thread::sleep(POLL);
            for (job, status) in reap(&mut running) {
                match status {
                    Ok(status) if status.success() => {
                        done[job.index] = true;
                        finished.push(job);
                    }
                    failed => {
                        let status = failed.map_or_else(|reason| reason, |s| s.to_string());
                        let job = job.index;
                        failure.get_or_insert(SweepError::JobFailed { job, status });
                    }
                }
            }
        }
        match failure {
            Some(error) => Err(error),
            None => Ok(finished),
        }
    }

    /// Starts, in job order, every job whose dependencies are `done`, while
    /// fewer than `parallel` run.
    fn start_ready(
        &self,
        done: &[bool],
        started: &mut [bool],
        running: &mut Vec<Running>,
        parallel: usize,
        devices: &[String],
        command: &impl Fn(usize, &str) -> Command,
    ) -> Result<(), SweepError> {
        for job in self.jobs() {
            if running.len() >= parallel {
                break;
            }
            let ready = job.depends_on.iter().all(|&d| done[d]);
            if started[job.index] || !ready {
                continue;
            }
            let slot = (0..parallel)
                .find(|s| running.iter().all(|r| r.slot != *s))
                .unwrap_or(0);
            let device = &devices[slot % devices.len()];
            let child = command(job.index, device)
                .spawn()
                .map_err(|e| SweepError::JobFailed {
                    job: job.index,
                    status: format!("could not start its process: {e}"),
                })?;
            started[job.index] = true;
            running.push(Running {
                index: job.index,
                slot,
                device: device.clone(),
                child,
                started: Instant::now(),
            });
        }
        Ok(())
    }
}

/// The jobs whose processes have exited, removed from `running`, with
/// their exit status or why it could not be had.
fn reap(running: &mut Vec<Running>) -> Vec<(LocalJob, Result<ExitStatus, String>)> {
    let mut exited = Vec::new();
    let mut still = Vec::new();
    for mut job in running.drain(..) {
        let status = match job.child.try_wait() {
            Ok(None) => {
                still.push(job);
                continue;
            }
            Ok(Some(status)) => Ok(status),
            Err(e) => Err(format!("could not wait for its process: {e}")),
        };
        let local = LocalJob {
            index: job.index,
            device: job.device,
            seconds: job.started.elapsed().as_secs_f64(),
        };
        exited.push((local, status));
    }
    *running = still;
    exited
}
