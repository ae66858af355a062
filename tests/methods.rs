//! The comparisons that followed the lottery-ticket paper: learning-rate
//! rewinding, fine-tuning, one-shot pruning, pruning at initialization (SNIP,
//! GraSP, SynFlow, magnitude, random) and the layer-wise density rules.

use std::collections::BTreeMap;
use std::ops::Range;

use burn::module::{Module, Param};
use burn::nn::{Linear, LinearConfig};
use burn::tensor::{Device, Tensor, TensorData};
use burn_lottery::imp::{Branch, Imp, ImpConfig, Layout, PruningMethod, Retrain, Silent, Start};
use burn_lottery::mask::{LayerMask, Mask, ParamSelector};
use burn_lottery::models::LeNet;
use burn_lottery::prune::{
    Allocation, AtInitConfig, DensityRule, InitCriterion, MagnitudePrunerConfig, PruneError,
    erk_densities, grasp_scores, keep_top, kept_after_levels, snip_scores, synflow_mask,
    synflow_scores,
};
use burn_lottery::rewind::RewindCheckpoint;
use burn_lottery::task::{Batches, DataOrder, MetricSpec, Metrics, Split, Task, TaskError};
use burn_lottery::train::iteration::Iteration;
use burn_lottery::train::masked::MaskedOptimizer;
use burn_lottery::train::schedule::LrSchedule;
use burn_lottery::train::trainer::{TrainObserver, Trainer};

use crate::common::{StopAfter, data, init, ndarray, state, tiny_imp_config};

// ---------------------------------------------------------------- retraining

/// The tiny experiment with a multi-step schedule (x0.1 at 10 and 20 of 30),
/// rewinding to 5, one pruned level.
fn scheduled(name: &str, retrain: Retrain) -> ImpConfig {
    let mut config = tiny_imp_config(name, 1);
    config.training.schedule = LrSchedule::multi_step(vec![10, 20], 0.1);
    config.retrain = retrain;
    config
}

/// Records every step's learning rate.
#[derive(Default)]
struct Rates(BTreeMap<u64, f64>);

impl<M> TrainObserver<M> for Rates {
    fn after_step(&mut self, completed: u64, _loss: Option<f64>, learning_rate: f64) {
        self.0.insert(completed - 1, learning_rate);
    }
}

/// Records the iteration range of every level started.
#[derive(Default)]
struct Ranges(Vec<(String, usize, (u64, u64))>);

impl burn_lottery::imp::ImpObserver for Ranges {
    fn level_started(&mut self, condition: &str, level: usize, _density: f64, range: (u64, u64)) {
        self.0.push((condition.to_string(), level, range));
    }
}

fn read_model(dir: &std::path::Path, file: &str, device: &Device) -> LeNet {
    let bytes = std::fs::read(dir.join(file)).unwrap();
    RewindCheckpoint::from_bytes(&bytes)
        .unwrap()
        .restore(init(device, 0))
        .unwrap()
}

/// Runs `config`, then retrains level 1 by hand from level 0's trained
/// network over `range` (at `fixed` when given) and checks the runner's
/// level 1 is that network bit for bit. Returns the rates of the replica.
fn replay_level_one(config: ImpConfig, range: Range<u64>, fixed: Option<f64>) -> Rates {
    let out = tempfile::tempdir().unwrap();
    let device = ndarray().autodiff();
    let data = data();
    let mut ranges = Ranges::default();
    let imp = Imp::new(config.clone());
    imp.run(out.path(), &ndarray(), &data, init, &mut ranges)
        .unwrap();
    let name = config.condition();
    assert_eq!(ranges.0[1], (name, 1, (range.start, range.end)));
    let dir = imp.directory(out.path());
    let trained = read_model(
        &dir,
        &Layout::level(&Branch::Main, 0).final_checkpoint(),
        &device,
    );
    let mask =
        Mask::from_bytes(&std::fs::read(dir.join(Layout::level(&Branch::Main, 1).mask())).unwrap())
            .unwrap();
    let mut optimizer =
        MaskedOptimizer::new(config.training.optimizer.init(), &mask, &trained, &device).unwrap();
    let model = optimizer.prepare(trained);
    let mut rates = Rates::default();
    let order = Branch::Main.data_order(&config);
    let replica = Trainer::new(&config.training, &data, &device)
        .with_fixed_learning_rate(fixed)
        .train(model, &mut optimizer, range, &order, &mut rates)
        .unwrap();
    let stored = read_model(
        &dir,
        &Layout::level(&Branch::Main, 1).final_checkpoint(),
        &device,
    );
    assert_eq!(state(&stored), state(&replica), "level 1, bit for bit");
    rates
}

