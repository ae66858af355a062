//! The sparse path against the dense masked one: training steps, IMP levels,
//! inference and burn's gather / scatter formulation.
//!
//! Tolerance: the sparse kernels sum in another order than burn's matmul,
//! so results agree to rounding. After 12 steps every weight may differ by
//! `WEIGHT_TOLERANCE` (absolute) and every loss by `LOSS_TOLERANCE`
//! (relative); pruned weights must be exactly zero.

use std::collections::BTreeMap;
use std::path::Path;

use burn::module::Module;
use burn::tensor::{Device, Int, Tensor, TensorData};
use burn_lottery::imp::{Branch, Imp, ImpConfig, ImpReport, Layout, LevelFiles, Silent};
use burn_lottery::mask::{LayerMask, Mask, ParamSelector};
use burn_lottery::models::{LeNet, cross_entropy};
use burn_lottery::params::float_values;
use burn_lottery::rewind::RewindCheckpoint;
use burn_lottery::sparse::{
    GatherScatter, MLP_BELOW_DENSITY, SparseError, SparseMlp, SparseTraining,
};
use burn_lottery::task::DataOrder;
use burn_lottery::train::masked::MaskedOptimizer;
use burn_lottery::train::recipe::OptimizerConfig;
use burn_lottery::train::trainer::{TrainObserver, Trainer};

use crate::common::{data, init, ndarray, tiny_imp_config};

const WEIGHT_TOLERANCE: f32 = 1e-5;
const LOSS_TOLERANCE: f32 = 1e-5;

/// Keeps about `percent`% of every weight of `model`, in a fixed pattern.
pub(crate) fn pattern_mask<M: Module>(model: &M, percent: usize) -> Mask {
    let dense = Mask::dense(model, &ParamSelector::default()).unwrap();
    Mask::from_layers(dense.layers().map(|(p, l)| {
        let kept = (0..l.total_count())
            .map(|i| (i * 37) % 100 < percent)
            .collect();
        (
            p.to_string(),
            LayerMask::from_kept(p, l.shape().to_vec(), kept).unwrap(),
        )
    }))
}

/// A deterministic batch of 20 flattened 8x8 images and labels.
fn batch(step: usize) -> (Vec<f32>, Vec<i64>) {
    let images = (0..20 * 64)
        .map(|i| (((i + 13 * step) * 7919) % 255) as f32 / 127.5 - 1.0)
        .collect();
    let labels = (0..20).map(|i| ((i + step) % 10) as i64).collect();
    (images, labels)
}

fn upload(images: &[f32], labels: &[i64], device: &Device) -> (Tensor<4>, Tensor<1, Int>) {
    (
        Tensor::from_data(TensorData::new(images.to_vec(), [20, 1, 8, 8]), device),
        Tensor::from_data(TensorData::new(labels.to_vec(), [20]), device),
    )
}

/// Runs 12 steps densely (burn, masked) and sparsely from the same model
/// and mask; checks losses, weights and pruned zeros.
fn compare_steps(optimizer: OptimizerConfig, percent: usize) {
    let device = ndarray().autodiff();
    let model = init(&device, 3);
    let mask = pattern_mask(&model, percent);
    let mut masked = MaskedOptimizer::new(optimizer.init(), &mask, &device);
    let mut dense = masked.prepare(model);
    let mut sparse = SparseMlp::from_module(&dense, &mask).unwrap();
    assert_eq!(sparse.kept_weights(), mask.kept_count());
    let lr = optimizer.learning_rate().expect("a preset has a base rate");
    for step in 0..12 {
        let (images, labels) = batch(step);
        let (x, y) = upload(&images, &labels, &device);
        let loss = cross_entropy(dense.forward(x), y);
        let dense_loss: f32 = loss.clone().into_scalar();
        let grads = burn::optim::GradientsParams::from_grads(loss.backward(), &dense);
        dense = masked.step(lr, dense, grads);
        let sparse_loss = sparse.train_step(&images, &labels, &optimizer, lr).unwrap();
        assert!(
            (dense_loss - sparse_loss).abs() <= LOSS_TOLERANCE * dense_loss.abs(),
            "step {step}: loss {dense_loss} dense vs {sparse_loss} sparse"
        );
    }
    let trained = sparse.write_into(dense.clone());
    check_same_weights(&dense, &trained, &mask);
}

