//! Early-bird tickets (You et al., arXiv 1909.11957): the mask distance, the
//! stopping rule, and the search inside IMP (the ticket drawn at the right
//! epoch, at the target density, stored and read back).

use burn_lottery::imp::{
    Branch, Imp, ImpConfig, ImpError, ImpObserver, Layout, PruningMethod, Retrain, Silent,
};
use burn_lottery::mask::{LayerMask, Mask, MaskError, ParamSelector};
use burn_lottery::prune::{
    EARLY_BIRD_CSV_HEADER, EarlyBirdConfig, EarlyBirdDetector, EarlyBirdRecord,
    MagnitudePrunerConfig, PruneError, mask_distance,
};
use burn_lottery::train::masked::MaskedOptimizer;
use burn_lottery::train::trainer::{NoObserver, Trainer};

use crate::common::{data, init, ndarray, tiny_imp_config};

/// A one-dimensional layer mask from 0/1 flags.
fn layer(path: &str, kept: &[u8]) -> (String, LayerMask) {
    let shape = vec![kept.len()];
    let kept = kept.iter().map(|&k| k == 1).collect();
    (
        path.to_string(),
        LayerMask::from_kept(path, shape, kept).unwrap(),
    )
}

#[test]
fn mask_distance_is_the_fraction_of_entries_kept_by_exactly_one_mask() {
    let a = Mask::from_layers([layer("a", &[1, 1, 0, 0]), layer("b", &[1, 0, 1, 0, 1, 0])]);
    // Layer a: entries 1 and 2 differ; layer b: entry 4 differs. 3 of 10.
    let b = Mask::from_layers([layer("a", &[1, 0, 1, 0]), layer("b", &[1, 0, 1, 0, 0, 0])]);
    assert_eq!(mask_distance(&a, &b).unwrap(), 0.3);
    assert_eq!(mask_distance(&b, &a).unwrap(), 0.3);
    assert_eq!(mask_distance(&a, &a).unwrap(), 0.0);
    let complement =
        Mask::from_layers([layer("a", &[0, 0, 1, 1]), layer("b", &[0, 1, 0, 1, 0, 1])]);
    assert_eq!(mask_distance(&a, &complement).unwrap(), 1.0);
    let other_layers = Mask::from_layers([layer("a", &[1, 1, 0, 0])]);
    assert!(matches!(
        mask_distance(&a, &other_layers),
        Err(MaskError::LayerSetMismatch { .. })
    ));
}

/// The firing flags of a detector fed `distances` one by one.
fn flags(config: &EarlyBirdConfig, distances: &[f64]) -> Vec<bool> {
    let mut detector = EarlyBirdDetector::new(config);
    distances.iter().map(|&d| detector.push(d)).collect()
}

#[test]
fn the_detector_fires_exactly_when_the_last_window_distances_are_all_below_epsilon() {
    let config = EarlyBirdConfig {
        epsilon: 0.1,
        window: 3,
        ..EarlyBirdConfig::default()
    };
    // Two low distances are not a full window; 0.1 itself is not below 0.1.
    assert_eq!(
        flags(&config, &[0.05, 0.05, 0.1, 0.05, 0.05, 0.05, 0.09, 0.2]),
        [false, false, false, false, false, true, true, false]
    );
    assert_eq!(
        flags(&config, &[0.5, 0.0999, 0.0, 0.01]),
        [false, false, false, true]
    );
    // The paper's setting: the last 5 distances below 0.1.
    let paper = EarlyBirdConfig::default();
    assert_eq!((paper.epsilon, paper.window), (0.1, 5));
    let low = [0.3, 0.09, 0.08, 0.07, 0.06, 0.05];
    assert_eq!(
        flags(&paper, &low),
        [false, false, false, false, false, true]
    );
}