#[test]
fn learning_rate_rewinding_keeps_the_trained_weights_and_replays_the_schedule_from_k() {
    let config = scheduled("lr_rewinding", Retrain::LearningRateRewinding);
    assert_eq!(config.condition(), "imp_lr_rewind5");
    assert_eq!(Branch::Main.start(1, &config), Start::Trained(0));
    assert_eq!(Branch::Main.iterations(1, &config), 5..30);
    assert_eq!(Branch::Main.fixed_learning_rate(1, &config), None);
    let rates = replay_level_one(config.clone(), 5..30, None);
    // The schedule from k: 3e-3 until 9, 3e-4 from 10, 3e-5 from 20 to 29.
    let lr = |i| config.training.lr_at(Iteration(i));
    assert_eq!(rates.0.len(), 25);
    for (iteration, expected) in [
        (5, 3e-3),
        (9, 3e-3),
        (10, 3e-4),
        (19, 3e-4),
        (20, 3e-5),
        (29, 3e-5),
    ] {
        assert_eq!(rates.0[&iteration], lr(iteration), "iteration {iteration}");
        assert!(
            (rates.0[&iteration] - expected).abs() < 1e-12,
            "iteration {iteration}"
        );
    }
    assert!(!rates.0.contains_key(&4) && !rates.0.contains_key(&30));
}

#[test]
fn fine_tuning_keeps_the_trained_weights_at_the_final_rate() {
    let config = scheduled("fine_tuning", Retrain::FineTuning { iterations: 12 });
    assert_eq!(config.condition(), "imp_finetune12");
    assert_eq!(Branch::Main.start(1, &config), Start::Trained(0));
    assert_eq!(Branch::Main.iterations(1, &config), 30..42);
    let final_rate = config.training.lr_at(Iteration(29));
    assert!((final_rate - 3e-5).abs() < 1e-12);
    assert_eq!(
        Branch::Main.fixed_learning_rate(1, &config),
        Some(final_rate)
    );
    let rates = replay_level_one(config, 30..42, Some(final_rate));
    assert_eq!(rates.0.len(), 12);
    assert!(rates.0.values().all(|&r| r == final_rate), "{:?}", rates.0);
}

