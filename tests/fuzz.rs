//! Fuzzing (proptest) of every parser of an external format: CIFAR-10
//! binary, IDX (plain and gzip), mask files (binary, JSON, safetensors),
//! rewind checkpoints, the IMP configuration and training recipe (JSON), the
//! experiment manifest and the report CSVs.
//!
//! Each target feeds the parser arbitrary bytes and, more usefully, valid
//! files with random mutations (bit flips, byte writes, truncations,
//! insertions, deletions, splices and length-field edits); for formats with a
//! trailing CRC-32 the checksum is also recomputed after mutating, so the
//! mutations reach the structure parser behind it. The property is always:
//! no panic, every error is the parser's typed error, and whatever parses
//! round-trips.
//!
//! Case counts are small by default (the file runs in seconds); set
//! `PROPTEST_CASES` to run more. Every target prints its number of
//! executions (`--nocapture` shows them).

use std::path::Path;

use crate::common::ndarray;
use burn::nn::LinearConfig;
use burn_lottery::data::{DataError, cifar, idx};
use burn_lottery::imp::store::{ExperimentStore, StoreError};
use burn_lottery::imp::{Imp, ImpConfig};
use burn_lottery::io::checksum;
use burn_lottery::mask::{LayerMask, Mask, MaskError};
use burn_lottery::report::{self, MetricLabel, ReportError, ReportRow};
use burn_lottery::rewind::{RewindCheckpoint, RewindError};
use burn_lottery::stability::report as stability_report;
use burn_lottery::train::iteration::Iteration;
use burn_lottery::train::recipe::{RecipeError, TrainingRecipe};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

/// `default` cases unless `PROPTEST_CASES` is set; no regression files.
fn config(default: u32) -> Config {
    let mut config = Config {
        failure_persistence: None,
        ..Config::default()
    };
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = default;
    }
    config
}

/// Runs `test` on every input `strategy` draws; prints the executions.
fn fuzz<S: Strategy>(
    name: &str,
    default_cases: u32,
    strategy: S,
    test: impl Fn(S::Value) -> Result<(), TestCaseError>,
) {
    let executions = std::cell::Cell::new(0u64);
    let mut runner = TestRunner::new(config(default_cases));
    let result = runner.run(&strategy, |input| {
        executions.set(executions.get() + 1);
        test(input)
    });
    eprintln!("fuzz {name}: {} executions", executions.get());
    if let Err(e) = result {
        panic!("{name}: {e}");
    }
}

/// One edit of a file.
#[derive(Clone, Debug)]
enum Mutation {
    /// Flip one bit.
    Flip(usize, u8),
    /// Overwrite one byte.
    Set(usize, u8),
    /// Keep only a prefix.
    Truncate(usize),
    /// Insert bytes.
    Insert(usize, Vec<u8>),
    /// Remove a range.
    Remove(usize, usize),
    /// Copy a range of the file over another place.
    Splice(usize, usize, usize),
    /// Overwrite four bytes with a length-like value (little- or big-endian).
    Word32(usize, u32, bool),
    /// Overwrite eight bytes with a length-like little-endian value.
    Word64(usize, u64),
}

/// Values that break length fields: zero, off by one, huge, and random.
fn length_value() -> impl Strategy<Value = u64> {
    prop_oneof![
        Just(0u64),
        Just(1),
        Just(u64::from(u32::MAX)),
        Just(u64::from(u32::MAX) + 1),
        Just(i64::MAX as u64),
        Just(u64::MAX),
        Just(u64::MAX - 1),
        0u64..5000,
        any::<u64>(),
    ]
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let at = any::<usize>();
    prop_oneof![
        3 => (at, 0u8..8).prop_map(|(i, b)| Mutation::Flip(i, b)),
        2 => (at, any::<u8>()).prop_map(|(i, v)| Mutation::Set(i, v)),
        1 => at.prop_map(Mutation::Truncate),
        1 => (at, prop::collection::vec(any::<u8>(), 1..16)).prop_map(|(i, b)| Mutation::Insert(i, b)),
        1 => (at, 1usize..64).prop_map(|(i, n)| Mutation::Remove(i, n)),
        1 => (at, at, 1usize..64).prop_map(|(a, b, n)| Mutation::Splice(a, b, n)),
        2 => (at, length_value(), any::<bool>()).prop_map(|(i, v, be)| Mutation::Word32(i, v as u32, be)),
        2 => (at, length_value()).prop_map(|(i, v)| Mutation::Word64(i, v)),
    ]
}

