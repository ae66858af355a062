//! Stability analysis: distances, interpolation, error barriers and the
//! analyzer on a tiny synthetic IMP experiment (ndarray).

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::common::{TinyNet, data, init, ndarray, tensor, tiny_recipe, values};
use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::{Device, Tensor};
use burn_lottery::data::{ImageDataset, Normalization};
use burn_lottery::imp::{Controls, ExperimentData, Imp, ImpConfig, RunOptions, Seeds, Silent};
use burn_lottery::mask::{LayerMask, Mask, ParamSelector};
use burn_lottery::models::{Classifier, LeNet};
use burn_lottery::prune::MagnitudePrunerConfig;
use burn_lottery::stability::{
    self, BarrierOptions, BnStatistics, Condition, HostWeights, StabilityAnalyzer, StabilityError,
    alphas, distance, error_barrier, host_weights, interpolate, interpolation_curve,
    masked_distance,
};
use burn_lottery::train::trainer::evaluate;

fn host(entries: &[(&str, Vec<f32>)]) -> HostWeights {
    entries
        .iter()
        .map(|(p, v)| (p.to_string(), v.clone()))
        .collect::<BTreeMap<_, _>>()
}

fn dense_mask(paths: &[(&str, usize)]) -> Mask {
    Mask::from_layers(
        paths
            .iter()
            .map(|&(p, n)| (p.to_string(), LayerMask::dense(vec![n]))),
    )
}

#[test]
fn distance_of_a_network_to_itself_is_zero_and_distance_is_symmetric() {
    let device = ndarray();
    let (a, b) = (init(&device, 1), init(&device, 2));
    let mask = Mask::dense(&a, &ParamSelector::default()).unwrap();
    let itself = masked_distance(&a, &a, &mask).unwrap();
    assert_eq!(itself.l2, 0.0);
    assert_eq!(itself.l2_normalized, 0.0);
    assert_eq!(itself.angle, 0.0);
    assert_eq!(itself.count, mask.total_count());
    let ab = masked_distance(&a, &b, &mask).unwrap();
    let ba = masked_distance(&b, &a, &mask).unwrap();
    assert!(ab.l2 > 0.0);
    assert_eq!(ab.l2, ba.l2);
    assert_eq!(ab.l2_normalized, ba.l2_normalized);
    assert!((ab.angle - ba.angle).abs() < 1e-12);
    // Module and host forms agree; biases are not part of the mask.
    let host_form = distance(&host_weights(&a), &host_weights(&b), &mask).unwrap();
    assert_eq!(host_form, ab);
    assert!(!mask.contains("fc1.bias"));
}

#[test]
fn angle_of_parallel_vectors_is_zero_and_of_opposite_vectors_pi() {
    let mask = dense_mask(&[("w", 3)]);
    let a = host(&[("w", vec![1.0, 2.0, 3.0])]);
    let parallel = host(&[("w", vec![2.0, 4.0, 6.0])]);
    let opposite = host(&[("w", vec![-0.5, -1.0, -1.5])]);
    let d = distance(&a, &parallel, &mask).unwrap();
    assert!(d.angle.abs() < 1e-12, "{}", d.angle);
    let n = 14f64.sqrt();
    assert!((d.l2 - n).abs() < 1e-12);
    assert!((d.l2_normalized - n / (1.5 * n)).abs() < 1e-12);
    let d = distance(&a, &opposite, &mask).unwrap();
    assert!(
        (d.angle - std::f64::consts::PI).abs() < 1e-12,
        "{}",
        d.angle
    );
    let orthogonal = host(&[("w", vec![3.0, 0.0, -1.0])]);
    let d = distance(&a, &orthogonal, &mask).unwrap();
    assert!((d.angle - std::f64::consts::FRAC_PI_2).abs() < 1e-12);
}