#[test]
fn retraining_modes_leave_level_zero_controls_and_old_experiments_alone() {
    let rewinding = tiny_imp_config("modes", 2);
    let json = rewinding.distinguishing_json().to_string();
    assert!(
        !json.contains("retrain") && !json.contains("method"),
        "{json}"
    );
    let lr = ImpConfig {
        retrain: Retrain::LearningRateRewinding,
        ..rewinding.clone()
    };
    let one_shot = ImpConfig {
        method: PruningMethod::OneShot,
        ..rewinding.clone()
    };
    let names = [&rewinding, &lr, &one_shot].map(ImpConfig::directory_name);
    assert!(names[0] != names[1] && names[1] != names[2] && names[0] != names[2]);
    // Dense level and controls do not change with the mode.
    assert_eq!(Branch::Main.start(0, &lr), Start::Init);
    assert_eq!(Branch::Main.iterations(0, &lr), 0..30);
    assert_eq!(Branch::RandomPrune.start(1, &lr), Start::Rewind);
    assert_eq!(Branch::RandomPrune.iterations(1, &lr), 5..30);
    assert_eq!(Branch::DataOrder(3).start(1, &lr), Start::Trained(0));
    assert_eq!(Branch::Main.start(2, &lr), Start::Trained(1));
    assert_eq!(Branch::Main.start(2, &one_shot), Start::Rewind);
    let one_shot_lr = ImpConfig {
        retrain: Retrain::LearningRateRewinding,
        ..one_shot.clone()
    };
    assert_eq!(Branch::Main.start(2, &one_shot_lr), Start::Trained(0));
    assert_eq!(one_shot_lr.condition(), "oneshot_lr_rewind5");
    // The settings round-trip through JSON (the stored config.json).
    let snip = ImpConfig {
        method: PruningMethod::AtInitialization(AtInitConfig::new(InitCriterion::Grasp)),
        retrain: Retrain::FineTuning { iterations: 7 },
        ..rewinding.clone()
    };
    let json = serde_json::to_string(&snip).unwrap();
    assert_eq!(
        serde_json::from_str::<ImpConfig>(&json).unwrap(),
        snip,
        "{json}"
    );
    // A stored config without the new settings reads with their defaults.
    let stored: ImpConfig = serde_json::from_str(r#"{"name": "old", "levels": 3}"#).unwrap();
    assert_eq!(stored.retrain, Retrain::WeightRewinding);
    assert_eq!(stored.method, PruningMethod::Iterative);
    // Invalid combinations are refused before anything is written.
    let out = tempfile::tempdir().unwrap();
    for bad in [
        ImpConfig {
            retrain: Retrain::FineTuning { iterations: 0 },
            ..rewinding.clone()
        },
        ImpConfig {
            retrain: Retrain::LearningRateRewinding,
            method: PruningMethod::AtInitialization(AtInitConfig::new(InitCriterion::Snip)),
            ..rewinding.clone()
        },
    ] {
        let err = Imp::new(bad)
            .run(out.path(), &ndarray(), &data(), init, &mut Silent)
            .unwrap_err();
        assert!(
            matches!(err, burn_lottery::imp::ImpError::Config(_)),
            "{err}"
        );
    }
    assert_eq!(std::fs::read_dir(out.path()).unwrap().count(), 0);
}

// ------------------------------------------------------------------ one-shot

#[test]
fn one_shot_pruning_hits_the_target_counts_from_the_dense_network() {
    // One layer of 1000 weights: three levels at 20% keep exactly 512, the
    // 512 of largest magnitude, in one step.
    let mask = Mask::from_layers([("w".to_string(), LayerMask::dense(vec![1000]))]);
    let weights: BTreeMap<String, Vec<f32>> = [(
        "w".to_string(),
        (0..1000)
            .map(|i| ((i * 37) % 1000) as f32 - 500.0)
            .collect(),
    )]
    .into();
    let pruner = MagnitudePrunerConfig::new(0.2).init().unwrap();
    let one_shot = pruner.one_shot_from_weights(&weights, &mask, 3).unwrap();
    assert_eq!(one_shot.kept_count(), 512);
    assert_eq!(kept_after_levels(1000, 0.2, 3), 512);
    assert_eq!(pruner.kept_after(&mask, 3).unwrap(), 512);
    let smallest_kept = weights["w"]
        .iter()
        .zip(one_shot.layer("w").unwrap().kept())
        .filter(|(_, k)| **k)
        .map(|(w, _)| w.abs())
        .fold(f32::INFINITY, f32::min);
    let largest_removed = weights["w"]
        .iter()
        .zip(one_shot.layer("w").unwrap().kept())
        .filter(|(_, k)| !**k)
        .map(|(w, _)| w.abs())
        .fold(0.0, f32::max);
    assert!(smallest_kept >= largest_removed);

    // Through the runner: level L prunes the dense trained network to what L
    // iterative levels keep, group by group.
    let config = ImpConfig {
        method: PruningMethod::OneShot,
        pruning: MagnitudePrunerConfig::new(0.2).with_layer_rate("fc3.weight", 0.1),
        ..tiny_imp_config("one_shot", 2)
    };
    let out = tempfile::tempdir().unwrap();
    let imp = Imp::new(config.clone());
    let report = imp
        .run(out.path(), &ndarray(), &data(), init, &mut Silent)
        .unwrap();
    assert_eq!(report.summaries[2].condition, "oneshot_rewind5");
    let dir = imp.directory(out.path());
    let device = ndarray().autodiff();
    let dense_trained = read_model(
        &dir,
        &Layout::level(&Branch::Main, 0).final_checkpoint(),
        &device,
    );
    let dense = Mask::dense(&dense_trained, &ParamSelector::default()).unwrap();
    let pruner = config.pruning.init().unwrap();
    let stored =
        Mask::from_bytes(&std::fs::read(dir.join(Layout::level(&Branch::Main, 2).mask())).unwrap())
            .unwrap();
    assert_eq!(stored, pruner.one_shot(&dense_trained, &dense, 2).unwrap());
    let kept = |path: &str| stored.layer(path).unwrap().kept_count();
    assert_eq!(kept("fc3.weight"), kept_after_levels(160, 0.1, 2));
    assert_eq!(
        kept("fc1.weight") + kept("fc2.weight"),
        kept_after_levels(64 * 24 + 24 * 16, 0.2, 2)
    );
}

// ------------------------------------------------ pruning at initialization

/// x (2) -> fc1 (2, no bias) -> ReLU -> fc2 (1, no bias).
#[derive(Module, Debug)]
struct TwoLayer {
    fc1: Linear,
    fc2: Linear,
}

impl TwoLayer {
    fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        self.fc2
            .forward(burn::tensor::activation::relu(self.fc1.forward(x)))
    }
}

