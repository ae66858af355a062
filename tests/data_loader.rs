//! The seeded loader, augmentation and evaluation batches.

use std::sync::Arc;

use burn::tensor::{Device, Int, Tensor};
use burn_lottery::data::augment::{AugmentParams, augment_normalize_into};
use burn_lottery::data::seed::seeded_permutation;
use burn_lottery::data::{
    Augmentation, CIFAR10_MEAN, CIFAR10_STD, DataError, EvalBatches, ImageDataset, LoaderConfig,
    Normalization, SeededLoader, iterations_per_epoch,
};
use proptest::prelude::*;

/// `n` images of `c x h x w`; image `i` is recognizable from its pixels.
fn synthetic(n: usize, c: usize, h: usize, w: usize) -> ImageDataset {
    let len = c * h * w;
    let mut images = Vec::with_capacity(n * len);
    for i in 0..n {
        for k in 0..len {
            images.push(((i * 7 + k * 3 + (i >> 8) * 11) % 256) as u8);
        }
    }
    let labels = (0..n).map(|i| (i % 10) as u8).collect();
    ImageDataset::new(images, labels, c, h, w, 10).unwrap()
}

fn cifar_like(n: usize) -> Arc<ImageDataset> {
    Arc::new(synthetic(n, 3, 32, 32))
}

fn loader(ds: &Arc<ImageDataset>, batch: usize, order: u64, aug: u64) -> SeededLoader {
    SeededLoader::new(
        Arc::clone(ds),
        LoaderConfig::cifar10(order, aug).with_batch_size(batch),
    )
    .unwrap()
}

#[test]
fn iterations_per_epoch_arithmetic() {
    assert_eq!(iterations_per_epoch(50_000, 128), 391);
    assert_eq!(iterations_per_epoch(60_000, 60), 1_000);
    assert_eq!(iterations_per_epoch(60_000, 128), 469);
    assert_eq!(iterations_per_epoch(7, 3), 3);
    assert_eq!(iterations_per_epoch(6, 3), 2);
    assert_eq!(iterations_per_epoch(1, 128), 1);
    assert_eq!(iterations_per_epoch(5, 0), 0);
    // 160 epochs of the CIFAR recipe.
    assert_eq!(160 * iterations_per_epoch(50_000, 128), 62_560);
}

#[test]
fn epochs_and_last_batch_sizes() {
    let ds = cifar_like(50);
    let l = loader(&ds, 16, 1, 2);
    assert_eq!(l.iterations_per_epoch(), 4);
    assert_eq!(l.epoch_and_batch(0), (0, 0));
    assert_eq!(l.epoch_and_batch(3), (0, 3));
    assert_eq!(l.epoch_and_batch(4), (1, 0));
    assert_eq!(l.epoch_and_batch(9), (2, 1));
    let sizes: Vec<usize> = (0..8).map(|i| l.host_batch(i).len()).collect();
    assert_eq!(sizes, vec![16, 16, 16, 2, 16, 16, 16, 2]);
    let b = l.host_batch(3);
    assert_eq!(b.shape, [2, 3, 32, 32]);
    assert_eq!(b.images.len(), 2 * 3 * 32 * 32);
    assert_eq!((b.iteration, b.epoch), (3, 0));
}

#[test]
fn every_epoch_is_a_permutation() {
    let ds = cifar_like(103);
    let l = loader(&ds, 10, 42, 7);
    let per_epoch = l.iterations_per_epoch() as u64;
    assert_eq!(per_epoch, 11);
    let mut orders = Vec::new();
    for epoch in 0..4u64 {
        let mut seen: Vec<usize> = (epoch * per_epoch..(epoch + 1) * per_epoch)
            .flat_map(|i| l.batch_indices(i))
            .collect();
        assert_eq!(seen, l.epoch_permutation(epoch));
        orders.push(seen.clone());
        seen.sort_unstable();
        assert_eq!(seen, (0..103).collect::<Vec<_>>(), "epoch {epoch}");
    }
    // Epochs are shuffled differently, and not left in dataset order.
    assert_ne!(orders[0], orders[1]);
    assert_ne!(orders[1], orders[2]);
    assert_ne!(orders[0], (0..103).collect::<Vec<_>>());
    // The labels follow the indices.
    let b = l.host_batch(5);
    for (k, &i) in b.indices.iter().enumerate() {
        assert_eq!(b.labels[k], i64::from(ds.label(i)));
    }
}

