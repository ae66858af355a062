//! Counting the GPU kernel launches a piece of work issues (wgpu and cuda builds).
//!
//! On a GPU a training step of a small network is host-bound: its cost is
//! mostly a fixed amount of CPU work per kernel launch, so the number of
//! launches per step is the figure a change to the step should move. It does
//! not need a GPU to be measured: the same kernels are launched on Mesa's
//! software Vulkan driver (lavapipe), so a test can catch a change that adds
//! launches (an unfused operation, a mask applied twice) on any machine.
//!
//! [`LaunchCounter`] watches cubecl's launch path (burn's wgpu and CUDA
//! backends run on cubecl): every kernel the process issues is counted by its name until
//! the counter is finished. Process-wide, because burn issues a device's
//! launches from that device's own thread, not from the caller's: work that
//! other threads run on a GPU meanwhile is counted too, so count alone (tests
//! that count launches need a test binary of their own). Two counters never
//! run at once: a second one waits for the first to finish. Autotuning
//! launches candidate kernels the first time a shape is seen: count
//! steady-state work after a warm-up.
//!
//! With burn's `fusion` (the `wgpu` feature), operations are queued and
//! launched as fused kernels when the queue is flushed, at the latest when a
//! tensor is read or the device synchronized: [`LaunchCounter::finish`] takes
//! the device and synchronizes it first, so every launch of the counted work
//! is in the count.
//!
//! ```no_run
//! use burn::tensor::Tensor;
//! use burn_lottery::{device::device_by_name, launches::LaunchCounter};
//!
//! let device = device_by_name("wgpu").expect("a wgpu build");
//! let x = Tensor::<2>::ones([4, 4], &device);
//! let counter = LaunchCounter::start();
//! let y = (x.clone() * 2.0 + 1.0).exp();
//! let launches = counter.finish(&device).expect("device sync");
//! println!("{} launches: {launches}", launches.total());
//! # drop(y);
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use burn::tensor::Device;
use cubecl_runtime::logging::{LaunchObservation, LaunchObserver};

/// Kernel launches counted by kernel name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LaunchCount {
    by_kernel: BTreeMap<String, usize>,
}

impl LaunchCount {
    /// Launches of every kernel together.
    pub fn total(&self) -> usize {
        self.by_kernel.values().sum()
    }

    /// Launches of the kernel called `name` (0 if it was never launched).
    pub fn of(&self, name: &str) -> usize {
        self.by_kernel.get(name).copied().unwrap_or(0)
    }

    /// Every kernel launched, by name, with its launch count.
    pub fn by_kernel(&self) -> impl Iterator<Item = (&str, usize)> {
        self.by_kernel.iter().map(|(name, &n)| (name.as_str(), n))
    }

    /// Launches of kernels that burn's fusion built (merged elementwise
    /// chains, fused reductions): none when fusion is off or not compiled in.
    pub fn fused(&self) -> usize {
        self.by_kernel()
            .filter(|(name, _)| name.starts_with("burn_cubecl_fusion::"))
            .map(|(_, n)| n)
            .sum()
    }

    /// The `n` most launched kernels, most launched first (ties by name).
    pub fn most_launched(&self, n: usize) -> Vec<(&str, usize)> {
        let mut kernels: Vec<_> = self.by_kernel().collect();
        kernels.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        kernels.truncate(n);
        kernels
    }
}

impl fmt::Display for LaunchCount {
    /// One `name=count` pair per kernel, most launched first.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kernels = self.most_launched(usize::MAX);
        for (i, (name, n)) in kernels.iter().enumerate() {
            let separator = if i == 0 { "" } else { " " };
            write!(f, "{separator}{}={n}", short_name(name))?;
        }
        Ok(())
    }
}

