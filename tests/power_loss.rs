//! Power loss at every file-system operation.
//!
//! A short experiment (the synthetic LeNet, 2 pruning levels and the
//! random-pruning control, 8 iterations per level with progress
//! checkpoints) runs once on a [`PowerLossFs`] that records, after every
//! file-system operation, the disk a power cut at that instant would leave
//! under both [`CrashMode`]s (everything not synced lost; or directory
//! changes kept and unsynced file bytes torn). Then for every distinct such
//! disk the experiment is reopened and rerun: it must complete, find every
//! level the uninterrupted run had reported finished before the cut (what
//! the store promises is durable), every level it finds finished must be
//! the uninterrupted run's, and its recorded files
//! must end identical (checkpoints bit for bit, optimizer state included)
//! to the uninterrupted run's. Nothing is sampled: every operation is a cut.
//!
//! A second test is harsher ([`PowerLossFs::sample_crash`]): after every
//! operation of the same run it draws crash states (2 per cut by default,
//! `POWER_LOSS_STATES_PER_CUT=<n>`; seed `POWER_LOSS_SEED`, default 25) in
//! which any subset of the operations not yet durable reached the disk,
//! each data write whole, cut at a 512 B or 4 KiB block boundary, or with
//! only some of its blocks, and directory changes without the data written
//! before them unless an fsync ordered them. Each distinct disk is rerun as
//! above; for every other one the power is cut again at a random operation
//! of that recovery, a disk is drawn there, and a third run must complete
//! with the same results, keeping every level reported finished by either
//! run before its cut. It prints how many states it tried and what it found.

use std::path::Path;
use std::sync::Arc;

use crate::common::compare::{Files, compare_files, recorded, stored_value};
use crate::common::{data, init, ndarray, tiny_imp_config};
use burn_lottery::imp::{Controls, Imp, ImpConfig, ImpObserver, LevelSummary, RunOptions};
use burn_lottery::io::FsHandle;
use burn_lottery::io::power_loss::{CrashMode, CutPoint, Image, PowerLossFs};
use burn_lottery::models::LeNet;

const OUT: &str = "/out";

fn config() -> ImpConfig {
    let mut config = ImpConfig {
        controls: Controls::random(false),
        rewind_iteration: 2,
        ..tiny_imp_config("power_loss", 2)
    };
    config.controls.random_prune = true;
    config.training.training_iterations = 8;
    config
}

fn imp(fs: FsHandle) -> Imp {
    Imp::new(config()).with_options(RunOptions {
        checkpoint_every: 3,
        log_every: 2,
        eval_batch_size: 100,
        file_system: fs,
        ..RunOptions::default()
    })
}

/// The levels a rerun found finished (not trained).
#[derive(Default)]
struct FoundFinished(Vec<LevelSummary>);

/// When (after how many file operations) each level of the uninterrupted
/// run was reported finished: from then on it is promised to survive.
struct FinishedAt<'a> {
    fs: &'a PowerLossFs,
    at: Vec<(String, usize, usize)>,
}

impl ImpObserver for FinishedAt<'_> {
    fn level_finished(&mut self, summary: &LevelSummary, _skipped: bool) {
        let operations = self.fs.operations().len();
        self.at
            .push((summary.condition.clone(), summary.level, operations));
    }
}

impl ImpObserver for FoundFinished {
    fn level_finished(&mut self, summary: &LevelSummary, skipped: bool) {
        if skipped {
            self.0.push(summary.clone());
        }
    }
}

fn experiment_files(image: &Image) -> Files {
    let prefix = format!("{}/{}/", &OUT[1..], config().directory_name());
    image
        .iter()
        .filter_map(|(path, bytes)| Some((path.strip_prefix(&prefix)?.to_string(), bytes.clone()?)))
        .collect()
}

fn template() -> LeNet {
    init(&ndarray(), 0)
}

/// The levels promised to survive a cut after operation `operation` of
/// the uninterrupted run: those reported finished by then.
fn promised_by(finished_at: &[(String, usize, usize)], operation: usize) -> Vec<(String, usize)> {
    finished_at
        .iter()
        .filter(|(_, _, at)| *at <= operation)
        .map(|(condition, level, _)| (condition.clone(), *level))
        .collect()
}