fn mutations() -> impl Strategy<Value = Vec<Mutation>> {
    prop::collection::vec(mutation(), 1..5)
}

/// Applies the mutations in order (indices taken modulo the current length).
fn mutate(mut bytes: Vec<u8>, mutations: &[Mutation]) -> Vec<u8> {
    for m in mutations {
        let len = bytes.len();
        let pos = |i: usize| if len == 0 { 0 } else { i % len };
        match m {
            Mutation::Flip(i, bit) if len > 0 => bytes[pos(*i)] ^= 1 << bit,
            Mutation::Set(i, v) if len > 0 => bytes[pos(*i)] = *v,
            Mutation::Truncate(i) => bytes.truncate(i % (len + 1)),
            Mutation::Insert(i, extra) => {
                let at = i % (len + 1);
                bytes.splice(at..at, extra.iter().copied());
            }
            Mutation::Remove(i, n) if len > 0 => {
                let at = pos(*i);
                bytes.drain(at..(at + n).min(len));
            }
            Mutation::Splice(from, to, n) if len > 0 => {
                let (from, to) = (pos(*from), pos(*to));
                let n = (*n).min(len - from).min(len - to);
                let chunk = bytes[from..from + n].to_vec();
                bytes[to..to + n].copy_from_slice(&chunk);
            }
            Mutation::Word32(i, v, be) if len >= 4 => {
                let at = pos(*i).min(len - 4);
                let word = if *be {
                    v.to_be_bytes()
                } else {
                    v.to_le_bytes()
                };
                bytes[at..at + 4].copy_from_slice(&word);
            }
            Mutation::Word64(i, v) if len >= 8 => {
                let at = pos(*i).min(len - 8);
                bytes[at..at + 8].copy_from_slice(&v.to_le_bytes());
            }
            _ => {}
        }
    }
    bytes
}

/// Rewrites the trailing little-endian CRC-32 so that it matches again.
fn fix_crc(mut bytes: Vec<u8>) -> Vec<u8> {
    if bytes.len() >= 4 {
        let body = bytes.len() - 4;
        let crc = checksum(&bytes[..body]);
        bytes[body..].copy_from_slice(&crc.to_le_bytes());
    }
    bytes
}

/// Mutated copies of `valid`, half of them with the CRC fixed up when `crc`.
fn mutated(valid: Vec<u8>, crc: bool) -> impl Strategy<Value = Vec<u8>> {
    (mutations(), any::<bool>()).prop_map(move |(m, fix)| {
        let bytes = mutate(valid.clone(), &m);
        if crc && fix { fix_crc(bytes) } else { bytes }
    })
}

/// Arbitrary bytes, short and long.
fn arbitrary_bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..max)
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

// ---------------------------------------------------------------- CIFAR-10

fn cifar_file(records: usize) -> Vec<u8> {
    let mut bytes = Vec::new();
    for r in 0..records {
        bytes.push((r % 10) as u8);
        bytes.extend((0..cifar::CIFAR10_RECORD_LEN - 1).map(|i| (i * 7 + r) as u8));
    }
    bytes
}

fn check_cifar(bytes: &[u8]) -> Result<(), TestCaseError> {
    let path = Path::new("fuzz/data_batch_1.bin");
    match cifar::parse_cifar10_records(bytes, path) {
        Ok(set) => {
            prop_assert_eq!(set.len() * cifar::CIFAR10_RECORD_LEN, bytes.len());
            for i in 0..set.len() {
                let record = &bytes[i * cifar::CIFAR10_RECORD_LEN..][..cifar::CIFAR10_RECORD_LEN];
                prop_assert_eq!(set.label(i), record[0]);
                prop_assert_eq!(set.image(i), &record[1..]);
            }
        }
        Err(e @ (DataError::Truncated { .. } | DataError::BadLabel { .. })) => {
            prop_assert!(e.to_string().contains("data_batch_1.bin"), "{}", e);
        }
        Err(e) => prop_assert!(false, "untyped CIFAR error {:?}", e),
    }
    Ok(())
}

#[test]
fn fuzz_cifar10_binary() {
    let valid = cifar_file(3);
    check_cifar(&valid).unwrap();
    fuzz("cifar10 arbitrary", 512, arbitrary_bytes(7000), |b| {
        check_cifar(&b)
    });
    fuzz("cifar10 mutated", 1024, mutated(valid, false), |b| {
        check_cifar(&b)
    });
}

