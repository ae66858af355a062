//! Hostile input: every way a user can hand the crate something wrong gets
//! the typed error that names the problem, never a panic, and never damages
//! what is already stored.
//!
//! Parser-level cases already covered elsewhere (and not repeated here):
//! `data_cifar.rs` (missing / truncated / empty / garbage CIFAR-10 files, bad
//! labels), `data_idx.rs` (missing / truncated / trailing bytes / wrong magic
//! / bad gzip / count mismatch / bad labels for IDX), `mask.rs` (truncated,
//! flipped and garbage mask files), `rewind.rs` (truncated and flipped
//! checkpoints), `imp.rs` (a corrupt progress checkpoint, a configuration
//! mismatch). `fuzz.rs` feeds every parser random and mutated files.
//!
//! The experiment-level cases run a small synthetic IMP experiment, apply the
//! hostile condition, and compare the directory byte for byte before and
//! after the failing run.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::common::{Mlp, StopAfter, TinyNet, data, init, ndarray, snapshot, tiny_imp_config};
use burn_lottery::data::{DataError, DataSource, load_fashion_mnist};
use burn_lottery::imp::store::{ExperimentStore, StoreError};
use burn_lottery::imp::{
    ExperimentData, Imp, ImpConfig, ImpError, LevelSummary, RunOptions, Silent,
};
use burn_lottery::mask::{Mask, MaskError, ParamSelector};
use burn_lottery::models::{LeNetConfig, ModelConfigError};
use burn_lottery::prune::{MagnitudePrunerConfig, PruneError, RandomPrunerConfig};
use burn_lottery::rewind::{RewindCheckpoint, RewindError};

// ------------------------------------------------------------------ fixtures

fn config() -> ImpConfig {
    tiny_imp_config("hostile", 2)
}

fn options() -> RunOptions {
    RunOptions {
        checkpoint_every: 4,
        log_every: 5,
        eval_batch_size: 64,
        ..RunOptions::default()
    }
}

fn imp() -> Imp {
    Imp::new(config()).with_options(options())
}

/// Steps of level 0 (30) plus one of level 1: level 0 is finished and level
/// 1 has its mask but no progress checkpoint.
const LEVEL_0_DONE: u64 = 31;
/// 17 steps into level 1 (from k = 5): its progress checkpoint is at 20.
const LEVEL_1_IN_PROGRESS: u64 = 47;

/// A finished experiment under a fresh output root.
fn finished() -> (tempfile::TempDir, PathBuf) {
    let out = tempfile::tempdir().unwrap();
    let report = imp()
        .run(out.path(), &ndarray(), &data(), init, &mut Silent)
        .unwrap();
    (out, report.directory)
}

/// An experiment interrupted after `steps` training steps.
fn interrupted(steps: u64) -> (tempfile::TempDir, PathBuf) {
    let out = tempfile::tempdir().unwrap();
    let err = imp()
        .run(out.path(), &ndarray(), &data(), init, &mut StopAfter(steps))
        .unwrap_err();
    assert!(matches!(err, ImpError::Train { .. }), "{err}");
    let dir = imp().directory(out.path());
    (out, dir)
}

/// Asserts that two snapshots are equal, naming the first file that differs.
fn assert_unchanged(before: &BTreeMap<String, Vec<u8>>, after: &BTreeMap<String, Vec<u8>>) {
    let names = |s: &BTreeMap<String, Vec<u8>>| s.keys().cloned().collect::<Vec<_>>();
    assert_eq!(names(before), names(after), "files added or removed");
    for (name, bytes) in before {
        assert!(&after[name] == bytes, "{name} changed");
    }
}

/// Asserts that two finished experiments hold the same results: every file
/// byte for byte, except the wall-clock time in the summaries (and the
/// manifest, which records the summaries' checksums).
fn assert_same_results(a: &Path, b: &Path) {
    let (a, b) = (snapshot(a), snapshot(b));
    assert_eq!(
        a.keys().collect::<Vec<_>>(),
        b.keys().collect::<Vec<_>>(),
        "file lists differ"
    );
    for (name, bytes) in &a {
        if name == "manifest.json" {
            continue;
        }
        if name.ends_with(".ckpt") {
            // burn records carry random parameter ids: compare the state.
            assert_eq!(
                checkpoint_state(bytes),
                checkpoint_state(&b[name]),
                "{name}"
            );
        } else if name.ends_with("summary.json") {
            let mut x: LevelSummary = serde_json::from_slice(bytes).unwrap();
            let mut y: LevelSummary = serde_json::from_slice(&b[name]).unwrap();
            x.wall_seconds = 0.0;
            y.wall_seconds = 0.0;
            assert_eq!(x, y, "{name}");
        } else {
            assert!(&b[name] == bytes, "{name} differs");
        }
    }
}

/// The iteration and every float value (parameters and BatchNorm
/// statistics) of a stored checkpoint.
fn checkpoint_state(bytes: &[u8]) -> (u64, std::collections::BTreeMap<String, Vec<f32>>) {
    let checkpoint = RewindCheckpoint::from_bytes(bytes).unwrap();
    let model = checkpoint.restore(init(&ndarray(), 99)).unwrap();
    (
        checkpoint.iteration(),
        burn_lottery::params::float_values(&model, |_| true),
    )
}

/// The experiment's store, as a hand edit that keeps the manifest
/// consistent would use it.
fn store(dir: &Path) -> ExperimentStore {
    config().open_store(dir).unwrap()
}

fn lenet(hidden1: usize) -> burn_lottery::models::LeNet {
    LeNetConfig::new()
        .with_input_size(64)
        .with_hidden1(hidden1)
        .with_hidden2(16)
        .init_seeded(&ndarray(), 0)
}

// -------------------------------------------------------------- data files

fn cifar_bytes(records: usize, label_of: impl Fn(usize) -> u8) -> Vec<u8> {
    let mut bytes = Vec::new();
    for r in 0..records {
        bytes.push(label_of(r));
        bytes.extend((0..3072).map(|i| (i + r) as u8));
    }
    bytes
}

fn write_cifar_dir(dir: &Path) {
    for name in burn_lottery::data::cifar::CIFAR10_TRAIN_FILES
        .iter()
        .chain([&burn_lottery::data::cifar::CIFAR10_TEST_FILE])
    {
        std::fs::write(dir.join(name), cifar_bytes(2, |r| r as u8)).unwrap();
    }
}

/// Loads CIFAR-10 from `dir` as an experiment would, checking that the
/// failed load leaves the files as they were.
fn cifar_error(dir: &Path) -> DataError {
    let before = snapshot(dir);
    let err = ExperimentData::cifar10(Some(dir)).unwrap_err();
    assert_unchanged(&before, &snapshot(dir));
    err
}

