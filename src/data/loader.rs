//! A seeded, resumable batch loader, a prefetching iterator over it, and a
//! fixed-order evaluation iterator.
//!
//! # What batch `i` is
//!
//! With `N` samples and batch size `B`, an epoch has
//! `iterations_per_epoch = ceil(N / B)` batches (the last one smaller when
//! `B` does not divide `N`: 50,000 / 128 gives 391 batches, the last of 80).
//! Iteration `i` is batch `i % iterations_per_epoch` of epoch
//! `e = i / iterations_per_epoch`.
//!
//! * **Order.** Epoch `e` visits the samples in the permutation of `0..N`
//!   drawn from a generator seeded by `mix_seed([tag, data_order_seed, e])`
//!   (see [`seeded_permutation`](super::seed::seeded_permutation)); batch `b` is positions `b*B .. (b+1)*B`
//!   of it.
//! * **Augmentation.** Sample `s` in epoch `e` is transformed by
//!   [`Augmentation::sample`] of `mix_seed([tag, augment_seed, e, s])`:
//!   keyed by *(augment seed, epoch, sample index)*, not by position in the
//!   batch, so changing only the data-order seed reorders the same augmented
//!   images, and changing only the augmentation seed changes the images but
//!   not the order.
//!
//! So the batch is a pure function of `(data_order_seed, augment_seed, i)`
//! (and the dataset and config): training resumes at any iteration by
//! asking for batch `k`, and prefetching cannot change the result.

use std::ops::Range;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, sync_channel};
use std::thread::JoinHandle;

use burn::tensor::{Device, Int, Tensor, TensorData};

use super::augment::{AugmentParams, augment_normalize_into, normalize_into};
use super::order::SeededOrder;
use super::seed::{AUGMENT_TAG, mix_seed};
use super::{Augmentation, DataError, ImageDataset, Normalization};

/// Number of batches per epoch: `ceil(num_samples / batch_size)` (0 when
/// `batch_size` is 0).
pub fn iterations_per_epoch(num_samples: usize, batch_size: usize) -> usize {
    if batch_size == 0 {
        0
    } else {
        num_samples.div_ceil(batch_size)
    }
}

/// How a [`SeededLoader`] builds batches.
#[derive(Clone, Debug, PartialEq)]
pub struct LoaderConfig {
    /// Samples per batch (the last batch of an epoch may be smaller).
    pub batch_size: usize,
    /// Seeds the order of the samples in each epoch.
    pub data_order_seed: u64,
    /// Seeds the augmentation of each sample in each epoch.
    pub augment_seed: u64,
    /// Random crop / flip; `None` for none (Fashion-MNIST / LeNet).
    pub augmentation: Option<Augmentation>,
    /// Per-channel normalization applied after augmentation.
    pub normalization: Normalization,
}

impl LoaderConfig {
    /// No augmentation, both seeds 0.
    pub fn new(batch_size: usize, normalization: Normalization) -> Self {
        Self {
            batch_size,
            data_order_seed: 0,
            augment_seed: 0,
            augmentation: None,
            normalization,
        }
    }

    /// The CIFAR-10 recipe: batch 128, crop with padding 4, random flip,
    /// CIFAR-10 normalization.
    pub fn cifar10(data_order_seed: u64, augment_seed: u64) -> Self {
        Self {
            batch_size: 128,
            data_order_seed,
            augment_seed,
            augmentation: Some(Augmentation::cifar10()),
            normalization: Normalization::cifar10(),
        }
    }

    /// Sets both seeds.
    pub fn with_seeds(mut self, data_order_seed: u64, augment_seed: u64) -> Self {
        self.data_order_seed = data_order_seed;
        self.augment_seed = augment_seed;
        self
    }

    /// Sets the augmentation (`None` disables it).
    pub fn with_augmentation(mut self, augmentation: Option<Augmentation>) -> Self {
        self.augmentation = augmentation;
        self
    }

    /// Sets the batch size.
    pub fn with_batch_size(mut self, batch_size: usize) -> Self {
        self.batch_size = batch_size;
        self
    }
}

/// A batch in host memory.
#[derive(Clone, Debug, PartialEq)]
pub struct HostBatch {
    /// The training iteration (for [`EvalBatches`]: the batch number).
    pub iteration: u64,
    /// The epoch the batch belongs to (0 for [`EvalBatches`]).
    pub epoch: u64,
    /// Dataset index of each sample, in batch order.
    pub indices: Vec<usize>,
    /// Normalized pixels, `N x C x H x W`.
    pub images: Vec<f32>,
    /// Class labels.
    pub labels: Vec<i64>,
    /// `[N, C, H, W]`.
    pub shape: [usize; 4],
}

impl HostBatch {
    /// Number of samples.
    pub fn len(&self) -> usize {
        self.shape[0]
    }

    /// True for a batch without samples.
    pub fn is_empty(&self) -> bool {
        self.shape[0] == 0
    }

    /// Copies the batch to `device`.
    pub fn to_tensors(&self, device: &Device) -> TensorBatch {
        self.clone().into_tensors(device)
    }