// --------------------------------------------------------------------- IDX

fn idx_images(n: u32, rows: u32, cols: u32) -> Vec<u8> {
    let mut bytes = idx::IDX_IMAGES_MAGIC.to_be_bytes().to_vec();
    for d in [n, rows, cols] {
        bytes.extend_from_slice(&d.to_be_bytes());
    }
    bytes.extend((0..n * rows * cols).map(|i| (i * 13) as u8));
    bytes
}

fn idx_labels(n: u32) -> Vec<u8> {
    let mut bytes = idx::IDX_LABELS_MAGIC.to_be_bytes().to_vec();
    bytes.extend_from_slice(&n.to_be_bytes());
    bytes.extend((0..n).map(|i| (i % 10) as u8));
    bytes
}

fn check_idx(bytes: Vec<u8>, magic: u32) -> Result<(), TestCaseError> {
    let path = Path::new("fuzz/train-images-idx3-ubyte.gz");
    let plain = match idx::maybe_gunzip(bytes, path) {
        Ok(plain) => plain,
        Err(e @ DataError::Gzip { .. }) => {
            prop_assert!(e.to_string().contains("train-images"), "{}", e);
            return Ok(());
        }
        Err(e) => return Err(TestCaseError::fail(format!("untyped gzip error {e:?}"))),
    };
    let len = plain.len();
    match idx::parse_idx(plain.clone(), magic, path) {
        Ok(array) => {
            prop_assert_eq!(array.dims.len(), (magic & 0xff) as usize);
            let numel: usize = array.dims.iter().product();
            prop_assert_eq!(array.data.len(), numel);
            prop_assert_eq!(len, 4 + 4 * array.dims.len() + numel);
            prop_assert_eq!(&array.data[..], &plain[4 + 4 * array.dims.len()..]);
        }
        Err(
            e @ (DataError::Truncated { .. }
            | DataError::WrongMagic { .. }
            | DataError::BadFormat { .. }),
        ) => prop_assert!(e.to_string().contains("train-images"), "{}", e),
        Err(e) => prop_assert!(false, "untyped IDX error {:?}", e),
    }
    Ok(())
}

#[test]
fn fuzz_idx_plain_and_gzip() {
    let images = idx_images(3, 4, 5);
    let labels = idx_labels(7);
    check_idx(images.clone(), idx::IDX_IMAGES_MAGIC).unwrap();
    check_idx(gzip(&labels), idx::IDX_LABELS_MAGIC).unwrap();
    let magic = prop_oneof![Just(idx::IDX_IMAGES_MAGIC), Just(idx::IDX_LABELS_MAGIC)];
    fuzz(
        "idx arbitrary",
        512,
        (arbitrary_bytes(300), magic),
        |(b, m)| check_idx(b, m),
    );
    fuzz(
        "idx images mutated",
        1024,
        mutated(images.clone(), false),
        |b| check_idx(b, idx::IDX_IMAGES_MAGIC),
    );
    fuzz(
        "idx labels mutated",
        512,
        mutated(labels.clone(), false),
        |b| check_idx(b, idx::IDX_LABELS_MAGIC),
    );
    fuzz(
        "idx gzip mutated (compressed bytes)",
        1024,
        mutated(gzip(&images), false),
        |b| check_idx(b, idx::IDX_IMAGES_MAGIC),
    );
    // Mutate the plain file, then compress: the IDX parser sees the edits.
    fuzz("idx gzip mutated (inner bytes)", 512, mutations(), |m| {
        check_idx(gzip(&mutate(images.clone(), &m)), idx::IDX_IMAGES_MAGIC)
    });
}

// ------------------------------------------------------------------- masks

fn sample_mask() -> Mask {
    let layer = |shape: Vec<usize>, seed: usize| {
        let n: usize = shape.iter().product();
        let kept = (0..n).map(|i| !(i * 7 + seed).is_multiple_of(3)).collect();
        LayerMask::from_kept("x", shape, kept).unwrap()
    };
    Mask::from_layers([
        ("conv.weight".to_string(), layer(vec![4, 1, 3, 3], 1)),
        ("fc.weight".to_string(), layer(vec![13, 3], 2)),
        ("head.weight".to_string(), layer(vec![5], 0)),
    ])
}

