//! The training losses of the steps since the last read, kept on the device
//! and read in one transfer, so the host does not wait for the device after
//! every step.

use std::cell::Cell;

use burn::tensor::{Tensor, Transaction};

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

    /// Reads every pending loss at once (one device sync, no kernel launched)
    /// and empties the window: the iterations they belong to and their
    /// values, or `None` when nothing is pending. The first non-finite loss
    /// is an error that names its exact iteration.
    pub(crate) fn read(&mut self) -> Result<Option<LossesRead>, TrainError> {
        if self.pending.is_empty() {
            return Ok(None);
        }
        let values = read_together(std::mem::take(&mut self.pending));
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

/// The values of the `f32` tensors `tensors`, in order and one after the
/// other, read from the device in one transfer (a burn [`Transaction`]: one
/// wait for the device, and no kernel gathering the tensors into one first,
/// which `Tensor::cat` launches). Counted as one host read.
pub(crate) fn read_together<const D: usize>(tensors: Vec<Tensor<D>>) -> Vec<f64> {
    count_host_read();
    tensors
        .into_iter()
        .fold(Transaction::default(), Transaction::register)
        .execute()
        .iter()
        .flat_map(|data| data.iter::<f32>())
        .map(f64::from)
        .collect()
}

#[cfg(all(test, any(feature = "wgpu", feature = "wgpu-unfused")))]
mod tests {
    use burn::tensor::{Device, DeviceKind, Tensor, TensorData};

    use super::LossWindow;
    use crate::launches::LaunchCounter;

    /// Reading a window of losses on a GPU device is a transfer, not a
    /// kernel: nothing is launched to gather the losses first.
    #[test]
    fn reading_a_window_of_losses_launches_no_kernel() {
        let device = Device::wgpu(DeviceKind::DefaultDevice);
        let mut window = LossWindow::default();
        for i in 0..10u64 {
            let loss = Tensor::<1>::from_data(TensorData::new(vec![i as f32], [1]), &device);
            window.push(100 + i, loss);
        }
        device.sync().unwrap();
        let counter = LaunchCounter::start();
        let read = window.read().unwrap().unwrap();
        let launches = counter.finish(&device).unwrap();
        assert_eq!(read.first, 100);
        assert_eq!(read.values, (0..10).map(f64::from).collect::<Vec<_>>());
        assert_eq!(launches.total(), 0, "reading launched {launches}");
    }
}
