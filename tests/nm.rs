//! N:M masks: group layout along the input dimension, validation, the
//! selection, and N:M inside magnitude pruning (IMP and one-shot).

use burn_lottery::imp::{Imp, ImpConfig, Layout, Silent};
use burn_lottery::mask::{LayerMask, Mask};
use burn_lottery::prune::{
    MagnitudePrunerConfig, NOfM, PruneError, Pruner, Weights, keep_n_of_m, kept_after_levels,
};

use crate::common::{data, init, ndarray, tiny_imp_config};

/// Deterministic weights in (-1, 1), all magnitudes distinct.
fn pseudo_random(n: usize, seed: u64) -> Vec<f32> {
    let mut order: Vec<usize> = (0..n).collect();
    let mut state = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
    for i in (1..n).rev() {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        order.swap(i, (state >> 33) as usize % (i + 1));
    }
    order
        .into_iter()
        .enumerate()
        .map(|(i, rank)| {
            let sign = if i % 3 == 0 { -1.0 } else { 1.0 };
            sign * (rank + 1) as f32 / (n + 1) as f32
        })
        .collect()
}

fn dense(layers: &[(&str, Vec<usize>)]) -> Mask {
    Mask::from_layers(
        layers
            .iter()
            .map(|(p, shape)| (p.to_string(), LayerMask::dense(shape.clone()))),
    )
}

fn weights_for(mask: &Mask, seed: u64) -> Weights {
    mask.layers()
        .enumerate()
        .map(|(i, (p, l))| {
            (
                p.to_string(),
                pseudo_random(l.total_count(), seed + i as u64),
            )
        })
        .collect()
}

/// Kept count of every group of every layer.
fn group_counts(mask: &Mask, pattern: NOfM) -> Vec<usize> {
    let mut counts = Vec::new();
    for (path, layer) in mask.layers() {
        let layout = pattern.layout(path, layer.shape()).unwrap();
        for g in 0..layout.count {
            counts.push(layout.entries(g).filter(|&i| layer.kept()[i]).count());
        }
    }
    counts
}

#[test]
fn groups_run_along_the_input_dimension() {
    let pattern = NOfM::two_of_four();
    // burn Linear weight [d_in = 8, d_out = 3]: a group is 4 inputs of one
    // output, a column stride of 3 apart.
    let linear = pattern.layout("fc.weight", &[8, 3]).unwrap();
    assert_eq!(linear.count, 6);
    let groups: Vec<Vec<usize>> = (0..6).map(|g| linear.entries(g).collect()).collect();
    assert_eq!(groups[0], vec![0, 3, 6, 9]);
    assert_eq!(groups[1], vec![1, 4, 7, 10]);
    assert_eq!(groups[2], vec![2, 5, 8, 11]);
    assert_eq!(groups[3], vec![12, 15, 18, 21]);
    // Every entry in exactly one group.
    let mut all: Vec<usize> = groups.concat();
    all.sort();
    assert_eq!(all, (0..24).collect::<Vec<_>>());
    // Conv weight [c_out = 2, c_in = 2, 2, 2]: runs of 4 of the flattened
    // c_in * k_h * k_w = 8 weights of one filter.
    let conv = pattern.layout("conv.weight", &[2, 2, 2, 2]).unwrap();
    assert_eq!(conv.count, 4);
    assert_eq!(conv.entries(0).collect::<Vec<_>>(), vec![0, 1, 2, 3]);
    assert_eq!(conv.entries(3).collect::<Vec<_>>(), vec![12, 13, 14, 15]);
}

