//! Deterministic seed derivation.
//!
//! Every random stream of the crate (initialization, data order,
//! augmentation, random pruning) gets its own seed derived from the user's
//! seed and a stream label, so changing one never shifts another.

use std::hash::Hasher;

/// SplitMix64 finalizer: a well-mixed 64-bit function of `x`.
pub fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// Mixes a seed with a label (e.g. a parameter path) into a new seed.
pub fn derive_seed(seed: u64, label: &str) -> u64 {
    // FNV-1a (64-bit) over the label, then mixed with the seed.
    let mut label_hash = fnv::FnvHasher::default();
    label_hash.write(label.as_bytes());
    splitmix64(seed ^ splitmix64(label_hash.finish()))
}