#[test]
fn cifar10_missing_truncated_and_garbage_files_are_named_and_left_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    write_cifar_dir(dir);
    let ok = ExperimentData::cifar10(Some(dir)).unwrap();
    assert_eq!((ok.train.len(), ok.test.len()), (10, 2));

    // 1. Missing file.
    let test_file = dir.join("test_batch.bin");
    let saved = std::fs::read(&test_file).unwrap();
    std::fs::remove_file(&test_file).unwrap();
    match cifar_error(dir) {
        DataError::MissingFile { path, .. } => assert_eq!(path, test_file),
        other => panic!("unexpected {other}"),
    }
    std::fs::write(&test_file, &saved).unwrap();

    // 2. Truncated file: the message names it with both sizes.
    let third = dir.join("data_batch_3.bin");
    std::fs::write(&third, &saved[..3073 + 100]).unwrap();
    let err = cifar_error(dir);
    assert!(
        matches!(
            &err,
            DataError::Truncated { path, expected: 6146, actual: 3173 } if *path == third
        ),
        "{err}"
    );
    assert!(err.to_string().contains("data_batch_3.bin"), "{err}");

    // 3. Garbage of a whole number of records: the label byte is out of range.
    std::fs::write(&third, vec![0xEE; 2 * 3073]).unwrap();
    let err = cifar_error(dir);
    assert!(
        matches!(&err, DataError::BadLabel { path, index: 0, label: 0xEE, .. } if *path == third),
        "{err}"
    );

    // 4. Empty file.
    std::fs::write(&third, b"").unwrap();
    assert!(matches!(
        cifar_error(dir),
        DataError::Truncated { actual: 0, .. }
    ));

    // 5. A directory where the file should be.
    std::fs::remove_file(&third).unwrap();
    std::fs::create_dir(&third).unwrap();
    let err = cifar_error(dir);
    assert!(
        matches!(&err, DataError::Io { path, .. } if *path == third),
        "{err}"
    );
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

fn idx(magic: u32, dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut bytes = magic.to_be_bytes().to_vec();
    for d in dims {
        bytes.extend_from_slice(&d.to_be_bytes());
    }
    bytes.extend_from_slice(data);
    bytes
}

fn write_fashion_dir(dir: &Path) {
    use burn_lottery::data::idx::*;
    for (stem, n) in [(TRAIN_IMAGES, 6u32), (TEST_IMAGES, 3)] {
        let pixels: Vec<u8> = (0..n * 16).map(|i| i as u8).collect();
        let file = idx(IDX_IMAGES_MAGIC, &[n, 4, 4], &pixels);
        std::fs::write(dir.join(format!("{stem}.gz")), gzip(&file)).unwrap();
    }
    for (stem, n) in [(TRAIN_LABELS, 6u32), (TEST_LABELS, 3)] {
        let labels: Vec<u8> = (0..n).map(|i| (i % 10) as u8).collect();
        let file = idx(IDX_LABELS_MAGIC, &[n], &labels);
        std::fs::write(dir.join(format!("{stem}.gz")), gzip(&file)).unwrap();
    }
}

#[test]
fn fashion_mnist_missing_truncated_and_garbage_files_are_named_and_left_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    write_fashion_dir(dir);
    assert_eq!(
        ExperimentData::fashion_mnist(Some(dir))
            .unwrap()
            .train
            .len(),
        6
    );
    // Through the explicit directory and through the cache (no download):
    // neither deletes a user's file that fails to parse.
    let load = |dir: &Path| -> DataError {
        let before = snapshot(dir);
        let err = ExperimentData::fashion_mnist(Some(dir)).unwrap_err();
        assert_unchanged(&before, &snapshot(dir));
        let cached = DataSource {
            dir: None,
            cache_dir: dir.to_path_buf(),
            download: false,
            ..DataSource::fashion_mnist()
        };
        let again = load_fashion_mnist(&cached).unwrap_err();
        assert_eq!(again.to_string(), err.to_string());
        assert_unchanged(&before, &snapshot(dir));
        err
    };
    let images = dir.join("train-images-idx3-ubyte.gz");
    let good = std::fs::read(&images).unwrap();

    // 1. Missing.
    std::fs::remove_file(&images).unwrap();
    let err = ExperimentData::fashion_mnist(Some(dir)).unwrap_err();
    assert!(
        matches!(&err, DataError::MissingFile { path, .. } if path.ends_with("train-images-idx3-ubyte")),
        "{err}"
    );
    // 2. Truncated gzip stream.
    std::fs::write(&images, &good[..good.len() - 12]).unwrap();
    let err = load(dir);
    assert!(
        matches!(&err, DataError::Gzip { path, .. } if *path == images),
        "{err}"
    );
    // 3. Valid gzip of a truncated IDX file.
    let plain = idx(
        burn_lottery::data::idx::IDX_IMAGES_MAGIC,
        &[6, 4, 4],
        &[7; 50],
    );
    std::fs::write(&images, gzip(&plain)).unwrap();
    let err = load(dir);
    assert!(
        matches!(&err, DataError::Truncated { path, expected: 112, actual: 66 } if *path == images),
        "{err}"
    );
    // 4. Garbage (not gzip, wrong magic).
    std::fs::write(&images, b"<html>404 not found</html>").unwrap();
    let err = load(dir);
    assert!(
        matches!(&err, DataError::WrongMagic { path, found: 0x3c68_746d, .. } if *path == images),
        "{err}"
    );
    assert!(err.to_string().contains("train-images-idx3-ubyte.gz"));
    // 5. A header claiming billions of images is not allocated.
    let huge = idx(
        burn_lottery::data::idx::IDX_IMAGES_MAGIC,
        &[u32::MAX, 4096, 4096],
        &[1; 8],
    );
    std::fs::write(&images, gzip(&huge)).unwrap();
    let err = load(dir);
    assert!(
        matches!(
            &err,
            DataError::Truncated { .. } | DataError::BadFormat { .. }
        ),
        "{err}"
    );
}

// ------------------------------------------------- a mask for another model