/// Reruns the experiment on the disk of `cut`; returns the levels it found
/// finished, or what went wrong.
fn rerun(
    cut: &CutPoint,
    reference: &Files,
    summaries: &[LevelSummary],
    finished_at: &[(String, usize, usize)],
) -> Result<usize, String> {
    let promised = promised_by(finished_at, cut.last_operation);
    rerun_on(&cut.image, &promised, reference, summaries).map(|r| r.found)
}

/// What a rerun on a disk after a cut did.
struct Rerun {
    /// Levels it found finished (not trained again).
    found: usize,
    /// Its file operations.
    operations: usize,
}

/// Reruns the experiment on `image`: it must complete, find every level of
/// `promised` finished, find no level finished with other results than the
/// uninterrupted run's, and end with the files of `reference`.
fn rerun_on(
    image: &Image,
    promised: &[(String, usize)],
    reference: &Files,
    summaries: &[LevelSummary],
) -> Result<Rerun, String> {
    let fs = Arc::new(PowerLossFs::from_image(image));
    let mut found = FoundFinished::default();
    imp(FsHandle(fs.clone()))
        .run(Path::new(OUT), &ndarray(), &data(), init, &mut found)
        .map_err(|e| format!("the rerun failed: {e}"))?;
    // A level reported finished before the cut was durable: it is found.
    for (condition, level) in promised {
        if !found
            .0
            .iter()
            .any(|s| s.condition == *condition && s.level == *level)
        {
            return Err(format!(
                "{condition} level {level}, reported finished before the cut, was lost"
            ));
        }
    }
    for summary in &found.0 {
        let same = summaries
            .iter()
            .find(|s| s.condition == summary.condition && s.level == summary.level)
            .ok_or_else(|| format!("{} level {} is unknown", summary.condition, summary.level))?;
        let json = |s: &LevelSummary| serde_json::to_vec(s).unwrap();
        let value = |s| stored_value("summary.json", &json(s), &template);
        if value(summary)? != value(same)? {
            return Err(format!(
                "{} level {} was found finished with other results",
                summary.condition, summary.level
            ));
        }
    }
    let after = recorded(&experiment_files(&fs.current()))?;
    compare_files(&after, reference, &template)?;
    Ok(Rerun {
        found: found.0.len(),
        operations: fs.operations().len(),
    })
}