fn check_mask_binary(bytes: &[u8]) -> Result<(), TestCaseError> {
    match Mask::from_bytes(bytes) {
        Ok(mask) => {
            prop_assert_eq!(&Mask::from_bytes(&mask.to_bytes()).unwrap(), &mask);
            for (_, layer) in mask.layers() {
                let numel: usize = layer.shape().iter().product();
                prop_assert_eq!(layer.kept().len(), numel);
            }
        }
        Err(MaskError::Corrupt { .. }) => {}
        Err(e) => prop_assert!(false, "untyped mask error {:?}", e),
    }
    Ok(())
}

#[test]
fn fuzz_mask_binary() {
    let mask = sample_mask();
    let valid = mask.to_bytes();
    assert_eq!(Mask::from_bytes(&valid).unwrap(), mask);
    fuzz("mask binary arbitrary", 512, arbitrary_bytes(200), |b| {
        check_mask_binary(&b)
    });
    // Arbitrary bodies behind the right magic and a matching CRC.
    fuzz(
        "mask binary arbitrary body with magic and CRC",
        512,
        arbitrary_bytes(120),
        |body| {
            let mut bytes = b"BLMASK\0\x01".to_vec();
            bytes.extend(body);
            bytes.extend([0; 4]);
            check_mask_binary(&fix_crc(bytes))
        },
    );
    fuzz("mask binary mutated", 2048, mutated(valid, true), |b| {
        check_mask_binary(&b)
    });
}

fn check_mask_json(bytes: &[u8]) -> Result<(), TestCaseError> {
    if let Ok(mask) = serde_json::from_slice::<Mask>(bytes) {
        let again = serde_json::to_vec(&mask).unwrap();
        prop_assert_eq!(&serde_json::from_slice::<Mask>(&again).unwrap(), &mask);
        for (_, layer) in mask.layers() {
            let numel: usize = layer.shape().iter().product();
            prop_assert_eq!(layer.kept().len(), numel);
        }
    }
    Ok(())
}

#[test]
fn fuzz_mask_json() {
    let valid = serde_json::to_vec(&sample_mask()).unwrap();
    check_mask_json(&valid).unwrap();
    assert!(serde_json::from_slice::<Mask>(&valid).is_ok());
    fuzz("mask json arbitrary", 512, arbitrary_bytes(200), |b| {
        check_mask_json(&b)
    });
    fuzz("mask json mutated", 2048, mutated(valid, false), |b| {
        check_mask_json(&b)
    });
    // Well-formed JSON with hostile shapes and bit counts.
    let dims = prop_oneof![0usize..20, Just(usize::MAX), Just(1 << 40), any::<usize>()];
    fuzz(
        "mask json hostile shapes",
        1024,
        (
            prop::collection::vec(dims, 0..5),
            prop::collection::vec(any::<u8>(), 0..40),
        ),
        |(shape, bits)| {
            let json = serde_json::json!({ "layers": { "w": { "shape": shape, "bits": bits } } });
            check_mask_json(json.to_string().as_bytes())
        },
    );
}

fn check_mask_safetensors(bytes: &[u8]) -> Result<(), TestCaseError> {
    match Mask::from_safetensors(bytes) {
        Ok(mask) => {
            prop_assert_eq!(
                &Mask::from_safetensors(&mask.to_safetensors()).unwrap(),
                &mask
            );
        }
        Err(
            MaskError::Corrupt { .. }
            | MaskError::NonBinary { .. }
            | MaskError::LengthMismatch { .. },
        ) => {}
        Err(e) => prop_assert!(false, "untyped safetensors error {:?}", e),
    }
    Ok(())
}

/// A safetensors file with one tensor of each accepted dtype.
fn safetensors_file() -> Vec<u8> {
    use safetensors::{Dtype, tensor::TensorView};
    let u8s: Vec<u8> = (0..12).map(|i| u8::from(i % 3 != 0)).collect();
    let f32s: Vec<u8> = (0..6)
        .flat_map(|i| (if i % 2 == 0 { 1.0f32 } else { 0.0 }).to_le_bytes())
        .collect();
    let f64s: Vec<u8> = (0..4)
        .flat_map(|i| (if i < 2 { 1.0f64 } else { 0.0 }).to_le_bytes())
        .collect();
    let bools: Vec<u8> = vec![1, 0, 1];
    let views = vec![
        ("a", TensorView::new(Dtype::U8, vec![3, 4], &u8s).unwrap()),
        ("b", TensorView::new(Dtype::F32, vec![2, 3], &f32s).unwrap()),
        ("c", TensorView::new(Dtype::F64, vec![4], &f64s).unwrap()),
        ("d", TensorView::new(Dtype::BOOL, vec![3], &bools).unwrap()),
    ];
    safetensors::serialize(views, None).unwrap()
}

