//! MNIST and Fashion-MNIST in the IDX format, gzip-compressed or plain.
//!
//! An IDX file starts with a big-endian magic number `0x000008NN` (`08` =
//! unsigned bytes, `NN` = number of dimensions), then one big-endian `u32`
//! per dimension, then the data. Images files have magic
//! [`IDX_IMAGES_MAGIC`] (`N x rows x cols`), labels files
//! [`IDX_LABELS_MAGIC`] (`N`). A file whose first two bytes are the gzip
//! magic `1f 8b` is decompressed first.
//!
//! The four files of a dataset are looked up by name in a directory, each as
//! `train-images-idx3-ubyte`, `train-images-idx3-ubyte.gz`,
//! `train-images.idx3-ubyte` or `train-images.idx3-ubyte.gz` (first found),
//! and likewise `train-labels-idx1-ubyte`, `t10k-images-idx3-ubyte`,
//! `t10k-labels-idx1-ubyte`. Debian's `dataset-fashion-mnist` package ships
//! the `.gz` names.

use std::io::Read;
use std::path::{Path, PathBuf};

use super::download::{ExpectedFile, download_file};
use super::{DataError, DataSource, DatasetSplits, ImageDataset};

/// Magic number of an IDX images file (unsigned bytes, 3 dimensions).
pub const IDX_IMAGES_MAGIC: u32 = 0x0000_0803;
/// Magic number of an IDX labels file (unsigned bytes, 1 dimension).
pub const IDX_LABELS_MAGIC: u32 = 0x0000_0801;

/// Base URL of the MNIST files (each `<name>.gz` below it).
pub const MNIST_URL: &str = "https://ossci-datasets.s3.amazonaws.com/mnist/";
/// Base URL of the Fashion-MNIST files (each `<name>.gz` below it).
pub const FASHION_MNIST_URL: &str = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/";

/// Debian's `dataset-fashion-mnist` package installs the files here.
pub const DEBIAN_FASHION_MNIST_DIR: &str = "/usr/share/datasets/fashion-mnist";

/// Training images file name (without `.gz`).
pub const TRAIN_IMAGES: &str = "train-images-idx3-ubyte";
/// Training labels file name (without `.gz`).
pub const TRAIN_LABELS: &str = "train-labels-idx1-ubyte";
/// Test images file name (without `.gz`).
pub const TEST_IMAGES: &str = "t10k-images-idx3-ubyte";
/// Test labels file name (without `.gz`).
pub const TEST_LABELS: &str = "t10k-labels-idx1-ubyte";

/// Number of classes of MNIST and Fashion-MNIST.
pub const IDX_CLASSES: usize = 10;

/// The Fashion-MNIST class names, by label.
pub const FASHION_MNIST_CLASS_NAMES: [&str; 10] = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
];

/// The dimensions and bytes of an IDX file of unsigned bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdxArray {
    /// Dimensions, outermost first.
    pub dims: Vec<usize>,
    /// The data, row-major.
    pub data: Vec<u8>,
}

/// The most bytes a gzip-compressed IDX file may decompress to (1 GiB; the
/// largest MNIST-like file, the training images, is 47 MB). A file that
/// would expand beyond it is refused instead of exhausting memory.
pub const MAX_IDX_DECOMPRESSED: u64 = 1 << 30;

/// Decompresses `bytes` if they start with the gzip magic `1f 8b`; `path`
/// only names the source in errors. Output beyond
/// [`MAX_IDX_DECOMPRESSED`] bytes is a [`DataError::Gzip`].
pub fn maybe_gunzip(bytes: Vec<u8>, path: &Path) -> Result<Vec<u8>, DataError> {
    maybe_gunzip_limited(bytes, path, MAX_IDX_DECOMPRESSED)
}

