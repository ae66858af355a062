//! Masks that change during training: gradual magnitude pruning (Zhu &
//! Gupta) and dynamic sparse training (SET, RigL). Exact counts at every
//! schedule step, regrown weights at zero with zero optimizer state, the
//! level's stored mask, and a run stopped mid-level resuming bit-identically.

use std::collections::BTreeMap;

use burn_lottery::imp::{
    Branch, Condition, Imp, ImpConfig, ImpObserver, Layout, LevelSummary, PruningMethod, Retrain,
    RunOptions, Silent,
};
use burn_lottery::mask::{LayerMask, Mask, ParamSelector};
use burn_lottery::models::LeNet;
use burn_lottery::optim_state::optimizer_state_by_path;
use burn_lottery::prune::{
    DensityRule, DynamicConfig, GradualConfig, MagnitudePrunerConfig, MaskSchedule, NOfM,
    drop_and_grow, kept_after_levels, prune_count,
};
use burn_lottery::rewind::RewindCheckpoint;
use burn_lottery::sparse::ExecutionReason;
use burn_lottery::train::masked::MaskedOptimizer;
use burn_lottery::train::trainer::{TrainObserver, Trainer};

use crate::common::{StopAfter, data, init, ndarray, state, tiny_imp_config};

/// The tiny experiment with the LeNet protocol's pruning (20% of the hidden
/// layers' pool, 10% of `fc3` on its own) and `method`.
fn config(name: &str, method: PruningMethod) -> ImpConfig {
    ImpConfig {
        pruning: MagnitudePrunerConfig::new(0.2).with_layer_rate("fc3.weight", 0.1),
        method,
        ..tiny_imp_config(name, 2)
    }
}

fn gradual() -> PruningMethod {
    PruningMethod::Gradual(GradualConfig::new().with_every(4))
}

fn rigl() -> PruningMethod {
    PruningMethod::Dynamic(DynamicConfig::rigl().with_update_every(5))
}

fn set() -> PruningMethod {
    PruningMethod::Dynamic(DynamicConfig::set().with_update_every(5))
}

/// After a step: iterations completed, the mask, the weights and the
/// optimizer state (burn's bytes).
type AfterStep = (u64, Mask, BTreeMap<String, Vec<f32>>, Vec<u8>);

/// The state after every step of a run.
#[derive(Default)]
struct Steps(Vec<AfterStep>);

impl TrainObserver<LeNet> for Steps {
    fn checkpoint(
        &mut self,
        completed: u64,
        model: &LeNet,
        optimizer: &MaskedOptimizer,
    ) -> Result<(), String> {
        let bytes = optimizer.optimizer().into_bytes().unwrap().to_vec();
        self.0
            .push((completed, optimizer.mask().clone(), state(model), bytes));
        Ok(())
    }
}

/// Trains the tiny LeNet for the tiny recipe's 30 iterations under
/// `schedule`, from its initial mask; every step's state, and the model's
/// parameter ids (for reading optimizer state by path).
fn run_schedule(config: &ImpConfig, schedule: &dyn MaskSchedule) -> (Steps, LeNet) {
    let device = ndarray().autodiff();
    let data = data();
    let model = init(&device, 0);
    let mask = schedule.initial_mask();
    let mut optimizer =
        MaskedOptimizer::new(config.training.optimizer.init(), mask, &model, &device).unwrap();
    let model = optimizer.prepare(model);
    let ids = model.clone();
    let mut steps = Steps::default();
    let order = Branch::Main.data_order(config);
    Trainer::new(&config.training, &data, &device)
        .with_mask_schedule(Some(schedule))
        .train(model, &mut optimizer, 0..30, &order, &mut steps)
        .unwrap();
    (steps, ids)
}

fn dense_mask() -> Mask {
    Mask::dense(&init(&ndarray(), 0), &ParamSelector::default()).unwrap()
}

/// Kept weights of the hidden layers' pool and of `fc3`.
fn group_counts(mask: &Mask) -> (usize, usize) {
    let kept = |p: &str| mask.layer(p).unwrap().kept_count();
    (kept("fc1.weight") + kept("fc2.weight"), kept("fc3.weight"))
}

/// The cubic schedule's count for a group of `total` weights ending at what
/// `levels` levels at `fraction` keep, at step `j` of `n` (written out
/// here, independently of the crate).
fn cubic_count(total: usize, fraction: f64, levels: usize, j: usize, n: usize) -> usize {
    let last = kept_after_levels(total, fraction, levels);
    if j == n {
        return last;
    }
    let s_f = 1.0 - last as f64 / total as f64;
    let s = s_f * (1.0 - (1.0 - j as f64 / n as f64).powi(3));
    (total - (s * total as f64).round() as usize).max(last)
}

