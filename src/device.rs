//! Picking a burn device by name among the backends compiled in.
//!
//! The library itself never chooses a backend; examples, tests and benches
//! use this to turn a `--device` flag into a [`Device`].

use burn::tensor::Device;

/// Why a device name gives no device.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    /// The name is unknown, or its backend was not compiled in.
    #[error("unknown or unavailable device `{name}`; compiled in: {}", available.join(", "))]
    Unknown {
        /// The name asked for.
        name: String,
        /// The names this build supports.
        available: Vec<&'static str>,
    },
    /// burn's wgpu backend is compiled in but this machine has no such
    /// device.
    #[error(
        "device `{name}`: not on this machine; wgpu finds {adapters} adapter(s), {discrete} of \
         them discrete GPUs (`wgpu:0` is the first; `wgpu` takes the default adapter){}",
        if *adapters == 0 { NO_ADAPTER_HINT } else { "" }
    )]
    WgpuNotFound {
        /// The name asked for.
        name: String,
        /// The adapters wgpu finds, of any kind (a software driver counts).
        adapters: usize,
        /// Of those, the discrete GPUs.
        discrete: usize,
    },
    /// burn's CUDA backend is compiled in but this machine has no such GPU.
    #[error(
        "device `{name}`: not on this machine; CUDA finds {gpus} GPU(s) (`cuda:0` is the \
         first){}",
        if *gpus == 0 { NO_CUDA_HINT } else { "" }
    )]
    CudaNotFound {
        /// The name asked for.
        name: String,
        /// The GPUs NVIDIA's driver reports (none without the driver).
        gpus: usize,
    },
}

const NO_ADAPTER_HINT: &str = "; wgpu needs a Vulkan driver: the GPU vendor's, or Mesa's \
    software one (Debian: mesa-vulkan-drivers libvulkan1)";

const NO_CUDA_HINT: &str = "; burn's CUDA backend needs NVIDIA's driver (libcuda)";

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
///
/// A name this build does not know is [`DeviceError::Unknown`]; a GPU this
/// machine does not have is [`DeviceError::WgpuNotFound`] or
/// [`DeviceError::CudaNotFound`], checked here because burn would only find
/// out at the first tensor, with a panic in its device thread.
pub fn device_by_name(name: &str) -> Result<Device, DeviceError> {
    #[cfg(feature = "cuda")]
    if let Some(index) = name.strip_prefix("cuda:")
        && let Ok(index) = index.parse::<usize>()
    {
        return cuda_device(name, index);
    }
    #[cfg(any(feature = "wgpu", feature = "wgpu-unfused"))]
    if let Some(index) = name.strip_prefix("wgpu:")
        && let Ok(index) = index.parse::<usize>()
    {
        return wgpu_device(name, burn::tensor::DeviceKind::DiscreteGpu(index));
    }
    match name {
        #[cfg(any(feature = "ndarray", feature = "cubecl"))]
        "flex" => Ok(Device::flex()),
        #[cfg(feature = "ndarray")]
        #[allow(deprecated)]
        "ndarray" => Ok(Device::ndarray()),
        #[cfg(any(feature = "wgpu", feature = "wgpu-unfused"))]
        "wgpu" => wgpu_device(name, burn::tensor::DeviceKind::DefaultDevice),
        #[cfg(feature = "cuda")]
        "cuda" => cuda_device(name, 0),
        _ => Err(DeviceError::Unknown {
            name: name.to_string(),
            available: available_devices(),
        }),
    }
}

/// The wgpu device of `kind`, if wgpu finds it on this machine (burn would
/// otherwise panic in its device thread at the first tensor): any adapter for
/// the default device, the N-th discrete GPU for `DiscreteGpu(N)`.
#[cfg(any(feature = "wgpu", feature = "wgpu-unfused"))]
fn wgpu_device(name: &str, kind: burn::tensor::DeviceKind) -> Result<Device, DeviceError> {
    use burn::tensor::{DeviceKind, DeviceType};
    let found = Device::enumerate(DeviceType::Wgpu).into_vec();
    let default = matches!(kind, DeviceKind::DefaultDevice);
    let device = Device::wgpu(kind);
    let exists = if default {
        !found.is_empty()
    } else {
        found.contains(&device)
    };
    if exists {
        return Ok(device);
    }
    let discrete = (0..found.len())
        .filter(|&i| found.contains(&Device::wgpu(DeviceKind::DiscreteGpu(i))))
        .count();
    Err(DeviceError::WgpuNotFound {
        name: name.to_string(),
        adapters: found.len(),
        discrete,
    })
}

/// CUDA's GPU `index`, if NVIDIA's driver reports it (burn would otherwise
/// panic in its device thread at the first tensor).
#[cfg(feature = "cuda")]
fn cuda_device(name: &str, index: usize) -> Result<Device, DeviceError> {
    let gpus = Device::enumerate(burn::tensor::DeviceType::Cuda).len();
    if index < gpus {
        return Ok(Device::cuda(index));
    }
    Err(DeviceError::CudaNotFound {
        name: name.to_string(),
        gpus,
    })
}