/// [`maybe_gunzip`] with another limit on the decompressed size.
pub fn maybe_gunzip_limited(bytes: Vec<u8>, path: &Path, limit: u64) -> Result<Vec<u8>, DataError> {
    if bytes.len() < 2 || bytes[0] != 0x1f || bytes[1] != 0x8b {
        return Ok(bytes);
    }
    let gzip_error = |message: String| DataError::Gzip {
        path: path.to_path_buf(),
        message,
    };
    let mut out = Vec::with_capacity(bytes.len().saturating_mul(4).min(limit as usize));
    flate2::read::MultiGzDecoder::new(bytes.as_slice())
        .take(limit.saturating_add(1))
        .read_to_end(&mut out)
        .map_err(|e| gzip_error(e.to_string()))?;
    if out.len() as u64 > limit {
        return Err(gzip_error(format!(
            "decompresses to more than {limit} bytes"
        )));
    }
    Ok(out)
}

/// Parses IDX bytes (already decompressed) that must carry `magic`; `path`
/// only names the source in errors.
pub fn parse_idx(bytes: Vec<u8>, magic: u32, path: &Path) -> Result<IdxArray, DataError> {
    let truncated = |expected: u64| DataError::Truncated {
        path: path.to_path_buf(),
        expected,
        actual: bytes.len() as u64,
    };
    if bytes.len() < 4 {
        return Err(truncated(4));
    }
    let word = |i: usize| u32::from_be_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
    let found = word(0);
    if found != magic {
        return Err(DataError::WrongMagic {
            path: path.to_path_buf(),
            expected: magic,
            found,
        });
    }
    let ndims = (magic & 0xff) as usize;
    let header = 4 + 4 * ndims;
    if bytes.len() < header {
        return Err(truncated(header as u64));
    }
    let dims: Vec<usize> = (0..ndims).map(|d| word(4 + 4 * d) as usize).collect();
    let payload = dims
        .iter()
        .try_fold(1u64, |acc, &d| acc.checked_mul(d as u64))
        .and_then(|p| p.checked_add(header as u64))
        .ok_or_else(|| DataError::BadFormat {
            path: path.to_path_buf(),
            message: format!("dimensions {dims:?} overflow"),
        })?;
    let actual = bytes.len() as u64;
    if actual < payload {
        return Err(truncated(payload));
    }
    if actual > payload {
        return Err(DataError::BadFormat {
            path: path.to_path_buf(),
            message: format!(
                "{} bytes after the {payload} bytes that dimensions {dims:?} describe",
                actual - payload
            ),
        });
    }
    let mut data = bytes;
    data.drain(..header);
    Ok(IdxArray { dims, data })
}

/// Reads an IDX file (gzip or plain) that must carry `magic`.
pub fn read_idx_file(path: &Path, magic: u32) -> Result<IdxArray, DataError> {
    let bytes = std::fs::read(path).map_err(|e| DataError::io(path, e, "an IDX file"))?;
    parse_idx(maybe_gunzip(bytes, path)?, magic, path)
}

/// Reads an images file and its labels file into a one-channel dataset,
/// checking that they hold as many samples and that labels are below
/// `num_classes`.
pub fn read_idx_pair(
    images_path: &Path,
    labels_path: &Path,
    num_classes: usize,
) -> Result<ImageDataset, DataError> {
    let images = read_idx_file(images_path, IDX_IMAGES_MAGIC)?;
    let labels = read_idx_file(labels_path, IDX_LABELS_MAGIC)?;
    let (n, rows, cols) = (images.dims[0], images.dims[1], images.dims[2]);
    if n != labels.dims[0] {
        return Err(DataError::CountMismatch {
            images_path: images_path.to_path_buf(),
            images: n,
            labels_path: labels_path.to_path_buf(),
            labels: labels.dims[0],
        });
    }
    if rows == 0 || cols == 0 {
        return Err(DataError::BadFormat {
            path: images_path.to_path_buf(),
            message: format!("empty images of {rows}x{cols} pixels"),
        });
    }
    if let Some((index, &label)) = labels
        .data
        .iter()
        .enumerate()
        .find(|&(_, &l)| usize::from(l) >= num_classes)
    {
        return Err(DataError::BadLabel {
            path: labels_path.to_path_buf(),
            index,
            label,
            num_classes,
        });
    }
    ImageDataset::new(images.data, labels.data, 1, rows, cols, num_classes)
}

