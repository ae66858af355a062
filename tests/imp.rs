//! The IMP loop end to end on a tiny LeNet and synthetic data (ndarray).

use crate::common::{data, init, ndarray, tiny_recipe};
use burn_lottery::imp::store::{ExperimentStore, StoreError};
use burn_lottery::imp::{
    Controls, Imp, ImpConfig, ImpError, ImpObserver, LevelSummary, RunOptions, Seeds, Silent,
};
use burn_lottery::mask::Mask;
use burn_lottery::prune::{MagnitudePrunerConfig, kept_after_levels};
use burn_lottery::report;

fn config() -> ImpConfig {
    ImpConfig {
        name: "tiny".into(),
        training: tiny_recipe(),
        pruning: MagnitudePrunerConfig::new(0.2).with_layer_rate("fc3.weight", 0.1),
        levels: 3,
        rewind_iteration: 5,
        seeds: Seeds::all(0),
        ..ImpConfig::default()
    }
}

fn options() -> RunOptions {
    RunOptions {
        checkpoint_every: 4,
        log_every: 5,
        eval_batch_size: 64,
        ..RunOptions::default()
    }
}

/// Reads every level's mask and summary of a finished experiment.
fn levels(dir: &std::path::Path, levels: usize) -> Vec<(Mask, LevelSummary)> {
    let store = config().open_store(dir).unwrap();
    (0..=levels)
        .map(|l| {
            let mask =
                Mask::from_bytes(&store.read(&format!("main/level_{l:02}/mask.bin")).unwrap())
                    .unwrap();
            let summary = serde_json::from_slice(
                &store
                    .read(&format!("main/level_{l:02}/summary.json"))
                    .unwrap(),
            )
            .unwrap();
            (mask, summary)
        })
        .collect()
}

#[test]
fn three_levels_end_to_end_then_a_rerun_trains_nothing() {
    let out = tempfile::tempdir().unwrap();
    let device = ndarray();
    let imp = Imp::new(config()).with_options(options());
    let report = imp
        .run(out.path(), &device, &data(), init, &mut Silent)
        .unwrap();
    assert_eq!(report.trained_levels, 4);
    assert_eq!(report.rows.len(), 4);
    assert!(report.directory.starts_with(out.path()));

    // Densities follow the pruner's rule: 20% of the pool (fc1, fc2) and
    // 10% of fc3, per level.
    let stored = levels(&report.directory, 3);
    let pool = 64 * 24 + 24 * 16;
    let out_layer = 16 * 10;
    for (level, (mask, summary)) in stored.iter().enumerate() {
        let fc3 = mask.layer("fc3.weight").unwrap().kept_count();
        assert_eq!(
            fc3,
            kept_after_levels(out_layer, 0.1, level),
            "level {level}"
        );
        assert_eq!(
            mask.kept_count() - fc3,
            kept_after_levels(pool, 0.2, level),
            "level {level}"
        );
        assert_eq!(summary.kept, mask.kept_count());
        assert_eq!(summary.level, level);
        assert!((0.0..=1.0).contains(&summary.metric("accuracy").unwrap()));
        if level > 0 {
            assert!(mask.is_subset_of(&stored[level - 1].0).unwrap());
        }
    }
    // The task is learnable: the dense network beats chance clearly.
    assert!(
        stored[0].1.metric("accuracy").unwrap() > 0.5,
        "{:?}",
        stored[0].1.metrics
    );

    // The report files parse and agree with the returned rows.
    let csv = std::fs::read_to_string(report.directory.join("report.csv")).unwrap();
    assert!(csv.starts_with(report::CSV_HEADER));
    assert_eq!(
        report::from_csv(&csv).unwrap(),
        (report.rows.clone(), "accuracy".to_string())
    );
    assert!(report.rows[0].condition == "imp_rewind5");
    let svg = std::fs::read_to_string(report.directory.join("report.svg")).unwrap();
    assert!(svg.contains("<svg") && svg.contains("imp_rewind5"));
    let metrics =
        std::fs::read_to_string(report.directory.join("main/level_01/metrics.csv")).unwrap();
    assert!(metrics.starts_with("name,iteration,value\n"));
    assert!(metrics.contains("train_loss,10,") && metrics.contains("test_accuracy,30,"));
    config()
        .open_store(&report.directory)
        .unwrap()
        .verify_all()
        .unwrap();

    // A re-run trains nothing and reports the same results.
    let again = imp
        .run(out.path(), &device, &data(), init, &mut Silent)
        .unwrap();
    assert_eq!(again.trained_levels, 0);
    assert_eq!(again.rows, report.rows);

    // Written elsewhere (a folder made on the way), the report is the
    // experiment directory's own, byte for byte; a folder that cannot be
    // made is an error naming it.
    let results = out.path().join("results/tiny");
    again.write_to(&results, "tiny").unwrap();
    for file in ["report.csv", "report.svg"] {
        assert_eq!(
            std::fs::read(results.join(file)).unwrap(),
            std::fs::read(report.directory.join(file)).unwrap(),
            "{file}"
        );
    }
    let blocked = results.join("report.csv").join("sub");
    match again.write_to(&blocked, "tiny") {
        Err(report::ReportError::Io { path, .. }) => assert_eq!(path, blocked),
        other => panic!("expected an I/O error naming {blocked:?}, got {other:?}"),
    }
}