#[test]
fn a_mask_for_another_model_is_refused_by_validate_apply_and_rewind() {
    let device = ndarray();
    let model = init(&device, 0); // LeNet 64-24-16-10
    let selector = ParamSelector::default();

    // Another architecture: names the model does not have.
    let tiny_mask = Mask::dense(&TinyNet::new(&device), &selector).unwrap();
    let err = tiny_mask.validate(&model, None).unwrap_err();
    assert!(
        matches!(&err, MaskError::UnknownParameter { path } if path == "conv.weight"),
        "{err}"
    );
    assert!(err.to_string().contains("conv.weight"));
    assert!(matches!(
        tiny_mask.apply(init(&device, 0)),
        Err(MaskError::UnknownParameter { .. })
    ));
    // Same names, other shapes (an Mlp also has fc1 and fc2).
    let mlp_mask = Mask::dense(&Mlp::new(&device), &selector).unwrap();
    assert!(matches!(
        mlp_mask.validate(&model, None),
        Err(MaskError::ShapeMismatch { path, .. }) if path == "fc1.weight"
    ));

    // The same architecture at another size: same names, other shapes.
    let wide = Mask::dense(&lenet(32), &selector).unwrap();
    let err = wide.apply(init(&device, 0)).unwrap_err();
    match &err {
        MaskError::ShapeMismatch {
            path,
            mask_shape,
            param_shape,
        } => {
            assert_eq!(path, "fc1.weight");
            assert_eq!(
                (mask_shape.as_slice(), param_shape.as_slice()),
                (&[64, 32][..], &[64, 24][..])
            );
        }
        other => panic!("unexpected {other}"),
    }
    assert!(err.to_string().contains("fc1.weight"));

    // A mask missing a layer the selector picks.
    let own = Mask::dense(&model, &selector).unwrap();
    let partial = Mask::from_layers(
        own.layers()
            .filter(|(p, _)| *p != "fc3.weight")
            .map(|(p, l)| (p.to_string(), l.clone())),
    );
    assert!(matches!(
        partial.validate(&model, Some(&selector)),
        Err(MaskError::MissingParameter { path }) if path == "fc3.weight"
    ));

    // From files: a mask file and a safetensors file saved for another model.
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("other.bin");
    wide.save(&file).unwrap();
    let loaded = Mask::load(&file).unwrap();
    assert!(matches!(
        loaded.validate(&model, None),
        Err(MaskError::ShapeMismatch { .. })
    ));
    let st = tmp.path().join("other.safetensors");
    tiny_mask.save_safetensors(&st).unwrap();
    assert!(matches!(
        Mask::load_safetensors(&st).unwrap().validate(&model, None),
        Err(MaskError::UnknownParameter { .. })
    ));

    // Rewinding with it is refused before anything is loaded.
    let checkpoint = RewindCheckpoint::capture(&model, 5);
    assert!(matches!(
        checkpoint.rewind(init(&device, 1), &wide),
        Err(RewindError::Mask(MaskError::ShapeMismatch { .. }))
    ));
}

/// Replaces `relative` through the store (the manifest stays consistent, as
/// after a careful hand edit), runs the experiment again, checks that it
/// fails without changing any file, and returns the error.
fn rerun_after_replacing(dir: &Path, out: &Path, relative: &str, bytes: &[u8]) -> ImpError {
    store(dir).write(relative, bytes).unwrap();
    rerun_fails(dir, out)
}

#[test]
fn a_stored_mask_for_another_model_stops_the_run_without_damage() {
    let wide = Mask::dense(&lenet(32), &ParamSelector::default()).unwrap();
    let tiny = Mask::dense(&TinyNet::new(&ndarray()), &ParamSelector::default()).unwrap();
    // Level 1 about to rewind (no progress checkpoint), then level 1 with a
    // progress checkpoint (the mask goes straight to the masked optimizer).
    for steps in [LEVEL_0_DONE, LEVEL_1_IN_PROGRESS] {
        for (mask, what) in [(&wide, "shape"), (&tiny, "names")] {
            let (out, dir) = interrupted(steps);
            let err =
                rerun_after_replacing(&dir, out.path(), "main/level_01/mask.bin", &mask.to_bytes());
            let ok = match what {
                "shape" => matches!(
                    &err,
                    ImpError::Mask(MaskError::ShapeMismatch { path, .. })
                    | ImpError::Rewind(RewindError::Mask(MaskError::ShapeMismatch { path, .. }))
                    if path == "fc1.weight"
                ),
                _ => matches!(
                    &err,
                    ImpError::Mask(MaskError::UnknownParameter { .. })
                        | ImpError::Rewind(RewindError::Mask(MaskError::UnknownParameter { .. }))
                ),
            };
            assert!(ok, "after {steps} steps, mask of other {what}: {err:?}");
        }
    }
}

// ------------------------------------- a checkpoint from another architecture

#[test]
fn a_checkpoint_from_another_architecture_is_refused() {
    let device = ndarray();
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("tiny.ckpt");
    RewindCheckpoint::capture(&TinyNet::new(&device), 5)
        .save(&file)
        .unwrap();
    let checkpoint = RewindCheckpoint::load(&file).unwrap();
    let err = checkpoint.restore(init(&device, 0)).unwrap_err();
    assert!(matches!(err, RewindError::Mismatch(_)), "{err}");
    let own_mask = Mask::dense(&init(&device, 0), &ParamSelector::default()).unwrap();
    assert!(matches!(
        checkpoint.rewind(init(&device, 0), &own_mask),
        Err(RewindError::Mismatch(_))
    ));
    // The same architecture at another width.
    let wide = RewindCheckpoint::capture(&lenet(32), 5);
    let err = wide.restore(init(&device, 0)).unwrap_err();
    assert!(matches!(err, RewindError::Mismatch(_)), "{err}");
    assert!(err.to_string().contains("fc1"), "{err}");
}

#[test]
fn a_stored_checkpoint_from_another_architecture_stops_the_run_without_damage() {
    let device = ndarray();
    let others = [
        RewindCheckpoint::capture(&lenet(32), 5),
        RewindCheckpoint::capture(&TinyNet::new(&device), 5),
    ];
    for other in &others {
        // The rewind point used by level 1.
        let (out, dir) = interrupted(LEVEL_0_DONE);
        let err =
            rerun_after_replacing(&dir, out.path(), "rewind.ckpt", &other.to_bytes().unwrap());
        assert!(
            matches!(err, ImpError::Rewind(RewindError::Mismatch(_))),
            "{err:?}"
        );
        // The trained level 0 that level 1's mask is pruned from.
        let (out, dir) = interrupted(LEVEL_0_DONE);
        store(&dir).remove("main/level_01/mask.bin").unwrap();
        let err = rerun_after_replacing(
            &dir,
            out.path(),
            "main/level_00/final.ckpt",
            &other.to_bytes().unwrap(),
        );
        assert!(
            matches!(err, ImpError::Rewind(RewindError::Mismatch(_))),
            "{err:?}"
        );
    }
}

// --------------------------------------------------- pruning fractions

#[test]
fn pruning_fractions_0_1_1_5_and_nan_are_refused_before_any_work() {
    let (out, dir) = finished();
    let before = snapshot(out.path());
    for value in [0.0, 1.0, 1.5, f64::NAN, -0.2, f64::INFINITY] {
        let check = |err: PruneError, name: &str| match &err {
            PruneError::InvalidFraction { name: n, value: v } => {
                assert!(n.contains(name), "{err}");
                assert!(v.to_bits() == value.to_bits(), "{err}");
                assert!(err.to_string().contains(&value.to_string()), "{err}");
            }
            other => panic!("{value}: unexpected {other}"),
        };
        // The pruners directly.
        check(
            MagnitudePrunerConfig::new(value).init().unwrap_err(),
            "fraction_of_remaining",
        );
        check(
            MagnitudePrunerConfig::new(0.2)
                .with_layer_rate("fc3.weight", value)
                .init()
                .unwrap_err(),
            "override `fc3.weight`",
        );
        check(
            RandomPrunerConfig {
                fraction_of_remaining: value,
                ..RandomPrunerConfig::default()
            }
            .init()
            .unwrap_err(),
            "fraction_of_remaining",
        );
        // An experiment: refused by validation, before any directory is made
        // or any finished experiment touched.
        let mut bad = config();
        bad.pruning.fraction_of_remaining = value;
        let err = Imp::new(bad.clone())
            .run(out.path(), &ndarray(), &data(), init, &mut Silent)
            .unwrap_err();
        match err {
            ImpError::Prune(e) => check(e, "fraction_of_remaining"),
            other => panic!("{value}: unexpected {other}"),
        }
        assert_unchanged(&before, &snapshot(out.path()));
        // The same from JSON (NaN and infinity cannot be written in JSON).
        if value.is_finite() {
            let mut json = serde_json::to_value(config()).unwrap();
            json["pruning"]["fraction_of_remaining"] = serde_json::json!(value);
            let parsed: ImpConfig = serde_json::from_value(json).unwrap();
            assert!(matches!(
                Imp::new(parsed).validate(),
                Err(ImpError::Prune(PruneError::InvalidFraction { .. }))
            ));
        }
    }
    // The finished experiment still reads back.
    let report = imp()
        .run(out.path(), &ndarray(), &data(), init, &mut Silent)
        .unwrap();
    assert_eq!((report.trained_levels, report.directory), (0, dir));
}

