//! Pinned values: the exact numbers every stored experiment depends on.
//!
//! Every expected value in this file was produced by the crate at commit
//! 3811f9a6a8c78dc784e29757251b817daaf4dc2a. They pin the data order, the
//! augmentation stream, the derived seeds, the reference initialization and
//! the pruning and random-pruning masks. A refactor that changes any of them
//! changes every stored experiment (their initial weights, batches, masks and
//! so their results): if one of these tests fails, the change is not a
//! refactor. Update a value only on purpose, together with a note that stored
//! experiments from before the change cannot be reproduced or resumed.
//!
//! Floats are compared bit for bit (`f32::to_bits`, sums in `f64::to_bits`),
//! whole tensors and masks by the xxh3-64 hash of their bytes (little-endian
//! `f32`s; [`Mask::to_bytes`]).

use std::sync::Arc;

use crate::common::ndarray;
use burn_lottery::data::augment::AugmentParams;
use burn_lottery::data::seed::{mix_seed, seeded_permutation};
use burn_lottery::data::{Augmentation, ImageDataset, LoaderConfig, Normalization, SeededLoader};
use burn_lottery::mask::{Mask, ParamSelector};
use burn_lottery::models::{LeNetConfig, ResNetConfig};
use burn_lottery::params::float_values;
use burn_lottery::prune::{MagnitudePrunerConfig, Pruner, random_mask_like};
use burn_lottery::seed::derive_seed;
use xxhash_rust::xxh3::xxh3_64;

/// The loader's domain tag for data-order seeds ("DATAORDR").
const DATA_ORDER_TAG: u64 = 0x4441_5441_4f52_4452;

fn bits(values: &[f32]) -> Vec<u32> {
    values.iter().map(|v| v.to_bits()).collect()
}

/// Sum in `f64`, in storage order.
fn sum_bits(values: &[f32]) -> u64 {
    values.iter().map(|&v| f64::from(v)).sum::<f64>().to_bits()
}

fn hash_f32(values: &[f32]) -> u64 {
    let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    xxh3_64(&bytes)
}

fn kept_counts(mask: &Mask) -> Vec<(String, usize)> {
    mask.layers()
        .map(|(path, layer)| (path.to_string(), layer.kept_count()))
        .collect()
}

fn first_pruned(mask: &Mask, path: &str, n: usize) -> Vec<usize> {
    let layer = mask.layer(path).unwrap();
    (0..layer.total_count())
        .filter(|&i| !layer.kept()[i])
        .take(n)
        .collect()
}

fn counts(expected: &[(&str, usize)]) -> Vec<(String, usize)> {
    expected.iter().map(|&(p, n)| (p.to_string(), n)).collect()
}

/// A Fashion-MNIST-sized dataset (60,000 samples, 10 classes) of 1x1
/// images: batch indices depend only on the sample count.
fn fashion_mnist_sized() -> Arc<ImageDataset> {
    let n = 60_000;
    let images: Vec<u8> = (0..n).map(|i| (i % 251) as u8).collect();
    let labels: Vec<u8> = (0..n).map(|i| (i % 10) as u8).collect();
    Arc::new(ImageDataset::new(images, labels, 1, 1, 1, 10).unwrap())
}

#[test]
fn seeded_permutations() {
    assert_eq!(seeded_permutation(10, 0), [1, 4, 5, 8, 6, 7, 0, 2, 9, 3]);
    assert_eq!(
        seeded_permutation(1000, 42)[..8],
        [151, 818, 218, 855, 655, 212, 403, 120]
    );
}

#[test]
fn mix_seed_values() {
    assert_eq!(mix_seed(&[]), 0x6a09_e667_f3bc_c908);
    assert_eq!(mix_seed(&[0]), 0x1ac0_46dd_a8e8_6e2a);
    assert_eq!(mix_seed(&[1, 2, 3]), 0xe728_0cf0_4ee4_6ddc);
    assert_eq!(mix_seed(&[3, 2, 1]), 0xac49_df11_1f83_64fb);
    assert_eq!(mix_seed(&[DATA_ORDER_TAG, 0, 0]), 0xbbf7_d573_4ac3_6afa);
}

