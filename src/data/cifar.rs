//! CIFAR-10 in its official binary format.
//!
//! Each file is a sequence of 3073-byte records: one label byte (0..9), then
//! 3072 pixel bytes: the 1024 red values of the 32x32 image row by row, then
//! the 1024 green, then the 1024 blue. That is already `C x H x W` order, so
//! records are copied as they are. The training set is `data_batch_1.bin` ..
//! `data_batch_5.bin` (10,000 records each), the test set `test_batch.bin`.
//!
//! The files come from [`CIFAR10_URL`], a 170,052,171-byte `.tar.gz` archive
//! (MD5 [`CIFAR10_MD5`]) that holds them in `cifar-10-batches-bin/`.

use std::path::{Path, PathBuf};

use super::download::{ExpectedFile, download_file, extract_tar_gz};
use super::{DataError, DataSource, DatasetSplits, ImageDataset};

/// The official archive of the binary version.
pub const CIFAR10_URL: &str = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz";
/// MD5 of the archive at [`CIFAR10_URL`].
pub const CIFAR10_MD5: &str = "c32a1d4ab5d03f1284b67883e8d87530";
/// Size in bytes of the archive at [`CIFAR10_URL`].
pub const CIFAR10_ARCHIVE_SIZE: u64 = 170_052_171;
/// The subdirectory the archive extracts to.
pub const CIFAR10_ARCHIVE_DIR: &str = "cifar-10-batches-bin";
/// The training files, in order.
pub const CIFAR10_TRAIN_FILES: [&str; 5] = [
    "data_batch_1.bin",
    "data_batch_2.bin",
    "data_batch_3.bin",
    "data_batch_4.bin",
    "data_batch_5.bin",
];
/// The test file.
pub const CIFAR10_TEST_FILE: &str = "test_batch.bin";

/// Image side length.
pub const CIFAR10_SIDE: usize = 32;
/// Channels (RGB).
pub const CIFAR10_CHANNELS: usize = 3;
/// Number of classes.
pub const CIFAR10_CLASSES: usize = 10;
/// Bytes per record: 1 label byte + 3 x 32 x 32 pixels.
pub const CIFAR10_RECORD_LEN: usize = 1 + CIFAR10_CHANNELS * CIFAR10_SIDE * CIFAR10_SIDE;

/// Per-channel (R, G, B) mean of the CIFAR-10 training pixels in `[0, 1]`.
pub const CIFAR10_MEAN: [f32; 3] = [0.4914, 0.4822, 0.4465];
/// Per-channel (R, G, B) standard deviation of the CIFAR-10 training pixels
/// in `[0, 1]`.
pub const CIFAR10_STD: [f32; 3] = [0.2470, 0.2435, 0.2616];

/// The class names, by label.
pub const CIFAR10_CLASS_NAMES: [&str; 10] = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
];

/// Parses CIFAR-10 records from bytes; `path` only names the source in
/// errors. Fails on an empty input, a length that is not a multiple of
/// [`CIFAR10_RECORD_LEN`] ([`DataError::Truncated`]) and labels above 9.
pub fn parse_cifar10_records(bytes: &[u8], path: &Path) -> Result<ImageDataset, DataError> {
    let actual = bytes.len() as u64;
    let record = CIFAR10_RECORD_LEN as u64;
    if bytes.is_empty() || !bytes.len().is_multiple_of(CIFAR10_RECORD_LEN) {
        return Err(DataError::Truncated {
            path: path.to_path_buf(),
            expected: actual.div_ceil(record).max(1) * record,
            actual,
        });
    }
    let n = bytes.len() / CIFAR10_RECORD_LEN;
    let mut labels = Vec::with_capacity(n);
    let mut images = Vec::with_capacity(n * (CIFAR10_RECORD_LEN - 1));
    for (index, rec) in bytes.chunks_exact(CIFAR10_RECORD_LEN).enumerate() {
        let label = rec[0];
        if usize::from(label) >= CIFAR10_CLASSES {
            return Err(DataError::BadLabel {
                path: path.to_path_buf(),
                index,
                label,
                num_classes: CIFAR10_CLASSES,
            });
        }
        labels.push(label);
        images.extend_from_slice(&rec[1..]);
    }
    ImageDataset::new(
        images,
        labels,
        CIFAR10_CHANNELS,
        CIFAR10_SIDE,
        CIFAR10_SIDE,
        CIFAR10_CLASSES,
    )
}

