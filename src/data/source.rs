//! [`DataSource`]: where a dataset's files are, and where to fetch them from.

use std::path::{Path, PathBuf};

use super::download::data_cache_dir;
use super::idx::DEBIAN_FASHION_MNIST_DIR;

/// Where to find a dataset's files, and where to download them to and from.
///
/// See the [module docs](super) for the lookup order. Build one with
/// [`DataSource::cifar10`], [`DataSource::mnist`] or
/// [`DataSource::fashion_mnist`] and adjust it with the `with_*` methods.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DataSource {
    /// A directory that must hold the files. When set, it is the only place
    /// read and nothing is downloaded.
    pub dir: Option<PathBuf>,
    /// The cache directory: read if it holds the files, else downloaded into.
    pub cache_dir: PathBuf,
    /// The download URL: the archive's URL for CIFAR-10, the base URL the
    /// file names are appended to for IDX datasets.
    pub url: String,
    /// Whether a download may be attempted (only possible with the
    /// `download` feature).
    pub download: bool,
}

impl DataSource {
    fn with_defaults(env_var: &str, cache_name: &str, url: &str) -> Self {
        Self {
            dir: std::env::var_os(env_var)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from),
            cache_dir: data_cache_dir().join(cache_name),
            url: url.to_string(),
            download: cfg!(feature = "download"),
        }
    }

    /// CIFAR-10: directory from `CIFAR10_DIR` if set, cache
    /// `data_cache_dir()/cifar10`, URL [`super::cifar::CIFAR10_URL`].
    pub fn cifar10() -> Self {
        Self::with_defaults("CIFAR10_DIR", "cifar10", super::cifar::CIFAR10_URL)
    }

    /// MNIST: directory from `MNIST_DIR` if set, cache
    /// `data_cache_dir()/mnist`, URL [`super::idx::MNIST_URL`].
    pub fn mnist() -> Self {
        Self::with_defaults("MNIST_DIR", "mnist", super::idx::MNIST_URL)
    }

    /// Fashion-MNIST: directory from `FASHION_MNIST_DIR` if set, else
    /// [`DEBIAN_FASHION_MNIST_DIR`] if it exists; cache
    /// `data_cache_dir()/fashion-mnist`, URL [`super::idx::FASHION_MNIST_URL`].
    pub fn fashion_mnist() -> Self {
        let mut source = Self::with_defaults(
            "FASHION_MNIST_DIR",
            "fashion-mnist",
            super::idx::FASHION_MNIST_URL,
        );
        if source.dir.is_none() && Path::new(DEBIAN_FASHION_MNIST_DIR).is_dir() {
            source.dir = Some(PathBuf::from(DEBIAN_FASHION_MNIST_DIR));
        }
        source
    }

    /// Reads only from `dir` (never downloads).
    pub fn with_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.dir = Some(dir.into());
        self
    }

    /// Ignores any explicit / environment / system directory: uses the cache
    /// directory (and downloads into it if allowed).
    pub fn without_dir(mut self) -> Self {
        self.dir = None;
        self
    }

    /// Uses another cache directory.
    pub fn with_cache_dir(mut self, cache_dir: impl Into<PathBuf>) -> Self {
        self.cache_dir = cache_dir.into();
        self
    }

    /// Downloads from another URL (a mirror, or a local server in tests).
    pub fn with_url(mut self, url: impl Into<String>) -> Self {
        self.url = url.into();
        self
    }

    /// Allows or forbids downloading.
    pub fn with_download(mut self, download: bool) -> Self {
        self.download = download;
        self
    }
}