// ------------------------------------------------------ rewind beyond T

#[test]
fn a_rewind_iteration_beyond_training_is_refused_before_any_work() {
    let (out, _dir) = finished();
    let before = snapshot(out.path());
    for k in [31, 1_000_000, u64::MAX] {
        let mut bad = config();
        bad.rewind_iteration = k;
        let err = Imp::new(bad)
            .run(out.path(), &ndarray(), &data(), init, &mut Silent)
            .unwrap_err();
        assert!(matches!(err, ImpError::Config(_)), "{err}");
        let message = err.to_string();
        assert!(
            message.contains(&format!("rewind_iteration {k}")) && message.contains("30"),
            "{message}"
        );
        assert_unchanged(&before, &snapshot(out.path()));
    }
}

// ---------------------------------------------- a selector matching nothing

#[test]
fn a_selector_that_matches_no_parameter_is_refused_before_any_work() {
    let device = ndarray();
    let model = init(&device, 0);
    let cases = [
        (
            ParamSelector::default().include("conv*.weight"),
            "pattern conv*.weight",
        ),
        (
            ParamSelector::default().exclude("head.weight"),
            "pattern head.weight",
        ),
        (
            ParamSelector::default()
                .include("fc1.weight")
                .exclude("fc1.weight"),
            "empty",
        ),
        (
            ParamSelector {
                min_rank: 3,
                ..ParamSelector::default()
            },
            "empty",
        ),
    ];
    let (out, _dir) = finished();
    let before = snapshot(out.path());
    for (selector, expected) in cases {
        let check = |err: &MaskError| match (err, expected.strip_prefix("pattern ")) {
            (MaskError::PatternMatchesNothing { pattern }, Some(p)) => {
                assert_eq!(pattern, p);
                assert!(err.to_string().contains(p));
            }
            (MaskError::EmptySelection, None) => {}
            (other, _) => panic!("{expected}: unexpected {other}"),
        };
        check(&Mask::dense(&model, &selector).unwrap_err());
        let mut bad = config();
        bad.selector = selector;
        match Imp::new(bad).run(out.path(), &device, &data(), init, &mut Silent) {
            Err(ImpError::Mask(e)) => check(&e),
            other => panic!("{expected}: unexpected {other:?}"),
        }
        // No directory was created for the refused configuration.
        assert_unchanged(&before, &snapshot(out.path()));
    }
}

// -------------------------------------------- an output directory not writable

/// Whether permission bits stop this process (false for root).
fn permissions_enforced() -> bool {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o555)).unwrap();
    let denied = std::fs::write(tmp.path().join("probe"), b"x").is_err();
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    denied
}

fn expect_store_io(err: ImpError, path: &Path) {
    match &err {
        ImpError::Store(StoreError::Io { path: p, .. }) => {
            assert!(p.starts_with(path) || path.starts_with(p), "{err}")
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(
        err.to_string().contains(&path.display().to_string()),
        "{err}"
    );
}

#[test]
fn an_output_directory_that_cannot_be_written_is_an_io_error_naming_it() {
    let device = ndarray();
    let tmp = tempfile::tempdir().unwrap();

    // 1. An output root below a regular file (fails for root too).
    let file = tmp.path().join("not-a-directory");
    std::fs::write(&file, b"user data").unwrap();
    let root = file.join("out");
    let err = imp()
        .run(&root, &device, &data(), init, &mut Silent)
        .unwrap_err();
    expect_store_io(err, &root);
    assert_eq!(std::fs::read(&file).unwrap(), b"user data");

    // 2. A directory no process may write, root included: sysfs (read-only
    //    in containers, EPERM for new entries otherwise).
    let sys = Path::new("/sys/burn-lottery-hostile");
    assert!(Path::new("/sys").is_dir(), "this test needs Linux's /sys");
    let err = imp()
        .run(sys, &device, &data(), init, &mut Silent)
        .unwrap_err();
    expect_store_io(err, sys);

    // 3. A directory without write permission (skipped for root, which
    //    ignores permission bits; cases 1, 2 and 4 cover root).
    if permissions_enforced() {
        use std::os::unix::fs::PermissionsExt;
        let locked = tmp.path().join("locked");
        std::fs::create_dir(&locked).unwrap();
        std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o555)).unwrap();
        let err = imp()
            .run(&locked, &device, &data(), init, &mut Silent)
            .unwrap_err();
        std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o755)).unwrap();
        expect_store_io(err, &locked);
    } else {
        eprintln!(
            "permission bits are not enforced for root: case 3 runs as nobody in an_unwritable_directory_is_an_io_error_for_an_unprivileged_user"
        );
    }

    // 4. Inside an experiment: level 1's directory cannot be created (a
    //    regular file is in the way). Level 0 stays as it was, and once the
    //    obstacle is gone the run completes as if nothing had happened.
    let (out, dir) = interrupted(LEVEL_0_DONE);
    let blocker = dir.join("main/level_01");
    store(&dir).remove("main/level_01/mask.bin").unwrap();
    std::fs::remove_dir(&blocker).unwrap();
    std::fs::write(&blocker, b"in the way").unwrap();
    let before = snapshot(&dir);
    let err = imp()
        .run(out.path(), &device, &data(), init, &mut Silent)
        .unwrap_err();
    expect_store_io(err, &blocker);
    assert_unchanged(&before, &snapshot(&dir));
    std::fs::remove_file(&blocker).unwrap();
    let resumed = imp()
        .run(out.path(), &device, &data(), init, &mut Silent)
        .unwrap();
    assert_eq!(resumed.trained_levels, 2, "level 0 is not retrained");
    let (_straight_out, straight) = finished();
    assert_same_results(&straight, &dir);
}

// ------------------------------------------------ a full disk during a write

const FULL_DISK_CHILD: &str = "BURN_LOTTERY_HOSTILE_FULL_DISK_DIR";
const FULL_DISK_MARKER: &str = "full-disk child: failed as expected writing ";