/// Same parameters within tolerance; pruned weights exactly zero in both.
fn check_same_weights(dense: &LeNet, sparse: &LeNet, mask: &Mask) {
    let (a, b) = (
        float_values(dense, |_| true),
        float_values(sparse, |_| true),
    );
    check_close(&a, &b, mask, WEIGHT_TOLERANCE);
}

/// Every tensor of `dense` and `sparse` (host values by path) within
/// `tolerance`; pruned weights exactly zero in both.
pub(crate) fn check_close(
    dense: &BTreeMap<String, Vec<f32>>,
    sparse: &BTreeMap<String, Vec<f32>>,
    mask: &Mask,
    tolerance: f32,
) {
    assert_eq!(
        dense.keys().collect::<Vec<_>>(),
        sparse.keys().collect::<Vec<_>>()
    );
    for (path, values) in dense {
        let max = values
            .iter()
            .zip(&sparse[path])
            .map(|(x, y)| (x - y).abs())
            .fold(0.0f32, f32::max);
        assert!(max <= tolerance, "{path}: differs by {max}");
        if let Some(layer) = mask.layer(path) {
            for ((&kept, x), y) in layer.kept().iter().zip(values).zip(&sparse[path]) {
                if !kept {
                    assert!(*x == 0.0 && *y == 0.0, "{path}: a pruned weight moved");
                }
            }
        }
    }
}

#[test]
fn sparse_adam_steps_match_dense_masked_steps() {
    compare_steps(OptimizerConfig::adam(3e-3), 7);
}

#[test]
fn sparse_sgd_steps_match_dense_masked_steps() {
    let sgd = OptimizerConfig::Sgd {
        learning_rate: 0.05,
        momentum: 0.9,
        weight_decay: 1e-3,
        nesterov: false,
    };
    compare_steps(sgd, 26);
}

#[test]
fn sparse_logits_match_dense_masked_logits() {
    let device = ndarray();
    let model = init(&device, 5);
    let mask = pattern_mask(&model, 11);
    let dense = mask.apply(model).unwrap();
    let mut sparse = SparseMlp::from_module(&dense, &mask).unwrap();
    let (images, labels) = batch(0);
    let (x, _) = upload(&images, &labels, &device);
    let expected: Vec<f32> = dense.forward(x).into_data().try_to_vec().unwrap();
    let logits = sparse.forward(&images, 20);
    assert_eq!(logits.len(), expected.len());
    for (a, b) in logits.iter().zip(&expected) {
        assert!((a - b).abs() <= 1e-5, "{a} vs {b}");
    }
    // One example at a time gives the same logits.
    let one = sparse.forward(&images[64..128], 1);
    for (a, b) in one.iter().zip(&expected[10..20]) {
        assert!((a - b).abs() <= 1e-5, "{a} vs {b}");
    }
}

#[test]
fn models_that_are_not_linear_chains_are_refused() {
    let device = ndarray();
    let model = crate::common::TinyNet::new(&device);
    let mask = Mask::dense(&model, &ParamSelector::default()).unwrap();
    assert!(matches!(
        SparseMlp::from_module(&model, &mask),
        Err(SparseError::NotAnMlp(_))
    ));
    let lenet = init(&device, 0);
    let good = pattern_mask(&lenet, 50);
    assert!(SparseMlp::from_module(&lenet, &good).is_ok());
    // A mask whose layer has another shape is refused, not trained.
    let bad = Mask::from_layers(good.layers().map(|(p, l)| {
        let shape = if p == "fc2.weight" {
            vec![16, 24]
        } else {
            l.shape().to_vec()
        };
        (
            p.to_string(),
            LayerMask::from_kept(p, shape, l.kept().to_vec()).unwrap(),
        )
    }));
    assert!(matches!(
        SparseMlp::from_module(&lenet, &bad),
        Err(SparseError::Shape(_))
    ));
}

