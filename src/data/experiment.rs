//! [`ExperimentData`]: the training and test images of an experiment, with
//! their normalization and augmentation.

use std::path::Path;
use std::sync::Arc;

use super::{
    Augmentation, DataError, DataSource, ImageDataset, Normalization, load_cifar10,
    load_fashion_mnist,
};

/// Training and test images of an image-classification experiment. It is
/// the image-classification [`Task`](crate::task::Task) of the crate (seeded
/// loader, augmentation, cross-entropy, accuracy) for every
/// [`Classifier`](crate::models::Classifier).
#[derive(Debug, Clone)]
pub struct ExperimentData {
    /// Training set.
    pub train: Arc<ImageDataset>,
    /// Test set (accuracy reported at the end of every level).
    pub test: Arc<ImageDataset>,
    /// Per-channel normalization (e.g. the training set's statistics).
    pub normalization: Normalization,
    /// Augmentation used when the recipe enables it.
    pub augmentation: Option<Augmentation>,
}

impl ExperimentData {
    /// Fashion-MNIST from `dir` (or the lookup of [`DataSource::fashion_mnist`]:
    /// `$FASHION_MNIST_DIR`, Debian's package, the cache, a download),
    /// normalized by the training set's statistics, without augmentation.
    pub fn fashion_mnist(dir: Option<&Path>) -> Result<Self, DataError> {
        let source = match dir {
            Some(dir) => DataSource::fashion_mnist().with_dir(dir),
            None => DataSource::fashion_mnist(),
        };
        let splits = load_fashion_mnist(&source)?;
        Ok(Self {
            normalization: Normalization::from_dataset(&splits.train),
            train: Arc::new(splits.train),
            test: Arc::new(splits.test),
            augmentation: None,
        })
    }

    /// CIFAR-10 from `dir` (or the lookup of [`DataSource::cifar10`],
    /// downloading when absent), with the reference normalization and
    /// augmentation (random crop with padding 4, horizontal flip).
    pub fn cifar10(dir: Option<&Path>) -> Result<Self, DataError> {
        let source = match dir {
            Some(dir) => DataSource::cifar10().with_dir(dir),
            None => DataSource::cifar10(),
        };
        let splits = load_cifar10(&source)?;
        Ok(Self {
            train: Arc::new(splits.train),
            test: Arc::new(splits.test),
            normalization: Normalization::cifar10(),
            augmentation: Some(Augmentation::cifar10()),
        })
    }
}