/// In the child process (file size limit 8 KiB): resume the experiment and
/// expect the first file above the limit (level 1's `final.ckpt`, about 9
/// KB) to fail with "File too large", reported as a store I/O error naming
/// it.
fn full_disk_child(out: &Path) {
    let options = RunOptions {
        checkpoint_every: 0,
        ..options()
    };
    let err = Imp::new(config())
        .with_options(options)
        .run(out, &ndarray(), &data(), init, &mut Silent)
        .unwrap_err();
    match &err {
        ImpError::Store(StoreError::Io { path, source })
            if path.ends_with("main/level_01/final.ckpt") && source.raw_os_error() == Some(27) =>
        {
            assert!(err.to_string().contains("final.ckpt"), "{err}");
            println!("{FULL_DISK_MARKER}{}", path.display());
        }
        other => panic!("unexpected {other:?}"),
    }
}

/// The name libtest knows a test of this module by (`hostile::name` inside
/// the integration binary).
fn test_name(function: &str) -> String {
    match module_path!().split_once("::") {
        Some((_crate, module)) => format!("{module}::{function}"),
        None => function.to_string(),
    }
}

#[test]
fn a_full_disk_during_a_write_fails_cleanly_and_a_later_run_completes_identically() {
    if let Some(out) = std::env::var_os(FULL_DISK_CHILD) {
        full_disk_child(Path::new(&out));
        return;
    }
    let (out, dir) = interrupted(LEVEL_0_DONE);
    let before = snapshot(&dir);
    // The child re-runs this test binary, on this test only, under
    // `ulimit -f 16` (16 x 512 bytes) with SIGXFSZ ignored, so an oversized
    // write fails with EFBIG instead of killing the process.
    let exe = std::env::current_exe().unwrap();
    let output = std::process::Command::new("sh")
        .arg("-c")
        .arg("trap '' XFSZ; ulimit -f 16 && exec \"$0\" \"$@\"")
        .arg(&exe)
        .args([
            "--exact",
            &test_name(
                "a_full_disk_during_a_write_fails_cleanly_and_a_later_run_completes_identically",
            ),
            "--nocapture",
            "--test-threads=1",
        ])
        .env(FULL_DISK_CHILD, out.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stdout.contains(FULL_DISK_MARKER),
        "child failed: {}\n{stdout}\n{stderr}",
        output.status
    );
    // Nothing stored was damaged, no temporary file was left behind.
    assert_unchanged(&before, &snapshot(&dir));
    // With space again, the run completes exactly as a straight run.
    let resumed = imp()
        .run(out.path(), &ndarray(), &data(), init, &mut Silent)
        .unwrap();
    assert_eq!(resumed.trained_levels, 2);
    let (_straight_out, straight) = finished();
    assert_same_results(&straight, &dir);
}

// -------------------------------------------- a directory edited by hand

/// Runs the finished-or-interrupted experiment again and expects an error;
/// every file is as it was before the run.
fn rerun_fails(dir: &Path, out: &Path) -> ImpError {
    let before = snapshot(dir);
    let err = imp()
        .run(out, &ndarray(), &data(), init, &mut Silent)
        .unwrap_err();
    assert_unchanged(&before, &snapshot(dir));
    err
}

#[test]
fn a_deleted_mask_is_recomputed_to_the_same_result() {
    // Deleting a file is how a user asks for it to be recomputed: the store
    // forgets the missing record and the run makes the file again, here by
    // pruning level 0's stored final weights (deterministic on ndarray).
    let (out, dir) = finished();
    std::fs::remove_file(dir.join("main/level_01/mask.bin")).unwrap();
    let rerun = imp()
        .run(out.path(), &ndarray(), &data(), init, &mut Silent)
        .unwrap();
    // The mask is recomputed from level 0's stored weights: no training.
    assert_eq!(rerun.trained_levels, 0);
    assert!(dir.join("main/level_01/mask.bin").exists());
    let (_straight_out, straight) = finished();
    assert_same_results(&straight, &dir);
}

#[test]
fn an_edited_summary_or_checkpoint_fails_its_checksum() {
    for (file, edit) in [
        ("main/level_02/summary.json", "accuracy"),
        ("main/level_00/final.ckpt", "truncate"),
        ("main/level_01/mask.bin", "flip"),
        ("rewind.ckpt", "flip"),
    ] {
        let (out, dir) = finished();
        let path = dir.join(file);
        let mut bytes = std::fs::read(&path).unwrap();
        match edit {
            "accuracy" => {
                let mut summary: LevelSummary = serde_json::from_slice(&bytes).unwrap();
                summary.metrics.insert("accuracy", 0.99);
                bytes = serde_json::to_vec_pretty(&summary).unwrap();
            }
            "truncate" => bytes.truncate(bytes.len() / 2),
            _ => {
                let mid = bytes.len() / 2;
                bytes[mid] ^= 0x40;
            }
        }
        std::fs::write(&path, &bytes).unwrap();
        // The run reads every file it needs through the manifest: the edited
        // one is refused, by name. (A finished experiment needs only the
        // summaries and masks; verify_all checks the rest.)
        let needed = file.ends_with("summary.json") || file.ends_with("mask.bin");
        let err = if needed {
            match rerun_fails(&dir, out.path()) {
                ImpError::Store(e) => e,
                other => panic!("{file}: unexpected {other}"),
            }
        } else {
            store(&dir).verify_all().unwrap_err()
        };
        assert!(
            matches!(&err, StoreError::Checksum { path: p, .. } if *p == path),
            "{file}: {err}"
        );
        assert!(err.to_string().contains(file), "{err}");
    }
}

#[test]
fn a_stray_file_is_ignored_and_the_results_are_unchanged() {
    let (out, dir) = finished();
    let before = snapshot(&dir);
    std::fs::write(dir.join("notes.txt"), b"my notes").unwrap();
    std::fs::write(dir.join("main/level_01/plot.png"), b"\x89PNG").unwrap();
    let report = imp()
        .run(out.path(), &ndarray(), &data(), init, &mut Silent)
        .unwrap();
    assert_eq!(report.trained_levels, 0);
    let mut after = snapshot(&dir);
    assert_eq!(after.remove("notes.txt").unwrap(), b"my notes");
    assert_eq!(after.remove("main/level_01/plot.png").unwrap(), b"\x89PNG");
    assert_unchanged(&before, &after);
}