#[test]
fn a_power_cut_after_any_file_operation_loses_no_finished_result() {
    let fs = Arc::new(PowerLossFs::recording());
    let mut finished = FinishedAt {
        fs: &fs,
        at: Vec::new(),
    };
    let report = imp(FsHandle(fs.clone()))
        .run(Path::new(OUT), &ndarray(), &data(), init, &mut finished)
        .unwrap();
    let finished_at = finished.at;
    let reference = recorded(&experiment_files(&fs.current())).unwrap();
    let cuts = fs.cut_points();
    let operations = fs.operations().len();
    // The experiment's own operations: writes, syncs, renames, directories.
    assert!(operations > 300, "{operations} operations");
    let failures = std::sync::Mutex::new(Vec::new());
    let found = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for part in 0..2 {
            let (cuts, reference, failures, found) = (&cuts, &reference, &failures, &found);
            let finished_at = &finished_at;
            let summaries = &report.summaries;
            scope.spawn(move || {
                for cut in cuts.iter().skip(part).step_by(2) {
                    match rerun(cut, reference, summaries, finished_at) {
                        Ok(n) => {
                            found.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
                        }
                        Err(e) => failures.lock().unwrap().push(format!(
                            "power cut after operation {} ({}, {:?}): {e}",
                            cut.operation, cut.description, cut.mode
                        )),
                    }
                }
            });
        }
    });
    let failures = failures.into_inner().unwrap();
    let by_mode = |mode| cuts.iter().filter(|c| c.mode == mode).count();
    println!(
        "{operations} file operations; {} disks after a cut (one per run of operations leaving the same disk) ({} losing unsynced data, {} tearing it); \
         {} finished levels found intact, the rest recomputed; {} failures{}",
        cuts.len(),
        by_mode(CrashMode::LoseUnsynced),
        by_mode(CrashMode::TearUnsynced),
        found.into_inner(),
        failures.len(),
        failures
            .first()
            .map_or(String::new(), |f| format!(", e.g. {f}"))
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Crash states drawn per cut point of the sampled test (default 2).
const STATES_PER_CUT: &str = "POWER_LOSS_STATES_PER_CUT";
/// The sampled test's seed (default 25).
const SEED: &str = "POWER_LOSS_SEED";

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A hash of a disk, to try each distinct one once.
fn image_hash(image: &Image) -> u64 {
    let mut bytes = Vec::new();
    for (path, contents) in image {
        bytes.extend_from_slice(path.as_bytes());
        match contents {
            Some(data) => {
                bytes.extend_from_slice(&(data.len() as u64 + 1).to_le_bytes());
                bytes.extend_from_slice(data);
            }
            None => bytes.extend_from_slice(&0u64.to_le_bytes()),
        }
    }
    burn_lottery::io::content_hash(&bytes)
}

/// The seed of state `index` at cut `operation`.
fn state_seed(seed: u64, operation: usize, index: u64) -> u64 {
    seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ ((operation as u64) << 16) ^ index
}

/// Reruns on `first`, cutting the power again after operation `after` of
/// the recovery, then reruns on a disk sampled (with `seed`) at that second
/// cut: what the recovery reported finished before it is promised too.
/// Returns whether the recovery was still running at the second cut.
fn second_cut(
    first: &Image,
    (after, seed): (usize, u64),
    promised: &[(String, usize)],
    reference: &Files,
    summaries: &[LevelSummary],
) -> Result<bool, String> {
    let fs = Arc::new(PowerLossFs::from_image(first).power_off_after(after));
    let mut finished = FinishedAt {
        fs: &fs,
        at: Vec::new(),
    };
    let result =
        imp(FsHandle(fs.clone())).run(Path::new(OUT), &ndarray(), &data(), init, &mut finished);
    let interrupted = match result {
        Ok(_) => false,
        Err(_) if fs.is_powered_off() => true,
        Err(e) => return Err(format!("the recovery failed before the second cut: {e}")),
    };
    let crash = fs.sample_crash(seed);
    let mut promised = promised.to_vec();
    promised.extend(finished.at.into_iter().map(|(c, l, _)| (c, l)));
    rerun_on(&crash.image, &promised, reference, summaries).map_err(|e| {
        format!("after a second cut at recovery operation {after} (seed {seed}): {e}")
    })?;
    Ok(interrupted)
}

/// What the sampled test tried and found.
#[derive(Default, Debug)]
struct Tally {
    drawn: usize,
    distinct: usize,
    pending: usize,
    applied: usize,
    torn: usize,
    blocks: [usize; 2],
    found: usize,
    second_cuts: usize,
    second_cuts_mid_run: usize,
    failures: Vec<String>,
}

impl Tally {
    fn print(&self, operations: usize, per_cut: u64, seed: u64) {
        println!(
            "sampled crash states: {operations} cut points (one after every file operation), {per_cut} states drawn per cut (seed {seed}): \
             {} drawn, {} distinct disks tried ({} duplicates skipped); per state {:.1} operations not durable on average, \
             {} applied whole and {} writes torn in all (tears at 512 B in {} states, at 4 KiB in {}); \
             {} second cuts during recovery ({} while the recovery was still running, then a sampled disk there and a third run); \
             {} finished levels found intact, the rest recomputed; {} failures{}",
            self.drawn,
            self.distinct,
            self.drawn - self.distinct,
            self.pending as f64 / self.distinct.max(1) as f64,
            self.applied,
            self.torn,
            self.blocks[0],
            self.blocks[1],
            self.second_cuts,
            self.second_cuts_mid_run,
            self.found,
            self.failures.len(),
            self.failures
                .first()
                .map_or(String::new(), |f| format!(", e.g. {f}"))
        );
    }
}

/// The uninterrupted run the sampled states are checked against, and what
/// the sampling found so far.
struct Sampling<'a> {
    reference: &'a Files,
    summaries: &'a [LevelSummary],
    finished_at: &'a [(String, usize, usize)],
    descriptions: &'a [String],
    /// Hashes of the disks tried.
    seen: std::sync::Mutex<std::collections::HashSet<u64>>,
    tally: std::sync::Mutex<Tally>,
}