    /// Moves the batch to `device`: images `[N, C, H, W]` (float), labels
    /// `[N]` (int).
    pub fn into_tensors(self, device: &Device) -> TensorBatch {
        let n = self.labels.len();
        TensorBatch {
            images: Tensor::<4>::from_data(TensorData::new(self.images, self.shape), device),
            labels: Tensor::<1, Int>::from_data(TensorData::new(self.labels, [n]), device),
        }
    }
}

/// A batch on a device.
#[derive(Clone, Debug)]
pub struct TensorBatch {
    /// Normalized images, `[N, C, H, W]`.
    pub images: Tensor<4>,
    /// Class labels, `[N]`.
    pub labels: Tensor<1, Int>,
}

/// Deterministic batches: the batch at an iteration is a pure function of
/// the dataset, the [`LoaderConfig`] (seeds included) and the iteration.
/// See the [module docs](self) for the exact definition.
///
/// Cloning is cheap (the dataset is shared).
#[derive(Clone)]
pub struct SeededLoader {
    dataset: Arc<ImageDataset>,
    config: LoaderConfig,
    tables: Arc<Vec<[f32; 256]>>,
    order: SeededOrder,
}

impl std::fmt::Debug for SeededLoader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SeededLoader")
            .field("dataset", &self.dataset)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl SeededLoader {
    /// A loader over `dataset`. Fails on an empty dataset, a zero batch
    /// size, or a normalization whose channel count differs from the
    /// dataset's.
    pub fn new(
        dataset: impl Into<Arc<ImageDataset>>,
        config: LoaderConfig,
    ) -> Result<Self, DataError> {
        let dataset = dataset.into();
        let order = SeededOrder::new(dataset.len(), config.batch_size, config.data_order_seed)?;
        if config.normalization.channels() != dataset.channels() {
            return Err(DataError::InvalidArgument(format!(
                "normalization for {} channels, dataset images have {}",
                config.normalization.channels(),
                dataset.channels()
            )));
        }
        let tables = Arc::new(config.normalization.lookup_tables());
        Ok(Self {
            dataset,
            config,
            tables,
            order,
        })
    }

    /// The dataset.
    pub fn dataset(&self) -> &ImageDataset {
        &self.dataset
    }

    /// The configuration.
    pub fn config(&self) -> &LoaderConfig {
        &self.config
    }

    /// Batches per epoch: `ceil(len / batch_size)`.
    pub fn iterations_per_epoch(&self) -> usize {
        self.order.iterations_per_epoch()
    }

    /// `(epoch, batch within the epoch)` of an iteration.
    pub fn epoch_and_batch(&self, iteration: u64) -> (u64, usize) {
        self.order.epoch_and_batch(iteration)
    }

    /// The order in which epoch `epoch` visits the dataset: a permutation
    /// of `0..len`.
    pub fn epoch_permutation(&self, epoch: u64) -> Vec<usize> {
        self.order
            .epoch_order(epoch)
            .iter()
            .map(|&i| i as usize)
            .collect()
    }

    /// Dataset indices of the samples of batch `iteration`, in batch order.
    pub fn batch_indices(&self, iteration: u64) -> Vec<usize> {
        self.order.batch_indices(iteration)
    }

    /// The augmentation applied to sample `sample` in epoch `epoch`
    /// (identity without augmentation).
    pub fn augment_params(&self, epoch: u64, sample: usize) -> AugmentParams {
        match &self.config.augmentation {
            Some(aug) => aug.sample(mix_seed(&[
                AUGMENT_TAG,
                self.config.augment_seed,
                epoch,
                sample as u64,
            ])),
            None => AugmentParams::IDENTITY,
        }
    }

    /// The batch of iteration `iteration`, in host memory.
    pub fn host_batch(&self, iteration: u64) -> HostBatch {
        let (epoch, _) = self.epoch_and_batch(iteration);
        let indices = self.batch_indices(iteration);
        let shape = self.dataset.image_shape();
        let image_len = self.dataset.image_len();
        let mut images = vec![0f32; indices.len() * image_len];
        let mut labels = Vec::with_capacity(indices.len());
        for (&index, out) in indices.iter().zip(images.chunks_exact_mut(image_len)) {
            let src = self.dataset.image(index);
            match &self.config.augmentation {
                Some(_) => {
                    let params = self.augment_params(epoch, index);
                    augment_normalize_into(src, shape, params, &self.tables, out);
                }
                None => normalize_into(src, shape, &self.tables, out),
            }
            labels.push(i64::from(self.dataset.label(index)));
        }
        HostBatch {
            iteration,
            epoch,
            shape: [indices.len(), shape[0], shape[1], shape[2]],
            indices,
            images,
            labels,
        }
    }

    /// The batch of iteration `iteration`, on `device`.
    pub fn batch(&self, iteration: u64, device: &Device) -> TensorBatch {
        self.host_batch(iteration).into_tensors(device)
    }

    /// The batches of `iterations`, built on the calling thread.
    pub fn batches(&self, iterations: Range<u64>) -> impl Iterator<Item = HostBatch> + '_ {
        iterations.map(move |i| self.host_batch(i))
    }

    /// The batches of `iterations`, built on a background thread that keeps
    /// up to `depth` batches (at least 1) ready. Yields exactly what
    /// [`SeededLoader::batches`] yields.
    pub fn prefetch(&self, iterations: Range<u64>, depth: usize) -> PrefetchBatches {
        let (sender, receiver) = sync_channel(depth.max(1));
        let loader = self.clone();
        let remaining = iterations.end.saturating_sub(iterations.start);
        let handle = std::thread::Builder::new()
            .name("burn-lottery-prefetch".into())
            .spawn(move || {
                for i in iterations {
                    if sender.send(loader.host_batch(i)).is_err() {
                        break; // the consumer is gone
                    }
                }
            })
            .expect("spawning the prefetch thread");
        PrefetchBatches {
            receiver: Some(receiver),
            handle: Some(handle),
            remaining,
        }
    }
}