#[test]
fn gradual_pruning_keeps_the_cubic_schedules_exact_counts_after_every_step() {
    let config = config("gmp_steps", gradual());
    let PruningMethod::Gradual(gradual) = &config.method else {
        unreachable!()
    };
    // 30 iterations: from 10% (iteration 3) to at most 75% (22.5 -> 23),
    // every 4 steps.
    assert_eq!(gradual.pruning_iterations(30), [3, 7, 11, 15, 19, 23]);
    let pruner = config.pruning.init().unwrap();
    for levels in [2, 5] {
        let schedule = gradual
            .schedule(pruner.clone(), dense_mask(), levels, 30)
            .unwrap();
        let (steps, _) = run_schedule(&config, &schedule);
        let (pool, fc3) = (64 * 24 + 24 * 16, 16 * 10);
        let mut previous = dense_mask();
        for (completed, mask, weights, _) in &steps.0 {
            // The mask in force after step `completed - 1`: the last pruning
            // step at or before that iteration.
            let j = schedule.steps().iter().filter(|&&t| t < *completed).count();
            let expected = match j {
                0 => (pool, fc3),
                j => (
                    cubic_count(pool, 0.2, levels, j - 1, 5),
                    cubic_count(fc3, 0.1, levels, j - 1, 5),
                ),
            };
            assert_eq!(group_counts(mask), expected, "after step {completed}");
            assert!(
                mask.is_subset_of(&previous).unwrap(),
                "pruning only removes"
            );
            for (path, layer) in mask.layers() {
                for (w, &kept) in weights[path].iter().zip(layer.kept()) {
                    assert!(kept || *w == 0.0, "{path}: a pruned weight is zero");
                }
            }
            previous = mask.clone();
        }
        let last = &steps.0.last().unwrap().1;
        assert_eq!(
            last.kept_count(),
            pruner.kept_after(&dense_mask(), levels).unwrap()
        );
        assert_eq!(last.kept_count(), schedule.final_kept());
    }
}

#[test]
fn gradual_pruning_with_two_of_four_ends_in_the_pattern() {
    let mut config = config("gmp_nm", gradual());
    config.pruning = MagnitudePrunerConfig::new(0.2)
        .with_scope(burn_lottery::prune::PruningScope::LayerWise)
        .with_n_of_m(NOfM::two_of_four());
    let PruningMethod::Gradual(gradual) = &config.method else {
        unreachable!()
    };
    let pruner = config.pruning.init().unwrap();
    // Four levels at 20% keep 41% of every layer: below 2:4's half.
    let schedule = gradual.schedule(pruner, dense_mask(), 4, 30).unwrap();
    let (steps, _) = run_schedule(&config, &schedule);
    let last = &steps.0.last().unwrap().1;
    NOfM::two_of_four().check(last).unwrap();
    for (path, layer) in last.layers() {
        let n = layer.total_count();
        assert_eq!(layer.kept_count(), kept_after_levels(n, 0.2, 4), "{path}");
    }
}

#[test]
fn drop_and_grow_drops_the_smallest_kept_and_grows_the_best_scores_per_layer() {
    let layer = |kept: &[u8]| {
        let kept: Vec<bool> = kept.iter().map(|&k| k == 1).collect();
        LayerMask::from_kept("a", vec![kept.len()], kept).unwrap()
    };
    let mask = Mask::from_layers([
        ("a".to_string(), layer(&[1, 1, 1, 1, 0, 0, 0, 0])),
        ("b".to_string(), layer(&[1, 1])),
    ]);
    let weights: BTreeMap<String, Vec<f32>> = [
        ("a".into(), vec![0.5, -0.1, 2.0, 0.3, 0.0, 0.0, 0.0, 0.0]),
        ("b".into(), vec![0.0, 1.0]),
    ]
    .into();
    let growth: BTreeMap<String, Vec<f32>> = [
        ("a".into(), vec![9.0, 9.0, 9.0, 9.0, 0.1, 0.7, 0.2, 0.7]),
        ("b".into(), vec![5.0, 5.0]),
    ]
    .into();
    // Half of a's 4 kept go (0.1 and 0.3, the smallest magnitudes); the two
    // best scores among the rest regrow: 0.7 and 0.7, but also the dropped
    // entries' 9.0. The dense layer b is left alone.
    let next = drop_and_grow(&mask, &weights, &growth, 0.5).unwrap();
    assert_eq!(
        next.layer("a").unwrap().kept(),
        [true, true, true, true, false, false, false, false]
    );
    let growth: BTreeMap<String, Vec<f32>> = [
        ("a".into(), vec![0.0, 0.0, 0.0, 0.0, 0.1, 0.7, 0.2, 0.7]),
        ("b".into(), vec![5.0, 5.0]),
    ]
    .into();
    let next = drop_and_grow(&mask, &weights, &growth, 0.5).unwrap();
    assert_eq!(
        next.layer("a").unwrap().kept(),
        [true, false, true, false, false, true, false, true]
    );
    assert_eq!(next.layer("b").unwrap().kept(), [true, true]);
    assert_eq!(prune_count(0.5, 4), 2);
}

