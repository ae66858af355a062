//! The error type of the data module.

use std::path::PathBuf;

/// Everything that can go wrong while finding, reading, downloading or
/// batching a dataset. Every variant about a file names that file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DataError {
    /// A file the dataset needs does not exist.
    #[error("{path}: file not found ({hint})")]
    MissingFile {
        /// The file that was looked for.
        path: PathBuf,
        /// What the file is and how to get it.
        hint: String,
    },
    /// A file exists but could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file being read or written.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A file is shorter than its format requires (or, for CIFAR-10, its
    /// length is not a whole number of records).
    #[error("{path}: truncated file: expected {expected} bytes, found {actual}")]
    Truncated {
        /// The file.
        path: PathBuf,
        /// The number of bytes the format requires (after gzip decompression
        /// for compressed IDX files).
        expected: u64,
        /// The number of bytes found.
        actual: u64,
    },
    /// A file does not start with the magic number its format requires.
    #[error("{path}: wrong magic number 0x{found:08x}, expected 0x{expected:08x}")]
    WrongMagic {
        /// The file.
        path: PathBuf,
        /// The magic number of the format.
        expected: u32,
        /// The first four bytes of the file, big-endian.
        found: u32,
    },
    /// An images file and its labels file disagree on the number of samples.
    #[error("{images_path} holds {images} images but {labels_path} holds {labels} labels")]
    CountMismatch {
        /// The images file.
        images_path: PathBuf,
        /// The number of images in it.
        images: usize,
        /// The labels file.
        labels_path: PathBuf,
        /// The number of labels in it.
        labels: usize,
    },
    /// A label is not a valid class index.
    #[error("{path}: label {label} of sample {index} is not a class index 0..{num_classes}")]
    BadLabel {
        /// The file holding the label.
        path: PathBuf,
        /// Which sample (0-based, within the file).
        index: usize,
        /// The label found.
        label: u8,
        /// The number of classes of the dataset.
        num_classes: usize,
    },
    /// A file's structure is invalid in some other way (header dimensions,
    /// trailing bytes, archive layout).
    #[error("{path}: invalid format: {message}")]
    BadFormat {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A file starts like gzip but cannot be decompressed.
    #[error("{path}: gzip error: {message}")]
    Gzip {
        /// The file.
        path: PathBuf,
        /// The decompressor's message.
        message: String,
    },
    /// A download failed.
    #[error(
        "download of {url} failed: {message}. Without network access, download it by hand \
         and {manual}"
    )]
    DownloadFailed {
        /// The URL that failed.
        url: String,
        /// Why it failed.
        message: String,
        /// Where to put the files by hand.
        manual: String,
    },
    /// The dataset is not on disk and this build cannot download it.
    #[error("dataset files not found and the `download` feature is disabled: {manual}")]
    DownloadDisabled {
        /// Where to put the files by hand.
        manual: String,
    },
    /// A downloaded file has the wrong size or checksum.
    #[error("{path}: checksum mismatch: expected {expected}, found {actual}")]
    ChecksumMismatch {
        /// The downloaded file.
        path: PathBuf,
        /// The expected size / MD5.
        expected: String,
        /// The size / MD5 found.
        actual: String,
    },
    /// An argument is invalid (empty dataset, zero batch size, index out of
    /// range, normalization with the wrong number of channels...).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
}

impl DataError {
    /// Wraps an I/O error on `path`, turning "not found" into
    /// [`DataError::MissingFile`].
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error, hint: &str) -> Self {
        let path = path.into();
        if source.kind() == std::io::ErrorKind::NotFound {
            DataError::MissingFile {
                path,
                hint: hint.to_string(),
            }
        } else {
            DataError::Io { path, source }
        }
    }
}
