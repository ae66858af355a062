//! The sparse path against the dense masked one: training steps, IMP levels,
//! inference and burn's gather / scatter formulation; the execution record
//! of every level (which path trained it and why), fallbacks to the dense
//! path with their reasons, and a sparse level's checkpoints and resume.
//!
//! Tolerance: the sparse kernels sum in another order than burn's matmul,
//! so results agree to rounding. After 12 steps every weight may differ by
//! `WEIGHT_TOLERANCE` (absolute) and every loss by `LOSS_TOLERANCE`
//! (relative); pruned weights must be exactly zero.

use std::collections::BTreeMap;
use std::path::Path;

use burn::module::{Module, Param};
use burn::nn::{Linear, LinearConfig};
use burn::tensor::{Device, Int, Tensor, TensorData};
use burn_lottery::imp::{
    Branch, Imp, ImpConfig, ImpError, ImpObserver, ImpReport, Layout, LevelFiles, RunOptions,
    Silent,
};
use burn_lottery::mask::{LayerMask, Mask, ParamSelector};
use burn_lottery::models::init::init_weights;
use burn_lottery::models::{Classifier, LeNet, cross_entropy};
use burn_lottery::params::float_values;
use burn_lottery::report::{self, CSV_HEADER};
use burn_lottery::rewind::RewindCheckpoint;
use burn_lottery::sparse::{
    Execution, ExecutionPath as P, ExecutionReason as R, GatherScatter, MLP_BELOW_DENSITY,
    SparseError, SparseMlp, SparseTraining,
};
use burn_lottery::task::DataOrder;
use burn_lottery::train::masked::MaskedOptimizer;
use burn_lottery::train::recipe::{OptimizerConfig, TrainingRecipe};
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
    let mut masked = MaskedOptimizer::new(optimizer.init(), &mask, &model, &device).unwrap();
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

#[cfg(any(feature = "wgpu", feature = "wgpu-unfused"))]
#[test]
fn gather_scatter_gradients_match_dense_on_wgpu() {
    let device = burn_lottery::device::device_by_name("wgpu").expect("built with wgpu");
    gather_scatter_matches_dense(&device);
}

/// A 3-level IMP experiment with `sparse` settings.
fn imp(sparse: SparseTraining) -> Imp {
    Imp::new(ImpConfig {
        sparse_training: sparse,
        ..tiny_imp_config("sparse_imp", 3)
    })
}

/// Runs [`imp`] under `root`.
fn run_imp(root: &Path, sparse: SparseTraining) -> ImpReport {
    let device = ndarray().autodiff();
    imp(sparse)
        .run(root, &device, &data(), init, &mut Silent)
        .unwrap()
}

/// The path and reason each level of a report's summaries records (as
/// read back from the stored summaries).
pub(crate) fn executions(report: &ImpReport) -> Vec<(P, R)> {
    report
        .summaries
        .iter()
        .map(|s| {
            let e = s
                .execution
                .as_ref()
                .expect("every trained level records its path");
            (e.path, e.reason)
        })
        .collect()
}

/// The trained weights a level stored (read into `template`).
fn stored_weights<M: Module>(
    report: &ImpReport,
    level: usize,
    template: M,
) -> BTreeMap<String, Vec<f32>> {
    let bytes = level_file(report, level, LevelFiles::final_checkpoint);
    let checkpoint = RewindCheckpoint::from_bytes(&bytes).unwrap();
    float_values(&checkpoint.restore(template).unwrap(), |_| true)
}

