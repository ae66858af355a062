//! Image classification as a [`Task`]: [`ExperimentData`] with the crate's
//! seeded loader, augmentation, cross-entropy and accuracy, for any
//! [`Classifier`].

use std::ops::Range;
use std::sync::Arc;

use burn::tensor::{Device, Tensor};

use super::{Batches, DataOrder, MetricSpec, Metrics, Split, Task, TaskError};
use crate::data::{ExperimentData, LoaderConfig, SeededLoader, TensorBatch};
use crate::models::{Classifier, check_fits_data, cross_entropy};
use crate::train::trainer::evaluate;

/// Batches built ahead of the training loop on a background thread.
const PREFETCH_DEPTH: usize = 4;

impl ExperimentData {
    /// The seeded loader of `order` over the training set.
    pub fn loader(&self, order: &DataOrder) -> Result<SeededLoader, TaskError> {
        let config = LoaderConfig {
            batch_size: order.batch_size,
            data_order_seed: order.order_seed,
            augment_seed: order.augment_seed.unwrap_or(0),
            augmentation: order.augment_seed.and(self.augmentation),
            normalization: self.normalization.clone(),
        };
        Ok(SeededLoader::new(Arc::clone(&self.train), config)?)
    }
}

/// Metrics: `accuracy` (reported), `error` (= 1 - accuracy, for barriers)
/// and `loss` (mean cross-entropy).
impl<M: Classifier> Task<M> for ExperimentData {
    type Batch = TensorBatch;

    fn check_model(&self, model: &M, device: &Device) -> Result<(), TaskError> {
        let (shape, classes) = (self.train.image_shape(), self.train.num_classes());
        Ok(check_fits_data(model, shape, classes, device)?)
    }

    fn batches<'a>(
        &'a self,
        order: &DataOrder,
        iterations: Range<u64>,
        device: &'a Device,
    ) -> Result<Batches<'a, TensorBatch>, TaskError> {
        let loader = self.loader(order)?;
        let batches = loader.prefetch(iterations, PREFETCH_DEPTH);
        Ok(Box::new(batches.to_device(device).map(Ok)))
    }

    fn loss(&self, model: &M, batch: TensorBatch) -> Tensor<1> {
        cross_entropy(model.forward(batch.images), batch.labels)
    }

    fn evaluate(
        &self,
        model: &M,
        split: Split,
        batch_size: usize,
        device: &Device,
    ) -> Result<Metrics, TaskError> {
        let evaluation = match split {
            Split::Test => evaluate(model, &self.test, &self.normalization, batch_size, device),
            Split::TrainSubset(n) => {
                let subset = self.train.subset(0..n.min(self.train.len()))?;
                evaluate(model, &subset, &self.normalization, batch_size, device)
            }
        };
        let evaluation = evaluation?;
        Ok(Metrics::new()
            .with("accuracy", evaluation.accuracy)
            .with("error", 1.0 - evaluation.accuracy)
            .with("loss", evaluation.loss))
    }

    fn metrics(&self) -> MetricSpec {
        MetricSpec::accuracy()
    }

    /// The sum of the logits of one all-ones image of the dataset's shape.
    fn synflow_objective(&self, model: &M, device: &Device) -> Result<Tensor<1>, TaskError> {
        let [c, h, w] = self.train.image_shape();
        Ok(model.forward(Tensor::<4>::ones([1, c, h, w], device)).sum())
    }

    fn host_batch(&self, batch: &TensorBatch) -> Option<(Vec<f32>, Vec<i64>)> {
        let images = batch.images.to_data().convert::<f32>().try_to_vec().ok()?;
        let labels = batch.labels.to_data().convert::<i64>().try_to_vec().ok()?;
        Some((images, labels))
    }
}