/// A kernel's name without its module path and generic arguments' paths
/// (`cubecl_std::foo::Bar<f32>` becomes `Bar<f32>`), and without spaces, so
/// a [`LaunchCount`] prints as one whitespace-separated line.
fn short_name(name: &str) -> String {
    let mut short = String::with_capacity(name.len());
    let mut word = String::new();
    for c in name.chars() {
        if c.is_alphanumeric() || c == '_' || c == ':' {
            word.push(c);
            continue;
        }
        short.push_str(word.rsplit("::").next().unwrap_or(""));
        word.clear();
        if !c.is_whitespace() {
            short.push(c);
        }
    }
    short.push_str(word.rsplit("::").next().unwrap_or(""));
    short
}

/// Only one counter at a time: cubecl has one observer slot per process.
static COUNTING: Mutex<()> = Mutex::new(());

/// Counts the kernels the process launches while it lives.
#[must_use = "counting stops when the counter is dropped"]
pub struct LaunchCounter {
    tally: Arc<Tally>,
    // Dropped before the lock (fields drop in order).
    _observation: LaunchObservation,
    _exclusive: MutexGuard<'static, ()>,
}

impl fmt::Debug for LaunchCounter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LaunchCounter")
            .field("so_far", &self.tally.count().total())
            .finish()
    }
}

impl LaunchCounter {
    /// Starts counting, after any other counter of this process has
    /// finished.
    pub fn start() -> Self {
        let exclusive = COUNTING.lock().unwrap_or_else(PoisonError::into_inner);
        let tally = Arc::new(Tally::default());
        let observation = LaunchObservation::new(tally.clone());
        Self {
            tally,
            _observation: observation,
            _exclusive: exclusive,
        }
    }

    /// The launches counted so far, without waiting for queued work.
    pub fn so_far(&self) -> LaunchCount {
        self.tally.count()
    }

    /// Synchronizes `device` (launching whatever fusion still queues), stops
    /// counting and returns the count.
    pub fn finish(self, device: &Device) -> Result<LaunchCount, burn::tensor::ExecutionError> {
        device.sync()?;
        Ok(self.tally.count())
    }
}

/// The observer installed in cubecl: counts launches by kernel name.
#[derive(Default)]
struct Tally {
    by_kernel: Mutex<BTreeMap<&'static str, usize>>,
}

impl Tally {
    fn count(&self) -> LaunchCount {
        let by_kernel = self
            .by_kernel
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        LaunchCount {
            by_kernel: by_kernel.iter().map(|(k, &n)| (k.to_string(), n)).collect(),
        }
    }
}

impl LaunchObserver for Tally {
    fn launched(&self, kernel: &'static str) {
        let mut by_kernel = self
            .by_kernel
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        *by_kernel.entry(kernel).or_default() += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_names_drop_module_paths() {
        assert_eq!(short_name("a::b::Kernel<f32>"), "Kernel<f32>");
        assert_eq!(
            short_name("x::Elem<a::F32, b::c::Line<u32>>"),
            "Elem<F32,Line<u32>>"
        );
        assert_eq!(short_name("plain"), "plain");
    }

    #[test]
    fn the_most_launched_come_first() {
        let count = LaunchCount {
            by_kernel: [("b", 2), ("a", 2), ("c", 5)]
                .into_iter()
                .map(|(k, n)| (k.to_string(), n))
                .collect(),
        };
        assert_eq!(count.total(), 9);
        assert_eq!(count.of("c"), 5);
        assert_eq!(count.of("d"), 0);
        assert_eq!(count.most_launched(2), vec![("c", 5), ("a", 2)]);
        assert_eq!(count.to_string(), "c=5 a=2 b=2");
    }

    #[test]
    fn fused_kernels_are_those_of_burns_fusion() {
        let count = LaunchCount {
            by_kernel: [
                ("burn_cubecl_fusion::optim::elemwise::ElemwiseFuse", 3),
                ("burn_cubecl_fusion::optim::reduce::ReduceKernelFused", 1),
                ("burn_cubecl::kernel::binary::KernelBinop<MulOp>", 4),
            ]
            .into_iter()
            .map(|(k, n)| (k.to_string(), n))
            .collect(),
        };
        assert_eq!(count.fused(), 4);
        assert_eq!(LaunchCount::default().fused(), 0);
    }
}