#[test]
fn the_config_refuses_unknown_fields_and_bad_settings() {
    let parsed: EarlyBirdConfig = serde_json::from_str("{}").unwrap();
    assert_eq!(parsed, EarlyBirdConfig::default());
    assert_eq!(parsed.epoch_iterations, 1000);
    assert!(serde_json::from_str::<EarlyBirdConfig>(r#"{"windw": 5}"#).is_err());
    let method: PruningMethod =
        serde_json::from_str(r#"{"kind": "early_bird", "epsilon": 0.2}"#).unwrap();
    let expected = EarlyBirdConfig {
        epsilon: 0.2,
        ..EarlyBirdConfig::default()
    };
    assert_eq!(method, PruningMethod::EarlyBird(expected));
    for bad in [
        EarlyBirdConfig {
            window: 0,
            ..EarlyBirdConfig::default()
        },
        EarlyBirdConfig {
            epsilon: 0.0,
            ..EarlyBirdConfig::default()
        },
        EarlyBirdConfig {
            epsilon: f64::NAN,
            ..EarlyBirdConfig::default()
        },
        EarlyBirdConfig::new(0),
    ] {
        assert!(matches!(
            bad.validate(),
            Err(PruneError::InvalidEarlyBird(_))
        ));
    }
    // The ticket trains from the rewind point: retraining modes that keep
    // trained weights are refused before anything is written.
    let config = ImpConfig {
        method: PruningMethod::EarlyBird(EarlyBirdConfig::new(3)),
        retrain: Retrain::LearningRateRewinding,
        ..tiny_imp_config("early_bird_lr", 1)
    };
    let out = tempfile::tempdir().unwrap();
    let err = Imp::new(config)
        .run(out.path(), &ndarray(), &data(), init, &mut Silent)
        .unwrap_err();
    assert!(matches!(err, ImpError::Config(_)), "{err}");
    assert_eq!(std::fs::read_dir(out.path()).unwrap().count(), 0);
}

/// The tiny experiment (30 iterations, rewinding to 5) drawing early-bird
/// tickets with a mask every 3 iterations.
fn early_bird_config(name: &str, levels: usize, epsilon: f64, window: usize) -> ImpConfig {
    ImpConfig {
        method: PruningMethod::EarlyBird(EarlyBirdConfig {
            epoch_iterations: 3,
            epsilon,
            window,
        }),
        ..tiny_imp_config(name, levels)
    }
}

fn stored_record(dir: &std::path::Path, level: usize) -> EarlyBirdRecord {
    let json = std::fs::read(dir.join(Layout::early_bird_record(level))).unwrap();
    serde_json::from_slice(&json).unwrap()
}

fn stored_mask(dir: &std::path::Path, level: usize) -> Mask {
    Mask::from_bytes(&std::fs::read(dir.join(Layout::level(&Branch::Main, level).mask())).unwrap())
        .unwrap()
}

/// The mask of the dense run trained by hand to `iterations`, at `level`
/// levels' counts of `config`'s pruner.
fn dense_run_mask(config: &ImpConfig, iterations: u64, level: usize) -> Mask {
    let device = ndarray().autodiff();
    let data = data();
    let model = init(&device, config.seeds.init);
    let dense = Mask::dense(&model, &ParamSelector::default()).unwrap();
    let mut optimizer =
        MaskedOptimizer::new(config.training.optimizer.init(), &dense, &model, &device).unwrap();
    let model = optimizer.prepare(model);
    let order = Branch::Main.data_order(config);
    let trained = Trainer::new(&config.training, &data, &device)
        .train(
            model,
            &mut optimizer,
            0..iterations,
            &order,
            &mut NoObserver,
        )
        .unwrap();
    let pruner = config.pruning.init().unwrap();
    pruner.one_shot(&trained, &dense, level).unwrap()
}

/// The distances CSV holds the record's epochs (the JSON's decimals may
/// read back one unit in the last place off; the CSV's are exact).
fn assert_same_distances(csv: &str, record: &EarlyBirdRecord) {
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some(EARLY_BIRD_CSV_HEADER));
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), record.epochs.len());
    for (row, epoch) in rows.iter().zip(&record.epochs) {
        assert_eq!(row[0].parse::<u64>().unwrap(), epoch.epoch);
        assert_eq!(row[1].parse::<u64>().unwrap(), epoch.iteration);
        match epoch.distance {
            None => assert_eq!(row[2], ""),
            Some(d) => assert!((row[2].parse::<f64>().unwrap() - d).abs() < 1e-15),
        }
    }
}

#[test]
fn the_ticket_is_the_dense_runs_mask_at_the_epoch_the_detector_fires_at_the_target_density() {
    // epsilon 1 and a window of 2: the second distance (epoch 3) fires.
    let config = early_bird_config("early_bird", 2, 1.0, 2);
    assert_eq!(config.condition(), "early_bird_rewind5");
    let out = tempfile::tempdir().unwrap();
    let imp = Imp::new(config.clone());
    let report = imp
        .run(out.path(), &ndarray(), &data(), init, &mut Silent)
        .unwrap();
    let dir = imp.directory(out.path());
    let template = init(&ndarray(), 0);
    let dense = Mask::dense(&template, &ParamSelector::default()).unwrap();
    let pruner = MagnitudePrunerConfig::new(0.2).init().unwrap();
    assert_eq!(report.rows.len(), 3);
    for level in 1..=2 {
        let record = stored_record(&dir, level);
        assert_eq!(record.drawn_epoch, Some(3), "level {level}");
        assert_eq!(record.drawn_iteration, 9);
        let iterations: Vec<u64> = record.epochs.iter().map(|e| e.iteration).collect();
        assert_eq!(iterations, [3, 6, 9], "the dense run stops when drawn");
        assert_eq!(record.epochs[0].distance, None);
        // The target density: the count `level` IMP levels keep.
        let target = pruner.kept_after(&dense, level).unwrap();
        let mask = stored_mask(&dir, level);
        assert_eq!((mask.kept_count(), record.kept), (target, target));
        let row = &report.rows[level];
        assert_eq!(row.condition, "early_bird_rewind5");
        assert_eq!(
            row.weights_remaining,
            target as f64 / dense.total_count() as f64
        );
        // The mask of the dense run at iteration 9, bit for bit.
        assert_eq!(mask, dense_run_mask(&config, 9, level), "level {level}");
        let csv = std::fs::read_to_string(dir.join(Layout::early_bird_distances(level))).unwrap();
        assert_same_distances(&csv, &record);
    }
    // Resuming reads the stored masks: nothing is searched or trained again
    // (no step asks the observer whether to stop).
    let before = std::fs::read(dir.join(Layout::early_bird_record(2))).unwrap();
    let mut steps = StopAt::never();
    let again = imp
        .run(out.path(), &ndarray(), &data(), init, &mut steps)
        .unwrap();
    assert_eq!((again.trained_levels, steps.asked), (0, 0));
    assert_eq!(again.rows, report.rows);
    assert_eq!(
        std::fs::read(dir.join(Layout::early_bird_record(2))).unwrap(),
        before
    );
}