fn linear(weights: [[f32; 2]; 2], outputs: usize, device: &Device) -> Linear {
    let mut layer = LinearConfig::new(2, outputs).with_bias(false).init(device);
    let values: Vec<f32> = weights
        .iter()
        .flat_map(|row| row[..outputs].to_vec())
        .collect();
    layer.weight = Param::from_tensor(Tensor::from_data(
        TensorData::new(values, [2, outputs]),
        device,
    ));
    layer
}

/// W1 (in x out) = [[0.5, 0.2], [0.3, 0.4]], W2 = [0.7, -0.6].
fn two_layer(device: &Device) -> TwoLayer {
    TwoLayer {
        fc1: linear([[0.5, 0.2], [0.3, 0.4]], 2, device),
        fc2: linear([[0.7, 0.0], [-0.6, 0.0]], 1, device),
    }
}

const X: [[f64; 2]; 3] = [[1.0, 2.0], [0.5, 1.5], [2.0, 0.5]];
const T: [f64; 3] = [1.0, -0.5, 0.25];

/// The fixed batch, every iteration; loss: mean squared error.
struct FixedBatch;

impl Task<TwoLayer> for FixedBatch {
    type Batch = (Tensor<2>, Tensor<2>);

    fn batches<'a>(
        &'a self,
        _order: &DataOrder,
        iterations: Range<u64>,
        device: &'a Device,
    ) -> Result<Batches<'a, Self::Batch>, TaskError> {
        let x: Vec<f32> = X.iter().flatten().map(|&v| v as f32).collect();
        let t: Vec<f32> = T.iter().map(|&v| v as f32).collect();
        Ok(Box::new(iterations.map(move |_| {
            Ok((
                Tensor::from_data(TensorData::new(x.clone(), [3, 2]), device),
                Tensor::from_data(TensorData::new(t.clone(), [3, 1]), device),
            ))
        })))
    }

    fn loss(&self, model: &TwoLayer, (x, t): Self::Batch) -> Tensor<1> {
        (model.forward(x) - t).powf_scalar(2.0).mean()
    }

    fn evaluate(&self, _: &TwoLayer, _: Split, _: usize, _: &Device) -> Result<Metrics, TaskError> {
        Ok(Metrics::new().with("mse", 0.0))
    }

    fn metrics(&self) -> MetricSpec {
        MetricSpec::lower_is_better("mse")
    }
}

/// Hand-computed gradient and Hessian-gradient product of the two-layer
/// net's loss `L = (1/N) sum (y - t)^2` (every hidden unit active, so the
/// net is `y = x W1 W2` and smooth): returns (g1, g2, Hg1, Hg2) with
/// `g1[i][j] = dL/dW1[i][j]`.
#[allow(clippy::type_complexity)]
fn hand_gradients() -> ([[f64; 2]; 2], [f64; 2], [[f64; 2]; 2], [f64; 2]) {
    let w1 = [[0.5, 0.2], [0.3, 0.4]];
    let w2 = [0.7, -0.6];
    let n = X.len() as f64;
    let hidden = |x: &[f64; 2], w: &[[f64; 2]; 2]| [0, 1].map(|j| x[0] * w[0][j] + x[1] * w[1][j]);
    // Gradient at (W1, W2).
    let grad = |w1: &[[f64; 2]; 2], w2: &[f64; 2]| {
        let (mut g1, mut g2) = ([[0.0; 2]; 2], [0.0; 2]);
        for (x, t) in X.iter().zip(T) {
            let h = hidden(x, w1);
            assert!(h.iter().all(|&v| v > 0.0), "every unit active");
            let r = h[0] * w2[0] + h[1] * w2[1] - t;
            for j in 0..2 {
                g2[j] += 2.0 * r * h[j] / n;
                for i in 0..2 {
                    g1[i][j] += 2.0 * r * w2[j] * x[i] / n;
                }
            }
        }
        (g1, g2)
    };
    let (g1, g2) = grad(&w1, &w2);
    // H g: the derivative of the gradient along g, by hand:
    // d(dL/dW2[j]) = (2/N) sum (dr h[j] + r dh[j]),
    // d(dL/dW1[i][j]) = (2/N) sum x[i] (dr W2[j] + r g2[j]),
    // dr = x g1 W2 + x W1 g2, dh = x g1.
    let (mut hg1, mut hg2) = ([[0.0; 2]; 2], [0.0; 2]);
    for (x, t) in X.iter().zip(T) {
        let h = hidden(x, &w1);
        let dh = hidden(x, &g1);
        let r = h[0] * w2[0] + h[1] * w2[1] - t;
        let dr = dh[0] * w2[0] + dh[1] * w2[1] + h[0] * g2[0] + h[1] * g2[1];
        for j in 0..2 {
            hg2[j] += 2.0 * (dr * h[j] + r * dh[j]) / n;
            for i in 0..2 {
                hg1[i][j] += 2.0 * x[i] * (dr * w2[j] + r * g2[j]) / n;
            }
        }
    }
    (g1, g2, hg1, hg2)
}

