//! Atomic, verified files: a stored file that fails its checksum is never
//! used. Each kind of file of an experiment is corrupted by one byte; the
//! rerun either stops with an error naming it (finished results), or
//! discards and recomputes it (resumable progress, the report), and
//! deleting the named file has it recomputed to the same result. A NaN loss
//! stops its level with an error naming level and iteration, and leaves the
//! finished levels intact.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::common::{data, init, ndarray, snapshot, tiny_imp_config};
use burn::module::{Module, ModuleMapper, Param};
use burn::tensor::{Device, Tensor};
use burn_lottery::imp::store::StoreError;
use burn_lottery::imp::{Controls, Imp, ImpConfig, ImpError, ImpObserver, RunOptions, Silent};
use burn_lottery::models::LeNet;
use burn_lottery::train::trainer::TrainError;

fn config() -> ImpConfig {
    ImpConfig {
        controls: Controls {
            random_reinit: false,
            random_prune: true,
            data_orders: vec![],
        },
        ..tiny_imp_config("integrity", 2)
    }
}

fn imp() -> Imp {
    Imp::new(config()).with_options(RunOptions {
        checkpoint_every: 4,
        log_every: 5,
        eval_batch_size: 50,
        ..RunOptions::default()
    })
}

fn restore(dir: &Path, files: &BTreeMap<String, Vec<u8>>) {
    for (relative, bytes) in files {
        let path = dir.join(relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }
}

fn flip_one_byte(path: &Path) {
    let mut bytes = std::fs::read(path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(path, bytes).unwrap();
}

/// Records the files the run reports as discarded.
#[derive(Default)]
struct Discards {
    files: Vec<PathBuf>,
    steps: u64,
    stop_after: Option<u64>,
}

impl ImpObserver for Discards {
    fn step(&mut self, _completed: u64, _loss: Option<f64>) {
        self.steps += 1;
    }
    fn file_discarded(&mut self, file: &Path, reason: &str) {
        assert!(
            reason.contains("checksum") || reason.contains("rewind.ckpt is missing"),
            "{reason}"
        );
        self.files.push(file.to_path_buf());
    }
    fn should_stop(&mut self) -> bool {
        self.stop_after.is_some_and(|n| self.steps >= n)
    }
}

/// The reference experiment run to the end in a fresh output root; returns
/// the root and the run's report.
fn finished_experiment() -> (tempfile::TempDir, burn_lottery::imp::ImpReport) {
    let out = tempfile::tempdir().unwrap();
    let reference = imp()
        .run(out.path(), &ndarray(), &data(), init, &mut Silent)
        .unwrap();
    (out, reference)
}

#[test]
fn a_corrupt_finished_file_stops_the_run_naming_it_and_deleting_it_recomputes_it() {
    let device = ndarray();
    let (out, reference) = finished_experiment();
    let dir = reference.directory.clone();
    let finished = snapshot(&dir);
    for file in [
        "config.json",
        "rewind.ckpt",
        "main/level_00/final.ckpt",
        "main/level_01/mask.bin",
        "main/level_01/final.ckpt",
        "main/level_01/metrics.csv",
        "main/level_01/sparsity.json",
        "main/level_02/summary.json",
        "branches/random_prune/level_01/mask.bin",
        "branches/random_prune/level_02/final.ckpt",
        "branches/random_prune/level_02/summary.json",
    ] {
        restore(&dir, &finished);
        flip_one_byte(&dir.join(file));
        let corrupted = snapshot(&dir);
        let err = imp()
            .run(out.path(), &device, &data(), init, &mut Silent)
            .unwrap_err();
        match &err {
            ImpError::Store(StoreError::Checksum { path, .. }) => {
                assert_eq!(path, &dir.join(file), "{err}")
            }
            other => panic!("{file}: unexpected error {other}"),
        }
        assert!(err.to_string().contains(file), "{err}");
        // Nothing was written: the corrupt file was not used.
        assert_eq!(
            snapshot(&dir),
            corrupted,
            "{file}: the failed run wrote files"
        );

        // Deleting the named file has it recomputed, to the same results.
        std::fs::remove_file(dir.join(file)).unwrap();
        let again = imp()
            .run(out.path(), &device, &data(), init, &mut Silent)
            .unwrap();
        assert_eq!(again.rows, reference.rows, "{file}");
        assert!(dir.join(file).exists(), "{file} was not recomputed");
        if !file.ends_with(".ckpt") && !file.ends_with("summary.json") {
            // (Checkpoints hold burn's per-process parameter ids, summaries
            // the wall-clock time.)
            assert_eq!(std::fs::read(dir.join(file)).unwrap(), finished[file]);
        }
        burn_lottery::imp::ImpConfig::open_store(&config(), &dir)
            .unwrap()
            .verify_all()
            .unwrap();
    }
}

#[test]
fn a_valid_file_put_in_place_of_another_is_refused() {
    let device = ndarray();
    let out = tempfile::tempdir().unwrap();
    let reference = imp()
        .run(out.path(), &device, &data(), init, &mut Silent)
        .unwrap();
    let dir = reference.directory;
    // Level 2's mask is a valid mask file of the same size as level 1's
    // (both end in their own CRC-32, so their CRC-32s are equal too).
    let (one, two) = (
        dir.join("main/level_01/mask.bin"),
        dir.join("main/level_02/mask.bin"),
    );
    let replacement = std::fs::read(&two).unwrap();
    assert_eq!(
        replacement.len() as u64,
        std::fs::metadata(&one).unwrap().len()
    );
    assert!(burn_lottery::mask::Mask::from_bytes(&replacement).is_ok());
    std::fs::write(&one, &replacement).unwrap();
    match imp()
        .run(out.path(), &device, &data(), init, &mut Silent)
        .unwrap_err()
    {
        ImpError::Store(StoreError::Checksum { path, .. }) => assert_eq!(path, one),
        other => panic!("unexpected {other}"),
    }
}

#[test]
fn a_corrupt_report_is_rewritten() {
    let device = ndarray();
    let (out, reference) = finished_experiment();
    let dir = reference.directory.clone();
    for file in ["report.csv", "report.svg"] {
        let good = std::fs::read(dir.join(file)).unwrap();
        flip_one_byte(&dir.join(file));
        let again = imp()
            .run(out.path(), &device, &data(), init, &mut Silent)
            .unwrap();
        assert_eq!(again.trained_levels, 0);
        assert_eq!(std::fs::read(dir.join(file)).unwrap(), good, "{file}");
    }
}

#[test]
fn corrupt_progress_is_reported_discarded_and_recomputed() {
    let device = ndarray();
    let reference_dir = tempfile::tempdir().unwrap();
    let reference = imp()
        .run(reference_dir.path(), &device, &data(), init, &mut Silent)
        .unwrap();
    for file in [
        "main/level_01/progress.ckpt",
        "main/level_01/progress_metrics.csv",
    ] {
        let out = tempfile::tempdir().unwrap();
        // Level 0 trains 30 steps; stop 15 steps into level 1 (checkpoint at 16).
        let mut stop = Discards {
            stop_after: Some(45),
            ..Discards::default()
        };
        let err = imp()
            .run(out.path(), &device, &data(), init, &mut stop)
            .unwrap_err();
        assert!(matches!(err, ImpError::Train { level: 1, .. }), "{err}");
        let dir = imp().directory(out.path());
        flip_one_byte(&dir.join(file));
        let mut discards = Discards::default();
        let resumed = imp()
            .run(out.path(), &device, &data(), init, &mut discards)
            .unwrap();
        assert_eq!(discards.files, vec![dir.join(file)]);
        assert_eq!(resumed.rows, reference.rows);
        assert!(!dir.join(file).exists());
        let metrics = "main/level_01/metrics.csv";
        assert_eq!(
            std::fs::read(dir.join(metrics)).unwrap(),
            std::fs::read(reference.directory.join(metrics)).unwrap()
        );
    }
}

#[test]
fn a_deleted_rewind_point_is_recaptured_even_mid_level() {
    let device = ndarray();
    let reference_dir = tempfile::tempdir().unwrap();
    let reference = imp()
        .run(reference_dir.path(), &device, &data(), init, &mut Silent)
        .unwrap();
    let out = tempfile::tempdir().unwrap();
    // Stop level 0 at step 10: the rewind point (k = 5) and a progress
    // checkpoint at 8 are stored.
    let mut stop = Discards {
        stop_after: Some(10),
        ..Discards::default()
    };
    imp()
        .run(out.path(), &device, &data(), init, &mut stop)
        .unwrap_err();
    let dir = imp().directory(out.path());
    std::fs::remove_file(dir.join("rewind.ckpt")).unwrap();
    let mut discards = Discards::default();
    let resumed = imp()
        .run(out.path(), &device, &data(), init, &mut discards)
        .unwrap();
    assert_eq!(
        discards.files,
        vec![dir.join("main/level_00/progress.ckpt")]
    );
    assert_eq!(resumed.rows, reference.rows);
    assert!(dir.join("rewind.ckpt").exists());
}

/// Multiplies every float tensor by infinity.
struct Poison;

impl ModuleMapper for Poison {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        param.map(|t| {
            let grad = t.is_require_grad();
            (t * f32::INFINITY).detach().set_require_grad(grad)
        })
    }
}

#[test]
fn a_non_finite_loss_stops_its_level_naming_it_and_keeps_finished_levels() {
    let device = ndarray();
    let out = tempfile::tempdir().unwrap();
    // The random reinitialization control of level 1 starts from infinite
    // weights (its seed differs from the experiment's): its loss is NaN,
    // after main levels 0 and 1 have finished.
    let mut config = config();
    config.controls.random_reinit = true;
    let seed = config.seeds.init;
    let poisoned = move |device: &Device, s: u64| -> LeNet {
        let model = init(device, s);
        if s == seed {
            model
        } else {
            model.map(&mut Poison)
        }
    };
    let imp = Imp::new(config.clone()).with_options(RunOptions {
        checkpoint_every: 4,
        log_every: 5,
        eval_batch_size: 50,
        ..RunOptions::default()
    });
    let err = imp
        .run(out.path(), &device, &data(), poisoned, &mut Silent)
        .unwrap_err();
    let iteration = match &err {
        ImpError::Train {
            condition,
            level,
            source: TrainError::NonFiniteLoss { iteration, loss },
        } => {
            assert_eq!((condition.as_str(), *level), ("random_reinit", 1));
            assert!(!loss.is_finite());
            // The control trains from the rewind iteration k = 5.
            assert!((5..30).contains(iteration), "{iteration}");
            *iteration
        }
        other => panic!("unexpected {other}"),
    };
    let message = err.to_string();
    assert!(
        message.contains("level 1") && message.contains(&format!("iteration {iteration}")),
        "{message}"
    );
    let dir = imp.directory(out.path());
    let finished = |dir: &Path| {
        let mut files = snapshot(dir);
        files.retain(|p, _| p.starts_with("main"));
        files
    };
    let before = finished(&dir);
    for level in ["main/level_00", "main/level_01"] {
        assert!(before.contains_key(&format!("{level}/summary.json")));
    }
    assert!(
        !dir.join("branches/random_reinit/level_01/summary.json")
            .exists()
    );
    config.open_store(&dir).unwrap().verify_all().unwrap();

    // A rerun meets the same failure and leaves the finished levels as they were.
    let again = imp
        .run(out.path(), &device, &data(), poisoned, &mut Silent)
        .unwrap_err();
    assert_eq!(again.to_string(), message);
    assert_eq!(finished(&dir), before);
    config.open_store(&dir).unwrap().verify_all().unwrap();
}

#[test]
fn manifests_with_crc32_records_are_still_verified() {
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().join("exp");
    let config = serde_json::json!({"name": "legacy"});
    let mut store = burn_lottery::imp::store::ExperimentStore::open(&dir, &config).unwrap();
    store.write("a/data.bin", b"some bytes").unwrap();
    drop(store);
    // Rewrite the manifest as earlier versions did: size and CRC-32 only.
    let path = dir.join("manifest.json");
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    for (name, record) in manifest["files"].as_object_mut().unwrap() {
        let bytes = std::fs::read(dir.join(name)).unwrap();
        *record = serde_json::json!({
            "bytes": bytes.len(),
            "crc32": burn_lottery::io::checksum(&bytes),
        });
    }
    std::fs::write(&path, serde_json::to_vec(&manifest).unwrap()).unwrap();
    let store = burn_lottery::imp::store::ExperimentStore::open(&dir, &config).unwrap();
    assert_eq!(store.read("a/data.bin").unwrap(), b"some bytes");
    std::fs::write(dir.join("a/data.bin"), b"some bytez").unwrap();
    match store.read("a/data.bin").unwrap_err() {
        StoreError::Checksum {
            expected_hash,
            actual_hash,
            ..
        } => {
            assert!(expected_hash.starts_with("crc32 "), "{expected_hash}");
            assert_ne!(expected_hash, actual_hash);
        }
        other => panic!("unexpected {other}"),
    }
}

// ------------------------------ one rule for every branch: lost is recomputed

/// A lost file of a control branch, or of a network a stability copy reads
/// from the experiment (the copy with the experiment's own data order is
/// the main line's network), is recomputed bit for bit like a lost
/// main-line file, never an error.
#[test]
fn lost_branch_files_and_lost_networks_behind_a_stability_copy_are_recomputed() {
    use crate::common::compare::{compare_files, files_on_disk};
    use burn_lottery::imp::{Branch, Condition, Layout};
    use burn_lottery::stability::{BarrierOptions, StabilityAnalyzer};
    let (out, report) = finished_experiment();
    let dir = report.directory.clone();
    let template = || init(&ndarray(), 0);
    let reference = files_on_disk(&dir);
    // 1. A control's checkpoint and its own random mask.
    let control = Layout::level(&Branch::RandomPrune, 2);
    // A lost checkpoint has the level retrained; a lost mask is drawn
    // again from its seed (the level's results stand, as for the main line).
    for (file, retrained) in [(control.final_checkpoint(), 1), (control.mask(), 0)] {
        std::fs::remove_file(dir.join(&file)).unwrap();
        let rerun = imp()
            .run(out.path(), &ndarray(), &data(), init, &mut Silent)
            .unwrap();
        assert_eq!(rerun.trained_levels, retrained, "{file}");
        compare_files(&reference, &files_on_disk(&dir), &template).unwrap();
    }
    // 2. The main line's network at level 1, read by the stability copy
    //    with the experiment's own data-order seed.
    let data = data();
    let device = ndarray();
    let analyzer = StabilityAnalyzer::new(imp(), out.path(), &data, init, &device).with_options(
        BarrierOptions {
            points: 3,
            eval_batch_size: 50,
            ..BarrierOptions::default()
        },
    );
    let own_seed = config().seeds.data_order;
    let copy = analyzer.trained_copy(Condition::Imp, 1, own_seed).unwrap();
    let main = Layout::level(&Branch::Main, 1);
    std::fs::remove_file(dir.join(main.final_checkpoint())).unwrap();
    let again = analyzer.trained_copy(Condition::Imp, 1, own_seed).unwrap();
    assert_eq!(
        crate::common::state(&again),
        crate::common::state(&copy),
        "recomputed, bit for bit"
    );
    compare_files(&reference, &files_on_disk(&dir), &template).unwrap();
}