/// Fashion-MNIST's data order: 60,000 samples, batch 60, data-order seed 0.
#[test]
fn fashion_mnist_batch_order() {
    let dataset = fashion_mnist_sized();
    let loader = SeededLoader::new(
        dataset.clone(),
        LoaderConfig::new(60, Normalization::unit(1)),
    )
    .unwrap();
    assert_eq!(loader.iterations_per_epoch(), 1000);
    let expected: [(u64, [usize; 8]); 4] = [
        (0, [8013, 25305, 50875, 39843, 25867, 18413, 8090, 27526]),
        (1, [20105, 39951, 48243, 36247, 12379, 10211, 37899, 46732]),
        (999, [45025, 52983, 20142, 43380, 36281, 4572, 2688, 19319]),
        // The first batch of epoch 1.
        (
            1000,
            [39190, 36972, 45367, 39916, 53389, 55391, 30736, 44518],
        ),
    ];
    for (iteration, first) in expected {
        let indices = loader.batch_indices(iteration);
        assert_eq!(indices.len(), 60, "iteration {iteration}");
        assert_eq!(indices[..8], first, "iteration {iteration}");
    }

    // The documented rule: epoch e is the permutation seeded by
    // mix_seed([DATA_ORDER_TAG, data_order_seed, e]).
    let epoch0 = seeded_permutation(60_000, mix_seed(&[DATA_ORDER_TAG, 0, 0]));
    let batch0: Vec<usize> = epoch0[..60].iter().map(|&i| i as usize).collect();
    assert_eq!(loader.batch_indices(0), batch0);

    let seed1 = SeededLoader::new(
        dataset,
        LoaderConfig::new(60, Normalization::unit(1)).with_seeds(1, 0),
    )
    .unwrap();
    assert_eq!(
        seed1.batch_indices(0)[..8],
        [14978, 32976, 20495, 42203, 34841, 41424, 38306, 53680]
    );
}

/// CIFAR-10's augmentation stream (augment seed 0).
#[test]
fn cifar10_augmentation_stream() {
    let dataset = ImageDataset::new(vec![0; 30], vec![0; 10], 3, 1, 1, 10).unwrap();
    let loader = SeededLoader::new(
        dataset,
        LoaderConfig::new(5, Normalization::unit(3))
            .with_augmentation(Some(Augmentation::cifar10())),
    )
    .unwrap();
    let params = |shift_y, shift_x, flip| AugmentParams {
        shift_y,
        shift_x,
        flip,
    };
    let expected = [
        ((0, 0), params(4, -4, false)),
        ((0, 1), params(-2, -4, true)),
        ((0, 2), params(-1, -1, true)),
        ((1, 0), params(3, -4, true)),
        ((7, 9), params(2, -1, false)),
    ];
    for ((epoch, sample), want) in expected {
        assert_eq!(
            loader.augment_params(epoch, sample),
            want,
            "epoch {epoch}, sample {sample}"
        );
    }
}

/// The labels the IMP runner and the reference initialization derive seeds
/// from (`src/imp/runner.rs`, `src/models/init.rs`).
#[test]
fn derived_seeds() {
    assert_eq!(derive_seed(0, "random_reinit/1"), 0xf049_b15c_e2a4_bdaa);
    assert_eq!(derive_seed(0, "random_prune/1"), 0x9367_b656_b13e_1b88);
    assert_eq!(derive_seed(0, "fc1.weight"), 0x79cf_9480_ee2d_a4f9);
    assert_eq!(derive_seed(1, "fc1.weight"), 0x65e7_bf56_d79d_085c);
    assert_eq!(derive_seed(0, "conv.weight"), 0xe644_6927_c151_5689);
}

/// Expected values of one parameter tensor.
struct PinnedTensor {
    path: &'static str,
    len: usize,
    first_bits: [u32; 4],
    sum_bits: u64,
    hash: u64,
}

fn check_tensors(values: &std::collections::BTreeMap<String, Vec<f32>>, expected: &[PinnedTensor]) {
    for want in expected {
        let got = &values[want.path];
        let path = want.path;
        assert_eq!(got.len(), want.len, "{path}: length");
        assert_eq!(bits(&got[..4]), want.first_bits, "{path}: first values");
        assert_eq!(
            sum_bits(got),
            want.sum_bits,
            "{path}: sum {:#018x}",
            sum_bits(got)
        );
        assert_eq!(
            hash_f32(got),
            want.hash,
            "{path}: hash {:#018x}",
            hash_f32(got)
        );
    }
}