fn order() -> DataOrder {
    DataOrder {
        batch_size: 3,
        order_seed: 0,
        augment_seed: None,
    }
}

fn close(actual: &[f32], expected: &[f64], tolerance: f64) {
    assert_eq!(actual.len(), expected.len());
    for (a, e) in actual.iter().zip(expected) {
        assert!(
            (f64::from(*a) - e).abs() <= tolerance * e.abs().max(1e-3),
            "{actual:?} vs {expected:?}"
        );
    }
}

#[test]
fn snip_and_grasp_scores_match_the_hand_computed_ones() {
    let device = ndarray().autodiff();
    let model = two_layer(&device);
    let mask = Mask::dense(&model, &ParamSelector::default()).unwrap();
    let (g1, g2, hg1, hg2) = hand_gradients();
    let (w1, w2) = ([[0.5, 0.2], [0.3, 0.4]], [0.7, -0.6]);
    // Two identical batches average to the one batch's gradient.
    let snip = snip_scores(&model, &mask, &FixedBatch, &order(), 0..2, &device).unwrap();
    let snip1: Vec<f64> = (0..4)
        .map(|k| (w1[k / 2][k % 2] * g1[k / 2][k % 2]).abs())
        .collect();
    close(&snip["fc1.weight"], &snip1, 1e-5);
    close(
        &snip["fc2.weight"],
        &[(w2[0] * g2[0]).abs(), (w2[1] * g2[1]).abs()],
        1e-5,
    );

    let grasp = grasp_scores(&model, &mask, &FixedBatch, &order(), 0..1, 1e-3, &device).unwrap();
    let grasp1: Vec<f64> = (0..4)
        .map(|k| -w1[k / 2][k % 2] * hg1[k / 2][k % 2])
        .collect();
    close(&grasp["fc1.weight"], &grasp1, 1e-3);
    close(
        &grasp["fc2.weight"],
        &[-w2[0] * hg2[0], -w2[1] * hg2[1]],
        1e-3,
    );

    // GraSP keeps the lowest scores; SNIP the highest.
    let keep = |criterion| {
        AtInitConfig::new(criterion)
            .prune(&model, &mask, 3, &FixedBatch, &order(), 0, &device)
            .unwrap()
    };
    let mut all: Vec<(f32, &str, usize)> = Vec::new();
    for (path, scores) in &grasp {
        all.extend(
            scores
                .iter()
                .enumerate()
                .map(|(i, s)| (*s, path.as_str(), i)),
        );
    }
    all.sort_by(|a, b| b.0.total_cmp(&a.0));
    let grasp_mask = keep(InitCriterion::Grasp);
    for (rank, (_, path, i)) in all.iter().enumerate() {
        assert_eq!(
            grasp_mask.layer(path).unwrap().kept()[*i],
            rank >= 3,
            "{path}[{i}]"
        );
    }
    assert_eq!(keep(InitCriterion::Snip).kept_count(), 3);
}

/// A ReLU net without biases: 4 -> 6 -> 5 -> 3.
#[derive(Module, Debug)]
struct Deep {
    layers: Vec<Linear>,
}

fn deep(device: &Device) -> Deep {
    device.seed(7);
    Deep {
        layers: [(4, 6), (6, 5), (5, 3)]
            .map(|(i, o)| LinearConfig::new(i, o).with_bias(false).init(device))
            .into(),
    }
}

/// SynFlow's objective: the sum of the outputs on an all-ones input.
fn flow(model: &Deep, device: &Device) -> Result<Tensor<1>, TaskError> {
    let mut x = Tensor::<2>::ones([1, 4], device);
    for (i, layer) in model.layers.iter().enumerate() {
        x = layer.forward(x);
        if i + 1 < model.layers.len() {
            x = burn::tensor::activation::relu(x);
        }
    }
    Ok(x.sum())
}