/// The entries of every layer kept by `after` and not by `before`.
fn grown(before: &Mask, after: &Mask) -> Vec<(String, usize)> {
    let mut out = Vec::new();
    for (path, layer) in after.layers() {
        let old = before.layer(path).unwrap().kept();
        for (i, (&now, &then)) in layer.kept().iter().zip(old).enumerate() {
            if now && !then {
                out.push((path.to_string(), i));
            }
        }
    }
    out
}

#[test]
fn regrown_weights_start_at_zero_with_zero_optimizer_state_and_counts_stay() {
    for method in [rigl(), set()] {
        let config = config("dst_steps", method);
        let dense = dense_mask();
        let kept = config
            .pruning
            .init()
            .unwrap()
            .kept_after(&dense, 3)
            .unwrap();
        let PruningMethod::Dynamic(dynamic) = &config.method else {
            unreachable!()
        };
        let schedule = dynamic.schedule(&dense, kept, 30, 11).unwrap();
        assert_eq!(schedule.initial_mask().kept_count(), kept);
        let (steps, ids) = run_schedule(&config, &schedule);
        let per_layer =
            |m: &Mask| -> Vec<usize> { m.layers().map(|(_, l)| l.kept_count()).collect() };
        let mut regrown = 0;
        // Updates before the steps of 5, 10, 15, 20 (none at 22.5 or later).
        for t in [5u64, 10, 15, 20] {
            let (_, before, weights_before, _) = &steps.0[t as usize - 1];
            let (_, after, weights_after, optimizer) = &steps.0[t as usize];
            assert_ne!(before, after, "{} changes the mask at {t}", dynamic.name());
            assert_eq!(per_layer(before), per_layer(after));
            let state = optimizer_state_by_path(optimizer, &ids).unwrap();
            for (path, i) in grown(before, after) {
                regrown += 1;
                assert_eq!(weights_after[&path][i], 0.0, "{path}[{i}] regrown at zero");
                for (name, tensor) in state.tensors.iter().filter(|(n, _)| n.starts_with(&path)) {
                    let value =
                        f32::from_le_bytes(tensor.bytes[4 * i..4 * i + 4].try_into().unwrap());
                    assert_eq!(value, 0.0, "{name}[{i}] of a regrown weight");
                }
            }
            // The update replaces the step: what stays kept is unchanged.
            for (path, layer) in after.layers() {
                let kept_before = before.layer(path).unwrap().kept();
                for (i, (&now, &then)) in layer.kept().iter().zip(kept_before).enumerate() {
                    if now && then {
                        assert_eq!(weights_after[path][i], weights_before[path][i]);
                    }
                }
            }
        }
        assert!(regrown > 0);
        // Between updates the mask holds.
        for pair in steps.0.windows(2) {
            let t = pair[0].0;
            if ![5, 10, 15, 20].contains(&t) {
                assert_eq!(pair[0].1, pair[1].1, "no update before the step of {t}");
            }
        }
    }
}

fn summary(dir: &std::path::Path, level: usize) -> LevelSummary {
    let file = dir.join(Layout::level(&Branch::Main, level).summary());
    serde_json::from_slice(&std::fs::read(file).unwrap()).unwrap()
}