#[test]
fn masked_distance_ignores_pruned_entries() {
    let mask = Mask::from_layers([(
        "w".to_string(),
        LayerMask::from_kept("w", vec![4], vec![true, false, true, false]).unwrap(),
    )]);
    let a = host(&[("w", vec![1.0, 2.0, 3.0, 4.0]), ("b", vec![0.0])]);
    let b = host(&[("w", vec![1.0, 100.0, 3.0, -50.0]), ("b", vec![9.0])]);
    let d = distance(&a, &b, &mask).unwrap();
    assert_eq!(d.l2, 0.0);
    assert_eq!(d.angle, 0.0);
    assert_eq!(d.count, 2);
    let c = host(&[("w", vec![4.0, 0.0, -1.0, 0.0])]);
    let d = distance(&a, &c, &mask).unwrap();
    assert!((d.l2 - 5.0).abs() < 1e-12); // (3, -4) on the kept entries
    // A masked path missing from a network is an error, not a silent 0.
    assert!(distance(&a, &host(&[("v", vec![1.0; 4])]), &mask).is_err());

    // On modules: changing pruned weights changes nothing.
    let device = ndarray();
    let model = init(&device, 3);
    let mut kept = vec![true; 64 * 24];
    kept[..100].iter_mut().for_each(|k| *k = false);
    let mut layers: Vec<(String, LayerMask)> = Mask::dense(&model, &ParamSelector::default())
        .unwrap()
        .layers()
        .map(|(p, l)| (p.to_string(), l.clone()))
        .collect();
    layers[0] = (
        "fc1.weight".into(),
        LayerMask::from_kept("fc1.weight", vec![64, 24], kept).unwrap(),
    );
    let mask = Mask::from_layers(layers);
    let mut changed = host_weights(&model);
    changed.get_mut("fc1.weight").unwrap()[..100]
        .iter_mut()
        .for_each(|w| *w += 7.0);
    let other = interpolate(init(&device, 9), &changed, &changed, 1.0).unwrap();
    assert_eq!(masked_distance(&model, &other, &mask).unwrap().l2, 0.0);
    let dense = Mask::dense(&model, &ParamSelector::default()).unwrap();
    assert!(masked_distance(&model, &other, &dense).unwrap().l2 > 0.0);
}

#[test]
fn alphas_include_both_ends_exactly() {
    let a = alphas(30);
    assert_eq!(a.len(), 30);
    assert_eq!(a[0], 0.0);
    assert_eq!(a[29], 1.0);
    assert!(a.windows(2).all(|w| w[1] > w[0]));
    assert_eq!(error_barrier(&[0.1, 0.5, 0.3]), 0.5 - 0.2);
    assert_eq!(BarrierOptions::default().points, 30);
}

#[test]
fn interpolation_endpoints_reproduce_the_networks_own_errors() {
    let device = ndarray();
    let data = data();
    let a = init(&device, 1);
    let b = init(&device, 2);
    let options = BarrierOptions {
        points: 7,
        train_subset: Some(50),
        eval_batch_size: 64,
        ..BarrierOptions::default()
    };
    let curve = interpolation_curve(&a, &b, |d| init(d, 5), &data, &options, &device).unwrap();
    let own = |m: &LeNet| {
        1.0 - evaluate(m, &data.test, &data.normalization, 64, &device)
            .unwrap()
            .accuracy
    };
    assert_eq!(curve.endpoint_error_a(), own(&a));
    assert_eq!(curve.endpoint_error_b(), own(&b));
    assert_eq!(curve.test_errors.len(), 7);
    assert_eq!(curve.train_errors.as_ref().unwrap().len(), 7);
    // The endpoint models are the networks bit for bit.
    let wa = host_weights(&a);
    let wb = host_weights(&b);
    assert_eq!(
        host_weights(&interpolate(init(&device, 7), &wa, &wb, 1.0).unwrap()),
        wa
    );
    assert_eq!(
        host_weights(&interpolate(init(&device, 7), &wa, &wb, 0.0).unwrap()),
        wb
    );
}

#[test]
fn barrier_of_a_network_with_itself_is_zero() {
    let device = ndarray();
    let data = data();
    let a = init(&device, 4);
    let options = BarrierOptions {
        points: 5,
        eval_batch_size: 64,
        ..BarrierOptions::default()
    };
    let curve = interpolation_curve(&a, &a, |d| init(d, 0), &data, &options, &device).unwrap();
    assert_eq!(curve.barrier(), 0.0);
    assert!(curve.test_errors.iter().all(|&e| e == curve.test_errors[0]));
}