#[test]
fn synflow_scores_are_conserved_layer_by_layer() {
    let device = ndarray().autodiff();
    let model = deep(&device);
    let flow = |m: &Deep| flow(m, &device);
    let dense = Mask::dense(&model, &ParamSelector::default()).unwrap();
    let scores = synflow_scores(&model, &dense, &flow).unwrap();
    let total: f32 = flow(&burn_lottery_abs(&model)).unwrap().into_scalar();
    let sums: Vec<f64> = scores
        .values()
        .map(|s| s.iter().map(|&v| f64::from(v)).sum())
        .collect();
    assert_eq!(sums.len(), 3);
    for sum in &sums {
        assert!(
            (sum - f64::from(total)).abs() < 1e-4 * f64::from(total),
            "{sums:?} vs R = {total}"
        );
    }
    // Conservation holds on a pruned network too (pruned weights score 0).
    let pruned = synflow_mask(&model, &dense, 30, DensityRule::Global, 10, &flow).unwrap();
    assert_eq!(pruned.kept_count(), 30);
    let scores = synflow_scores(&model, &pruned, &flow).unwrap();
    let sums: Vec<f64> = scores
        .values()
        .map(|s| s.iter().map(|&v| f64::from(v)).sum())
        .collect();
    assert!(
        sums.iter().all(|s| (s - sums[0]).abs() < 1e-4 * sums[0]),
        "{sums:?}"
    );
    for (path, layer) in pruned.layers() {
        for (score, kept) in scores[path].iter().zip(layer.kept()) {
            assert!(*kept || *score == 0.0);
        }
    }
}

/// The model with every weight replaced by its absolute value (by hand).
fn burn_lottery_abs(model: &Deep) -> Deep {
    Deep {
        layers: model
            .layers
            .iter()
            .map(|l| {
                let mut l = l.clone();
                l.weight = Param::from_tensor(l.weight.val().abs().detach());
                l
            })
            .collect(),
    }
}

// ------------------------------------------------------------ density rules

fn shapes_mask(shapes: &[(&str, Vec<usize>)]) -> Mask {
    Mask::from_layers(
        shapes
            .iter()
            .map(|(p, s)| (p.to_string(), LayerMask::dense(s.clone()))),
    )
}

#[test]
fn erk_densities_follow_the_formula() {
    let mask = shapes_mask(&[
        ("a.weight", vec![100, 50]),
        ("b.weight", vec![16, 8, 3, 3]),
        ("c.weight", vec![4, 2]),
    ]);
    let n = [5000.0, 1152.0, 8.0];
    let raw = [150.0 / 5000.0, 30.0 / 1152.0, 6.0 / 8.0];
    let density = 0.1;
    let target = density * n.iter().sum::<f64>();
    // c would get epsilon * 0.75 > 1: it is kept dense, the others rescaled.
    let epsilon_all = target / (0..3).map(|i| raw[i] * n[i]).sum::<f64>();
    assert!(epsilon_all * raw[2] > 1.0);
    let epsilon = (target - n[2]) / (raw[0] * n[0] + raw[1] * n[1]);
    let densities = erk_densities(&mask, density).unwrap();
    assert!((densities["a.weight"] - epsilon * raw[0]).abs() < 1e-12);
    assert!((densities["b.weight"] - epsilon * raw[1]).abs() < 1e-12);
    assert_eq!(densities["c.weight"], 1.0);
    let kept_total: f64 = densities.values().zip(n).map(|(d, n)| d * n).sum();
    assert!((kept_total - target).abs() < 1e-9);

    // Counts add up to the kept total exactly, for each rule.
    let kept = 616;
    for rule in [DensityRule::Uniform, DensityRule::Erk] {
        let Allocation::PerLayer(counts) = rule.allocate(&mask, kept).unwrap() else {
            panic!("{rule:?} allocates per layer");
        };
        assert_eq!(counts.values().sum::<usize>(), kept, "{rule:?}");
    }
    let Allocation::PerLayer(uniform) = DensityRule::Uniform.allocate(&mask, 616).unwrap() else {
        unreachable!()
    };
    // 616 / 6160 = 10% of each layer: 500, 115.2, 0.8 -> 500, 115, 1.
    assert_eq!(uniform["a.weight"], 500);
    assert_eq!(uniform["b.weight"] + uniform["c.weight"], 116);
    assert_eq!(
        DensityRule::Global.allocate(&mask, 616).unwrap(),
        Allocation::Global(616)
    );
    assert!(matches!(
        DensityRule::Erk.allocate(&mask, 6161),
        Err(PruneError::KeepTooMany { .. })
    ));
    assert!(erk_densities(&mask, 1.5).is_err());
}