#[test]
fn a_level_stopped_mid_run_resumes_to_the_same_final_mask_and_network() {
    let options = RunOptions {
        checkpoint_every: 4,
        eval_batch_size: 64,
        ..RunOptions::default()
    };
    for method in [gradual(), rigl(), set()] {
        let config = config("dst_resume", method);
        let imp = Imp::new(config.clone()).with_options(options.clone());
        let straight_root = tempfile::tempdir().unwrap();
        let straight = imp
            .run(straight_root.path(), &ndarray(), &data(), init, &mut Silent)
            .unwrap();
        // Level 0 trains 30 steps, level 1 from 0 too: stop 17 steps into
        // level 1 (its progress checkpoint is at 16, after updates).
        let root = tempfile::tempdir().unwrap();
        imp.run(root.path(), &ndarray(), &data(), init, &mut StopAfter(47))
            .unwrap_err();
        let dir = imp.directory(root.path());
        let files = Layout::level(&Branch::Main, 1);
        let progress =
            RewindCheckpoint::from_bytes(&std::fs::read(dir.join(files.progress())).unwrap())
                .unwrap();
        assert_eq!(progress.iteration(), 16);
        let stopped_mask = progress
            .mask()
            .expect("the progress checkpoint holds the mask");
        assert!(
            !dir.join(files.mask()).exists(),
            "mask.bin is the final mask"
        );
        let resumed = imp
            .run(root.path(), &ndarray(), &data(), init, &mut Silent)
            .unwrap();
        assert_eq!(resumed.rows, straight.rows, "{}", config.condition());
        let straight_dir = imp.directory(straight_root.path());
        for level in 1..=2 {
            let files = Layout::level(&Branch::Main, level);
            for file in [files.mask(), files.sparsity(), files.metrics()] {
                assert_eq!(
                    std::fs::read(dir.join(&file)).unwrap(),
                    std::fs::read(straight_dir.join(&file)).unwrap(),
                    "{} {file}",
                    config.condition()
                );
            }
            // Checkpoints carry per-process parameter ids: compare values.
            let network = |dir: &std::path::Path| {
                let bytes = std::fs::read(dir.join(files.final_checkpoint())).unwrap();
                let checkpoint = RewindCheckpoint::from_bytes(&bytes).unwrap();
                state(&checkpoint.restore(init(&ndarray(), 0)).unwrap())
            };
            assert_eq!(network(&dir), network(&straight_dir));
        }
        let final_mask = Mask::from_bytes(&std::fs::read(dir.join(files.mask())).unwrap()).unwrap();
        let execution = summary(&dir, 1).execution.unwrap();
        assert_eq!(execution.reason, ExecutionReason::MaskChanges);
        match &config.method {
            PruningMethod::Gradual(_) => assert_ne!(stopped_mask, &final_mask),
            _ => assert_eq!(stopped_mask.kept_count(), final_mask.kept_count()),
        }
    }
}

#[test]
fn a_levels_stored_mask_is_the_one_it_ends_with_at_the_levels_count() {
    for (method, name) in [(gradual(), "gmp"), (rigl(), "rigl"), (set(), "set")] {
        let config = ImpConfig {
            controls: burn_lottery::imp::Controls::random(true),
            ..config("dst_levels", method)
        };
        assert_eq!(config.condition(), name);
        let out = tempfile::tempdir().unwrap();
        let mut ranges = Ranges::default();
        let imp = Imp::new(config.clone());
        let report = imp
            .run(out.path(), &ndarray(), &data(), init, &mut ranges)
            .unwrap();
        // Every level trains from the initialization, 0..30.
        let main: Vec<_> = ranges.0.iter().filter(|r| r.0 == name).cloned().collect();
        let expected: Vec<_> = (0..=2).map(|l| (name.to_string(), l, (0, 30))).collect();
        assert_eq!(main, expected);
        let pruner = config.pruning.init().unwrap();
        let dense = dense_mask();
        let dir = imp.directory(out.path());
        for level in 1..=2 {
            let stored = Mask::from_bytes(
                &std::fs::read(dir.join(Layout::level(&Branch::Main, level).mask())).unwrap(),
            )
            .unwrap();
            assert_eq!(
                stored.kept_count(),
                pruner.kept_after(&dense, level).unwrap()
            );
            assert_eq!(summary(&dir, level).weights_remaining, stored.density());
            let row = report
                .rows
                .iter()
                .find(|r| r.condition == name && r.level == level);
            assert_eq!(row.unwrap().weights_remaining, stored.density());
            if name == "gmp" {
                let one_shot = pruner
                    .one_shot(&init(&ndarray(), 0), &dense, level)
                    .unwrap();
                assert_eq!(group_counts(&stored), group_counts(&one_shot));
            } else {
                let erk = DensityRule::Erk
                    .allocate(&dense, stored.kept_count())
                    .unwrap();
                let burn_lottery::prune::Allocation::PerLayer(counts) = erk else {
                    unreachable!()
                };
                for (path, layer) in stored.layers() {
                    assert_eq!(layer.kept_count(), counts[path], "{name} {path}");
                }
            }
            // The random-reinitialization control trains the mask the level
            // ended with; the random-pruning control its per-layer counts.
            let control = |branch: &Branch| {
                let file = dir.join(Layout::level(branch, level).mask());
                Mask::from_bytes(&std::fs::read(file).unwrap()).unwrap()
            };
            assert_eq!(
                control(&Branch::RandomReinit),
                stored,
                "{name} level {level}"
            );
            let random = control(&Branch::RandomPrune);
            let counts = |m: &Mask| m.layers().map(|(_, l)| l.kept_count()).collect::<Vec<_>>();
            assert_eq!(counts(&random), counts(&stored), "{name} level {level}");
            // A stability copy of such a level trains the mask it ended with
            // from k: never the level's own run.
            let copy = Branch::Stability {
                condition: Condition::Imp,
                seed: config.seeds.data_order,
            };
            assert_eq!(copy.same_network_as(level, &config), None);
        }
    }
}

