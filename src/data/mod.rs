//! Datasets and a deterministic, resumable data pipeline.
//!
//! * [`ExperimentData`]: the training and test sets of an image-classification
//!   experiment (the crate's image [`Task`](crate::task::Task)).
//! * [`ImageDataset`]: images held in memory as `u8` in `N x C x H x W` order,
//!   with their labels.
//! * [`cifar`]: CIFAR-10 in its official binary format (`data_batch_1.bin` ..
//!   `data_batch_5.bin`, `test_batch.bin`), downloaded on demand.
//! * [`idx`]: MNIST and Fashion-MNIST IDX files, gzip-compressed or plain.
//! * [`augment`]: random crop after zero padding, horizontal flip and
//!   per-channel normalization, straight from `u8` into `f32` batches.
//! * [`loader`]: [`SeededLoader`], whose batch at iteration `i` is a pure
//!   function of `(data_order_seed, augment_seed, i)`, so a run can resume at
//!   any iteration and two runs can differ only in their data order; plus a
//!   prefetching iterator and a fixed-order evaluation iterator.
//! * [`download`]: where datasets are cached ([`data_cache_dir`]) and how they
//!   are fetched (feature `download`).
//!
//! Nothing here panics on bad input files: every problem is a [`DataError`]
//! that names the file.
//!
//! # Where files are looked up
//!
//! A [`DataSource`] says where a dataset's files are. Its constructors
//! ([`DataSource::cifar10`], [`DataSource::mnist`],
//! [`DataSource::fashion_mnist`]) follow this order:
//!
//! 1. an explicit directory ([`DataSource::with_dir`]), else the environment
//!    variable `CIFAR10_DIR` / `MNIST_DIR` / `FASHION_MNIST_DIR`, else (for
//!    Fashion-MNIST) Debian's `/usr/share/datasets/fashion-mnist/` when it
//!    exists. A directory chosen this way must hold the files: nothing is
//!    downloaded into it;
//! 2. otherwise the cache directory: `$BURN_LOTTERY_DATA/<dataset>`, else
//!    `$XDG_CACHE_HOME/burn-lottery/<dataset>`, else
//!    `~/.cache/burn-lottery/<dataset>` (see [`data_cache_dir`]);
//! 3. if the files are not there either and downloading is allowed (feature
//!    `download`, on by default), they are downloaded into the cache
//!    directory, verified and read.

pub mod augment;
pub mod cifar;
mod dataset;
pub mod download;
mod error;
mod experiment;
pub mod idx;
pub mod loader;
pub mod md5;
mod order;
pub mod seed;
mod source;

pub use augment::{Augmentation, Normalization};
pub use cifar::{CIFAR10_MEAN, CIFAR10_STD, load_cifar10, read_cifar10_dir};
pub use dataset::{DatasetSplits, ImageDataset};
pub use download::data_cache_dir;
pub use error::DataError;
pub use experiment::ExperimentData;
pub use idx::{load_fashion_mnist, load_mnist, read_idx_dir};
pub use loader::{
    EvalBatches, HostBatch, LoaderConfig, PrefetchBatches, SeededLoader, TensorBatch,
    iterations_per_epoch,
};
pub use order::SeededOrder;
pub use source::DataSource;