#[test]
fn every_criterion_at_init_keeps_exactly_the_target_count() {
    let device = ndarray().autodiff();
    let data = data();
    let model = init(&device, 0);
    let dense = Mask::dense(&model, &ParamSelector::default()).unwrap();
    let order = crate::common::tiny_recipe().data_order(0, 0);
    for criterion in [
        InitCriterion::Snip,
        InitCriterion::Grasp,
        InitCriterion::Synflow,
        InitCriterion::Magnitude,
        InitCriterion::Random,
    ] {
        for rule in [DensityRule::Global, DensityRule::Uniform, DensityRule::Erk] {
            let config = AtInitConfig {
                batches: 2,
                synflow_rounds: 5,
                ..AtInitConfig::new(criterion).with_density_rule(rule)
            };
            let mask = config
                .prune(&model, &dense, 321, &data, &order, 1, &device)
                .unwrap();
            if criterion != InitCriterion::Synflow || rule == DensityRule::Global {
                assert_eq!(mask.kept_count(), 321, "{criterion:?} {rule:?}");
            } else {
                assert!(mask.kept_count() <= 321 && mask.kept_count() > 300);
            }
        }
    }
    // Magnitude at init keeps the largest initial weights.
    let weights = burn_lottery::params::float_values(&model, |p| dense.contains(p));
    let scores: BTreeMap<String, Vec<f32>> = weights
        .iter()
        .map(|(p, w)| (p.clone(), w.iter().map(|v| v.abs()).collect()))
        .collect();
    let magnitude = AtInitConfig::new(InitCriterion::Magnitude)
        .prune(&model, &dense, 321, &data, &order, 1, &device)
        .unwrap();
    assert_eq!(
        magnitude,
        keep_top(&scores, &dense, &Allocation::Global(321)).unwrap()
    );
}

#[test]
fn the_runner_prunes_at_initialization_to_each_levels_count() {
    let out = tempfile::tempdir().unwrap();
    let config = ImpConfig {
        rewind_iteration: 0,
        method: PruningMethod::AtInitialization(AtInitConfig {
            batches: 2,
            ..AtInitConfig::new(InitCriterion::Snip)
        }),
        ..tiny_imp_config("snip", 2)
    };
    let imp = Imp::new(config.clone());
    let report = imp
        .run(out.path(), &ndarray(), &data(), init, &mut Silent)
        .unwrap();
    assert_eq!(report.summaries[1].condition, "snip");
    let pruner = config.pruning.init().unwrap();
    let dir = imp.directory(out.path());
    let device = ndarray().autodiff();
    let initial = init(&device, 0);
    let dense = Mask::dense(&initial, &ParamSelector::default()).unwrap();
    for level in 1..=2 {
        let stored = Mask::from_bytes(
            &std::fs::read(dir.join(Layout::level(&Branch::Main, level).mask())).unwrap(),
        )
        .unwrap();
        let kept = pruner.kept_after(&dense, level).unwrap();
        assert_eq!(stored.kept_count(), kept, "level {level}");
        assert_eq!(report.summaries[level].kept, kept);
        // Scored at the initialization, on the experiment's first batches.
        let at_init = AtInitConfig {
            batches: 2,
            ..AtInitConfig::new(InitCriterion::Snip)
        };
        let expected = at_init
            .prune(
                &initial,
                &dense,
                kept,
                &data(),
                &Branch::Main.data_order(&config),
                0,
                &device,
            )
            .unwrap();
        assert_eq!(stored, expected, "level {level}");
    }
}

// ------------------------------------------------------- resume and refusals