#[test]
fn lenet_300_100_init_seed_0() {
    let model = LeNetConfig::lenet_300_100().init_seeded(&ndarray(), 0);
    let values = float_values(&model, |_| true);
    assert_eq!(values.len(), 6);
    check_tensors(
        &values,
        &[
            PinnedTensor {
                path: "fc1.weight",
                len: 235_200,
                first_bits: [3169113980, 3162562203, 3180742450, 1020587640],
                sum_bits: 0x402d_6839_8dc0_02b0,
                hash: 0xca3b_fe68_2519_3a46,
            },
            PinnedTensor {
                path: "fc2.weight",
                len: 30_000,
                first_bits: [3174581093, 3163985311, 3152184954, 3163374611],
                sum_bits: 0xc007_031d_a495_3800,
                hash: 0x2df7_bf5e_1fb8_9522,
            },
            PinnedTensor {
                path: "fc3.weight",
                len: 1000,
                first_bits: [1051849247, 1040568828, 3167335745, 1027660333],
                sum_bits: 0xbfe0_271c_24b0_0000,
                hash: 0x2596_249f_e30d_5be7,
            },
            // Biases are exactly zero.
            PinnedTensor {
                path: "fc1.bias",
                len: 300,
                first_bits: [0; 4],
                sum_bits: 0,
                hash: 0x2f75_a9a7_b9d5_4c56,
            },
            PinnedTensor {
                path: "fc3.bias",
                len: 10,
                first_bits: [0; 4],
                sum_bits: 0,
                hash: 0x114d_dfda_264d_5aa9,
            },
        ],
    );
}

#[test]
fn resnet20_init_seed_0() {
    let model = ResNetConfig::resnet20().init_seeded(&ndarray(), 0);
    let values = float_values(&model, |_| true);
    check_tensors(
        &values,
        &[
            PinnedTensor {
                path: "conv.weight",
                len: 432,
                first_bits: [3205024929, 3166273852, 3203150505, 1040719818],
                sum_bits: 0x3fef_2210_a0a0_0000,
                hash: 0x52aa_21b1_ee03_f7bb,
            },
            PinnedTensor {
                path: "bn.gamma",
                len: 16,
                first_bits: [1049650098, 1054215385, 1060142106, 1057629524],
                sum_bits: 0x401b_73c9_fe80_0000,
                hash: 0xef2d_6d4d_8d1f_3bb4,
            },
            PinnedTensor {
                path: "blocks.0.conv1.weight",
                len: 2304,
                first_bits: [1000166187, 1039969680, 1034131907, 1036250351],
                sum_bits: 0x400f_df34_9e15_8000,
                hash: 0x6d6f_75d9_b4a4_a7a3,
            },
            PinnedTensor {
                path: "blocks.3.shortcut.conv.weight",
                len: 512,
                first_bits: [1050270474, 1058515663, 1050325505, 1009843625],
                sum_bits: 0xbffc_cbf7_8f38_0000,
                hash: 0xa0ad_72fa_3e4e_2ff8,
            },
            PinnedTensor {
                path: "fc.weight",
                len: 640,
                first_bits: [3192300371, 3197237859, 3169241303, 3175647415],
                sum_bits: 0x3fe1_205e_670c_0000,
                hash: 0x0c26_ca83_bfe3_5116,
            },
        ],
    );
}