#[test]
fn seeded_permutation_is_uniform_enough_and_stable() {
    assert_eq!(seeded_permutation(0, 1), Vec::<u32>::new());
    assert_eq!(seeded_permutation(1, 1), vec![0]);
    let a = seeded_permutation(1000, 99);
    assert_eq!(a, seeded_permutation(1000, 99));
    assert_ne!(a, seeded_permutation(1000, 100));
    // Position of element 0 over many seeds covers all of 0..4.
    let mut hits = [0usize; 4];
    for seed in 0..4000 {
        let p = seeded_permutation(4, seed);
        hits[p.iter().position(|&x| x == 0).unwrap()] += 1;
    }
    for h in hits {
        assert!((800..1200).contains(&h), "{hits:?}");
    }
}

#[test]
fn same_seeds_same_batch_and_resumable() {
    let ds = cifar_like(300);
    let a = loader(&ds, 32, 5, 6);
    let b = loader(&ds, 32, 5, 6);
    // b answers out of order (as a resumed run would): same batches.
    for i in [37u64, 0, 12, 9, 10, 100] {
        assert_eq!(a.host_batch(i), b.host_batch(i), "iteration {i}");
    }
    let sequential: Vec<_> = a.batches(0..25).collect();
    let resumed: Vec<_> = b.batches(17..25).collect();
    assert_eq!(&sequential[17..], &resumed[..]);
}

#[test]
fn augmentation_seed_changes_images_not_order() {
    let ds = cifar_like(300);
    let a = loader(&ds, 32, 5, 6);
    let b = loader(&ds, 32, 5, 7);
    for i in [0u64, 3, 11] {
        let (x, y) = (a.host_batch(i), b.host_batch(i));
        assert_eq!(x.indices, y.indices);
        assert_eq!(x.labels, y.labels);
        assert_ne!(x.images, y.images);
    }
}

#[test]
fn data_order_seed_changes_order_not_augmentation() {
    let ds = cifar_like(300);
    let a = loader(&ds, 32, 5, 6);
    let b = loader(&ds, 32, 8, 6);
    let (x, y) = (a.host_batch(2), b.host_batch(2));
    assert_ne!(x.indices, y.indices);
    assert_ne!(a.epoch_permutation(0), b.epoch_permutation(0));
    // Augmentation is keyed by (augment seed, epoch, sample): the same
    // sample in the same epoch gets the same transformation, whatever its
    // position.
    let per_epoch = a.iterations_per_epoch() as u64;
    let image_len = ds.image_len();
    let find = |l: &SeededLoader, sample: usize| -> Vec<f32> {
        for i in 0..per_epoch {
            let batch = l.host_batch(i);
            if let Some(k) = batch.indices.iter().position(|&s| s == sample) {
                return batch.images[k * image_len..(k + 1) * image_len].to_vec();
            }
        }
        panic!("sample {sample} not in epoch 0");
    };
    for sample in [0usize, 17, 299] {
        assert_eq!(a.augment_params(0, sample), b.augment_params(0, sample));
        assert_eq!(find(&a, sample), find(&b, sample));
    }
    // ...and a different epoch draws a fresh one (for most samples).
    let differing = (0..300)
        .filter(|&s| a.augment_params(0, s) != a.augment_params(1, s))
        .count();
    assert!(differing > 250, "{differing}");
}

#[test]
fn prefetch_yields_the_same_batches() {
    let ds = cifar_like(200);
    let l = loader(&ds, 24, 11, 12);
    let range = 5..5 + 2 * l.iterations_per_epoch() as u64 + 3;
    let direct: Vec<_> = l.batches(range.clone()).collect();
    for depth in [0, 1, 2, 4] {
        let prefetched: Vec<_> = l.prefetch(range.clone(), depth).collect();
        assert_eq!(prefetched, direct, "depth {depth}");
    }
    let it = l.prefetch(range.clone(), 2);
    assert_eq!(it.size_hint(), (direct.len(), Some(direct.len())));
    // Dropping it early stops the worker without hanging.
    let mut it = l.prefetch(0..1_000_000, 2);
    assert_eq!(it.next().unwrap(), l.host_batch(0));
    drop(it);
    // An empty range yields nothing.
    assert_eq!(l.prefetch(7..7, 2).count(), 0);
}

#[test]
fn without_augmentation_images_are_normalized_copies() {
    let ds = Arc::new(synthetic(40, 1, 6, 5));
    let norm = Normalization::new(vec![0.25], vec![0.5]).unwrap();
    let l =
        SeededLoader::new(Arc::clone(&ds), LoaderConfig::new(8, norm).with_seeds(3, 4)).unwrap();
    let b = l.host_batch(2);
    for (k, &i) in b.indices.iter().enumerate() {
        let want: Vec<f32> = ds
            .image(i)
            .iter()
            .map(|&v| (v as f32 / 255.0 - 0.25) / 0.5)
            .collect();
        assert_eq!(&b.images[k * 30..(k + 1) * 30], &want[..]);
        assert_eq!(l.augment_params(0, i), AugmentParams::IDENTITY);
    }
}