/// The experiment's `report.csv`.
pub(crate) fn report_csv(report: &ImpReport) -> String {
    std::fs::read_to_string(report.directory.join("report.csv")).unwrap()
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
    check_execution_records(&dense, &sparse);
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

/// Which path trained each level, as the summaries, their files and the
/// reports record it: the default run says "sparse training off" and keeps
/// its report's format; the sparse run trains levels 2 and 3 sparsely.
fn check_execution_records(dense: &ImpReport, sparse: &ImpReport) {
    assert_eq!(executions(dense), vec![(P::Dense, R::SparseTrainingOff); 4]);
    assert_eq!(
        executions(sparse),
        vec![
            (P::Dense, R::DenseMask),
            (P::Dense, R::AboveThreshold),
            (P::Sparse, R::BelowThreshold),
            (P::Sparse, R::BelowThreshold),
        ]
    );
    let words = |level: usize| sparse.summaries[level].execution.clone().unwrap().detail;
    assert_eq!(words(1), "density 0.8000 is not below the configured 0.7");
    assert!(
        words(3).ends_with(" is below the configured 0.7"),
        "{}",
        words(3)
    );
    let stored: serde_json::Value =
        serde_json::from_slice(&level_file(sparse, 2, LevelFiles::summary)).unwrap();
    assert_eq!(stored["execution"]["path"], "sparse");
    assert_eq!(stored["execution"]["reason"], "below_threshold");
    let dense_csv = report_csv(dense);
    assert!(dense_csv.starts_with(&format!("{CSV_HEADER}\n")));
    assert!(!dense_csv.contains("execution") && !dense_csv.contains("dense"));
    let csv = report_csv(sparse);
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], format!("{CSV_HEADER},execution,execution_reason"));
    assert!(lines[2].ends_with(",dense,above_threshold"), "{}", lines[2]);
    assert!(
        lines[3].ends_with(",sparse,below_threshold"),
        "{}",
        lines[3]
    );
    assert_eq!(report::from_csv(&csv).unwrap().0, sparse.rows);
    assert_eq!(sparse.rows[3].execution, Some(P::Sparse));
    // The default is not repeated in the rows: they read back from the CSV.
    assert!(dense.rows.iter().all(|r| r.execution.is_none()));
    assert_eq!(report::from_csv(&dense_csv).unwrap().0, dense.rows);
    let table = sparse.table().to_string();
    assert!(table.contains("sparse (below_threshold)"), "{table}");
    assert!(!dense.table().to_string().contains("sparse_training_off"));
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

/// Records what the trainer tells its observer: steps, checkpoint calls
/// and the execution decision (made once).
#[derive(Default)]
struct Calls {
    steps: u64,
    losses: u64,
    checkpoints: u64,
    execution: Option<Execution>,
}

impl TrainObserver<LeNet> for Calls {
    fn after_step(&mut self, _: u64, _: Option<f64>, _: f64) {
        self.steps += 1;
    }

    fn losses(&mut self, _: u64, losses: &[f64]) {
        assert!(losses.iter().all(|l| l.is_finite()));
        self.losses += losses.len() as u64;
    }

    fn execution(&mut self, execution: &Execution) {
        let before = self.execution.replace(execution.clone());
        assert!(before.is_none(), "decided once per range");
    }

    fn checkpoint(&mut self, _: u64, _: &LeNet, _: &MaskedOptimizer) -> Result<(), String> {
        self.checkpoints += 1;
        Ok(())
    }
}

impl Calls {
    fn decision(&self) -> (P, R) {
        let e = self
            .execution
            .as_ref()
            .expect("the trainer says which path");
        (e.path, e.reason)
    }
}

fn order(recipe: &TrainingRecipe) -> DataOrder {
    DataOrder {
        batch_size: recipe.batch_size,
        order_seed: 0,
        augment_seed: None,
    }
}

