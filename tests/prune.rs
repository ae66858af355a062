//! Pruners: exact counts, rounding, ties, scopes, overrides, floors, controls.

use crate::common::{TinyNet, ndarray};
use burn_lottery::mask::{LayerMask, Mask, ParamSelector};
use burn_lottery::prune::{
    MagnitudePrunerConfig, PruneError, Pruner, PruningScope, RandomPrunerConfig, Weights,
    kept_after_levels, prune_count, random_mask_like,
};

fn dense(layers: &[(&str, usize)]) -> Mask {
    Mask::from_layers(
        layers
            .iter()
            .map(|&(p, n)| (p.to_string(), LayerMask::dense(vec![n, 1]))),
    )
}

fn weights(layers: &[(&str, Vec<f32>)]) -> Weights {
    layers
        .iter()
        .map(|(p, v)| (p.to_string(), v.clone()))
        .collect()
}

fn pruned_indices(mask: &Mask, path: &str) -> Vec<usize> {
    let layer = mask.layer(path).unwrap();
    (0..layer.total_count())
        .filter(|&i| !layer.kept()[i])
        .collect()
}

#[test]
fn global_pruning_removes_exactly_the_smallest_weights() {
    let w = weights(&[
        ("a", vec![0.9, -0.1, 0.5, 0.05, -0.7]),
        ("b", vec![0.2, -0.3, 0.01, 0.8, 0.6]),
    ]);
    let mask = dense(&[("a", 5), ("b", 5)]);
    let pruner = MagnitudePrunerConfig::new(0.4).init().unwrap();
    let next = pruner.next_mask_from_weights(&w, &mask).unwrap();
    // 4 of 10: |0.01|, |0.05|, |-0.1|, |0.2|.
    assert_eq!(pruned_indices(&next, "a"), vec![1, 3]);
    assert_eq!(pruned_indices(&next, "b"), vec![0, 2]);
    assert!(next.is_subset_of(&mask).unwrap());

    // Next level ranks only the remaining weights: 0.4 * 6 = 2.4 -> 2: |-0.3|, |0.5|.
    let next2 = pruner.next_mask_from_weights(&w, &next).unwrap();
    assert_eq!(pruned_indices(&next2, "a"), vec![1, 2, 3]);
    assert_eq!(pruned_indices(&next2, "b"), vec![0, 1, 2]);
}

#[test]
fn rounding_rule_is_round_half_up() {
    assert_eq!(prune_count(0.2, 10), 2);
    assert_eq!(prune_count(0.2, 12), 2); // 2.4
    assert_eq!(prune_count(0.2, 13), 3); // 2.6
    assert_eq!(prune_count(0.5, 5), 3); // 2.5 rounds up
    assert_eq!(prune_count(0.1, 5), 1); // 0.5 rounds up
    assert_eq!(prune_count(0.2, 2), 0); // 0.4
    assert_eq!(prune_count(0.2, 0), 0);
}

#[test]
fn ten_levels_follow_the_documented_count_exactly() {
    let n = 1001usize;
    let w = weights(&[(
        "w",
        (0..n)
            .map(|i| ((i * 7919) % 1000) as f32 / 997.0 - 0.5)
            .collect(),
    )]);
    let mut mask = dense(&[("w", n)]);
    let pruner = MagnitudePrunerConfig::new(0.2).init().unwrap();
    let mut expected = n;
    for level in 1..=10 {
        mask = pruner.next_mask_from_weights(&w, &mask).unwrap();
        expected -= ((0.2 * expected as f64) + 0.5).floor() as usize;
        assert_eq!(mask.kept_count(), expected, "level {level}");
        assert_eq!(mask.kept_count(), kept_after_levels(n, 0.2, level));
    }
    assert_eq!(kept_after_levels(n, 0.2, 10), 107);
}