#[test]
fn invalid_patterns_and_shapes_are_typed_errors_naming_the_layer() {
    for (n, m) in [(0, 4), (4, 4), (5, 4), (1, 0)] {
        let err = MagnitudePrunerConfig::new(0.2)
            .with_n_of_m(NOfM::new(n, m))
            .init()
            .unwrap_err();
        assert!(matches!(err, PruneError::InvalidNOfM(_)), "{n}:{m}: {err}");
    }
    let err = MagnitudePrunerConfig::new(0.2)
        .with_min_density_per_layer(0.6)
        .with_n_of_m(NOfM::two_of_four())
        .init()
        .unwrap_err();
    assert!(err.to_string().contains("min_density_per_layer"), "{err}");

    let pruner = MagnitudePrunerConfig::new(0.2)
        .with_n_of_m(NOfM::two_of_four())
        .init()
        .unwrap();
    // d_in = 6 of a Linear weight [6, 4]: not a multiple of 4 (d_out is).
    let mask = dense(&[("a.weight", vec![8, 4]), ("b.weight", vec![6, 4])]);
    let err = pruner
        .next_mask_from_weights(&weights_for(&mask, 1), &mask)
        .unwrap_err();
    match &err {
        PruneError::NOfMIndivisible { path, input, m } => {
            assert_eq!((path.as_str(), *input, *m), ("b.weight", 6, 4));
        }
        other => panic!("{other}"),
    }
    assert!(err.to_string().contains("b.weight"), "{err}");
    // A 3x3 stem convolution on one channel: 9 weights per filter.
    let stem = dense(&[("conv.weight", vec![16, 1, 3, 3])]);
    let err = pruner.kept_after(&stem, 1).unwrap_err();
    assert!(
        matches!(&err, PruneError::NOfMIndivisible { input: 9, .. }),
        "{err}"
    );
    // A bias has no input dimension.
    let bias = dense(&[("fc.bias", vec![8])]);
    let err = pruner
        .next_mask_from_weights(&weights_for(&bias, 1), &bias)
        .unwrap_err();
    assert!(matches!(err, PruneError::NOfMShape { .. }), "{err}");
}