#[test]
fn the_trainer_switches_at_the_configured_density() {
    let device = ndarray().autodiff();
    let task = data();
    let recipe = crate::common::tiny_recipe();
    let model = init(&device, 0);
    let mask = pattern_mask(&model, 30); // density 0.3
    let run = |settings: &SparseTraining, fixed_lr: Option<f64>| {
        let mut optimizer =
            MaskedOptimizer::new(recipe.optimizer.init(), &mask, &model, &device).unwrap();
        let model = optimizer.prepare(model.clone());
        let mut calls = Calls::default();
        let trained = Trainer::new(&recipe, &task, &device)
            .with_sparse(settings, &mask)
            .with_fixed_learning_rate(fixed_lr)
            .train(model, &mut optimizer, 0..10, &order(&recipe), &mut calls)
            .unwrap();
        // Both paths offer the observer a checkpoint after every step, and
        // every step's loss.
        assert_eq!((calls.steps, calls.checkpoints, calls.losses), (10, 10, 10));
        (trained, calls)
    };
    let at = SparseTraining::below;
    let (above, calls) = run(&at(0.3), None);
    assert_eq!(calls.decision(), (P::Dense, R::AboveThreshold));
    let words = calls.execution.unwrap().detail;
    assert!(
        words.ends_with("is not below the configured 0.3"),
        "{words}"
    );
    let (_, calls) = run(&SparseTraining::on(), None);
    assert_eq!(calls.decision(), (P::Dense, R::AboveThreshold));
    let words = calls.execution.unwrap().detail;
    let crossover = format!("is not below the MLP crossover {MLP_BELOW_DENSITY}");
    assert!(words.ends_with(&crossover), "{words}");
    let (off, calls) = run(&SparseTraining::default(), None);
    assert_eq!(calls.decision(), (P::Dense, R::SparseTrainingOff));
    assert_eq!(float_values(&above, |_| true), float_values(&off, |_| true));
    let (_, calls) = run(&at(0.31), Some(1e-3));
    assert_eq!(calls.decision(), (P::Dense, R::FixedLearningRate));
    let (below, calls) = run(&at(0.31), None);
    assert_eq!(calls.decision(), (P::Sparse, R::BelowThreshold));
    check_same_weights(&off, &below, &mask);
}

/// Takes the model and burn's optimizer state at one iteration, and asks
/// for no other checkpoint.
struct Snapshot {
    at: u64,
    taken: Option<(LeNet, Vec<u8>)>,
}

impl TrainObserver<LeNet> for Snapshot {
    fn checkpoint_due(&mut self, completed: u64) -> bool {
        completed == self.at
    }

    fn checkpoint(
        &mut self,
        done: u64,
        model: &LeNet,
        opt: &MaskedOptimizer,
    ) -> Result<(), String> {
        assert_eq!(done, self.at, "checkpoint offered only when due");
        let state = opt.optimizer().into_bytes().unwrap().to_vec();
        assert!(self.taken.replace((model.clone(), state)).is_none());
        Ok(())
    }
}

/// A sparse range's checkpoint (the dense model and burn's optimizer
/// state: SGD's velocity, Adam's moments and step count) resumes on the
/// sparse path to the uninterrupted run's weights bit for bit, and on the
/// dense path to them within rounding.
#[test]
fn a_sparse_checkpoint_resumes_on_either_path() {
    let sgd = |momentum, nesterov| OptimizerConfig::Sgd {
        learning_rate: 0.05,
        momentum,
        weight_decay: 1e-3,
        nesterov,
    };
    // LeNet's 3 layers: 6 parameters, with 2, 1, 1 and 0 state tensors each.
    for (optimizer, tensors) in [
        (OptimizerConfig::adam(3e-3), 12),
        (sgd(0.9, false), 6),
        (sgd(0.9, true), 6),
        (sgd(0.0, false), 0),
    ] {
        check_sparse_resume(optimizer, tensors);
    }
}

/// [`a_sparse_checkpoint_resumes_on_either_path`] with `optimizer`, whose
/// burn state at the checkpoint holds `tensors` tensors.
fn check_sparse_resume(optimizer: OptimizerConfig, tensors: usize) {
    let device = ndarray().autodiff();
    let task = data();
    let recipe = TrainingRecipe {
        optimizer,
        ..crate::common::tiny_recipe()
    };
    let mask = pattern_mask(&init(&device, 0), 20);
    let sparse = SparseTraining::on();
    let train = |model: LeNet,
                 state: Option<&[u8]>,
                 range: std::ops::Range<u64>,
                 settings: &SparseTraining,
                 observer: &mut Snapshot|
     -> LeNet {
        let mut burn_optimizer = recipe.optimizer.init();
        if let Some(bytes) = state {
            let bytes = burn::tensor::Bytes::from_bytes_vec(bytes.to_vec());
            burn_optimizer = burn_optimizer.from_bytes(bytes).unwrap();
            assert_eq!(
                burn_optimizer.to_record().len(),
                tensors,
                "{:?}",
                recipe.optimizer
            );
        }
        let mut optimizer = MaskedOptimizer::new(burn_optimizer, &mask, &model, &device).unwrap();
        let model = optimizer.prepare(model);
        let trainer = Trainer::new(&recipe, &task, &device).with_sparse(settings, &mask);
        trainer
            .train(model, &mut optimizer, range, &order(&recipe), observer)
            .unwrap()
    };
    let mut snapshot = Snapshot { at: 6, taken: None };
    let straight = train(init(&device, 0), None, 0..12, &sparse, &mut snapshot);
    let (model, state) = snapshot.taken.expect("a checkpoint at iteration 6");
    let mut none = Snapshot { at: 0, taken: None };
    let resumed = train(model.clone(), Some(&state), 6..12, &sparse, &mut none);
    assert!(
        float_values(&straight, |_| true) == float_values(&resumed, |_| true),
        "{:?}: the sparse resume is bit for bit the uninterrupted run",
        recipe.optimizer
    );
    let off = SparseTraining::default();
    let dense = train(model, Some(&state), 6..12, &off, &mut none);
    check_same_weights(&straight, &dense, &mask);
}