/// Expected masks of two pruning levels (the second on the model with the
/// first mask applied) and of the random-pruning control of level 1.
struct Levels {
    level1_kept: [(&'static str, usize); 3],
    level1_hash: u64,
    level1_fc1_first_pruned: [usize; 8],
    level2_kept: [(&'static str, usize); 3],
    level2_hash: u64,
    random_hash: u64,
    random_fc1_first_pruned: [usize; 8],
}

fn check_pruning(config: LeNetConfig, pruning: MagnitudePrunerConfig, want: Levels) {
    let model = config.init_seeded(&ndarray(), 0);
    let dense = Mask::dense(&model, &ParamSelector::default()).unwrap();
    let pruner = pruning.init().unwrap();

    let level1 = pruner.next_mask(&model, &dense).unwrap();
    assert_eq!(kept_counts(&level1), counts(&want.level1_kept));
    let hash = xxh3_64(&level1.to_bytes());
    assert_eq!(hash, want.level1_hash, "level 1 mask: {hash:#018x}");
    assert_eq!(
        first_pruned(&level1, "fc1.weight", 8),
        want.level1_fc1_first_pruned
    );

    let masked = level1.apply(model.clone()).unwrap();
    let level2 = pruner.next_mask(&masked, &level1).unwrap();
    assert_eq!(kept_counts(&level2), counts(&want.level2_kept));
    let hash = xxh3_64(&level2.to_bytes());
    assert_eq!(hash, want.level2_hash, "level 2 mask: {hash:#018x}");

    // The runner's random-pruning control at level 1 (init seed 0).
    let random = random_mask_like(&level1, derive_seed(0, "random_prune/1"));
    assert_eq!(kept_counts(&random), counts(&want.level1_kept));
    let hash = xxh3_64(&random.to_bytes());
    assert_eq!(hash, want.random_hash, "random mask: {hash:#018x}");
    assert_eq!(
        first_pruned(&random, "fc1.weight", 8),
        want.random_fc1_first_pruned
    );
}

/// The tiny LeNet (64-24-16-10) of `tests/common`, global 20%.
#[test]
fn tiny_lenet_global_pruning() {
    check_pruning(
        LeNetConfig::new()
            .with_input_size(64)
            .with_hidden1(24)
            .with_hidden2(16),
        MagnitudePrunerConfig::new(0.2),
        Levels {
            level1_kept: [
                ("fc1.weight", 1189),
                ("fc2.weight", 334),
                ("fc3.weight", 141),
            ],
            level1_hash: 0xbc2e_4859_d4f3_bee5,
            level1_fc1_first_pruned: [9, 12, 17, 32, 38, 39, 46, 48],
            level2_kept: [
                ("fc1.weight", 909),
                ("fc2.weight", 296),
                ("fc3.weight", 126),
            ],
            level2_hash: 0xc829_93b5_43f8_ec6b,
            random_hash: 0x662c_6eed_b92c_51f2,
            random_fc1_first_pruned: [17, 18, 20, 21, 42, 43, 48, 50],
        },
    );
}

/// The tiny LeNet with the Fashion-MNIST recipe's override (fc3 at 10%).
#[test]
fn tiny_lenet_fc3_override_pruning() {
    check_pruning(
        LeNetConfig::new()
            .with_input_size(64)
            .with_hidden1(24)
            .with_hidden2(16),
        MagnitudePrunerConfig::new(0.2).with_layer_rate("fc3.weight", 0.1),
        Levels {
            level1_kept: [
                ("fc1.weight", 1200),
                ("fc2.weight", 336),
                ("fc3.weight", 144),
            ],
            level1_hash: 0x0c4d_0017_f904_58b1,
            level1_fc1_first_pruned: [9, 17, 32, 38, 39, 46, 48, 57],
            level2_kept: [
                ("fc1.weight", 931),
                ("fc2.weight", 298),
                ("fc3.weight", 130),
            ],
            level2_hash: 0xc2b5_fd05_f1f0_3046,
            random_hash: 0xb964_4415_4430_46ba,
            random_fc1_first_pruned: [17, 18, 20, 21, 42, 43, 48, 50],
        },
    );
}

/// LeNet-300-100 at initialization, global 20%.
#[test]
fn lenet_300_100_global_pruning() {
    check_pruning(
        LeNetConfig::lenet_300_100(),
        MagnitudePrunerConfig::new(0.2),
        Levels {
            level1_kept: [
                ("fc1.weight", 185_916),
                ("fc2.weight", 26_128),
                ("fc3.weight", 916),
            ],
            level1_hash: 0x31ce_072e_0117_e6c0,
            level1_fc1_first_pruned: [9, 17, 32, 38, 39, 46, 48, 57],
            level2_kept: [
                ("fc1.weight", 146_675),
                ("fc2.weight", 22_836),
                ("fc3.weight", 857),
            ],
            level2_hash: 0x59bf_fa33_bae7_992f,
            random_hash: 0xc4a4_dd41_7815_1f6f,
            random_fc1_first_pruned: [4, 12, 16, 20, 30, 39, 45, 49],
        },
    );
}

/// LeNet-300-100 at initialization, the Fashion-MNIST recipe's pruning
/// (global 20%, fc3 at 10%).
#[test]
fn lenet_300_100_fashion_mnist_pruning() {
    check_pruning(
        LeNetConfig::lenet_300_100(),
        MagnitudePrunerConfig::new(0.2).with_layer_rate("fc3.weight", 0.1),
        Levels {
            level1_kept: [
                ("fc1.weight", 186_027),
                ("fc2.weight", 26_133),
                ("fc3.weight", 900),
            ],
            level1_hash: 0x5fa7_8972_84e0_f191,
            level1_fc1_first_pruned: [9, 17, 32, 38, 39, 46, 48, 57],
            level2_kept: [
                ("fc1.weight", 146_876),
                ("fc2.weight", 22_852),
                ("fc3.weight", 810),
            ],
            level2_hash: 0x6f05_43b6_31ba_1293,
            random_hash: 0xbdee_5cf4_8fb9_ee8a,
            random_fc1_first_pruned: [4, 12, 16, 20, 30, 39, 45, 49],
        },
    );
}