#[test]
fn cifar_normalization_values() {
    let n = Normalization::cifar10();
    assert_eq!(n.mean(), &CIFAR10_MEAN);
    assert_eq!(n.std(), &CIFAR10_STD);
    let t = n.lookup_tables();
    for c in 0..3 {
        assert!((t[c][0] - (-CIFAR10_MEAN[c] / CIFAR10_STD[c])).abs() < 1e-6);
        assert!((t[c][255] - (1.0 - CIFAR10_MEAN[c]) / CIFAR10_STD[c]).abs() < 1e-6);
    }
    assert!(Normalization::new(vec![0.5], vec![0.0]).is_err());
    assert!(Normalization::new(vec![0.5, 0.5], vec![1.0]).is_err());
}

/// Reference: pad with zeros, crop, flip, all spelled out.
fn reference_augment(src: &[u8], [c, h, w]: [usize; 3], p: AugmentParams) -> Vec<u8> {
    let mut out = vec![0u8; c * h * w];
    for ch in 0..c {
        for y in 0..h {
            for x in 0..w {
                let cx = if p.flip { w - 1 - x } else { x };
                let sy = y as isize + p.shift_y;
                let sx = cx as isize + p.shift_x;
                if sy >= 0 && sy < h as isize && sx >= 0 && sx < w as isize {
                    out[(ch * h + y) * w + x] = src[(ch * h + sy as usize) * w + sx as usize];
                }
            }
        }
    }
    out
}

fn kernel_as_u8(src: &[u8], shape: [usize; 3], p: AugmentParams) -> Vec<u8> {
    let tables = Normalization::unit(shape[0]).lookup_tables();
    let mut out = vec![f32::NAN; src.len()];
    augment_normalize_into(src, shape, p, &tables, &mut out);
    out.iter().map(|v| (v * 255.0).round() as u8).collect()
}

#[test]
fn augmentation_kernel_matches_reference_for_every_cifar_transform() {
    let ds = synthetic(1, 3, 32, 32);
    for shift_y in -4..=4 {
        for shift_x in -4..=4 {
            for flip in [false, true] {
                let p = AugmentParams {
                    shift_y,
                    shift_x,
                    flip,
                };
                assert_eq!(
                    kernel_as_u8(ds.image(0), [3, 32, 32], p),
                    reference_augment(ds.image(0), [3, 32, 32], p),
                    "{p:?}"
                );
            }
        }
    }
    // Padding pixels are zero before normalization.
    let tables = Normalization::cifar10().lookup_tables();
    let mut out = vec![0f32; 3072];
    let p = AugmentParams {
        shift_y: -4,
        shift_x: 0,
        flip: false,
    };
    augment_normalize_into(ds.image(0), [3, 32, 32], p, &tables, &mut out);
    assert_eq!(out[0], -CIFAR10_MEAN[0] / CIFAR10_STD[0]);
    assert_eq!(out[1024 + 3 * 32 + 31], -CIFAR10_MEAN[1] / CIFAR10_STD[1]);
}

proptest! {
    #[test]
    fn augmentation_kernel_matches_reference(
        c in 1usize..4, h in 1usize..9, w in 1usize..9,
        shift_y in -10isize..10, shift_x in -10isize..10, flip: bool, seed: u8,
    ) {
        let src: Vec<u8> = (0..c * h * w).map(|k| (k as u8).wrapping_mul(37).wrapping_add(seed)).collect();
        let p = AugmentParams { shift_y, shift_x, flip };
        prop_assert_eq!(kernel_as_u8(&src, [c, h, w], p), reference_augment(&src, [c, h, w], p));
    }
}

#[test]
fn augmentation_draws_cover_all_crops_and_flips() {
    let aug = Augmentation::cifar10();
    let mut counts = [[0usize; 9]; 9];
    let mut flips = 0;
    let draws = 81 * 400;
    for seed in 0..draws as u64 {
        let p = aug.sample(seed);
        counts[(p.shift_y + 4) as usize][(p.shift_x + 4) as usize] += 1;
        flips += usize::from(p.flip);
    }
    for row in counts {
        for n in row {
            assert!((300..500).contains(&n), "{counts:?}");
        }
    }
    assert!(
        (draws / 2 - 600..draws / 2 + 600).contains(&flips),
        "{flips}"
    );
    let no_flip = Augmentation {
        padding: 2,
        horizontal_flip: false,
    };
    assert!((0..1000).all(|s| {
        let p = no_flip.sample(s);
        !p.flip && p.shift_x.abs() <= 2 && p.shift_y.abs() <= 2
    }));
}

