//! Data pipeline throughput: augmented, normalized CIFAR-10-format batches
//! of 128 from a synthetic 50,000-image dataset held in memory, built on the
//! calling thread (no prefetch), so the figure is one core's.
//!
//! Run: `cargo bench --features wgpu --bench data_pipeline -- --warm-up-time 1 --measurement-time 5`

use std::hint::black_box;
use std::sync::Arc;

use burn_lottery::data::{EvalBatches, ImageDataset, LoaderConfig, Normalization, SeededLoader};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const IMAGES: usize = 50_000;
const BATCH: usize = 128;

fn synthetic_cifar() -> ImageDataset {
    let len = 3 * 32 * 32;
    let mut state = 0x1234_5678_9abc_def0u64;
    let mut images = Vec::with_capacity(IMAGES * len);
    for _ in 0..IMAGES * len / 8 {
        // xorshift64: cheap, non-constant pixels.
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        images.extend_from_slice(&state.to_le_bytes());
    }
    let labels = (0..IMAGES).map(|i| (i % 10) as u8).collect();
    ImageDataset::new(images, labels, 3, 32, 32, 10).expect("valid synthetic dataset")
}

fn data_pipeline(c: &mut Criterion) {
    let dataset = Arc::new(synthetic_cifar());
    let loader =
        SeededLoader::new(Arc::clone(&dataset), LoaderConfig::cifar10(1, 2)).expect("valid loader");
    let per_epoch = loader.iterations_per_epoch() as u64;

    let mut group = c.benchmark_group("data_pipeline");
    group.throughput(Throughput::Elements(BATCH as u64));

    // Walks through epochs (so the per-epoch permutation is included,
    // amortized), skipping each epoch's short last batch.
    let mut iteration = 0u64;
    group.bench_function("cifar10_augmented_batch_128", |b| {
        b.iter(|| {
            if iteration % per_epoch == per_epoch - 1 {
                iteration += 1;
            }
            let batch = loader.host_batch(iteration);
            iteration += 1;
            black_box(batch)
        })
    });

    let norm = Normalization::cifar10();
    let eval_set = dataset.subset(0..BATCH * 50).expect("subset");
    let mut eval = EvalBatches::new(&eval_set, BATCH, &norm).expect("eval batches");
    group.bench_function("cifar10_eval_batch_128", |b| {
        b.iter(|| {
            let batch = match eval.next() {
                Some(batch) => batch,
                None => {
                    eval = EvalBatches::new(&eval_set, BATCH, &norm).expect("eval batches");
                    eval.next().expect("non-empty")
                }
            };
            black_box(batch)
        })
    });
    group.finish();
}

criterion_group!(benches, data_pipeline);
criterion_main!(benches);