#[test]
fn the_search_stops_at_the_first_epoch_where_the_window_holds_or_runs_to_the_end() {
    // A small epsilon: whatever the distances, the stored record must be
    // what the detector says of them.
    let config = early_bird_config("early_bird_strict", 1, 0.002, 3);
    let out = tempfile::tempdir().unwrap();
    let imp = Imp::new(config.clone());
    imp.run(out.path(), &ndarray(), &data(), init, &mut Silent)
        .unwrap();
    let dir = imp.directory(out.path());
    let record = stored_record(&dir, 1);
    let PruningMethod::EarlyBird(early_bird) = &config.method else {
        unreachable!()
    };
    let mut detector = EarlyBirdDetector::new(early_bird);
    let fired = record
        .epochs
        .iter()
        .find(|e| e.distance.is_some_and(|d| detector.push(d)))
        .map(|e| e.epoch);
    assert_eq!(record.drawn_epoch, fired);
    let last = record.epochs.last().unwrap();
    assert_eq!(last.iteration, record.drawn_iteration);
    match fired {
        Some(epoch) => assert_eq!(last.epoch, epoch),
        None => assert_eq!(last.iteration, 30),
    }
    let drawn = dense_run_mask(&config, record.drawn_iteration, 1);
    assert_eq!(stored_mask(&dir, 1), drawn);
}

/// Counts the steps that ask whether to stop (every step the runner or the
/// early-bird search trains) and stops at the `stop_at`-th.
struct StopAt {
    asked: u64,
    stop_at: Option<u64>,
}

impl StopAt {
    fn never() -> Self {
        Self {
            asked: 0,
            stop_at: None,
        }
    }
}

impl ImpObserver for StopAt {
    fn should_stop(&mut self) -> bool {
        self.asked += 1;
        self.stop_at.is_some_and(|n| self.asked >= n)
    }
}

#[test]
fn a_search_stopped_midway_starts_over_and_draws_the_same_ticket() {
    let config = early_bird_config("early_bird_stopped", 1, 1.0, 2);
    let imp = Imp::new(config);
    let straight_dir = tempfile::tempdir().unwrap();
    let straight = imp
        .run(straight_dir.path(), &ndarray(), &data(), init, &mut Silent)
        .unwrap();
    let out = tempfile::tempdir().unwrap();
    // Level 0 trains 30 steps; the 35th step is the 5th of level 1's search
    // (which draws at 9).
    let mut stop = StopAt {
        asked: 0,
        stop_at: Some(35),
    };
    let err = imp
        .run(out.path(), &ndarray(), &data(), init, &mut stop)
        .unwrap_err();
    assert!(matches!(err, ImpError::Train { level: 1, .. }), "{err}");
    let dir = imp.directory(out.path());
    let mask_file = Layout::level(&Branch::Main, 1).mask();
    assert!(!dir.join(&mask_file).exists());
    assert!(!dir.join(Layout::early_bird_record(1)).exists());
    let resumed = imp
        .run(out.path(), &ndarray(), &data(), init, &mut Silent)
        .unwrap();
    assert_eq!(resumed.trained_levels, 1, "level 0 is not retrained");
    assert_eq!(resumed.rows, straight.rows);
    let straight_dir = imp.directory(straight_dir.path());
    for file in [
        mask_file,
        Layout::early_bird_record(1),
        Layout::early_bird_distances(1),
    ] {
        assert_eq!(
            std::fs::read(dir.join(&file)).unwrap(),
            std::fs::read(straight_dir.join(&file)).unwrap(),
            "{file}"
        );
    }
}