/// Stops the run after `stop_after` steps in total.
struct StopAfter {
    steps: u64,
    stop_after: u64,
}

impl ImpObserver for StopAfter {
    fn step(&mut self, _completed: u64, _loss: Option<f64>) {
        self.steps += 1;
    }
    fn should_stop(&mut self) -> bool {
        self.steps >= self.stop_after
    }
}

/// A sparse level interrupted after its periodic checkpoint resumes from
/// it, sparsely, to the uninterrupted run's results bit for bit.
#[test]
fn an_interrupted_sparse_level_resumes_to_the_same_results() {
    let device = ndarray().autodiff();
    let options = RunOptions {
        checkpoint_every: 7,
        ..RunOptions::default()
    };
    let imp = imp(SparseTraining::below(0.7)).with_options(options);
    let straight_dir = tempfile::tempdir().unwrap();
    let straight = imp
        .run(straight_dir.path(), &device, &data(), init, &mut Silent)
        .unwrap();
    // Levels 0 and 1 train 30 and 25 steps; stop 12 steps into the sparse
    // level 2 (iteration 17; its last checkpoint is at iteration 14).
    let dir = tempfile::tempdir().unwrap();
    let mut stop = StopAfter {
        steps: 0,
        stop_after: 30 + 25 + 12,
    };
    let err = imp
        .run(dir.path(), &device, &data(), init, &mut stop)
        .unwrap_err();
    assert!(matches!(err, ImpError::Train { level: 2, .. }), "{err}");
    let files = Layout::level(&Branch::Main, 2);
    let progress = std::fs::read(imp.directory(dir.path()).join(files.progress())).unwrap();
    let checkpoint = RewindCheckpoint::from_bytes(&progress).unwrap();
    assert_eq!(checkpoint.iteration(), 14);
    assert!(checkpoint.optimizer_bytes().is_some_and(|b| !b.is_empty()));
    let resumed = imp
        .run(dir.path(), &device, &data(), init, &mut Silent)
        .unwrap();
    assert_eq!(resumed.trained_levels, 2, "levels 2 and 3");
    assert_eq!(executions(&resumed), executions(&straight));
    assert_eq!(executions(&resumed)[2], (P::Sparse, R::BelowThreshold));
    assert_eq!(resumed.rows, straight.rows);
    assert_eq!(report_csv(&resumed), report_csv(&straight));
    for level in 0..=3 {
        let (a, b) = (&straight.summaries[level], &resumed.summaries[level]);
        assert_eq!(a.metrics, b.metrics, "level {level}");
        assert_eq!(a.final_train_loss, b.final_train_loss, "level {level}");
        let files: [fn(&LevelFiles) -> String; 2] = [LevelFiles::mask, LevelFiles::metrics];
        for file in files {
            assert!(
                level_file(&straight, level, file) == level_file(&resumed, level, file),
                "level {level}: a file differs"
            );
        }
        let template = || init(&ndarray(), 0);
        assert!(
            stored_weights(&straight, level, template())
                == stored_weights(&resumed, level, template()),
            "level {level}: the trained weights differ"
        );
    }
}