#[test]
fn fuzz_mask_safetensors() {
    let valid = safetensors_file();
    assert_eq!(Mask::from_safetensors(&valid).unwrap().num_layers(), 4);
    let exported = sample_mask().to_safetensors();
    fuzz(
        "mask safetensors arbitrary",
        512,
        arbitrary_bytes(200),
        |b| check_mask_safetensors(&b),
    );
    fuzz(
        "mask safetensors mutated (four dtypes)",
        2048,
        mutated(valid, false),
        |b| check_mask_safetensors(&b),
    );
    fuzz(
        "mask safetensors mutated (exported mask)",
        1024,
        mutated(exported, false),
        |b| check_mask_safetensors(&b),
    );
}

// -------------------------------------------------------- rewind checkpoint

#[test]
fn fuzz_rewind_checkpoint() {
    let device = ndarray();
    let model = LinearConfig::new(3, 2).init(&device);
    let checkpoint = RewindCheckpoint::capture(&model, 7);
    let valid = checkpoint.to_bytes().unwrap();
    let parsed = RewindCheckpoint::from_bytes(&valid).unwrap();
    assert_eq!(parsed.iteration(), 7);
    assert_eq!(
        parsed
            .restore(LinearConfig::new(3, 2).init(&device))
            .unwrap()
            .weight
            .val()
            .into_data(),
        model.weight.val().into_data()
    );
    let check = |bytes: Vec<u8>| -> Result<(), TestCaseError> {
        match RewindCheckpoint::from_bytes(&bytes) {
            Ok(parsed) => {
                // Whatever parses re-serializes to a checkpoint that parses,
                // and restoring it into the model is an answer, not a panic.
                let again = parsed.to_bytes().unwrap();
                let reparsed = RewindCheckpoint::from_bytes(&again).unwrap();
                prop_assert_eq!(reparsed.iteration(), parsed.iteration());
                match parsed.restore(LinearConfig::new(3, 2).init(&device)) {
                    Ok(restored) => {
                        prop_assert_eq!(restored.weight.dims(), [3, 2]);
                    }
                    Err(RewindError::Mismatch(_)) => {}
                    Err(e) => prop_assert!(false, "untyped restore error {:?}", e),
                }
            }
            Err(RewindError::Corrupt { .. }) => {}
            Err(e) => prop_assert!(false, "untyped checkpoint error {:?}", e),
        }
        Ok(())
    };
    fuzz("rewind arbitrary", 512, arbitrary_bytes(200), check);
    fuzz("rewind mutated", 2048, mutated(valid.clone(), true), check);
    // The magic and header kept, arbitrary sections behind a matching CRC.
    fuzz(
        "rewind arbitrary sections with magic and CRC",
        512,
        (arbitrary_bytes(200), length_value()),
        |(body, model_len)| {
            let mut bytes = valid[..8].to_vec();
            bytes.extend(7u64.to_le_bytes());
            bytes.extend(model_len.min(body.len() as u64).to_le_bytes());
            bytes.extend(u64::MAX.to_le_bytes());
            bytes.extend(body);
            bytes.extend([0; 4]);
            check(fix_crc(bytes))
        },
    );
}