impl Sampling<'_> {
    /// Draws the state of seed `state` at the cut after `operation` (the
    /// run replayed that far in `replay`) and, if it is a disk not tried
    /// yet, reruns on it; for every other such state (even seeds), cuts
    /// the power again during that recovery (see [`second_cut`]).
    fn try_state(&self, replay: &PowerLossFs, operation: usize, state: u64) {
        let crash = replay.sample_crash(state);
        self.tally.lock().unwrap().drawn += 1;
        if !self.seen.lock().unwrap().insert(image_hash(&crash.image)) {
            return;
        }
        let promised = promised_by(self.finished_at, operation);
        let outcome =
            rerun_on(&crash.image, &promised, self.reference, self.summaries).and_then(|first| {
                let after = 1 + (state / 2) as usize % first.operations.max(1);
                let mid_run = state
                    .is_multiple_of(2)
                    .then(|| {
                        let cut = (after, state ^ 1);
                        second_cut(&crash.image, cut, &promised, self.reference, self.summaries)
                    })
                    .transpose()?;
                Ok((first, mid_run))
            });
        let mut t = self.tally.lock().unwrap();
        t.distinct += 1;
        t.pending += crash.pending;
        t.applied += crash.applied;
        t.torn += crash.torn;
        t.blocks[usize::from(crash.block != 512)] += 1;
        match outcome {
            Ok((first, mid_run)) => {
                t.found += first.found;
                t.second_cuts += usize::from(mid_run.is_some());
                t.second_cuts_mid_run += usize::from(mid_run == Some(true));
            }
            Err(e) => t.failures.push(format!(
                "cut after operation {operation} ({}), state seed {state} ({} of {} pending \
                 operations applied, {} torn at {} B): {e}",
                self.descriptions[operation - 1],
                crash.applied,
                crash.pending,
                crash.torn,
                crash.block
            )),
        }
    }
}

#[test]
fn sampled_crash_states_and_a_second_cut_during_recovery_lose_no_finished_result() {
    let fs = Arc::new(PowerLossFs::recording());
    let mut finished = FinishedAt {
        fs: &fs,
        at: Vec::new(),
    };
    let report = imp(FsHandle(fs.clone()))
        .run(Path::new(OUT), &ndarray(), &data(), init, &mut finished)
        .unwrap();
    let journal = fs.journal();
    let descriptions = fs.operations();
    assert_eq!(journal.len(), descriptions.len());
    let sampling = Sampling {
        reference: &recorded(&experiment_files(&fs.current())).unwrap(),
        summaries: &report.summaries,
        finished_at: &finished.at,
        descriptions: &descriptions,
        seen: Default::default(),
        tally: Default::default(),
    };
    let (per_cut, seed) = (env_number(STATES_PER_CUT, 2), env_number(SEED, 25));
    std::thread::scope(|scope| {
        for part in 0..2 {
            let (sampling, journal) = (&sampling, &journal);
            scope.spawn(move || {
                // This thread's cuts in order, on one replay of the run.
                let replay = PowerLossFs::default();
                for operation in (1..=journal.len()).skip(part).step_by(2) {
                    replay.replay(journal, operation).unwrap();
                    for index in 0..per_cut {
                        sampling.try_state(&replay, operation, state_seed(seed, operation, index));
                    }
                }
            });
        }
    });
    let tally = sampling.tally.into_inner().unwrap();
    tally.print(journal.len(), per_cut, seed);
    assert!(tally.failures.is_empty(), "{}", tally.failures.join("\n"));
    // The sampling reached what the two fixed modes cannot: states with
    // part of the pending operations applied, torn writes, second cuts.
    assert!(tally.distinct > journal.len() / 2, "{tally:?}");
    assert!(
        tally.torn > 0 && tally.blocks.iter().all(|&n| n > 0),
        "{tally:?}"
    );
    assert!(tally.second_cuts_mid_run > tally.distinct / 4, "{tally:?}");
}