/// Records the iteration range of every level started.
#[derive(Default)]
struct Ranges(Vec<(String, usize, (u64, u64))>);

impl ImpObserver for Ranges {
    fn level_started(&mut self, condition: &str, level: usize, _density: f64, range: (u64, u64)) {
        self.0.push((condition.to_string(), level, range));
    }
}

#[test]
fn bad_settings_and_typos_are_refused_by_name() {
    let refuse = |method: PruningMethod, retrain: Retrain, needle: &str| {
        let config = ImpConfig {
            retrain,
            ..config("dst_refused", method)
        };
        let error = Imp::new(config).validate().unwrap_err().to_string();
        assert!(error.contains(needle), "{error}");
    };
    let dynamic = |c: DynamicConfig| PruningMethod::Dynamic(c);
    refuse(
        dynamic(DynamicConfig::set().with_drop_fraction(1.5)),
        Retrain::default(),
        "drop_fraction must be in (0, 1), got 1.5",
    );
    refuse(
        dynamic(DynamicConfig::rigl().with_update_every(0)),
        Retrain::default(),
        "update_every",
    );
    refuse(
        dynamic(DynamicConfig::rigl().with_density_rule(DensityRule::Global)),
        Retrain::default(),
        "density_rule global",
    );
    refuse(
        PruningMethod::Gradual(GradualConfig::new().with_window(0.8, 0.2)),
        Retrain::default(),
        "start_fraction",
    );
    refuse(
        PruningMethod::Gradual(GradualConfig::new().with_initial_sparsity(1.0)),
        Retrain::default(),
        "initial_sparsity",
    );
    refuse(
        gradual(),
        Retrain::LearningRateRewinding,
        "gmp trains one run from the initialization",
    );
    for typo in [
        r#"{"kind":"gradual","evry":4}"#,
        r#"{"kind":"dynamic","regrowth":"gradient","drop_fractoin":0.3}"#,
    ] {
        let error = serde_json::from_str::<PruningMethod>(typo)
            .unwrap_err()
            .to_string();
        assert!(error.contains("unknown field"), "{error}");
    }
    let parsed: PruningMethod =
        serde_json::from_str(r#"{"kind":"dynamic","regrowth":"random"}"#).unwrap();
    assert_eq!(parsed, dynamic(DynamicConfig::set()));
    // A progress checkpoint of a changing mask round-trips with it; one cut
    // short is refused, naming the problem.
    let model = init(&ndarray(), 0);
    let mask = crate::common::sparse_mask(&model);
    let bytes = RewindCheckpoint::capture(&model, 7)
        .with_mask(&mask)
        .to_bytes()
        .unwrap();
    assert_eq!(
        RewindCheckpoint::from_bytes(&bytes).unwrap().mask(),
        Some(&mask)
    );
    let error = RewindCheckpoint::from_bytes(&bytes[..bytes.len() - 9])
        .unwrap_err()
        .to_string();
    assert!(error.contains("checksum mismatch"), "{error}");
    let plain = RewindCheckpoint::capture(&model, 7).to_bytes().unwrap();
    assert_eq!(
        &plain[..8],
        b"BLRWND\0\x01",
        "a checkpoint without a mask keeps version 1"
    );
    assert_eq!(RewindCheckpoint::from_bytes(&plain).unwrap().mask(), None);
}

/// Pinned values (produced at the commit that added them): the start and
/// final masks of level 1 of the tiny experiment for each method, and its
/// test accuracy. A change of either changes every stored GMP, SET and RigL
/// experiment: not a refactor (see tests/pinned.rs).
#[test]
fn pinned_masks_and_accuracy_of_gmp_set_and_rigl() {
    use xxhash_rust::xxh3::xxh3_64;
    let pinned: [(PruningMethod, u64, u64, f64); 3] = [
        // GMP starts dense; SET and RigL from the same ERK random mask.
        (gradual(), 6763863630149752371, 15557348633389482410, 0.78),
        (rigl(), 15047958374860806121, 656872773746806611, 0.65),
        (set(), 15047958374860806121, 519927871723559570, 0.62),
    ];
    for (method, start_hash, final_hash, accuracy) in pinned {
        let config = ImpConfig {
            levels: 1,
            ..config("pinned_dst", method)
        };
        let dense = dense_mask();
        let start = config
            .method
            .mask_schedule(&config, 1, dense)
            .unwrap()
            .unwrap();
        let out = tempfile::tempdir().unwrap();
        let imp = Imp::new(config.clone());
        let report = imp
            .run(out.path(), &ndarray(), &data(), init, &mut Silent)
            .unwrap();
        let dir = imp.directory(out.path());
        let stored = std::fs::read(dir.join(Layout::level(&Branch::Main, 1).mask())).unwrap();
        let got = (
            xxh3_64(&start.initial_mask().to_bytes()),
            xxh3_64(&stored),
            report.rows[1].value,
        );
        let want = (start_hash, final_hash, accuracy);
        assert_eq!(got, want, "{}", config.condition());
    }
}

/// A schedule that records the gradients each update is given.
struct Recording<'a> {
    inner: &'a dyn MaskSchedule,
    seen: std::cell::RefCell<Vec<BTreeMap<String, Vec<f32>>>>,
}