#[test]
fn fuzz_rewind_checkpoint_with_optimizer_state() {
    // Loading only: burn checks a restored optimizer state lazily, and a
    // tampered state of another tensor rank (with its CRC recomputed) still
    // panics inside burn at the first optimizer step.
    use burn::optim::{AdamConfig, GradientsParams};
    let device = ndarray().autodiff();
    let model = LinearConfig::new(3, 2).init(&device);
    let x = burn::tensor::Tensor::<2>::ones([4, 3], &device);
    let grads =
        GradientsParams::from_grads(model.forward(x).powf_scalar(2.0).mean().backward(), &model);
    let mut optim = AdamConfig::new().init();
    let model = optim.step(0.01, model, grads);
    let valid = RewindCheckpoint::capture(&model, 1)
        .with_optimizer(&optim)
        .unwrap()
        .to_bytes()
        .unwrap();
    let check = |bytes: Vec<u8>| -> Result<(), TestCaseError> {
        let Ok(parsed) = RewindCheckpoint::from_bytes(&bytes) else {
            return Ok(());
        };
        match parsed.restore_optimizer(AdamConfig::new().init()) {
            Ok(_) | Err(RewindError::Record(_)) => {}
            Err(e) => prop_assert!(false, "untyped optimizer error {:?}", e),
        }
        Ok(())
    };
    check(valid.clone()).unwrap();
    assert!(
        RewindCheckpoint::from_bytes(&valid)
            .unwrap()
            .has_optimizer_state()
    );
    fuzz(
        "rewind with optimizer state mutated",
        512,
        mutated(valid, true),
        check,
    );
}

// -------------------------------------------------------- configurations

fn check_imp_config(bytes: &[u8]) -> Result<(), TestCaseError> {
    let Ok(config) = serde_json::from_slice::<ImpConfig>(bytes) else {
        return Ok(());
    };
    // Everything a run does with a configuration before training.
    let name = config.directory_name();
    prop_assert!(!name.contains('/') && !name.contains(".."), "{}", name);
    let _ = config.distinguishing_json();
    let _ = config.condition();
    let imp = Imp::new(config.clone());
    if imp.validate().is_ok() {
        let recipe = &config.training;
        for it in [0, 1, config.rewind_iteration, recipe.training_iterations] {
            let lr = recipe.lr_at(Iteration(it));
            prop_assert!(lr.is_finite() && lr >= 0.0, "lr {} at {}", lr, it);
        }
        let _ = recipe.iterations_per_epoch(1000);
        let _ = recipe.shortened(recipe.training_iterations / 2 + 1);
        let _ = config.pruning.init().unwrap();
        // Through JSON and back: the same settings (serde_json's float
        // parser may be one unit in the last place off).
        let json = serde_json::to_string(&config).unwrap();
        let back: ImpConfig = serde_json::from_str(&json).unwrap();
        prop_assert!(
            close(
                &serde_json::to_value(&back).unwrap(),
                &serde_json::to_value(&config).unwrap()
            ),
            "{} -> {}",
            json,
            serde_json::to_string(&back).unwrap()
        );
    }
    Ok(())
}

/// Equal JSON values, floats up to two units in the last place.
fn close(a: &serde_json::Value, b: &serde_json::Value) -> bool {
    use serde_json::Value;
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| close(v, w)))
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(v, w)| close(v, w))
        }
        (Value::Number(x), Value::Number(y)) if x.is_f64() && y.is_f64() => {
            let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
            x == y || x.to_bits().abs_diff(y.to_bits()) <= 2
        }
        _ => a == b,
    }
}

fn check_recipe(bytes: &[u8]) -> Result<(), TestCaseError> {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return Ok(());
    };
    match TrainingRecipe::from_json_str(text) {
        Ok(recipe) => {
            for it in [
                0,
                1,
                recipe.training_iterations / 2,
                recipe.training_iterations,
            ] {
                let lr = recipe.lr_at(Iteration(it));
                prop_assert!(lr.is_finite() && lr >= 0.0, "lr {} at {}", lr, it);
            }
            let _ = recipe.iterations_per_epoch(50_000);
            let back = TrainingRecipe::from_json_str(&recipe.to_json_string());
            prop_assert!(back.is_ok(), "{:?}", back);
        }
        Err(e) => {
            let _ = e.to_string();
            let _: &RecipeError = &e;
        }
    }
    Ok(())
}

/// JSON numbers that hit edge cases of the settings.
fn hostile_number() -> impl Strategy<Value = serde_json::Value> {
    prop_oneof![
        Just(serde_json::json!(0)),
        Just(serde_json::json!(1)),
        Just(serde_json::json!(-1)),
        Just(serde_json::json!(1.5)),
        Just(serde_json::json!(0.5)),
        Just(serde_json::json!(1e308)),
        Just(serde_json::json!(-1e308)),
        Just(serde_json::json!(5e-324)),
        Just(serde_json::json!(u64::MAX)),
        Just(serde_json::json!(i64::MIN)),
        any::<u32>().prop_map(|v| serde_json::json!(v)),
        any::<f64>()
            .prop_filter("finite", |v| v.is_finite())
            .prop_map(|v| serde_json::json!(v)),
    ]
}