#[test]
fn a_changed_stored_config_is_refused_and_named() {
    // Edited by hand: config.json no longer matches its checksum.
    let (out, dir) = finished();
    let path = dir.join("config.json");
    let mut json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    json["levels"] = serde_json::json!(5);
    std::fs::write(&path, serde_json::to_vec_pretty(&json).unwrap()).unwrap();
    let err = rerun_fails(&dir, out.path());
    assert!(
        matches!(&err, ImpError::Store(StoreError::Checksum { path: p, .. }) if *p == path),
        "{err}"
    );

    // Edited along with the manifest: the settings that differ are named.
    let (out, dir) = finished();
    let mut store = store(&dir);
    store
        .write("config.json", &serde_json::to_vec_pretty(&json).unwrap())
        .unwrap();
    drop(store);
    let err = rerun_fails(&dir, out.path());
    match &err {
        ImpError::Store(StoreError::ConfigMismatch { path, differences }) => {
            assert_eq!(*path, dir);
            assert_eq!(differences, &vec!["levels: 5 -> 2".to_string()]);
        }
        other => panic!("unexpected {other}"),
    }

    // A garbage manifest is named.
    let (out, dir) = finished();
    std::fs::write(dir.join("manifest.json"), b"{ \"files\": [1, 2").unwrap();
    let err = rerun_fails(&dir, out.path());
    assert!(
        matches!(&err, ImpError::Store(StoreError::BadManifest { path, .. }) if path.ends_with("manifest.json")),
        "{err}"
    );
}

#[test]
fn a_level_removed_through_the_store_is_recomputed_identically() {
    // Removing a level's files together with their manifest entries (the
    // clean way to ask for a recompute) gives the identical result.
    let (_straight_out, straight) = finished();
    let (out, dir) = finished();
    let mut store = store(&dir);
    for file in [
        "summary.json",
        "final.ckpt",
        "metrics.csv",
        "sparsity.json",
        "mask.bin",
    ] {
        store.remove(&format!("main/level_02/{file}")).unwrap();
    }
    drop(store);
    let report = imp()
        .run(out.path(), &ndarray(), &data(), init, &mut Silent)
        .unwrap();
    assert_eq!(report.trained_levels, 1);
    assert_same_results(&straight, &dir);
}

// ------------------------------------------------ model configurations

#[test]
fn invalid_model_configurations_are_typed_errors() {
    use burn_lottery::models::{ResNetConfig, VggConfig, VggDepth};
    let device = ndarray();
    for depth in [0, 2, 7, 21] {
        let config = ResNetConfig::new().with_depth(depth);
        assert_eq!(
            config.validate(),
            Err(ModelConfigError::InvalidDepth(depth))
        );
        let err = config.try_init(&device).unwrap_err();
        assert!(err.to_string().contains(&depth.to_string()), "{err}");
    }
    let zero =
        |model: &'static str, setting: &'static str| ModelConfigError::ZeroSize { model, setting };
    let resnet = ResNetConfig::new();
    assert_eq!(
        resnet.clone().with_width_multiplier(0).validate(),
        Err(zero("ResNet", "width_multiplier"))
    );
    assert_eq!(
        resnet.clone().with_input_channels(0).validate(),
        Err(zero("ResNet", "input_channels"))
    );
    assert_eq!(
        resnet
            .clone()
            .with_num_classes(0)
            .try_init_seeded(&device, 0)
            .unwrap_err(),
        zero("ResNet", "num_classes")
    );
    assert!(matches!(
        resnet.with_width_multiplier(usize::MAX / 2).validate(),
        Err(ModelConfigError::TooLarge {
            setting: "width_multiplier",
            ..
        })
    ));
    let vgg = VggConfig::new(VggDepth::Vgg11);
    assert_eq!(
        vgg.clone()
            .with_num_classes(0)
            .try_init(&device)
            .unwrap_err(),
        zero("VGG", "num_classes")
    );
    assert_eq!(
        vgg.with_input_channels(0).validate(),
        Err(zero("VGG", "input_channels"))
    );
    let lenet = LeNetConfig::new();
    for (config, setting) in [
        (lenet.clone().with_input_size(0), "input_size"),
        (lenet.clone().with_hidden1(0), "hidden1"),
        (lenet.clone().with_hidden2(0), "hidden2"),
        (lenet.clone().with_num_classes(0), "num_classes"),
    ] {
        let err = config.try_init_seeded(&device, 0).unwrap_err();
        assert_eq!(err, zero("LeNet", setting));
        assert!(err.to_string().contains(setting), "{err}");
    }
    // A configuration read from JSON goes through the same check.
    let json = r#"{"depth": 22, "width_multiplier": 1, "input_channels": 3, "num_classes": 10}"#;
    let parsed: ResNetConfig = serde_json::from_str(json).unwrap();
    assert_eq!(parsed.validate(), Err(ModelConfigError::InvalidDepth(22)));
    // Valid configurations still build.
    assert!(
        LeNetConfig::new()
            .with_input_size(64)
            .try_init(&device)
            .is_ok()
    );
}

#[test]
fn a_mask_shape_whose_size_overflows_is_a_typed_error() {
    let err =
        burn_lottery::mask::LayerMask::from_kept("w", vec![usize::MAX, 3], vec![]).unwrap_err();
    assert!(
        matches!(&err, MaskError::ShapeOverflow { path, .. } if path == "w"),
        "{err}"
    );
}

#[test]
fn a_gzip_file_that_expands_beyond_the_limit_is_refused() {
    use burn_lottery::data::idx::{MAX_IDX_DECOMPRESSED, maybe_gunzip_limited};
    let path = Path::new("bomb.gz");
    let bomb = gzip(&vec![0u8; 1 << 20]);
    assert!(bomb.len() < 8192, "{}", bomb.len());
    let err = maybe_gunzip_limited(bomb.clone(), path, 1 << 16).unwrap_err();
    assert!(
        matches!(&err, DataError::Gzip { path: p, message } if p == path && message.contains("65536")),
        "{err}"
    );
    // At the limit exactly it is accepted.
    assert_eq!(
        maybe_gunzip_limited(bomb, path, 1 << 20).unwrap().len(),
        1 << 20
    );
    // Fashion-MNIST's training images (47,040,016 bytes) fit.
    const _: () = assert!(MAX_IDX_DECOMPRESSED >= 47_040_016);
}

#[test]
fn a_model_that_does_not_fit_the_images_is_a_typed_error() {
    // LeNet for 28x28 images given the 8x8 synthetic ones.
    let out = tempfile::tempdir().unwrap();
    let wrong =
        |device: &burn::tensor::Device, seed: u64| LeNetConfig::new().init_seeded(device, seed);
    let err = imp()
        .run(out.path(), &ndarray(), &data(), wrong, &mut Silent)
        .unwrap_err();
    assert!(
        matches!(
            &err,
            ImpError::Model(ModelConfigError::DoesNotFitData { image_shape: [1, 8, 8], num_classes: 10, reason })
                if reason.contains("784")
        ),
        "{err}"
    );
    // The right input size but 7 classes for a 10-class dataset.
    let seven = |device: &burn::tensor::Device, seed: u64| {
        LeNetConfig::new()
            .with_input_size(64)
            .with_num_classes(7)
            .init_seeded(device, seed)
    };
    let err = imp()
        .run(out.path(), &ndarray(), &data(), seven, &mut Silent)
        .unwrap_err();
    assert!(
        matches!(&err, ImpError::Model(ModelConfigError::DoesNotFitData { reason, .. }) if reason.contains("[1, 7]")),
        "{err}"
    );
    // Nothing was created.
    assert!(snapshot(out.path()).is_empty());
}