/// Reads one CIFAR-10 binary file (any number of records).
pub fn read_cifar10_file(path: &Path) -> Result<ImageDataset, DataError> {
    let bytes = std::fs::read(path).map_err(|e| DataError::io(path, e, &file_hint(path)))?;
    parse_cifar10_records(&bytes, path)
}

/// The directory that actually holds the `.bin` files: `dir` itself, or its
/// `cifar-10-batches-bin/` subdirectory when `dir` does not hold them.
pub fn resolve_cifar10_dir(dir: &Path) -> PathBuf {
    let nested = dir.join(CIFAR10_ARCHIVE_DIR);
    if !dir.join(CIFAR10_TRAIN_FILES[0]).exists() && nested.is_dir() {
        nested
    } else {
        dir.to_path_buf()
    }
}

/// Reads the training files (concatenated in order) and the test file from
/// `dir` or its `cifar-10-batches-bin/` subdirectory.
pub fn read_cifar10_dir(dir: impl AsRef<Path>) -> Result<DatasetSplits, DataError> {
    let dir = resolve_cifar10_dir(dir.as_ref());
    let mut train: Option<ImageDataset> = None;
    for name in CIFAR10_TRAIN_FILES {
        let part = read_cifar10_file(&dir.join(name))?;
        train = Some(match train {
            None => part,
            Some(t) => t.concat(&part)?,
        });
    }
    let test = read_cifar10_file(&dir.join(CIFAR10_TEST_FILE))?;
    Ok(DatasetSplits {
        train: train.expect("five training files"),
        test,
    })
}

/// True when `dir` (or its `cifar-10-batches-bin/`) holds all six files.
pub fn cifar10_files_present(dir: &Path) -> bool {
    let dir = resolve_cifar10_dir(dir);
    CIFAR10_TRAIN_FILES
        .iter()
        .chain(std::iter::once(&CIFAR10_TEST_FILE))
        .all(|name| dir.join(name).is_file())
}

/// Loads CIFAR-10 from `source` (see [`DataSource`]): its explicit
/// directory, else its cache directory, else by downloading the archive
/// into the cache directory, checking its size and MD5, and extracting it.
pub fn load_cifar10(source: &DataSource) -> Result<DatasetSplits, DataError> {
    if let Some(dir) = &source.dir {
        return read_cifar10_dir(dir);
    }
    let cache = &source.cache_dir;
    if cifar10_files_present(cache) {
        return read_cifar10_dir(cache);
    }
    let manual = manual_instructions(cache);
    if !source.download {
        return Err(DataError::MissingFile {
            path: cache.join(CIFAR10_TRAIN_FILES[0]),
            hint: manual,
        });
    }
    download_cifar10(&source.url, cache, &manual)?;
    read_cifar10_dir(cache)
}

/// Downloads the archive from `url` into `cache_dir`, verifies it, extracts
/// it there and deletes it.
fn download_cifar10(url: &str, cache_dir: &Path, manual: &str) -> Result<(), DataError> {
    let archive = cache_dir.join("cifar-10-binary.tar.gz");
    let expected = ExpectedFile {
        size: Some(CIFAR10_ARCHIVE_SIZE),
        md5_hex: Some(CIFAR10_MD5),
    };
    download_file(url, &archive, expected, manual)?;
    extract_tar_gz(&archive, cache_dir)?;
    let _ = std::fs::remove_file(&archive);
    if !cifar10_files_present(cache_dir) {
        return Err(DataError::BadFormat {
            path: archive,
            message: format!(
                "the archive did not contain {CIFAR10_ARCHIVE_DIR}/ with the six .bin files"
            ),
        });
    }
    Ok(())
}

fn manual_instructions(cache_dir: &Path) -> String {
    format!(
        "put data_batch_1.bin .. data_batch_5.bin and test_batch.bin (from {CIFAR10_URL}, \
         extracted) in {} or its {CIFAR10_ARCHIVE_DIR}/ subdirectory, or set CIFAR10_DIR to \
         the directory holding them",
        cache_dir.display()
    )
}

fn file_hint(path: &Path) -> String {
    format!(
        "a CIFAR-10 binary file; the six files come from {CIFAR10_URL} (directory {}/)",
        path.parent()
            .map(|p| p.display().to_string())
            .unwrap_or_default()
            .trim_end_matches('/')
    )
}