#[test]
fn keep_n_of_m_keeps_the_best_n_of_every_group() {
    let mask = dense(&[("fc.weight", vec![4, 2])]);
    // Column 0: rows 0..4 are entries 0, 2, 4, 6; column 1: 1, 3, 5, 7.
    let scores: Weights = [(
        "fc.weight".to_string(),
        vec![0.1, 5.0, 0.4, -1.0, 0.3, 2.0, 0.2, 0.5],
    )]
    .into();
    let next = keep_n_of_m(&scores, &mask, NOfM::two_of_four()).unwrap();
    let kept = next.layer("fc.weight").unwrap().kept();
    assert_eq!(
        kept,
        &[false, true, true, false, true, true, false, false][..]
    );
    NOfM::two_of_four().check(&next).unwrap();
    // 1:4 keeps one per group; only kept weights compete.
    let one = keep_n_of_m(&scores, &next, NOfM::new(1, 4)).unwrap();
    let kept = one.layer("fc.weight").unwrap().kept();
    assert_eq!(
        kept,
        &[false, true, true, false, false, false, false, false][..]
    );
    // Ties: the later position stays.
    let ties: Weights = [("fc.weight".to_string(), vec![1.0; 8])].into();
    let next = keep_n_of_m(&ties, &mask, NOfM::two_of_four()).unwrap();
    let kept = next.layer("fc.weight").unwrap().kept();
    assert_eq!(
        kept,
        &[false, false, false, false, true, true, true, true][..]
    );
    // A violation is reported with its group.
    let err = NOfM::new(1, 4).check(&next).unwrap_err();
    assert!(
        matches!(
            &err,
            PruneError::NOfMViolated {
                group: 0,
                kept: 2,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn imp_with_n_of_m_keeps_the_usual_counts_and_reaches_the_pattern() {
    let pattern = NOfM::two_of_four();
    let mask = dense(&[
        ("a.weight", vec![4, 3, 2, 2]),
        ("b.weight", vec![32, 12]),
        ("c.weight", vec![12, 4]),
    ]);
    let weights = weights_for(&mask, 7);
    let config = MagnitudePrunerConfig::new(0.2).with_n_of_m(pattern);
    let pruner = config.init().unwrap();
    let plain = MagnitudePrunerConfig::new(0.2).init().unwrap();
    let total = mask.total_count();
    let mut current = mask.clone();
    for level in 1..=6 {
        let next = pruner.next_mask_from_weights(&weights, &current).unwrap();
        assert!(next.is_subset_of(&current).unwrap());
        // The usual count, level by level.
        assert_eq!(next.kept_count(), kept_after_levels(total, 0.2, level));
        let counts = group_counts(&next, pattern);
        if next.kept_count() * pattern.m > total * pattern.n {
            // Moving towards the pattern: no group below N yet.
            assert!(counts.iter().all(|&c| c >= pattern.n), "level {level}");
            // Only weights outside their group's best two went.
            let removed_best = keep_n_of_m(&weights_abs(&weights), &mask, pattern).unwrap();
            assert!(removed_best.is_subset_of(&next).unwrap(), "level {level}");
        } else {
            pattern.check(&next).unwrap();
        }
        // One-shot to the same level: same rule in one step.
        let one_shot = pruner
            .one_shot_from_weights(&weights, &mask, level)
            .unwrap();
        assert_eq!(one_shot.kept_count(), next.kept_count());
        if level >= 4 {
            pattern.check(&one_shot).unwrap();
        }
        current = next;
    }
    // Level 4 (41% kept) is the first at or below 2:4.
    assert!(kept_after_levels(total, 0.2, 3) * 2 > total);
    assert!(kept_after_levels(total, 0.2, 4) * 2 <= total);
    // Unstructured pruning at the same count breaks the pattern.
    let unstructured = plain.one_shot_from_weights(&weights, &mask, 4).unwrap();
    assert!(pattern.check(&unstructured).is_err());
}

fn weights_abs(weights: &Weights) -> Weights {
    weights
        .iter()
        .map(|(p, v)| (p.clone(), v.iter().map(|w| w.abs()).collect()))
        .collect()
}

#[test]
fn one_level_at_one_minus_n_over_m_is_exactly_the_n_of_m_selection() {
    let mask = dense(&[("a.weight", vec![8, 8, 3, 3]), ("b.weight", vec![24, 10])]);
    let weights = weights_for(&mask, 3);
    for pattern in [NOfM::two_of_four(), NOfM::new(1, 4), NOfM::new(3, 8)] {
        let fraction = 1.0 - pattern.density();
        let pruner = MagnitudePrunerConfig::new(fraction)
            .with_n_of_m(pattern)
            .init()
            .unwrap();
        let next = pruner.next_mask_from_weights(&weights, &mask).unwrap();
        let expected = keep_n_of_m(&weights_abs(&weights), &mask, pattern).unwrap();
        assert_eq!(next, expected, "{pattern:?}");
        assert_eq!(
            next.kept_count() * pattern.m,
            mask.total_count() * pattern.n
        );
    }
}

#[test]
fn n_of_m_leaves_existing_configs_and_directory_names_alone() {
    let plain = MagnitudePrunerConfig::default();
    let json = serde_json::to_string(&plain).unwrap();
    assert!(!json.contains("n_of_m"), "{json}");
    let old: MagnitudePrunerConfig =
        serde_json::from_str(r#"{"fraction_of_remaining": 0.2}"#).unwrap();
    assert_eq!(old.n_of_m, None);
    let with = plain.clone().with_n_of_m(NOfM::new(1, 4));
    let json = serde_json::to_string(&with).unwrap();
    assert!(json.contains(r#""n_of_m":{"n":1,"m":4}"#), "{json}");
    assert_eq!(
        serde_json::from_str::<MagnitudePrunerConfig>(&json).unwrap(),
        with
    );
    assert!(serde_json::from_str::<NOfM>(r#"{"n":1,"m":4,"k":2}"#).is_err());
    let base = tiny_imp_config("nm", 1);
    assert!(!base.distinguishing_json().to_string().contains("n_of_m"));
    let nm = ImpConfig {
        pruning: with,
        ..base.clone()
    };
    assert_ne!(base.directory_name(), nm.directory_name());
}

#[test]
fn imp_run_reaches_two_of_four_and_stores_it() {
    // The small LeNet (64-24-16-10): every d_in a multiple of 4.
    let pattern = NOfM::two_of_four();
    let config = ImpConfig {
        pruning: MagnitudePrunerConfig::new(0.2).with_n_of_m(pattern),
        ..tiny_imp_config("nm_imp", 4)
    };
    let out = tempfile::tempdir().unwrap();
    let imp = Imp::new(config);
    imp.run(out.path(), &ndarray(), &data(), init, &mut Silent)
        .unwrap();
    let dir = imp.directory(out.path());
    let total = 64 * 24 + 24 * 16 + 16 * 10;
    for level in 1..=4 {
        let bytes =
            std::fs::read(dir.join(Layout::level(&burn_lottery::imp::Branch::Main, level).mask()))
                .unwrap();
        let mask = Mask::from_bytes(&bytes).unwrap();
        assert_eq!(mask.kept_count(), kept_after_levels(total, 0.2, level));
        assert_eq!(pattern.check(&mask).is_ok(), level == 4, "level {level}");
    }
}
