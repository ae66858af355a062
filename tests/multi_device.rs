//! Multi-device training through burn 0.22: what the CPU backends do.

use burn::tensor::distributed::{ReduceOperation, all_reduce};
use burn::tensor::{Device, Tensor, TensorData};
use burn_lottery::multi_device::{
    DataParallel, DataParallelError, check_devices, mark_distributed,
};

use crate::common::{init, ndarray};

/// The message of a panic.
fn panic_text(payload: Box<dyn std::any::Any + Send>) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

/// burn's own all-reduce on the CPU devices: burn-dispatch has no
/// distributed arm for ndarray or flex.
#[test]
fn burns_all_reduce_panics_on_the_cpu_backends() {
    for device in [Device::flex(), ndarray()] {
        let call = std::panic::catch_unwind(|| {
            let t = Tensor::<1>::from_data(TensorData::new(vec![1.0f32, 2.0], [2]), &device);
            all_reduce(t, ReduceOperation::Mean, vec![device.clone()]).resolve()
        });
        let text = panic_text(call.expect_err("burn 0.22 has no all_reduce on the CPU backends"));
        assert!(
            text.contains("Distributed operations are not supported"),
            "{text}"
        );
    }
}

/// Marking a parameter distributed (burn's `Tensor::set_distributed`, the
/// first step of its data-parallel training) panics on ndarray too.
#[test]
fn marking_parameters_distributed_panics_on_the_cpu_backends() {
    let device = ndarray().autodiff();
    let model = init(&device, 3);
    let call = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| mark_distributed(model)));
    let text = panic_text(call.expect_err("burn 0.22 cannot mark ndarray tensors distributed"));
    assert!(
        text.contains("Distributed operations are not supported for tensor kind NdArray"),
        "{text}"
    );
}

#[test]
fn data_parallel_refuses_what_burn_cannot_run() {
    let err = DataParallel::new(vec![Device::flex()]).unwrap_err();
    assert!(matches!(err, DataParallelError::TooFewDevices(1)), "{err}");
    let err = check_devices(&[Device::flex(), Device::flex()]).unwrap_err();
    assert!(matches!(err, DataParallelError::Duplicate(_)), "{err}");
    let err = DataParallel::new(vec![Device::flex(), ndarray()]).unwrap_err();
    assert!(
        matches!(&err, DataParallelError::Unsupported { reason, .. } if reason.contains("no distributed operations")),
        "{err}"
    );
}