/// Batches built ahead on a background thread; see
/// [`SeededLoader::prefetch`]. Dropping it stops the thread.
#[derive(Debug)]
pub struct PrefetchBatches {
    receiver: Option<Receiver<HostBatch>>,
    handle: Option<JoinHandle<()>>,
    remaining: u64,
}

impl PrefetchBatches {
    /// Moves each batch to `device` as it is taken.
    pub fn to_device(self, device: &Device) -> impl Iterator<Item = TensorBatch> + '_ {
        self.map(move |b| b.into_tensors(device))
    }

    fn join_worker(&mut self) {
        self.receiver = None;
        if let Some(handle) = self.handle.take()
            && let Err(panic) = handle.join()
            && !std::thread::panicking()
        {
            std::panic::resume_unwind(panic);
        }
    }
}

impl Iterator for PrefetchBatches {
    type Item = HostBatch;

    fn next(&mut self) -> Option<HostBatch> {
        let batch = self.receiver.as_ref()?.recv();
        match batch {
            Ok(batch) => {
                self.remaining = self.remaining.saturating_sub(1);
                Some(batch)
            }
            Err(_) => {
                // The worker finished (or panicked: re-raised here).
                self.join_worker();
                None
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = usize::try_from(self.remaining).unwrap_or(usize::MAX);
        (n, Some(n))
    }
}

impl Drop for PrefetchBatches {
    fn drop(&mut self) {
        self.join_worker();
    }
}

/// The whole dataset in its stored order, in batches, normalized and never
/// augmented: for evaluation.
#[derive(Debug)]
pub struct EvalBatches<'a> {
    dataset: &'a ImageDataset,
    batch_size: usize,
    tables: Vec<[f32; 256]>,
    next_start: usize,
    batch_number: u64,
}

impl<'a> EvalBatches<'a> {
    /// Batches of `batch_size` over `dataset` (the last one smaller). Fails
    /// on a zero batch size or a normalization with the wrong channel count.
    pub fn new(
        dataset: &'a ImageDataset,
        batch_size: usize,
        normalization: &Normalization,
    ) -> Result<Self, DataError> {
        if batch_size == 0 {
            return Err(DataError::InvalidArgument("batch size 0".into()));
        }
        if normalization.channels() != dataset.channels() {
            return Err(DataError::InvalidArgument(format!(
                "normalization for {} channels, dataset images have {}",
                normalization.channels(),
                dataset.channels()
            )));
        }
        Ok(Self {
            dataset,
            batch_size,
            tables: normalization.lookup_tables(),
            next_start: 0,
            batch_number: 0,
        })
    }

    /// Moves each batch to `device` as it is taken.
    pub fn to_device(self, device: &Device) -> impl Iterator<Item = TensorBatch> + 'a {
        let device = device.clone();
        self.map(move |b| b.into_tensors(&device))
    }
}

impl Iterator for EvalBatches<'_> {
    type Item = HostBatch;

    fn next(&mut self) -> Option<HostBatch> {
        let start = self.next_start;
        if start >= self.dataset.len() {
            return None;
        }
        let end = (start + self.batch_size).min(self.dataset.len());
        let shape = self.dataset.image_shape();
        let image_len = self.dataset.image_len();
        let mut images = vec![0f32; (end - start) * image_len];
        let src = &self.dataset.images()[start * image_len..end * image_len];
        for (s, o) in src
            .chunks_exact(image_len)
            .zip(images.chunks_exact_mut(image_len))
        {
            normalize_into(s, shape, &self.tables, o);
        }
        let batch = HostBatch {
            iteration: self.batch_number,
            epoch: 0,
            indices: (start..end).collect(),
            images,
            labels: self.dataset.labels()[start..end]
                .iter()
                .map(|&l| i64::from(l))
                .collect(),
            shape: [end - start, shape[0], shape[1], shape[2]],
        };
        self.next_start = end;
        self.batch_number += 1;
        Some(batch)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.dataset.len().saturating_sub(self.next_start);
        let batches = n.div_ceil(self.batch_size);
        (batches, Some(batches))
    }
}

impl ExactSizeIterator for EvalBatches<'_> {}