#[test]
fn eval_batches_cover_the_dataset_in_order() {
    let ds = synthetic(23, 3, 4, 4);
    let norm = Normalization::cifar10();
    let batches: Vec<_> = EvalBatches::new(&ds, 10, &norm).unwrap().collect();
    assert_eq!(batches.len(), 3);
    assert_eq!(
        batches.iter().map(|b| b.len()).collect::<Vec<_>>(),
        vec![10, 10, 3]
    );
    let indices: Vec<usize> = batches.iter().flat_map(|b| b.indices.clone()).collect();
    assert_eq!(indices, (0..23).collect::<Vec<_>>());
    let tables = norm.lookup_tables();
    let b = &batches[2];
    assert_eq!(b.shape, [3, 3, 4, 4]);
    for k in 0..3 {
        let i = 20 + k;
        assert_eq!(b.labels[k], i64::from(ds.label(i)));
        for (j, &v) in ds.image(i).iter().enumerate() {
            assert_eq!(b.images[k * 48 + j], tables[j / 16][usize::from(v)]);
        }
    }
    assert_eq!(EvalBatches::new(&ds, 10, &norm).unwrap().len(), 3);
    assert!(EvalBatches::new(&ds, 0, &norm).is_err());
    assert!(EvalBatches::new(&ds, 4, &Normalization::unit(1)).is_err());
}

#[test]
fn invalid_loader_configurations_are_errors() {
    let ds = cifar_like(10);
    let zero = SeededLoader::new(
        Arc::clone(&ds),
        LoaderConfig::cifar10(0, 0).with_batch_size(0),
    );
    assert!(matches!(zero, Err(DataError::InvalidArgument(_))));
    let channels = SeededLoader::new(
        Arc::clone(&ds),
        LoaderConfig::new(4, Normalization::unit(1)),
    );
    assert!(matches!(channels, Err(DataError::InvalidArgument(_))));
    let empty = ds.subset(0..0).unwrap();
    assert!(SeededLoader::new(empty, LoaderConfig::cifar10(0, 0)).is_err());
}

#[test]
fn dataset_subsets_and_statistics() {
    let ds = synthetic(20, 1, 2, 2);
    let first = ds.subset(0..5).unwrap();
    assert_eq!(first.len(), 5);
    assert_eq!(first.image(4), ds.image(4));
    let picked = ds.subset([7usize, 3, 7].iter().copied()).unwrap();
    assert_eq!(picked.len(), 3);
    assert_eq!(picked.image(0), ds.image(7));
    assert_eq!(picked.image(1), ds.image(3));
    assert_eq!(picked.labels(), &[7, 3, 7]);
    assert!(matches!(
        ds.subset([20usize]),
        Err(DataError::InvalidArgument(_))
    ));
    assert_eq!(ds.class_counts(), vec![2; 10]);

    // Two images: all 0 and all 255 -> mean 0.5, std 0.5 (population).
    let two =
        ImageDataset::new(vec![0, 0, 0, 0, 255, 255, 255, 255], vec![0, 1], 1, 2, 2, 2).unwrap();
    let (mean, std) = two.channel_mean_std();
    assert!((mean[0] - 0.5).abs() < 1e-6 && (std[0] - 0.5).abs() < 1e-6);
    assert!(ImageDataset::new(vec![0; 7], vec![0, 1], 1, 2, 2, 2).is_err());
    assert!(ImageDataset::new(vec![0; 8], vec![0, 2], 1, 2, 2, 2).is_err());
}

#[test]
fn batches_become_tensors_on_a_device() {
    let ds = cifar_like(20);
    let l = loader(&ds, 8, 1, 1);
    let device = Device::flex();
    let host = l.host_batch(2);
    let batch = l.batch(2, &device);
    assert_eq!(batch.images.dims(), [4, 3, 32, 32]);
    assert_eq!(batch.labels.dims(), [4]);
    let images: Vec<f32> = batch.images.into_data().try_to_vec().unwrap();
    assert_eq!(images, host.images);
    let labels: Tensor<1, Int> = batch.labels;
    let labels: Vec<i64> = labels.into_data().convert::<i64>().try_to_vec().unwrap();
    assert_eq!(labels, host.labels);
}
