//! Process allocator settings for CPU training.
//!
//! burn's CPU backends allocate a fresh buffer for most tensor operations.
//! With glibc's default malloc, the large buffers of a conv net step
//! (activations, im2col matrices: megabytes each) are handed back to the
//! kernel when freed (`munmap`, or trimming the top of the heap) and
//! page-faulted in again, zero-filled, on the next step. On ResNet-20
//! (batch 128, flex) that is about 150,000 page faults and roughly a sixth
//! of the step's CPU time (BENCHMARKS.md). [`retain_freed_memory`] tells
//! glibc to keep freed memory for reuse; peak memory stays the same because
//! every step allocates the same sizes again.
//!
//! The setting is process-wide, so the library never applies it on its own:
//! binaries (the examples, the benches) opt in by calling it first thing in
//! `main`. The same effect without code: run with
//! `GLIBC_TUNABLES=glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=2147483647`.

/// Asks glibc's malloc to keep freed memory for reuse instead of returning
/// it to the kernel: buffers up to 32 MiB come from the heap rather than
/// fresh `mmap`s, and the heap is never trimmed.
///
/// Returns `true` if both settings were applied; `false` on targets other
/// than Linux with glibc, where it does nothing. Call it before the first
/// tensor is created (later calls work too, for later allocations).
pub fn retain_freed_memory() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // mallopt(3) parameter numbers from glibc's <malloc.h>.
        const M_TRIM_THRESHOLD: i32 = -1;
        const M_MMAP_THRESHOLD: i32 = -3;
        unsafe extern "C" {
            fn mallopt(param: i32, value: i32) -> i32;
        }
        // SAFETY: mallopt only changes malloc's tuning parameters; it is
        // thread-safe and both values are in the ranges glibc accepts (the
        // mmap threshold may be at most 32 MiB on 64-bit targets).
        let trim = unsafe { mallopt(M_TRIM_THRESHOLD, i32::MAX) };
        let mmap = unsafe { mallopt(M_MMAP_THRESHOLD, 32 * 1024 * 1024) };
        trim == 1 && mmap == 1
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        false
    }
}
