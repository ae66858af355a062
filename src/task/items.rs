//! The data half shared by [`DatasetTask`](super::DatasetTask) and
//! [`StepTask`](super::StepTask): a training and a test burn [`Dataset`] and
//! one [`Batcher`], read in the seeded order for training and in stored
//! order for evaluation.

use std::ops::Range;
use std::sync::Arc;

use burn::data::dataloader::batcher::Batcher;
use burn::data::dataset::Dataset;
use burn::tensor::Device;

use super::{Batches, DataOrder, Split, TaskError};
use crate::data::SeededOrder;

/// An evaluation batch and its number of items.
pub(crate) type EvalBatch<B> = Result<(B, usize), TaskError>;

/// Training and test items `I` and the batcher that turns them into `B`.
pub(crate) struct Items<I, B> {
    train: Arc<dyn Dataset<I>>,
    test: Arc<dyn Dataset<I>>,
    batcher: Arc<dyn Batcher<I, B>>,
}

impl<I, B> Items<I, B> {
    pub(crate) fn new(
        train: impl Dataset<I> + 'static,
        test: impl Dataset<I> + 'static,
        batcher: impl Batcher<I, B> + 'static,
    ) -> Self {
        Self {
            train: Arc::new(train),
            test: Arc::new(test),
            batcher: Arc::new(batcher),
        }
    }

    pub(crate) fn train_len(&self) -> usize {
        self.train.len()
    }

    pub(crate) fn test_len(&self) -> usize {
        self.test.len()
    }

    /// Items `indices` of `dataset`, or the first one that cannot be read.
    fn read(dataset: &dyn Dataset<I>, indices: &[usize]) -> Result<Vec<I>, TaskError> {
        indices
            .iter()
            .map(|&index| {
                dataset.get(index).map_err(|e| TaskError::Item {
                    index,
                    reason: e.to_string(),
                })
            })
            .collect()
    }

    /// Training batch `i` holds the items of positions `b*B..(b+1)*B` of
    /// epoch `e`'s seeded permutation ([`SeededOrder`]). No augmentation.
    pub(crate) fn batches<'a>(
        &'a self,
        order: &DataOrder,
        iterations: Range<u64>,
        device: &'a Device,
    ) -> Result<Batches<'a, B>, TaskError> {
        if order.augment_seed.is_some() {
            return Err(TaskError::Invalid(
                "a dataset task does not augment: set the recipe's augment to false".into(),
            ));
        }
        let seeded = SeededOrder::new(self.train.len(), order.batch_size, order.order_seed)?;
        Ok(Box::new(iterations.map(move |iteration| {
            let items = Self::read(self.train.as_ref(), &seeded.batch_indices(iteration))?;
            Ok(self.batcher.batch(items, device))
        })))
    }

    /// The evaluation batches of `split` in stored order, each with its
    /// number of items, and the number of items in all.
    pub(crate) fn evaluation<'a>(
        &'a self,
        split: Split,
        batch_size: usize,
        device: &'a Device,
    ) -> Result<(usize, impl Iterator<Item = EvalBatch<B>> + 'a), TaskError> {
        if batch_size == 0 {
            return Err(TaskError::Invalid("evaluation batch size 0".into()));
        }
        let (dataset, len) = match split {
            Split::Test => (self.test.as_ref(), self.test.len()),
            Split::TrainSubset(n) => (self.train.as_ref(), n.min(self.train.len())),
        };
        let batches = (0..len).step_by(batch_size).map(move |start| {
            let indices: Vec<usize> = (start..(start + batch_size).min(len)).collect();
            let items = Self::read(dataset, &indices)?;
            Ok((self.batcher.batch(items, device), indices.len()))
        });
        Ok((len, batches))
    }
}
