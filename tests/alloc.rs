//! `alloc::retain_freed_memory`: freed buffers are reused instead of being
//! faulted in again.

/// Minor page faults of this process so far (`/proc/self/stat`, field 10).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn minor_faults() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    rest.split_whitespace().nth(7).unwrap().parse().unwrap()
}

/// `rounds` times, as a training step does: allocates eight 6 MiB buffers,
/// touches every page, frees them all. Returns the page faults this caused.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn faults_of_reallocating(rounds: usize) -> u64 {
    const LEN: usize = 6 << 20;
    let before = minor_faults();
    for round in 0..rounds {
        let mut buffers: Vec<Vec<u8>> = (0..8).map(|_| vec![0u8; LEN]).collect();
        for buffer in &mut buffers {
            for page in buffer.iter_mut().step_by(4096) {
                *page = round as u8 + 1;
            }
        }
        std::hint::black_box(&buffers);
    }
    minor_faults() - before
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[test]
fn freed_buffers_are_reused_without_page_faults() {
    // Without the setting glibc hands the 48 MiB back to the kernel after
    // each round and faults it in again in the next (12,288 faults a round).
    assert!(burn_lottery::alloc::retain_freed_memory());
    faults_of_reallocating(1); // the first round faults the memory in
    let faults = faults_of_reallocating(10);
    assert!(
        faults < 4096,
        "{faults} page faults for 10 rounds of 48 MiB: freed memory was not kept"
    );
}