/// Replaces the value at a random leaf of `value` (numbers, booleans,
/// strings, nulls) with `replacement`.
fn replace_leaf(value: &mut serde_json::Value, pick: usize, replacement: serde_json::Value) {
    fn leaves(value: &serde_json::Value, at: String, out: &mut Vec<String>) {
        match value {
            serde_json::Value::Object(map) => {
                for (key, v) in map {
                    leaves(v, format!("{at}/{key}"), out);
                }
            }
            serde_json::Value::Array(items) => {
                for (i, v) in items.iter().enumerate() {
                    leaves(v, format!("{at}/{i}"), out);
                }
            }
            _ => out.push(at),
        }
    }
    let mut out = Vec::new();
    leaves(value, String::new(), &mut out);
    if !out.is_empty() {
        let at = &out[pick % out.len()];
        *value.pointer_mut(at).expect("a leaf found above") = replacement;
    }
}

fn full_imp_config() -> ImpConfig {
    let mut config = ImpConfig {
        target_density: Some(0.1),
        ..ImpConfig::default()
    };
    config.training.schedule = config.training.schedule.clone().with_warmup(100);
    config.pruning = config.pruning.clone().with_layer_rate("fc.weight", 0.1);
    config.controls.data_orders = vec![1, 2];
    config
}

#[test]
fn fuzz_imp_config_json() {
    let config = full_imp_config();
    let valid = serde_json::to_vec_pretty(&config).unwrap();
    assert_eq!(serde_json::from_slice::<ImpConfig>(&valid).unwrap(), config);
    check_imp_config(&valid).unwrap();
    fuzz("imp config arbitrary", 512, arbitrary_bytes(200), |b| {
        check_imp_config(&b)
    });
    fuzz("imp config mutated", 2048, mutated(valid, false), |b| {
        check_imp_config(&b)
    });
    let value = serde_json::to_value(&config).unwrap();
    fuzz(
        "imp config hostile values",
        2048,
        (prop::collection::vec(
            (any::<usize>(), hostile_number()),
            1..4,
        ),),
        |(edits,)| {
            let mut v = value.clone();
            for (pick, number) in edits {
                replace_leaf(&mut v, pick, number);
            }
            check_imp_config(v.to_string().as_bytes())
        },
    );
}

#[test]
fn fuzz_training_recipe_json() {
    let recipes = [
        TrainingRecipe::resnet20_cifar10(),
        TrainingRecipe::lenet_fashion_mnist(),
        TrainingRecipe {
            schedule: burn_lottery::train::schedule::LrSchedule::step(1000, 0.5).with_warmup(10),
            ..TrainingRecipe::resnet20_cifar10_quick()
        },
    ];
    for recipe in &recipes {
        assert_eq!(
            &TrainingRecipe::from_json_str(&recipe.to_json_string()).unwrap(),
            recipe
        );
    }
    let valid = recipes[0].to_json_string().into_bytes();
    fuzz("recipe arbitrary", 512, arbitrary_bytes(200), |b| {
        check_recipe(&b)
    });
    fuzz("recipe mutated", 2048, mutated(valid, false), |b| {
        check_recipe(&b)
    });
    let values: Vec<serde_json::Value> = recipes
        .iter()
        .map(|r| serde_json::to_value(r).unwrap())
        .collect();
    fuzz(
        "recipe hostile values",
        2048,
        (
            0..values.len(),
            prop::collection::vec((any::<usize>(), hostile_number()), 1..4),
        ),
        |(which, edits)| {
            let mut v = values[which].clone();
            for (pick, number) in edits {
                replace_leaf(&mut v, pick, number);
            }
            check_recipe(v.to_string().as_bytes())
        },
    );
}

// ------------------------------------------------------ experiment manifest