/// Gradients of `sum(y * c)` for `y = x (W * mask)` densely and through
/// [`GatherScatter`] on `device`.
fn gather_scatter_matches_dense(device: &Device) {
    let device = device.clone().autodiff();
    let (n, d_in, d_out) = (5, 6, 4);
    let kept: Vec<bool> = (0..d_in * d_out).map(|i| i % 3 != 0).collect();
    let w: Vec<f32> = (0..d_in * d_out).map(|i| (i as f32 * 0.3).sin()).collect();
    let x: Vec<f32> = (0..n * d_in).map(|i| (i as f32 * 0.7).cos()).collect();
    let c: Vec<f32> = (0..n * d_out).map(|i| (i as f32 * 0.2).sin()).collect();
    let m: Vec<f32> = kept.iter().map(|&k| f32::from(u8::from(k))).collect();
    let t =
        |v: &[f32], s: [usize; 2]| Tensor::<2>::from_data(TensorData::new(v.to_vec(), s), &device);
    let run = |sparse: bool| {
        let (xt, wt) = (
            t(&x, [n, d_in]).require_grad(),
            t(&w, [d_in, d_out]).require_grad(),
        );
        let y = if sparse {
            let index = GatherScatter::new(d_in, d_out, &kept, &device).unwrap();
            index.forward(xt.clone(), index.gather_values(wt.clone()))
        } else {
            xt.clone().matmul(wt.clone() * t(&m, [d_in, d_out]))
        };
        let grads = (y.clone() * t(&c, [n, d_out])).sum().backward();
        let host = |v: Tensor<2>| -> Vec<f32> { v.into_data().try_to_vec().unwrap() };
        (
            host(y.without_autodiff()),
            host(xt.grad(&grads).unwrap()),
            host(wt.grad(&grads).unwrap()),
        )
    };
    let (dense, sparse) = (run(false), run(true));
    for (a, b) in [
        (&dense.0, &sparse.0),
        (&dense.1, &sparse.1),
        (&dense.2, &sparse.2),
    ] {
        for (x, y) in a.iter().zip(b) {
            assert!((x - y).abs() <= 1e-5, "{x} vs {y}");
        }
    }
    for (g, &k) in sparse.2.iter().zip(&kept) {
        if !k {
            assert_eq!(*g, 0.0, "a pruned weight got a gradient");
        }
    }
}

#[test]
fn gather_scatter_gradients_match_dense_on_ndarray() {
    gather_scatter_matches_dense(&ndarray());
}

#[cfg(feature = "wgpu")]
#[test]
fn gather_scatter_gradients_match_dense_on_wgpu() {
    let device = burn_lottery::device::device_by_name("wgpu").expect("built with wgpu");
    gather_scatter_matches_dense(&device);
}

/// Runs a 3-level IMP experiment with `sparse` settings under `root`.
fn run_imp(root: &Path, sparse: SparseTraining) -> ImpReport {
    let device = ndarray().autodiff();
    let config = ImpConfig {
        sparse_training: sparse,
        ..tiny_imp_config("sparse_imp", 3)
    };
    Imp::new(config)
        .run(root, &device, &data(), init, &mut Silent)
        .unwrap()
}

/// The stored files of one level of a run.
fn level_file(report: &ImpReport, level: usize, file: impl Fn(&LevelFiles) -> String) -> Vec<u8> {
    let files = Layout::level(&Branch::Main, level);
    std::fs::read(report.directory.join(file(&files))).unwrap()
}

#[test]
fn imp_levels_train_sparsely_below_the_configured_density() {
    let dir = tempfile::tempdir().unwrap();
    let dense = run_imp(dir.path(), SparseTraining::default());
    assert_eq!(
        dense.directory,
        Imp::new(tiny_imp_config("sparse_imp", 3)).directory(dir.path()),
        "the default settings keep the experiment's directory"
    );
    // Densities 1, 0.8, 0.64, 0.512: levels 2 and 3 go sparse.
    let settings = SparseTraining::below(0.7);
    let sparse = run_imp(dir.path(), settings);
    assert_ne!(dense.directory, sparse.directory);
    for level in 0..=3 {
        assert_eq!(
            level_file(&dense, level, LevelFiles::mask),
            level_file(&sparse, level, LevelFiles::mask),
            "level {level}: same mask"
        );
        let (d, s) = (&dense.summaries[level], &sparse.summaries[level]);
        let (da, sa) = (d.metric("accuracy").unwrap(), s.metric("accuracy").unwrap());
        assert!(
            (da - sa).abs() <= 0.02,
            "level {level}: accuracy {da} vs {sa}"
        );
        let (dl, sl) = (d.final_train_loss.unwrap(), s.final_train_loss.unwrap());
        assert!(
            (dl - sl).abs() <= 1e-3 * dl.abs().max(1.0),
            "level {level}: loss {dl} vs {sl}"
        );
    }
    check_sparse_ticket(dir.path(), &dense, 3);
    // Levels 0 and 1 trained on the dense path: bit for bit the same weights.
    let weights = |report: &ImpReport, level| {
        let bytes = level_file(report, level, LevelFiles::final_checkpoint);
        let model = RewindCheckpoint::from_bytes(&bytes)
            .unwrap()
            .restore(init(&ndarray(), 0))
            .unwrap();
        float_values(&model, |_| true)
    };
    for level in 0..=1 {
        assert!(
            weights(&dense, level) == weights(&sparse, level),
            "level {level}"
        );
    }
    let mask = Mask::from_bytes(&level_file(&dense, 2, LevelFiles::mask)).unwrap();
    let restore = |report: &ImpReport| {
        let bytes = level_file(report, 2, LevelFiles::final_checkpoint);
        let checkpoint = RewindCheckpoint::from_bytes(&bytes).unwrap();
        checkpoint.restore(init(&ndarray(), 0)).unwrap()
    };
    check_same_weights(&restore(&dense), &restore(&sparse), &mask);
}