#[test]
fn an_experiment_with_any_float_setting_reopens() {
    // serde_json's default float parser can be off by one ulp on long
    // mantissas; the stored config.json must still compare equal.
    let out = tempfile::tempdir().unwrap();
    for lr in [
        4.0785931512275587e-227,
        1.2e-3,
        0.1 + 0.2,
        2.2250738585072014e-308,
    ] {
        let mut config = config();
        config.training.optimizer = burn_lottery::train::recipe::OptimizerConfig::adam(lr);
        config.target_density = Some(lr.min(0.5));
        let dir = out.path().join(config.directory_name());
        config.open_store(&dir).unwrap();
        let stored = std::fs::read(dir.join("config.json")).unwrap();
        // Reopening accepts the stored config and leaves it as it was.
        config.open_store(&dir).unwrap();
        assert_eq!(std::fs::read(dir.join("config.json")).unwrap(), stored);
    }
    // One directory per setting: no reopening was taken for another
    // configuration.
    assert_eq!(std::fs::read_dir(out.path()).unwrap().count(), 4);
}

#[test]
fn a_checkpoint_holding_another_dtype_is_a_mismatch() {
    // Found by fuzzing: a checkpoint whose tensor dtype was edited from F32
    // (and its CRC recomputed) made burn panic while loading it.
    let device = ndarray();
    let model = burn::nn::LinearConfig::new(3, 2).init(&device);
    let valid = RewindCheckpoint::capture(&model, 7).to_bytes().unwrap();
    let at = valid
        .windows(3)
        .position(|w| w == b"F32")
        .expect("the burnpack metadata names the dtype");
    for dtype in [b"U32", b"I32", b"F64", b"I64", b"U64", b"F16", b"U16"] {
        let mut bytes = valid.clone();
        bytes[at..at + 3].copy_from_slice(dtype);
        let body = bytes.len() - 4;
        let crc = burn_lottery::io::checksum(&bytes[..body]);
        bytes[body..].copy_from_slice(&crc.to_le_bytes());
        let name = String::from_utf8_lossy(dtype);
        match RewindCheckpoint::from_bytes(&bytes) {
            Ok(checkpoint) => {
                match checkpoint.restore(burn::nn::LinearConfig::new(3, 2).init(&device)) {
                    Err(RewindError::Mismatch(_)) => {}
                    other => panic!("{name}: unexpected {other:?}"),
                }
            }
            Err(e) => assert!(matches!(e, RewindError::Corrupt { .. }), "{name}: {e}"),
        }
    }
}

// ------------------------- a real full file system, a real unwritable one

/// Whether this process is root (`id -u`).
fn is_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// Environment variable: `1` makes the tests that need root mandatory (a
/// test that cannot run fails instead of being left out); `.ci/run` sets
/// it. `CI=true` does the same unless this variable is `0`.
const REQUIRE_ROOT: &str = "BURN_LOTTERY_REQUIRE_ROOT";

/// Whether the tests that need root must run here (see [`REQUIRE_ROOT`]).
fn root_tests_required() -> bool {
    match std::env::var(REQUIRE_ROOT).as_deref() {
        Ok("1") => true,
        Ok("0") => false,
        _ => std::env::var("CI").as_deref() == Ok("true"),
    }
}

/// Whether a test that needs root may be left out here: only when not
/// required (see [`REQUIRE_ROOT`]); where required, one that cannot run
/// fails loudly instead. Once it runs, a mount or user change that fails
/// fails the test too.
fn root_required(test: &str) -> bool {
    if is_root() {
        return false;
    }
    assert!(
        !root_tests_required(),
        "{test} needs root (to mount a file system or change user) and is required here \
         ({REQUIRE_ROOT}=1 or CI=true), but this process is not root"
    );
    eprintln!("{test}: not run (needs root; {REQUIRE_ROOT}=1 makes it fail instead)");
    true
}

/// A tmpfs mounted for the test, unmounted when dropped.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(bytes: u64) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={bytes}")])
            .arg("tmpfs")
            .arg(dir.path())
            .status()
            .unwrap();
        assert!(status.success(), "mount -t tmpfs failed: {status}");
        Self { dir }
    }

    fn resize(&self, bytes: u64) {
        let status = std::process::Command::new("mount")
            .args(["-o", &format!("remount,size={bytes}")])
            .arg(self.dir.path())
            .status()
            .unwrap();
        assert!(status.success(), "remount failed: {status}");
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg(self.dir.path())
            .status();
    }
}

/// Copies the tree `from` into `to` (created).
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// Pages of 4 KiB the files under `dir` occupy on a tmpfs.
fn tmpfs_bytes(dir: &Path) -> u64 {
    snapshot(dir)
        .values()
        .map(|b| (b.len() as u64).div_ceil(4096) * 4096)
        .sum()
}

#[test]
fn a_full_file_system_during_a_checkpoint_is_a_typed_error_and_loses_nothing() {
    if root_required("a_full_file_system_during_a_checkpoint") {
        return;
    }
    // Level 0 finished on an ordinary disk, then moved to a tmpfs with
    // three pages to spare: level 1's lock holder record, its mask and its
    // metrics fit, its first checkpoint (about 20 KB with Adam's moments)
    // does not.
    let (_out, dir) = interrupted(LEVEL_0_DONE);
    let used = tmpfs_bytes(&dir);
    let disk = Tmpfs::mount(used + 3 * 4096);
    let out = disk.path().join("out");
    let moved = out.join(dir.file_name().unwrap());
    copy_tree(&dir, &moved);
    let before = snapshot(&moved);
    let err = imp()
        .run(&out, &ndarray(), &data(), init, &mut Silent)
        .unwrap_err();
    match &err {
        ImpError::Store(StoreError::Io { path, source }) => {
            assert_eq!(source.raw_os_error(), Some(28), "ENOSPC expected: {err}");
            assert!(path.starts_with(&moved), "{err}");
            assert!(
                path.extension().is_some_and(|e| e == "ckpt"),
                "the first file that does not fit is a checkpoint: {err}"
            );
            assert!(err.to_string().contains(&path.display().to_string()));
            assert!(err.to_string().contains("No space left on device"), "{err}");
        }
        other => panic!("unexpected {other:?}"),
    }
    // Every file recorded before is intact; nothing half written is left.
    let after = snapshot(&moved);
    for (name, bytes) in &before {
        if name != "manifest.json" {
            assert!(after.get(name) == Some(bytes), "{name} was lost or changed");
        }
    }
    assert!(
        !after.keys().any(|n| n.contains(".tmp-")),
        "{:?}",
        after.keys()
    );
    store(&moved).verify_all().unwrap();
    // With space again, the run completes as an uninterrupted one.
    disk.resize(64 << 20);
    let resumed = imp()
        .run(&out, &ndarray(), &data(), init, &mut Silent)
        .unwrap();
    assert_eq!(resumed.trained_levels, 2, "level 0 is not retrained");
    let (_straight_out, straight) = finished();
    assert_same_results(&straight, &moved);
}