#[test]
fn fuzz_experiment_manifest() {
    let dir = tempfile::tempdir().unwrap();
    let config = serde_json::json!({ "name": "fuzz" });
    let root = dir.path().join("exp");
    let mut store = ExperimentStore::open(&root, &config).unwrap();
    store.write("main/level_00/mask.bin", b"mask").unwrap();
    drop(store);
    let manifest = std::fs::read(root.join("manifest.json")).unwrap();
    let config_file = std::fs::read(root.join("config.json")).unwrap();
    let check = |bytes: Vec<u8>| -> Result<(), TestCaseError> {
        std::fs::write(root.join("manifest.json"), &bytes).unwrap();
        std::fs::write(root.join("config.json"), &config_file).unwrap();
        match ExperimentStore::open(&root, &config) {
            Ok(store) => {
                let _ = store.verify_all();
            }
            Err(
                e @ (StoreError::BadManifest { .. }
                | StoreError::Checksum { .. }
                | StoreError::NotRecorded { .. }
                | StoreError::Io { .. }
                | StoreError::ConfigMismatch { .. }),
            ) => prop_assert!(e.to_string().contains("exp"), "{}", e),
            // Nobody else holds the experiment: a lock error is a bug.
            Err(e @ StoreError::Locked(_)) => prop_assert!(false, "{}", e),
        }
        Ok(())
    };
    fuzz("manifest mutated", 1024, mutated(manifest, false), check);
}

// -------------------------------------------------------------- report CSVs

fn check_csv(text: &str) -> Result<(), TestCaseError> {
    match report::from_csv(text) {
        Ok((rows, name)) => {
            // Fields never hold a comma or a newline, so rows re-serialize
            // to an equivalent file, of the same metric.
            let metric = MetricLabel::new(name.clone(), false).unwrap();
            let (again, again_name) = report::from_csv(&report::to_csv(&rows, &metric)).unwrap();
            prop_assert_eq!(again.len(), rows.len());
            prop_assert_eq!(again_name, name);
        }
        Err(ReportError::Parse { line, .. }) => prop_assert!(line >= 1),
        Err(e) => prop_assert!(false, "untyped CSV error {:?}", e),
    }
    match stability_report::from_csv(text) {
        Ok(_) | Err(ReportError::Parse { .. }) => {}
        Err(e) => prop_assert!(false, "untyped CSV error {:?}", e),
    }
    Ok(())
}

fn row() -> impl Strategy<Value = ReportRow> {
    (
        "[a-z_0-9]{1,12}",
        any::<u64>(),
        any::<usize>(),
        any::<f64>().prop_filter("finite", |v| v.is_finite()),
        0.0f64..=1.0,
    )
        .prop_map(
            |(condition, seed, level, weights_remaining, value)| ReportRow {
                condition,
                seed,
                level,
                weights_remaining,
                value,
                execution: None,
                execution_reason: None,
            },
        )
}

#[test]
fn fuzz_report_csv() {
    fuzz(
        "report csv round trip",
        1024,
        prop::collection::vec(row(), 0..6),
        |rows| {
            let text = report::to_csv(&rows, &MetricLabel::accuracy());
            prop_assert_eq!(
                report::from_csv(&text).unwrap(),
                (rows, "accuracy".to_string())
            );
            check_csv(&text)
        },
    );
    let valid = report::to_csv(
        &[
            ReportRow {
                condition: "imp_rewind500".into(),
                seed: 0,
                level: 3,
                weights_remaining: 0.512,
                value: 0.9,
                execution: None,
                execution_reason: None,
            },
            ReportRow {
                condition: "random_reinit".into(),
                seed: 1,
                level: 4,
                weights_remaining: 0.4096,
                value: 0.85,
                execution: None,
                execution_reason: None,
            },
        ],
        &MetricLabel::accuracy(),
    )
    .into_bytes();
    fuzz("report csv arbitrary", 512, "\\PC{0,200}", |text| {
        check_csv(&text)
    });
    fuzz("report csv mutated", 2048, mutated(valid, false), |bytes| {
        check_csv(&String::from_utf8_lossy(&bytes))
    });
}

#[test]
fn mutations_change_files_and_fix_crc_restores_the_checksum() {
    // The fuzzers' own machinery: a mutation really edits, and fix_crc
    // really makes the CRC match again.
    let valid = sample_mask().to_bytes();
    let edited = mutate(valid.clone(), &[Mutation::Flip(20, 3)]);
    assert_ne!(edited, valid);
    assert!(matches!(
        Mask::from_bytes(&edited),
        Err(MaskError::Corrupt { reason, .. }) if reason.contains("checksum")
    ));
    let fixed = fix_crc(edited);
    let body = fixed.len() - 4;
    assert_eq!(
        u32::from_le_bytes(fixed[body..].try_into().unwrap()),
        checksum(&fixed[..body])
    );
}