/// Stops the run after `stop_after` steps in total.
struct StopAfter {
    steps: u64,
    stop_after: u64,
}

impl ImpObserver for StopAfter {
    fn step(&mut self, _completed: u64, _loss: Option<f64>) {
        self.steps += 1;
    }
    fn should_stop(&mut self) -> bool {
        self.steps >= self.stop_after
    }
}

#[test]
fn an_interrupted_run_resumes_to_the_same_masks_and_metrics() {
    let device = ndarray();
    let straight_dir = tempfile::tempdir().unwrap();
    let imp = Imp::new(config()).with_options(options());
    let straight = imp
        .run(straight_dir.path(), &device, &data(), init, &mut Silent)
        .unwrap();

    let resumed_dir = tempfile::tempdir().unwrap();
    // Level 0 trains 30 steps, level 1 25 (from k = 5): stop at step 47,
    // 17 steps into level 1 (its last checkpoint is at iteration 20).
    let err = imp
        .run(
            resumed_dir.path(),
            &device,
            &data(),
            init,
            &mut StopAfter {
                steps: 0,
                stop_after: 47,
            },
        )
        .unwrap_err();
    match &err {
        ImpError::Train { level, .. } => assert_eq!(*level, 1),
        other => panic!("unexpected {other}"),
    }
    let dir = imp.directory(resumed_dir.path());
    assert!(dir.join("main/level_01/progress.ckpt").exists());
    assert!(!dir.join("main/level_01/summary.json").exists());

    let resumed = imp
        .run(resumed_dir.path(), &device, &data(), init, &mut Silent)
        .unwrap();
    assert_eq!(resumed.trained_levels, 3, "level 0 is not retrained");
    assert_eq!(resumed.rows, straight.rows);
    let a = levels(&straight.directory, 3);
    let b = levels(&resumed.directory, 3);
    for (level, ((ma, sa), (mb, sb))) in a.iter().zip(&b).enumerate() {
        assert_eq!(ma, mb, "mask of level {level}");
        assert_eq!(sa.metrics, sb.metrics, "level {level}");
        assert_eq!(sa.final_train_loss, sb.final_train_loss, "level {level}");
    }
    for level in 0..=3 {
        let file = format!("main/level_{level:02}/metrics.csv");
        assert_eq!(
            std::fs::read_to_string(straight.directory.join(&file)).unwrap(),
            std::fs::read_to_string(resumed.directory.join(&file)).unwrap(),
            "{file}"
        );
    }
}