/// logits = [p*q*x, -p*q*x] for a 1-pixel image x: class 0 iff p*q*x > 0.
#[derive(Module, Debug)]
struct Chain {
    l1: Linear,
    l2: Linear,
}

impl Chain {
    fn new(device: &Device, p: f32, q: f32) -> Self {
        let set = |l: Linear, v: Vec<f32>, shape: [usize; 2]| Linear {
            weight: l.weight.map(|_| tensor(v, shape, device)),
            ..l
        };
        Self {
            l1: set(
                LinearConfig::new(1, 1).with_bias(false).init(device),
                vec![p],
                [1, 1],
            ),
            l2: set(
                LinearConfig::new(1, 2).with_bias(false).init(device),
                vec![q, -q],
                [1, 2],
            ),
        }
    }
}

impl Classifier for Chain {
    fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        self.l2.forward(self.l1.forward(images.flatten(1, 3)))
    }
}

#[test]
fn a_hand_built_pair_has_the_known_error_profile_and_barrier() {
    // x = (pixel/255 - 0.5) / 0.5: 1.0, 0.6 (class 0), -0.6 (class 1) are
    // right whenever p*q > 0; 0.8 labeled 1 is right only when p*q < 0.
    // Error: 1/4 where p*q > 0, 3/4 where p*q < 0.
    let dataset =
        Arc::new(ImageDataset::new(vec![255, 204, 51, 230], vec![0, 0, 1, 1], 1, 1, 1, 2).unwrap());
    let data = ExperimentData {
        train: dataset.clone(),
        test: dataset,
        normalization: Normalization::new(vec![0.5], vec![0.5]).unwrap(),
        augmentation: None,
    };
    let device = ndarray();
    // a: p = 1, q = 3; b: p = -3, q = -1. Along the path p = 4a - 3 and
    // q = 4a - 1: p*q < 0 exactly for alpha in (0.25, 0.75).
    let a = Chain::new(&device, 1.0, 3.0);
    let b = Chain::new(&device, -3.0, -1.0);
    let options = BarrierOptions {
        points: 11,
        ..BarrierOptions::default()
    };
    let curve = interpolation_curve(
        &a,
        &b,
        |d| Chain::new(d, 0.0, 0.0),
        &data,
        &options,
        &device,
    )
    .unwrap();
    let expected: Vec<f64> = (0..11)
        .map(|i| if (3..=7).contains(&i) { 0.75 } else { 0.25 })
        .collect();
    assert_eq!(curve.test_errors, expected);
    assert_eq!(curve.barrier(), 0.5);
    assert_eq!(curve.endpoint_error_a(), 0.25);
    assert_eq!(curve.endpoint_error_b(), 0.25);
}

#[test]
fn interpolated_batchnorm_statistics_are_the_interpolation_of_the_endpoints() {
    let device = ndarray().autodiff();
    let run = |seed: u64, shift: f32| {
        let model = TinyNet::new(&device);
        let (x, _) = crate::common::tiny_batch(&device, seed);
        let _ = model.forward(x + shift);
        model.valid()
    };
    let a = run(1, 2.0);
    let b = run(2, -1.0);
    let (wa, wb) = (host_weights(&a), host_weights(&b));
    let (ma, mb) = (&wa["bn.running_mean"], &wb["bn.running_mean"]);
    assert!(
        ma.iter().zip(mb).any(|(x, y)| x != y),
        "the statistics moved"
    );
    let alpha = 0.3;
    let mixed = interpolate(TinyNet::new(&device), &wa, &wb, alpha).unwrap();
    let mixed = host_weights(&mixed);
    for name in [
        "bn.running_mean",
        "bn.running_var",
        "bn.gamma",
        "conv.weight",
    ] {
        for ((m, x), y) in mixed[name].iter().zip(&wa[name]).zip(&wb[name]) {
            let expected = alpha * f64::from(*x) + (1.0 - alpha) * f64::from(*y);
            assert!(
                (f64::from(*m) - expected).abs() < 1e-6,
                "{name}: {m} vs {expected}"
            );
        }
    }
    // The endpoints are untouched (nothing shared with the interpolated model).
    assert_eq!(host_weights(&a), wa);
    assert_eq!(values(a.bn.running_var.value()), wa["bn.running_var"]);
}