#[test]
fn a_fine_tuning_level_interrupted_past_t_resumes_to_the_same_network() {
    let config = scheduled("fine_tuning_resume", Retrain::FineTuning { iterations: 12 });
    let options = burn_lottery::imp::RunOptions {
        checkpoint_every: 6,
        eval_batch_size: 64,
        ..Default::default()
    };
    let straight_root = tempfile::tempdir().unwrap();
    let imp = Imp::new(config).with_options(options);
    let straight = imp
        .run(straight_root.path(), &ndarray(), &data(), init, &mut Silent)
        .unwrap();
    // 30 steps of level 0, then 10 of level 1 (iterations 30..40): its
    // progress checkpoint is at 36, past the recipe's 30 iterations.
    let root = tempfile::tempdir().unwrap();
    let err = imp
        .run(root.path(), &ndarray(), &data(), init, &mut StopAfter(40))
        .unwrap_err();
    assert!(err.to_string().contains("stopped"), "{err}");
    let dir = imp.directory(root.path());
    let progress = Layout::level(&Branch::Main, 1).progress();
    let checkpoint = RewindCheckpoint::from_bytes(&std::fs::read(dir.join(&progress)).unwrap());
    assert_eq!(checkpoint.unwrap().iteration(), 36);
    let mut ranges = Ranges::default();
    let resumed = imp
        .run(root.path(), &ndarray(), &data(), init, &mut ranges)
        .unwrap();
    assert_eq!(ranges.0[1].2, (36, 42), "level 1 continues from 36");
    assert_eq!(resumed.rows, straight.rows);
    let device = ndarray().autodiff();
    let file = Layout::level(&Branch::Main, 1).final_checkpoint();
    assert_eq!(
        state(&read_model(&dir, &file, &device)),
        state(&read_model(
            &imp.directory(straight_root.path()),
            &file,
            &device
        ))
    );
    let metrics =
        std::fs::read_to_string(dir.join(Layout::level(&Branch::Main, 1).metrics())).unwrap();
    assert!(metrics.contains("test_accuracy,42,"), "{metrics}");
}

#[test]
fn bad_scores_counts_and_rates_are_refused_with_typed_errors() {
    let mask = shapes_mask(&[("a", vec![2, 3]), ("b", vec![4])]);
    let mut scores: BTreeMap<String, Vec<f32>> = [
        ("a".to_string(), vec![0.5, -1.0, 2.0, 0.0, -0.0, 3.0]),
        ("b".to_string(), vec![1.0, 1.0, -2.0, 0.25]),
    ]
    .into();
    // Signed scores rank as numbers; ties go to the later position.
    let top = keep_top(&scores, &mask, &Allocation::Global(4)).unwrap();
    assert_eq!(
        top.layer("a").unwrap().kept(),
        [false, false, true, false, false, true]
    );
    assert_eq!(top.layer("b").unwrap().kept(), [true, true, false, false]);
    let per_layer = Allocation::PerLayer([("a".to_string(), 1), ("b".to_string(), 4)].into());
    let top = keep_top(&scores, &mask, &per_layer).unwrap();
    assert_eq!(top.kept_count(), 5);
    assert!(matches!(
        keep_top(&scores, &mask, &Allocation::Global(11)),
        Err(PruneError::KeepTooMany {
            asked: 11,
            available: 10
        })
    ));
    scores.get_mut("b").unwrap()[2] = f32::NAN;
    assert!(matches!(
        keep_top(&scores, &mask, &Allocation::Global(4)),
        Err(PruneError::NonFiniteScore { index: 2, .. })
    ));
    scores.remove("b");
    assert!(matches!(
        keep_top(&scores, &mask, &Allocation::Global(4)),
        Err(PruneError::MissingWeights { .. })
    ));
    // Settings of pruning at initialization.
    for bad in [
        AtInitConfig {
            batches: 0,
            ..AtInitConfig::default()
        },
        AtInitConfig {
            synflow_rounds: 0,
            ..AtInitConfig::default()
        },
        AtInitConfig {
            finite_difference_step: f64::NAN,
            ..AtInitConfig::default()
        },
    ] {
        assert!(matches!(bad.validate(), Err(PruneError::InvalidAtInit(_))));
    }
    // SynFlow needs an objective the task does not have.
    let device = ndarray().autodiff();
    let model = two_layer(&device);
    let dense = Mask::dense(&model, &ParamSelector::default()).unwrap();
    let err = AtInitConfig::new(InitCriterion::Synflow)
        .prune(&model, &dense, 3, &FixedBatch, &order(), 0, &device)
        .unwrap_err();
    assert!(
        matches!(err, PruneError::Task(TaskError::Invalid(_))),
        "{err}"
    );
    // A fixed learning rate must be finite and positive.
    let recipe = crate::common::tiny_recipe();
    let data = data();
    let model = init(&device, 0);
    let mut optimizer =
        MaskedOptimizer::new(recipe.optimizer.init(), &dense_of(&device), &model, &device).unwrap();
    let err = Trainer::new(&recipe, &data, &device)
        .with_fixed_learning_rate(Some(f64::NAN))
        .train(
            model,
            &mut optimizer,
            0..1,
            &recipe.data_order(0, 0),
            &mut Rates::default(),
        )
        .unwrap_err();
    assert!(err.to_string().contains("learning_rate"), "{err}");
}

fn dense_of(device: &Device) -> Mask {
    Mask::dense(&init(device, 0), &ParamSelector::default()).unwrap()
}
