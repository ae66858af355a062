//! Time to compute the next global-magnitude mask: ResNet-20 (270,896
//! prunable weights) and a 25-million-weight stack of large Linear layers.
//! Selection (`select_nth_unstable`), not a full sort, picks the weights.
//!
//! Run: `cargo bench --features wgpu --bench pruning`

use std::hint::black_box;

use burn_lottery::device::device_by_name;
use burn_lottery::mask::{LayerMask, Mask, ParamSelector};
use burn_lottery::models::ResNetConfig;
use burn_lottery::params::float_values;
use burn_lottery::prune::{MagnitudePrunerConfig, Pruner, Weights};
use criterion::{Criterion, criterion_group, criterion_main};

/// Deterministic pseudo-random weights.
fn weights(n: usize, seed: u64) -> Vec<f32> {
    let mut state = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    (0..n)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 40) as f32 / (1u64 << 24) as f32) - 0.5
        })
        .collect()
}

fn pruning(c: &mut Criterion) {
    let pruner = MagnitudePrunerConfig::default().init().unwrap();

    // ResNet-20: host weights of the real model.
    let device = device_by_name("ndarray").unwrap();
    let model = ResNetConfig::resnet20().init_seeded(&device, 0);
    let dense = Mask::dense(&model, &ParamSelector::default()).unwrap();
    let resnet_weights = float_values(&model, |p| dense.contains(p));
    let mut group = c.benchmark_group("next_mask_global_magnitude");
    group.sample_size(20);
    group.bench_function("resnet20_270896_weights", |b| {
        b.iter(|| {
            black_box(
                pruner
                    .next_mask_from_weights(&resnet_weights, &dense)
                    .unwrap(),
            )
        })
    });
    group.bench_function("resnet20_from_model", |b| {
        b.iter(|| black_box(pruner.next_mask(&model, &dense).unwrap()))
    });

    // 25 M weights: 25 Linear layers of 1000 x 1000, at level 0 and at a
    // sparse level (fewer candidates).
    let layers: Vec<(String, Vec<f32>)> = (0..25)
        .map(|i| (format!("layers.{i}.weight"), weights(1_000_000, i)))
        .collect();
    let big: Weights = layers.into_iter().collect();
    let big_dense = Mask::from_layers(
        big.keys()
            .map(|p| (p.clone(), LayerMask::dense(vec![1000, 1000]))),
    );
    group.sample_size(10);
    group.bench_function("linear_stack_25m_weights", |b| {
        b.iter(|| black_box(pruner.next_mask_from_weights(&big, &big_dense).unwrap()))
    });
    group.finish();
}

criterion_group!(benches, pruning);
criterion_main!(benches);