fn config() -> ImpConfig {
    ImpConfig {
        name: "tiny_stability".into(),
        training: tiny_recipe(),
        pruning: MagnitudePrunerConfig::new(0.2).with_layer_rate("fc3.weight", 0.1),
        levels: 2,
        rewind_iteration: 5,
        seeds: Seeds::all(0),
        controls: Controls {
            random_prune: true,
            ..Controls::default()
        },
        ..ImpConfig::default()
    }
}

/// The experiment of [`config`], evaluated in batches of 64.
fn imp() -> Imp {
    Imp::new(config()).with_options(RunOptions {
        eval_batch_size: 64,
        ..RunOptions::default()
    })
}

#[test]
fn analyzer_trains_copies_once_and_reports_the_sweep() {
    let out = tempfile::tempdir().unwrap();
    let device = ndarray();
    let data = data();
    let imp = imp();
    let options = BarrierOptions {
        points: 5,
        eval_batch_size: 64,
        ..BarrierOptions::default()
    };
    let analyzer = StabilityAnalyzer::new(imp.clone(), out.path(), &data, init, &device)
        .with_options(options.clone());
    // No experiment yet: a clear error, nothing trained.
    assert!(analyzer.analyze_pair(Condition::Imp, 0, (11, 12)).is_err());
    analyzer.run_experiment(&mut Silent).unwrap();

    let results = analyzer
        .sweep(
            &[Condition::Imp, Condition::RandomPrune],
            &[0, 2],
            (11, 12),
            |_| {},
        )
        .unwrap();
    assert_eq!(results.len(), 4);
    let dir = imp.directory(out.path());
    for seed in [11, 12] {
        for level in [0, 2] {
            assert!(
                dir.join(format!(
                    "branches/stability/imp/data_order_{seed}/level_{level:02}/final.ckpt"
                ))
                .exists()
            );
        }
        assert!(
            dir.join(format!(
                "branches/stability/random_prune/data_order_{seed}/level_02/summary.json"
            ))
            .exists()
        );
    }
    let rows: Vec<_> = results.iter().map(|r| r.row()).collect();
    assert_eq!(rows[0].condition, "imp_rewind5");
    assert_eq!(rows[2].condition, "random_prune");
    assert_eq!(rows[0].weights_remaining, 1.0);
    // Level 0 is the dense network in both conditions: the same copies.
    assert_eq!(rows[0].l2_distance, rows[2].l2_distance);
    for r in &rows {
        assert!(
            r.l2_distance > 0.0,
            "different data orders give different networks"
        );
        assert!((0.0..=1.0).contains(&r.endpoint_error_a));
        assert!(r.error_barrier >= -1e-12 - (r.endpoint_error_a - r.endpoint_error_b).abs() / 2.0);
        assert!(r.angle > 0.0 && r.angle < std::f64::consts::PI);
    }
    assert!(rows[1].weights_remaining < 1.0);

    // The copies' endpoint errors are their own test errors (summary.json).
    let summary: serde_json::Value = serde_json::from_slice(
        &std::fs::read(dir.join("branches/stability/imp/data_order_11/level_02/summary.json"))
            .unwrap(),
    )
    .unwrap();
    let accuracy = summary["metrics"]["accuracy"].as_f64().unwrap();
    assert!((rows[1].endpoint_error_a - (1.0 - accuracy)).abs() < 1e-12);

    // A re-run reuses the stored copies: identical results, no new files.
    let manifest = std::fs::read(dir.join("manifest.json")).unwrap();
    let again = analyzer
        .sweep(
            &[Condition::Imp, Condition::RandomPrune],
            &[0, 2],
            (11, 12),
            |_| {},
        )
        .unwrap();
    assert_eq!(again, results);
    assert_eq!(std::fs::read(dir.join("manifest.json")).unwrap(), manifest);

    // Stability to data order and to pruning.
    let pairs = analyzer
        .data_order_distances(Condition::Imp, 2, &[11, 12, 0])
        .unwrap();
    assert_eq!(pairs.len(), 3);
    assert_eq!(pairs[0].distance, results[1].distance);
    let to_pruning = analyzer.pruning_distance(2, 0).unwrap();
    assert!(to_pruning.l2 > 0.0);
    assert_eq!(
        to_pruning.count,
        analyzer.mask(Condition::Imp, 2).unwrap().kept_count()
    );
    // Mask overlap between levels: nested masks, so IoU = kept(later) / kept(earlier).
    let overlaps = analyzer.level_overlaps(Condition::Imp, &[0, 1, 2]).unwrap();
    assert_eq!(overlaps.len(), 2);
    for (a, b, overlap) in &overlaps {
        let (ma, mb) = (
            analyzer.mask(Condition::Imp, *a).unwrap(),
            analyzer.mask(Condition::Imp, *b).unwrap(),
        );
        assert_eq!(overlap.intersection, mb.kept_count());
        assert_eq!(overlap.union, ma.kept_count());
    }
    // The main line's seed with k > 0 trains the dense copy from k as a branch.
    assert!(
        dir.join("branches/stability/imp/data_order_0/level_00/final.ckpt")
            .exists()
    );
    let (mean, std) =
        stability::mean_and_std(&pairs.iter().map(|p| p.distance.l2).collect::<Vec<_>>());
    assert!(mean > 0.0 && std >= 0.0);

    // Report files.
    let report_dir = out.path().join("report");
    stability::report::write_report(
        &results,
        &burn_lottery::report::MetricLabel::new("error", true).unwrap(),
        &report_dir,
        "stability",
        "tiny",
    )
    .unwrap();
    let csv = std::fs::read_to_string(report_dir.join("stability.csv")).unwrap();
    assert!(csv.starts_with("condition,level,weights_remaining,rewind_iteration,l2_distance,l2_normalized,angle,error_barrier,endpoint_error_a,endpoint_error_b\n"));
    assert_eq!(stability::report::from_csv(&csv).unwrap(), rows);
    for f in [
        "stability_barrier.svg",
        "stability_rewind.svg",
        "stability_alpha.svg",
        "stability_curves.csv",
    ] {
        assert!(report_dir.join(f).exists(), "{f}");
    }

    // Recomputing BatchNorm statistics runs (LeNet has none: same curve).
    let recompute = BarrierOptions {
        bn: BnStatistics::Recompute {
            batches: 2,
            seed: 3,
        },
        ..options
    };
    let analyzer =
        StabilityAnalyzer::new(imp, out.path(), &data, init, &device).with_options(recompute);
    let r = analyzer.analyze_pair(Condition::Imp, 2, (11, 12)).unwrap();
    assert_eq!(r.curve.test_errors, results[1].curve.test_errors);
}