/// LeNet's linear layers with `tanh` between them: the parameters of a
/// chain of linear layers, another forward pass.
#[derive(Module, Debug)]
pub(crate) struct TanhNet {
    fc1: Linear,
    fc2: Linear,
}

impl Classifier for TanhNet {
    fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        let x = self.fc1.forward(images.flatten(1, 3));
        self.fc2.forward(burn::tensor::activation::tanh(x))
    }
}

fn tanh_net(device: &Device, seed: u64) -> TanhNet {
    let net = TanhNet {
        fc1: LinearConfig::new(64, 24).init(device),
        fc2: LinearConfig::new(24, 10).init(device),
    };
    init_weights(net, seed)
}

/// A model the sparse path reads as a chain of linear layers whose forward
/// is not the ReLU chain: every pruned level falls back to the dense path
/// with its reason recorded, and trains exactly as with sparse training
/// off.
#[test]
fn a_forced_fallback_records_its_reason_and_trains_densely() {
    let device = ndarray().autodiff();
    let dir = tempfile::tempdir().unwrap();
    let run = |sparse: SparseTraining| {
        let config = ImpConfig {
            sparse_training: sparse,
            ..tiny_imp_config("sparse_fallback", 2)
        };
        Imp::new(config)
            .run(dir.path(), &device, &data(), tanh_net, &mut Silent)
            .unwrap()
    };
    let off = run(SparseTraining::default());
    let on = run(SparseTraining::below(0.9));
    assert_eq!(
        executions(&on),
        vec![
            (P::Dense, R::DenseMask),
            (P::Dense, R::LossMismatch),
            (P::Dense, R::LossMismatch),
        ]
    );
    let words = on.summaries[1].execution.clone().unwrap().detail;
    assert!(words.starts_with("first-batch loss "), "{words}");
    let csv = report_csv(&on);
    assert!(
        csv.lines()
            .nth(2)
            .unwrap()
            .ends_with(",dense,loss_mismatch"),
        "{csv}"
    );
    for level in 0..=2 {
        let template = || tanh_net(&ndarray(), 0);
        assert!(
            stored_weights(&off, level, template()) == stored_weights(&on, level, template()),
            "level {level}: the fallback is the dense path"
        );
    }
}

/// LeNet's layers and one more parameter: not a layout the sparse path
/// knows.
#[derive(Module, Debug)]
struct Shifted {
    fc1: Linear,
    fc2: Linear,
    shift: Param<Tensor<1>>,
}

impl Classifier for Shifted {
    fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        let x = burn::tensor::activation::relu(self.fc1.forward(images.flatten(1, 3)));
        self.fc2.forward(x) + self.shift.val().unsqueeze::<2>()
    }
}

#[test]
fn an_unknown_layout_trains_densely_and_says_why() {
    let device = ndarray().autodiff();
    let (task, recipe) = (data(), crate::common::tiny_recipe());
    let model = Shifted {
        fc1: LinearConfig::new(64, 24).init(&device),
        fc2: LinearConfig::new(24, 10).init(&device),
        shift: Param::from_tensor(Tensor::zeros([10], &device)),
    };
    let mask = pattern_mask(&model, 30);
    let mut optimizer =
        MaskedOptimizer::new(recipe.optimizer.init(), &mask, &model, &device).unwrap();
    let model = optimizer.prepare(model);
    let mut execution = None;
    let mut observer = Decision(&mut execution);
    Trainer::new(&recipe, &task, &device)
        .with_sparse(&SparseTraining::on(), &mask)
        .train(model, &mut optimizer, 0..2, &order(&recipe), &mut observer)
        .unwrap();
    let execution = execution.expect("decided");
    assert_eq!(execution.reason, R::LayoutNotRecognised);
    assert!(execution.detail.contains("5 float tensors"), "{execution}");
}

/// Keeps the execution decision.
pub(crate) struct Decision<'a>(pub(crate) &'a mut Option<Execution>);

impl<M> TrainObserver<M> for Decision<'_> {
    fn execution(&mut self, execution: &Execution) {
        *self.0 = Some(execution.clone());
    }
}