#[test]
fn a_data_order_control_repeating_one_already_trained_is_refused_before_training() {
    let out = tempfile::tempdir().unwrap();
    // config() trains its main line with data order 0.
    for (orders, named) in [
        (vec![7, 3, 7], "controls.data_orders lists 7 twice"),
        (
            vec![0],
            "controls.data_orders lists 0, the main line's own data order",
        ),
    ] {
        let mut config = config();
        config.controls.data_orders = orders;
        let imp = Imp::new(config).with_options(options());
        match imp.run(out.path(), &ndarray(), &data(), init, &mut Silent) {
            Err(ImpError::Config(message)) => assert!(message.contains(named), "{message}"),
            other => panic!("expected a refusal naming {named:?}, got {other:?}"),
        }
    }
    assert_eq!(
        std::fs::read_dir(out.path()).unwrap().count(),
        0,
        "nothing written"
    );
}

#[test]
fn controls_are_trained_as_branches() {
    let out = tempfile::tempdir().unwrap();
    let mut config = config();
    config.levels = 2;
    config.controls = Controls {
        random_reinit: true,
        random_prune: true,
        data_orders: vec![7],
    };
    let report = Imp::new(config)
        .with_options(options())
        .run(out.path(), &ndarray(), &data(), init, &mut Silent)
        .unwrap();
    let conditions: Vec<_> = report
        .rows
        .iter()
        .map(|r| (r.condition.as_str(), r.level))
        .collect();
    assert_eq!(
        conditions,
        vec![
            ("imp_rewind5", 0),
            ("data_order_7", 0),
            ("imp_rewind5", 1),
            ("data_order_7", 1),
            ("random_reinit", 1),
            ("random_prune", 1),
            ("imp_rewind5", 2),
            ("data_order_7", 2),
            ("random_reinit", 2),
            ("random_prune", 2),
        ]
    );
    // Controls have the same density as the IMP level they belong to.
    for level in 1..=2 {
        let w: Vec<f64> = report
            .rows
            .iter()
            .filter(|r| r.level == level)
            .map(|r| r.weights_remaining)
            .collect();
        assert!(w.iter().all(|&x| x == w[0]), "{w:?}");
    }
    let dir = &report.directory;
    let imp_mask = Mask::load(dir.join("main/level_02/mask.bin")).unwrap();
    let random = Mask::load(dir.join("branches/random_prune/level_02/mask.bin")).unwrap();
    for (path, layer) in imp_mask.layers() {
        assert_eq!(random.layer(path).unwrap().kept_count(), layer.kept_count());
    }
    assert_ne!(imp_mask, random);
    assert!(
        dir.join("branches/random_reinit/level_02/summary.json")
            .exists()
    );
}

#[test]
fn configurations_name_directories_and_mismatches_are_refused() {
    let a = config();
    let mut b = config();
    b.rewind_iteration = 0;
    let mut c = config();
    c.seeds.data_order = 9;
    let names = [a.directory_name(), b.directory_name(), c.directory_name()];
    assert_ne!(names[0], names[1]);
    assert_ne!(names[0], names[2]);
    assert_eq!(a.directory_name(), config().directory_name());
    assert!(names[0].starts_with("tiny-"));
    // Options equal to their defaults do not enter the hash.
    let json = a.distinguishing_json();
    assert!(json.get("restore_optimizer_state").is_none());
    assert!(json.get("rewind_iteration").is_some());

    // Reusing a directory with another configuration names the differences.
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().join("exp");
    ExperimentStore::open(&dir, &serde_json::to_value(&a).unwrap()).unwrap();
    match ExperimentStore::open(&dir, &serde_json::to_value(&b).unwrap()).unwrap_err() {
        StoreError::ConfigMismatch { differences, .. } => {
            assert_eq!(differences, vec!["rewind_iteration: 5 -> 0".to_string()]);
        }
        other => panic!("unexpected {other}"),
    }
}