#[test]
fn a_seed_level_or_condition_named_twice_is_refused_before_any_copy_trains() {
    let out = tempfile::tempdir().unwrap();
    let device = ndarray();
    let data = data();
    let imp = imp();
    let analyzer = StabilityAnalyzer::new(imp.clone(), out.path(), &data, init, &device);
    analyzer.run_experiment(&mut Silent).unwrap();
    let refused = |result: Result<_, StabilityError>, named: &str| match result {
        Err(StabilityError::Config(message)) => assert!(
            message.contains(named) && message.contains("named twice"),
            "{message}"
        ),
        other => panic!("expected a refusal naming {named}, got {other:?}"),
    };
    // Two copies with one data order would be one network: distance 0.
    refused(
        analyzer
            .analyze_pair(Condition::Imp, 2, (11, 11))
            .map(|_| ()),
        "data-order seed 11",
    );
    refused(
        analyzer
            .data_order_distances(Condition::Imp, 2, &[11, 12, 11])
            .map(|_| ()),
        "data-order seed 11",
    );
    // A repeated level or condition would repeat its rows.
    refused(
        analyzer
            .sweep(&[Condition::Imp], &[0, 2, 0], (11, 12), |_| {})
            .map(|_| ()),
        "level 0",
    );
    refused(
        analyzer
            .sweep(&[Condition::Imp, Condition::Imp], &[2], (11, 12), |_| {})
            .map(|_| ()),
        "condition Imp",
    );
    refused(
        analyzer
            .sweep(&[Condition::Imp], &[2], (12, 12), |_| {})
            .map(|_| ()),
        "data-order seed 12",
    );
    assert!(
        !imp.directory(out.path())
            .join("branches/stability")
            .exists(),
        "no copy was trained"
    );
}
