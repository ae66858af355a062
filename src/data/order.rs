//! [`SeededOrder`]: which examples batch `i` of a seeded data order holds.
//!
//! With `N` examples and batch size `B`, an epoch has `ceil(N / B)` batches
//! (the last one smaller when `B` does not divide `N`). Iteration `i` is
//! batch `i % per_epoch` of epoch `e = i / per_epoch`, and epoch `e` visits
//! the examples in the permutation of `0..N` drawn from
//! `mix_seed([tag, seed, e])` (see [`seeded_permutation`]). The same order
//! serves the crate's image [`SeededLoader`](super::SeededLoader) and
//! [`DatasetTask`](crate::task::DatasetTask) over any burn dataset.

use std::sync::{Arc, Mutex};

use super::DataError;
use super::loader::iterations_per_epoch;
use super::seed::{DATA_ORDER_TAG, mix_seed, seeded_permutation};

/// The seeded order of `len` examples in batches of `batch_size`.
#[derive(Debug)]
pub struct SeededOrder {
    len: usize,
    batch_size: usize,
    seed: u64,
    /// The permutation of the last epoch asked for.
    cache: Mutex<Option<(u64, Arc<Vec<u32>>)>>,
}

impl Clone for SeededOrder {
    fn clone(&self) -> Self {
        Self {
            len: self.len,
            batch_size: self.batch_size,
            seed: self.seed,
            cache: Mutex::new(None),
        }
    }
}

impl SeededOrder {
    /// The order of `len` examples (1 to 2^32 - 1) in batches of
    /// `batch_size` (> 0), drawn from `seed`.
    pub fn new(len: usize, batch_size: usize, seed: u64) -> Result<Self, DataError> {
        if len == 0 {
            return Err(DataError::InvalidArgument(
                "cannot load batches from an empty dataset".into(),
            ));
        }
        if u32::try_from(len).is_err() {
            return Err(DataError::InvalidArgument(format!(
                "{len} samples: at most 2^32 - 1 are supported"
            )));
        }
        if batch_size == 0 {
            return Err(DataError::InvalidArgument("batch size 0".into()));
        }
        Ok(Self {
            len,
            batch_size,
            seed,
            cache: Mutex::new(None),
        })
    }

    /// Batches per epoch: `ceil(len / batch_size)`.
    pub fn iterations_per_epoch(&self) -> usize {
        iterations_per_epoch(self.len, self.batch_size)
    }

    /// `(epoch, batch within the epoch)` of an iteration.
    pub fn epoch_and_batch(&self, iteration: u64) -> (u64, usize) {
        let per_epoch = self.iterations_per_epoch() as u64;
        (iteration / per_epoch, (iteration % per_epoch) as usize)
    }

    /// The permutation of `0..len` that epoch `epoch` visits.
    pub fn epoch_order(&self, epoch: u64) -> Arc<Vec<u32>> {
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((cached_epoch, order)) = cache.as_ref()
            && *cached_epoch == epoch
        {
            return Arc::clone(order);
        }
        let seed = mix_seed(&[DATA_ORDER_TAG, self.seed, epoch]);
        let order = Arc::new(seeded_permutation(self.len, seed));
        *cache = Some((epoch, Arc::clone(&order)));
        order
    }

    /// Indices of the examples of batch `iteration`, in batch order.
    pub fn batch_indices(&self, iteration: u64) -> Vec<usize> {
        let (epoch, batch) = self.epoch_and_batch(iteration);
        let order = self.epoch_order(epoch);
        let start = batch * self.batch_size;
        let end = (start + self.batch_size).min(order.len());
        order[start..end].iter().map(|&i| i as usize).collect()
    }
}