#[test]
fn ties_never_over_prune_and_break_by_position() {
    let w = weights(&[("a", vec![0.5; 10]), ("b", vec![0.5; 10])]);
    let mask = dense(&[("a", 10), ("b", 10)]);
    let next = MagnitudePrunerConfig::new(0.25)
        .init()
        .unwrap()
        .next_mask_from_weights(&w, &mask)
        .unwrap();
    assert_eq!(next.pruned_count(), 5);
    assert_eq!(pruned_indices(&next, "a"), vec![0, 1, 2, 3, 4]);
    assert!(pruned_indices(&next, "b").is_empty());
    // -0.5 and 0.5 tie too.
    let w = weights(&[("a", vec![-0.5, 0.5, -0.5, 0.5])]);
    let next = MagnitudePrunerConfig::new(0.5)
        .init()
        .unwrap()
        .next_mask_from_weights(&w, &dense(&[("a", 4)]))
        .unwrap();
    assert_eq!(pruned_indices(&next, "a"), vec![0, 1]);
}

#[test]
fn layer_wise_prunes_each_layer_to_its_own_count() {
    let w = weights(&[
        ("a", (0..10).map(|i| i as f32).collect()),
        ("b", (0..30).map(|i| 100.0 + i as f32).collect()),
    ]);
    let mask = dense(&[("a", 10), ("b", 30)]);
    let next = MagnitudePrunerConfig::new(0.2)
        .with_scope(PruningScope::LayerWise)
        .init()
        .unwrap()
        .next_mask_from_weights(&w, &mask)
        .unwrap();
    assert_eq!(pruned_indices(&next, "a"), vec![0, 1]);
    assert_eq!(pruned_indices(&next, "b"), (0..6).collect::<Vec<_>>());
    // Globally, all 8 would come from "a".
    let global = MagnitudePrunerConfig::new(0.2)
        .init()
        .unwrap()
        .next_mask_from_weights(&w, &mask)
        .unwrap();
    assert_eq!(pruned_indices(&global, "a").len(), 8);
    assert!(pruned_indices(&global, "b").is_empty());
}

#[test]
fn overrides_leave_the_pool_and_floors_keep_layers_alive() {
    let w = weights(&[
        ("fc1", (0..100).map(|i| 10.0 + i as f32).collect()),
        ("fc3", (0..10).map(|i| i as f32 * 0.001).collect()),
    ]);
    let mask = dense(&[("fc1", 100), ("fc3", 10)]);
    let pruner = MagnitudePrunerConfig::new(0.2)
        .with_layer_rate("fc3", 0.1)
        .init()
        .unwrap();
    let next = pruner.next_mask_from_weights(&w, &mask).unwrap();
    // fc3's tiny weights are not in the global pool: 20 of fc1, 1 of fc3.
    assert_eq!(pruned_indices(&next, "fc1"), (0..20).collect::<Vec<_>>());
    assert_eq!(pruned_indices(&next, "fc3"), vec![0]);

    // Without the override, a small-magnitude layer would be emptied; the
    // floor keeps at least one weight (or min density) in it.
    let w = weights(&[("big", vec![5.0; 10]), ("small", vec![0.001; 4])]);
    let mut m = dense(&[("big", 10), ("small", 4)]);
    let pruner = MagnitudePrunerConfig::new(0.5).init().unwrap();
    for _ in 0..6 {
        m = pruner.next_mask_from_weights(&w, &m).unwrap();
        assert!(m.layer("small").unwrap().kept_count() >= 1);
    }
    let pruner = MagnitudePrunerConfig::new(0.5)
        .with_min_density_per_layer(0.5)
        .init()
        .unwrap();
    let next = pruner
        .next_mask_from_weights(&w, &dense(&[("big", 10), ("small", 4)]))
        .unwrap();
    assert_eq!(next.layer("small").unwrap().kept_count(), 2);
    assert_eq!(next.pruned_count(), 7);
}

