//! The training losses of the steps since the last read, kept on the device
//! and read in one transfer, so the host does not wait for the device after
//! every step.

use std::cell::Cell;

use burn::tensor::Tensor;

use super::trainer::TrainError;

thread_local! {
    static HOST_READS: Cell<u64> = const { Cell::new(0) };
}

/// How many times the training loop and the evaluation of
/// [`crate::train::trainer`] have read values back from the device on this
/// thread (each read makes the host wait for the device). A diagnostic for
/// tests and benchmarks: compare it before and after a call.
pub fn host_reads() -> u64 {
    HOST_READS.with(Cell::get)
}

/// Counts one read of the device's values by the host.
pub(crate) fn count_host_read() {
    HOST_READS.with(|reads| reads.set(reads.get() + 1));
}

/// The losses of consecutive iterations, read at once.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct LossesRead {
    /// The iteration of `values[0]`.
    pub first: u64,
    /// One loss per iteration.
    pub values: Vec<f64>,
}

/// The pending losses of consecutive iterations.
#[derive(Debug, Default)]
pub(crate) struct LossWindow {
    /// The iteration of `pending[0]`.
    first: u64,
    pending: Vec<Tensor<1>>,
}

impl LossWindow {
    /// Keeps the loss of `iteration` (the iteration after the last one kept).
    pub(crate) fn push(&mut self, iteration: u64, loss: Tensor<1>) {
        if self.pending.is_empty() {
            self.first = iteration;
        }
        self.pending.push(loss.without_autodiff());
    }

    /// Reads every pending loss at once (one device sync) and empties the
    /// window: the iterations they belong to and their values, or `None`
    /// when nothing is pending. The first non-finite loss is an error that
    /// names its exact iteration.
    pub(crate) fn read(&mut self) -> Result<Option<LossesRead>, TrainError> {
        if self.pending.is_empty() {
            return Ok(None);
        }
        let pending = std::mem::take(&mut self.pending);
        count_host_read();
        let values: Vec<f64> = Tensor::cat(pending, 0)
            .into_data()
            .iter::<f32>()
            .map(f64::from)
            .collect();
        if let Some((offset, &loss)) = values.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            return Err(TrainError::NonFiniteLoss {
                iteration: self.first + offset as u64,
                loss,
            });
        }
        Ok(Some(LossesRead {
            first: self.first,
            values,
        }))
    }
}