impl MaskSchedule for Recording<'_> {
    fn initial_mask(&self) -> &Mask {
        self.inner.initial_mask()
    }
    fn update_at(&self, iteration: u64) -> Option<burn_lottery::prune::MaskUpdate> {
        self.inner.update_at(iteration)
    }
    fn next_mask(
        &self,
        iteration: u64,
        current: &Mask,
        weights: &burn_lottery::prune::Weights,
        gradients: Option<&burn_lottery::prune::Weights>,
    ) -> Result<Mask, burn_lottery::prune::PruneError> {
        self.seen.borrow_mut().push(gradients.cloned().unwrap());
        self.inner.next_mask(iteration, current, weights, gradients)
    }
    fn final_kept(&self) -> usize {
        self.inner.final_kept()
    }
}

#[test]
fn rigl_grows_by_the_dense_gradient_of_pruned_weights() {
    let config = config("rigl_gradients", rigl());
    let PruningMethod::Dynamic(dynamic) = &config.method else {
        unreachable!()
    };
    let dense = dense_mask();
    let schedule = dynamic
        .schedule(&dense, dense.total_count() / 4, 30, 3)
        .unwrap();
    let recording = Recording {
        inner: &schedule,
        seen: Default::default(),
    };
    let (steps, _) = run_schedule(&config, &recording);
    let seen = recording.seen.into_inner();
    assert_eq!(seen.len(), 4);
    for (update, gradients) in [5usize, 10, 15, 20].iter().zip(&seen) {
        let before = &steps.0[update - 1].1;
        let after = &steps.0[*update].1;
        for (path, layer) in before.layers() {
            let g = &gradients[path];
            let inactive: Vec<usize> = (0..g.len()).filter(|&i| !layer.kept()[i]).collect();
            // The gradient of pruned weights is there (not masked to zero) ...
            assert!(inactive.iter().any(|&i| g[i] != 0.0), "{path} at {update}");
            // ... and every weight grown has a gradient at least as large
            // as every inactive weight left out.
            let grown: Vec<usize> = inactive
                .iter()
                .copied()
                .filter(|&i| after.layer(path).unwrap().kept()[i])
                .collect();
            let left: Vec<usize> = inactive
                .iter()
                .copied()
                .filter(|&i| !after.layer(path).unwrap().kept()[i])
                .collect();
            let smallest_grown = grown
                .iter()
                .map(|&i| g[i].abs())
                .fold(f32::INFINITY, f32::min);
            let largest_left = left.iter().map(|&i| g[i].abs()).fold(0.0, f32::max);
            assert!(
                grown.is_empty() || smallest_grown >= largest_left,
                "{path} at {update}"
            );
        }
    }
}