const UNPRIVILEGED_CHILD: &str = "BURN_LOTTERY_HOSTILE_UNPRIVILEGED_DIR";
const UNPRIVILEGED_MARKER: &str = "unprivileged child: refused as expected: ";

/// In the child (user `nobody`): the output root and a finished level's
/// experiment directory belong to root and are not writable; both runs
/// fail with a store I/O error naming them, EACCES.
fn unprivileged_child(root: &Path) {
    for out in [root.join("locked"), root.join("experiment")] {
        let err = imp()
            .run(&out, &ndarray(), &data(), init, &mut Silent)
            .unwrap_err();
        match &err {
            ImpError::Store(StoreError::Io { path, source })
                if source.raw_os_error() == Some(13) && path.starts_with(&out) =>
            {
                println!("{UNPRIVILEGED_MARKER}{err}");
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}

#[test]
fn an_unwritable_directory_is_an_io_error_for_an_unprivileged_user() {
    if let Some(root) = std::env::var_os(UNPRIVILEGED_CHILD) {
        unprivileged_child(Path::new(&root));
        return;
    }
    if root_required("an_unwritable_directory_is_an_io_error_for_an_unprivileged_user") {
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &Path, m: u32| {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap();
    };
    // `nobody` can read /tmp but not the test binary under /root: a copy.
    let root = tempfile::tempdir().unwrap();
    mode(root.path(), 0o755);
    let exe = root.path().join("tests");
    std::fs::copy(std::env::current_exe().unwrap(), &exe).unwrap();
    mode(&exe, 0o755);
    let locked = root.path().join("locked");
    std::fs::create_dir(&locked).unwrap();
    mode(&locked, 0o755);
    // An experiment interrupted after level 0, readable by all.
    let (out, dir) = interrupted(LEVEL_0_DONE);
    let experiment = root.path().join("experiment");
    copy_tree(out.path(), &experiment);
    let moved = experiment.join(dir.file_name().unwrap());
    let before = snapshot(&experiment);
    let output = std::process::Command::new("setpriv")
        .args(["--reuid=nobody", "--regid=nogroup", "--clear-groups"])
        .arg(&exe)
        .args([
            "--exact",
            &test_name("an_unwritable_directory_is_an_io_error_for_an_unprivileged_user"),
            "--nocapture",
            "--test-threads=1",
        ])
        .env(UNPRIVILEGED_CHILD, root.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stdout.matches(UNPRIVILEGED_MARKER).count() == 2,
        "child failed: {}\n{stdout}\n{stderr}",
        output.status
    );
    // Nothing was changed, and the experiment still resumes (as root).
    assert_unchanged(&before, &snapshot(&experiment));
    let resumed = imp()
        .run(&experiment, &ndarray(), &data(), init, &mut Silent)
        .unwrap();
    assert_eq!(resumed.trained_levels, 2);
    let (_straight_out, straight) = finished();
    assert_same_results(&straight, &moved);
}

// ------------------------------------- optimizer state that does not fit

/// `bytes` (optimizer state) with the state of parameter `from` passed off
/// as that of parameter `to` (whose own state is dropped): ids that exist,
/// shapes that do not fit.
fn pass_state_off(bytes: &[u8], from: u64, to: u64) -> Vec<u8> {
    use burn::store::burn_pack::{Reader, Tensor, Writer};
    let reader = Reader::from_bytes(burn::tensor::Bytes::from_bytes_vec(bytes.to_vec())).unwrap();
    let rename = |name: &str| match name.split_once('.') {
        Some((id, rest)) if id == from.to_string() => format!("{to}.{rest}"),
        _ => name.to_string(),
    };
    let owned_by = |name: &str, id: u64| name.starts_with(&format!("{id}."));
    let scalars = reader.scalars().clone();
    let metadata = reader.metadata().clone();
    let tensors: Vec<Tensor> = reader
        .into_tensors()
        .unwrap()
        .into_iter()
        .filter_map(|t| {
            let (name, dtype, shape, id, data) = t.into_parts().unwrap();
            if owned_by(&name, to) {
                return None;
            }
            let id = if id == Some(from) { Some(to) } else { id };
            Some(Tensor::new(rename(&name), dtype, shape, id, data))
        })
        .collect();
    let mut writer = Writer::new(tensors);
    for (key, value) in scalars.iter().filter(|(k, _)| !owned_by(k, to)) {
        writer = writer.with_scalar(&rename(key), *value);
    }
    for (key, value) in &metadata {
        writer = writer.with_metadata(key, value);
    }
    writer.into_bytes().unwrap().to_vec()
}

#[test]
fn optimizer_state_that_does_not_fit_the_model_is_a_typed_error_not_a_panic() {
    use burn::optim::AdamConfig;
    use burn_lottery::params::float_params;
    let device = ndarray().autodiff();
    let step = |model: Mlp, optim: &mut burn::optim::ModuleOptimizer| {
        let x = burn::tensor::Tensor::<2>::ones([4, 16], &device);
        let loss = model.forward(x).powf_scalar(2.0).mean();
        let grads = burn::optim::GradientsParams::from_grads(loss.backward(), &model);
        optim.step(0.01, model, grads)
    };
    let mut optim = AdamConfig::new().init();
    let model = step(Mlp::new(&device), &mut optim);
    let state = optim.into_bytes().unwrap().to_vec();
    let id = |path: &str| {
        let params = float_params(&model);
        params.iter().find(|p| p.path == path).unwrap().id.val()
    };
    // 1. The state of another model (ids the model does not have).
    let mut other = AdamConfig::new().init();
    let _ = step(Mlp::new(&device), &mut other);
    // 2. This model's ids with fc1's moments ([16, 32]) given to fc2's weight ([32, 4]).
    let swapped = pass_state_off(&state, id("fc1.weight"), id("fc2.weight"));
    for (case, checkpoint) in [
        (
            "another model's",
            RewindCheckpoint::capture(&model, 1)
                .with_optimizer(&other)
                .unwrap(),
        ),
        ("swapped", {
            let loaded = AdamConfig::new()
                .init()
                .from_bytes(burn::tensor::Bytes::from_bytes_vec(swapped))
                .unwrap();
            RewindCheckpoint::capture(&model, 1)
                .with_optimizer(&loaded)
                .unwrap()
        }),
    ] {
        // The checkpoint is well formed: its checksum holds.
        let parsed = RewindCheckpoint::from_bytes(&checkpoint.to_bytes().unwrap()).unwrap();
        let restored = parsed.restore(Mlp::new(&device)).unwrap();
        match parsed.restore_optimizer_for(AdamConfig::new().init(), &restored) {
            Err(RewindError::Mismatch(message)) => {
                assert!(message.contains("optimizer state"), "{case}: {message}")
            }
            Err(other) => panic!("{case}: unexpected {other:?}"),
            Ok(_) => panic!("{case}: the state was accepted"),
        }
    }
}