/// The sparse inference form of a stored level gives the logits of the
/// stored dense model.
fn check_sparse_ticket(root: &Path, report: &ImpReport, level: usize) {
    let device = ndarray();
    let imp = Imp::new(tiny_imp_config("sparse_imp", 3));
    let mut ticket = imp
        .sparse_ticket(root, &Branch::Main, level, &device, init)
        .unwrap();
    let bytes = level_file(report, level, LevelFiles::final_checkpoint);
    let dense = RewindCheckpoint::from_bytes(&bytes)
        .unwrap()
        .restore(init(&device, 0))
        .unwrap();
    let mask = Mask::from_bytes(&level_file(report, level, LevelFiles::mask)).unwrap();
    assert_eq!(ticket.kept_weights(), mask.kept_count());
    let (images, labels) = batch(1);
    let (x, _) = upload(&images, &labels, &device);
    let expected: Vec<f32> = dense.forward(x).into_data().try_to_vec().unwrap();
    for (a, b) in ticket.forward(&images, 20).unwrap().iter().zip(&expected) {
        assert!((a - b).abs() <= 1e-5, "{a} vs {b}");
    }
    // A model that does not fit the stored experiment is an error.
    let err = imp.sparse_ticket(root, &Branch::Main, level, &device, |d, _| {
        crate::common::TinyNet::new(d)
    });
    assert!(err.is_err());
}

/// Counts the trainer's checkpoint calls (made every step on the dense
/// path, never on the sparse path).
#[derive(Default)]
struct Calls {
    steps: u64,
    checkpoints: u64,
}

impl TrainObserver<LeNet> for Calls {
    fn after_step(&mut self, _: u64, loss: Option<f64>, _: f64) {
        assert!(loss.is_some());
        self.steps += 1;
    }

    fn checkpoint(&mut self, _: u64, _: &LeNet, _: &MaskedOptimizer) -> Result<(), String> {
        self.checkpoints += 1;
        Ok(())
    }
}

#[test]
fn the_trainer_switches_at_the_configured_density() {
    let device = ndarray().autodiff();
    let task = data();
    let recipe = crate::common::tiny_recipe();
    let order = DataOrder {
        batch_size: recipe.batch_size,
        order_seed: 0,
        augment_seed: None,
    };
    let model = init(&device, 0);
    let mask = pattern_mask(&model, 30); // density 0.3
    let run = |settings: &SparseTraining| {
        let mut optimizer = MaskedOptimizer::new(recipe.optimizer.init(), &mask, &device);
        let model = optimizer.prepare(model.clone());
        let mut calls = Calls::default();
        let trained = Trainer::new(&recipe, &task, &device)
            .with_sparse(settings, &mask)
            .train(model, &mut optimizer, 0..10, &order, &mut calls)
            .unwrap();
        (trained, calls)
    };
    let at = SparseTraining::below;
    let (above, calls) = run(&at(0.3));
    assert_eq!(
        (calls.steps, calls.checkpoints),
        (10, 10),
        "0.3 is not below 0.3"
    );
    let (_, calls) = run(&SparseTraining::on());
    assert_eq!(
        calls.checkpoints, 10,
        "0.3 is not below an MLP's default {MLP_BELOW_DENSITY}"
    );
    let (off, calls) = run(&SparseTraining::default());
    assert_eq!(calls.checkpoints, 10, "off by default");
    assert_eq!(float_values(&above, |_| true), float_values(&off, |_| true));
    let (below, calls) = run(&at(0.31));
    assert_eq!(
        (calls.steps, calls.checkpoints),
        (10, 0),
        "trained sparsely"
    );
    check_same_weights(&off, &below, &mask);
}
