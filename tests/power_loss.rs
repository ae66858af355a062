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

/// Reruns the experiment on the disk of `cut`; returns the levels it found
/// finished, or what went wrong.
fn rerun(
    cut: &CutPoint,
    reference: &Files,
    summaries: &[LevelSummary],
    finished_at: &[(String, usize, usize)],
) -> Result<usize, String> {
    let fs = Arc::new(PowerLossFs::from_image(&cut.image));
    let mut found = FoundFinished::default();
    imp(FsHandle(fs.clone()))
        .run(Path::new(OUT), &ndarray(), &data(), init, &mut found)
        .map_err(|e| format!("the rerun failed: {e}"))?;
    // A level reported finished before the cut was durable: it is found.
    for (condition, level, at) in finished_at {
        if *at <= cut.last_operation
            && !found
                .0
                .iter()
                .any(|s| s.condition == *condition && s.level == *level)
        {
            return Err(format!(
                "{condition} level {level}, finished at operation {at}, was lost"
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
    Ok(found.0.len())
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