#[test]
fn invalid_configurations_are_rejected_before_any_work() {
    for bad in [0.0, 1.0, 1.5, -0.2, f64::NAN, f64::INFINITY] {
        let err = MagnitudePrunerConfig::new(bad).init().unwrap_err();
        assert!(matches!(err, PruneError::InvalidFraction { .. }), "{bad}");
        assert!(
            RandomPrunerConfig {
                fraction_of_remaining: bad,
                ..Default::default()
            }
            .init()
            .is_err()
        );
    }
    assert!(matches!(
        MagnitudePrunerConfig::new(0.2)
            .with_layer_rate("fc3", 1.5)
            .init(),
        Err(PruneError::InvalidFraction { .. })
    ));
    assert!(matches!(
        MagnitudePrunerConfig::new(0.2)
            .with_min_density_per_layer(1.0)
            .init(),
        Err(PruneError::InvalidMinDensity { .. })
    ));
    let pruner = MagnitudePrunerConfig::new(0.2)
        .with_layer_rate("head.*", 0.1)
        .init()
        .unwrap();
    let w = weights(&[("a", vec![1.0; 4])]);
    assert!(matches!(
        pruner.next_mask_from_weights(&w, &dense(&[("a", 4)])),
        Err(PruneError::OverrideMatchesNothing { .. })
    ));
    let nan = weights(&[("a", vec![1.0, f32::NAN])]);
    assert!(matches!(
        MagnitudePrunerConfig::default()
            .init()
            .unwrap()
            .next_mask_from_weights(&nan, &dense(&[("a", 2)])),
        Err(PruneError::NonFiniteWeight { index: 1, .. })
    ));
    assert!(matches!(
        MagnitudePrunerConfig::default()
            .init()
            .unwrap()
            .next_mask_from_weights(&w, &dense(&[("b", 4)])),
        Err(PruneError::MissingWeights { .. })
    ));
}

#[test]
fn magnitude_pruning_of_a_real_model() {
    let device = ndarray();
    let model = TinyNet::new(&device);
    let mask = Mask::dense(&model, &ParamSelector::default()).unwrap();
    let pruner = MagnitudePrunerConfig::default().init().unwrap();
    let next = pruner.next_mask(&model, &mask).unwrap();
    assert_eq!(next.kept_count(), 468 - prune_count(0.2, 468));
    // Every kept weight is at least as large as every pruned one.
    let w = burn_lottery::params::float_values(&model, |p| mask.contains(p));
    let mut max_pruned = 0f32;
    let mut min_kept = f32::INFINITY;
    for (path, layer) in next.layers() {
        for (v, &k) in w[path].iter().zip(layer.kept()) {
            if k {
                min_kept = min_kept.min(v.abs());
            } else {
                max_pruned = max_pruned.max(v.abs());
            }
        }
    }
    assert!(max_pruned <= min_kept);
    // A mask of another model is refused.
    let other = dense(&[("head.weight", 4)]);
    assert!(matches!(
        pruner.next_mask(&model, &other),
        Err(PruneError::Mask(_))
    ));
}

#[test]
fn random_controls_keep_counts_and_follow_seeds() {
    let w = weights(&[
        ("a", (0..200).map(|i| i as f32).collect()),
        ("b", (0..50).map(|i| i as f32).collect()),
    ]);
    let pruner = MagnitudePrunerConfig::new(0.2).init().unwrap();
    let mut reference = dense(&[("a", 200), ("b", 50)]);
    for _ in 0..3 {
        reference = pruner.next_mask_from_weights(&w, &reference).unwrap();
    }
    let r1 = random_mask_like(&reference, 1);
    let r1b = random_mask_like(&reference, 1);
    let r2 = random_mask_like(&reference, 2);
    for (path, layer) in reference.layers() {
        assert_eq!(r1.layer(path).unwrap().kept_count(), layer.kept_count());
        assert_eq!(r2.layer(path).unwrap().kept_count(), layer.kept_count());
    }
    assert_eq!(r1, r1b);
    assert_ne!(r1, r2);
    assert_ne!(r1, reference);

    // The random pruner removes the same counts as magnitude pruning would.
    let start = dense(&[("a", 200), ("b", 50)]);
    let random = RandomPrunerConfig {
        fraction_of_remaining: 0.2,
        scope: PruningScope::Global,
        seed: 7,
    }
    .init()
    .unwrap();
    let a = random.next_mask_from_weights(&w, &start).unwrap();
    assert_eq!(a.kept_count(), 200);
    assert_eq!(a, random.next_mask_from_weights(&w, &start).unwrap());
    assert!(a.is_subset_of(&start).unwrap());
    let layer_wise = RandomPrunerConfig::default().init().unwrap();
    let b = layer_wise.next_mask_from_weights(&w, &start).unwrap();
    assert_eq!(b.layer("a").unwrap().kept_count(), 160);
    assert_eq!(b.layer("b").unwrap().kept_count(), 40);
}