#[test]
fn invalid_configurations_fail_before_training() {
    let out = tempfile::tempdir().unwrap();
    let mut bad = config();
    bad.rewind_iteration = 31;
    let err = Imp::new(bad)
        .run(out.path(), &ndarray(), &data(), init, &mut Silent)
        .unwrap_err();
    assert!(matches!(err, ImpError::Config(_)), "{err}");
    assert!(err.to_string().contains("rewind_iteration 31"));
    let mut bad = config();
    bad.pruning.fraction_of_remaining = 1.5;
    assert!(matches!(
        Imp::new(bad).run(out.path(), &ndarray(), &data(), init, &mut Silent),
        Err(ImpError::Prune(_))
    ));
    let mut bad = config();
    bad.selector = bad.selector.exclude("head.weight");
    assert!(matches!(
        Imp::new(bad).run(out.path(), &ndarray(), &data(), init, &mut Silent),
        Err(ImpError::Mask(_))
    ));
    // Nothing was created for the invalid configurations that fail validation.
    assert!(!out.path().join(config().directory_name()).exists());
}

#[test]
fn a_ticket_exports_to_safetensors() {
    let out = tempfile::tempdir().unwrap();
    let mut config = config();
    config.levels = 1;
    let imp = Imp::new(config).with_options(options());
    let device = ndarray();
    imp.run(out.path(), &device, &data(), init, &mut Silent)
        .unwrap();
    let file = out.path().join("ticket.safetensors");
    imp.export_ticket(out.path(), 1, &device, init, &file)
        .unwrap();
    let bytes = std::fs::read(&file).unwrap();
    let (_, metadata) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let info = metadata.metadata().as_ref().unwrap();
    assert_eq!(info["level"], "1");
    assert_eq!(info["rewind_iteration"], "5");
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let weight = st.tensor("fc1.weight").unwrap();
    let mask = st.tensor("mask.fc1.weight").unwrap();
    assert_eq!(weight.shape(), &[64, 24]);
    assert_eq!(mask.dtype(), safetensors::Dtype::U8);
    let stored = Mask::load(imp.directory(out.path()).join("main/level_01/mask.bin")).unwrap();
    let kept = stored.layer("fc1.weight").unwrap().kept();
    assert_eq!(
        mask.data().iter().map(|&b| b == 1).collect::<Vec<_>>(),
        kept.to_vec()
    );
    // Pruned entries are zero, kept ones are the rewind-point weights (non-zero).
    for (i, chunk) in weight.data().chunks_exact(4).enumerate() {
        let v = f32::from_le_bytes(chunk.try_into().unwrap());
        assert_eq!(v == 0.0, !kept[i], "fc1.weight[{i}] = {v}");
    }
    assert!(st.tensor("fc1.bias").is_ok());
}

#[test]
fn a_corrupt_progress_checkpoint_restarts_the_level_instead_of_being_used() {
    let device = ndarray();
    let imp = Imp::new(config()).with_options(options());
    let straight_dir = tempfile::tempdir().unwrap();
    let straight = imp
        .run(straight_dir.path(), &device, &data(), init, &mut Silent)
        .unwrap();

    let dir = tempfile::tempdir().unwrap();
    let _ = imp.run(
        dir.path(),
        &device,
        &data(),
        init,
        &mut StopAfter {
            steps: 0,
            stop_after: 47,
        },
    );
    let progress = imp
        .directory(dir.path())
        .join("main/level_01/progress.ckpt");
    let mut bytes = std::fs::read(&progress).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xFF;
    std::fs::write(&progress, &bytes).unwrap();
    let resumed = imp
        .run(dir.path(), &device, &data(), init, &mut Silent)
        .unwrap();
    assert_eq!(resumed.rows, straight.rows);
}

#[test]
fn an_option_added_later_with_its_default_reopens_old_experiments() {
    let out = tempfile::tempdir().unwrap();
    let config = config();
    let dir = out.path().join(config.directory_name());
    // A config.json written before `controls.data_orders` existed.
    let mut old = serde_json::to_value(&config).unwrap();
    old["controls"]
        .as_object_mut()
        .unwrap()
        .remove("data_orders");
    ExperimentStore::open(&dir, &old).unwrap();
    config.open_store(&dir).unwrap();
    // A real difference is still refused.
    let mut other = config.clone();
    other.levels = 5;
    assert!(matches!(
        other.open_store(&dir),
        Err(StoreError::ConfigMismatch { .. })
    ));
}