/// The path of the file named `stem` in `dir`, trying `stem`, `stem.gz` and
/// the dotted variants (`train-images.idx3-ubyte`); `None` if none exists.
pub fn find_idx_file(dir: &Path, stem: &str) -> Option<PathBuf> {
    let dotted = stem.replacen("-idx", ".idx", 1);
    [
        stem.to_string(),
        format!("{stem}.gz"),
        dotted.clone(),
        format!("{dotted}.gz"),
    ]
    .iter()
    .map(|name| dir.join(name))
    .find(|p| p.is_file())
}

fn require_idx_file(dir: &Path, stem: &str) -> Result<PathBuf, DataError> {
    find_idx_file(dir, stem).ok_or_else(|| DataError::MissingFile {
        path: dir.join(stem),
        hint: format!(
            "an IDX file; also looked for {stem}.gz and {}(.gz)",
            stem.replacen("-idx", ".idx", 1)
        ),
    })
}

/// Reads the four files of an MNIST-like dataset from `dir`.
pub fn read_idx_dir(dir: impl AsRef<Path>, num_classes: usize) -> Result<DatasetSplits, DataError> {
    let dir = dir.as_ref();
    let train = read_idx_pair(
        &require_idx_file(dir, TRAIN_IMAGES)?,
        &require_idx_file(dir, TRAIN_LABELS)?,
        num_classes,
    )?;
    let test = read_idx_pair(
        &require_idx_file(dir, TEST_IMAGES)?,
        &require_idx_file(dir, TEST_LABELS)?,
        num_classes,
    )?;
    Ok(DatasetSplits { train, test })
}

/// True when `dir` holds all four files (in any accepted naming).
pub fn idx_files_present(dir: &Path) -> bool {
    [TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS]
        .iter()
        .all(|stem| find_idx_file(dir, stem).is_some())
}

/// Loads MNIST from `source` (see [`DataSource::mnist`]).
pub fn load_mnist(source: &DataSource) -> Result<DatasetSplits, DataError> {
    load_idx_dataset(source, "MNIST", "MNIST_DIR")
}

/// Loads Fashion-MNIST from `source` (see [`DataSource::fashion_mnist`]).
pub fn load_fashion_mnist(source: &DataSource) -> Result<DatasetSplits, DataError> {
    load_idx_dataset(source, "Fashion-MNIST", "FASHION_MNIST_DIR")
}

/// Loads an MNIST-like dataset: `source.dir`, else the cache directory,
/// else downloads the four `.gz` files from `source.url` into the cache
/// directory. Downloads are verified by decoding them (gzip CRC-32 and the
/// IDX structure); files that fail are deleted.
fn load_idx_dataset(
    source: &DataSource,
    name: &str,
    env_var: &str,
) -> Result<DatasetSplits, DataError> {
    if let Some(dir) = &source.dir {
        return read_idx_dir(dir, IDX_CLASSES);
    }
    let cache = &source.cache_dir;
    if idx_files_present(cache) {
        return read_idx_dir(cache, IDX_CLASSES);
    }
    let manual = format!(
        "put {TRAIN_IMAGES}.gz, {TRAIN_LABELS}.gz, {TEST_IMAGES}.gz and {TEST_LABELS}.gz \
         (from {}) in {}, or set {env_var} to the directory holding the {name} files",
        source.url,
        cache.display()
    );
    if !source.download {
        return Err(DataError::MissingFile {
            path: cache.join(TRAIN_IMAGES),
            hint: manual,
        });
    }
    let mut downloaded = Vec::new();
    let result = (|| {
        for stem in [TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS] {
            if find_idx_file(cache, stem).is_some() {
                continue;
            }
            let file_name = format!("{stem}.gz");
            let dest = cache.join(&file_name);
            let url = format!("{}/{file_name}", source.url.trim_end_matches('/'));
            download_file(&url, &dest, ExpectedFile::default(), &manual)?;
            downloaded.push(dest);
        }
        read_idx_dir(cache, IDX_CLASSES)
    })();
    if matches!(
        result,
        Err(DataError::Truncated { .. }
            | DataError::WrongMagic { .. }
            | DataError::Gzip { .. }
            | DataError::BadFormat { .. }
            | DataError::CountMismatch { .. }
            | DataError::BadLabel { .. })
    ) {
        for path in &downloaded {
            let _ = std::fs::remove_file(path);
        }
    }
    result
}
