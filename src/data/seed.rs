//! Seed mixing and seeded permutations.
//!
//! Seeds are combined with [`splitmix64`] (a bijective 64-bit mixer), and
//! epoch permutations are drawn with `rand`'s `Xoshiro256PlusPlus` (a fixed,
//! documented algorithm) by a Fisher–Yates shuffle written here, so the data
//! order does not change when `rand` changes its shuffling code.

use rand::rngs::Xoshiro256PlusPlus;
use rand::{Rng, SeedableRng};

pub use crate::seed::splitmix64;

/// Mixes a sequence of words into one seed. Order matters: `[a, b]` and
/// `[b, a]` give different seeds; for a fixed prefix, distinct last words
/// give distinct seeds.
pub fn mix_seed(words: &[u64]) -> u64 {
    words
        .iter()
        .fold(0x6A09_E667_F3BC_C908, |acc, &w| splitmix64(acc ^ w))
}

/// Domain tag for data-order seeds (so the same user seed used for data
/// order and for augmentation gives unrelated streams).
pub(crate) const DATA_ORDER_TAG: u64 = 0x4441_5441_4f52_4452; // "DATAORDR"
/// Domain tag for augmentation seeds.
pub(crate) const AUGMENT_TAG: u64 = 0x4155_474d_454e_5421; // "AUGMENT!"

/// A uniform integer in `0..bound` (`bound > 0`), by Lemire's
/// multiply-and-reject method (unbiased).
pub fn uniform_below<R: Rng + ?Sized>(rng: &mut R, bound: u64) -> u64 {
    debug_assert!(bound > 0);
    let threshold = bound.wrapping_neg() % bound;
    loop {
        let m = u128::from(rng.next_u64()) * u128::from(bound);
        if (m as u64) >= threshold {
            return (m >> 64) as u64;
        }
    }
}

/// The permutation of `0..n` drawn from a generator seeded with `seed`
/// (Fisher–Yates, from the last position down).
pub fn seeded_permutation(n: usize, seed: u64) -> Vec<u32> {
    let mut order: Vec<u32> = (0..n as u32).collect();
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    for i in (1..n).rev() {
        let j = uniform_below(&mut rng, i as u64 + 1) as usize;
        order.swap(i, j);
    }
    order
}
