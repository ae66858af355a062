//! Picking a burn device by name among the backends compiled in.
//!
//! The library itself never chooses a backend; examples, tests and benches
//! use this to turn a `--device` flag into a [`Device`].

use burn::tensor::Device;

/// A device name that is unknown or whose backend was not compiled in.
#[derive(Debug, thiserror::Error)]
#[error("unknown or unavailable device `{name}`; compiled in: {}", available.join(", "))]
pub struct DeviceError {
    /// The name asked for.
    pub name: String,
    /// The names this build supports.
    pub available: Vec<&'static str>,
}

/// Device names this build supports, fastest CPU backend first.
pub fn available_devices() -> Vec<&'static str> {
    let mut names = Vec::new();
    if cfg!(any(feature = "ndarray", feature = "cubecl")) {
        names.push("flex");
    }
    if cfg!(feature = "ndarray") {
        names.push("ndarray");
    }
    if cfg!(any(feature = "wgpu", feature = "wgpu-unfused")) {
        names.push("wgpu");
        names.push("wgpu:N");
    }
    if cfg!(feature = "cuda") {
        names.push("cuda");
        names.push("cuda:N");
    }
    names
}

/// The device called `name` (`flex`, `ndarray`, `wgpu` or `cuda`, as
/// compiled in; `wgpu:N` is the N-th discrete GPU and `cuda:N` the GPU of
/// CUDA index N, for one process per GPU).
pub fn device_by_name(name: &str) -> Result<Device, DeviceError> {
    #[cfg(feature = "cuda")]
    if let Some(index) = name.strip_prefix("cuda:")
        && let Ok(index) = index.parse::<usize>()
    {
        return Ok(Device::cuda(index));
    }
    #[cfg(any(feature = "wgpu", feature = "wgpu-unfused"))]
    if let Some(index) = name.strip_prefix("wgpu:")
        && let Ok(index) = index.parse::<usize>()
    {
        return Ok(Device::wgpu(burn::tensor::DeviceKind::DiscreteGpu(index)));
    }
    match name {
        #[cfg(any(feature = "ndarray", feature = "cubecl"))]
        "flex" => Ok(Device::flex()),
        #[cfg(feature = "ndarray")]
        #[allow(deprecated)]
        "ndarray" => Ok(Device::ndarray()),
        #[cfg(any(feature = "wgpu", feature = "wgpu-unfused"))]
        "wgpu" => Ok(Device::wgpu(burn::tensor::DeviceKind::DefaultDevice)),
        #[cfg(feature = "cuda")]
        "cuda" => Ok(Device::cuda(0)),
        _ => Err(DeviceError {
            name: name.to_string(),
            available: available_devices(),
        }),
    }
}
