//! The sparse host ResNet against burn's dense masked ResNet: training steps
//! (SGD with momentum and weight decay, BatchNorm with batch statistics),
//! inference logits (running statistics), the trainer's switch and its
//! record, a fallback that leaves BatchNorm's statistics as the dense path
//! has them, and models that are not ResNets.
//!
//! Tolerance: the host kernels sum in another order than burn's
//! convolutions and BatchNorm, and BatchNorm divides by small standard
//! deviations, so after 8 steps parameters and running statistics may
//! differ by `TOLERANCE` (absolute); pruned weights must be exactly zero.

use std::collections::BTreeMap;
use std::ops::Range;

use burn::optim::GradientsParams;
use burn::tensor::{Device, Int, Tensor, TensorData};
use burn_lottery::data::ExperimentData;
use burn_lottery::data::loader::TensorBatch;
use burn_lottery::imp::{Branch, Imp, ImpConfig, ImpReport, Layout, LevelFiles, Silent};
use burn_lottery::mask::Mask;
use burn_lottery::models::{ResNet, ResNetConfig, cross_entropy};
use burn_lottery::report::CSV_HEADER;
use burn_lottery::rewind::RewindCheckpoint;
use burn_lottery::sparse::{
    Execution, ExecutionPath as P, ExecutionReason as R, NormSettings, RESNET_BELOW_DENSITY,
    SparseError, SparseResNet, SparseTicket, SparseTraining,
};
use burn_lottery::task::{Batches, DataOrder, MetricSpec, Metrics, Split, Task, TaskError};
use burn_lottery::train::masked::MaskedOptimizer;
use burn_lottery::train::recipe::{OptimizerConfig, TrainingRecipe};
use burn_lottery::train::trainer::{TrainObserver, Trainer};

use crate::common::{data, ndarray, state};
use crate::sparse::{executions, pattern_mask, report_csv};

const TOLERANCE: f32 = 1e-4;
const BATCH: usize = 6;

/// ResNet-8 for `channels`-channel images.
fn resnet(device: &Device, channels: usize, seed: u64) -> ResNet {
    ResNetConfig::new()
        .with_depth(8)
        .with_input_channels(channels)
        .init_seeded(device, seed)
}

/// A deterministic batch of 6 RGB 8x8 images and labels.
fn batch(step: usize) -> (Vec<f32>, Vec<i64>) {
    let images = (0..BATCH * 3 * 64)
        .map(|i| (((i + 17 * step) * 7919) % 255) as f32 / 127.5 - 1.0)
        .collect();
    let labels = (0..BATCH).map(|i| ((3 * i + step) % 10) as i64).collect();
    (images, labels)
}

fn upload(images: &[f32], labels: &[i64], device: &Device) -> (Tensor<4>, Tensor<1, Int>) {
    (
        Tensor::from_data(TensorData::new(images.to_vec(), [BATCH, 3, 8, 8]), device),
        Tensor::from_data(TensorData::new(labels.to_vec(), [BATCH]), device),
    )
}

fn sgd() -> OptimizerConfig {
    OptimizerConfig::Sgd {
        learning_rate: 0.1,
        momentum: 0.9,
        weight_decay: 1e-4,
        nesterov: false,
    }
}

/// Every float tensor within [`TOLERANCE`]; pruned weights exactly zero in
/// both.
fn check_close(
    dense: &BTreeMap<String, Vec<f32>>,
    sparse: &BTreeMap<String, Vec<f32>>,
    mask: &Mask,
) {
    crate::sparse::check_close(dense, sparse, mask, TOLERANCE);
}

#[test]
fn sparse_resnet_steps_match_dense_masked_steps() {
    let device = ndarray().autodiff();
    let model = resnet(&device, 3, 3);
    let mask = pattern_mask(&model, 26);
    let optimizer = sgd();
    let mut masked = MaskedOptimizer::new(optimizer.init(), &mask, &model, &device).unwrap();
    let mut dense = masked.prepare(model);
    let mut sparse = SparseResNet::from_module(&dense, &mask, NormSettings::default()).unwrap();
    assert_eq!(sparse.kept_weights(), mask.kept_count());
    let lr = optimizer.learning_rate().expect("a preset has a base rate");
    for step in 0..8 {
        let (images, labels) = batch(step);
        let (x, y) = upload(&images, &labels, &device);
        let loss = cross_entropy(dense.forward(x), y);
        let dense_loss: f32 = loss.clone().into_scalar();
        let grads = GradientsParams::from_grads(loss.backward(), &dense);
        dense = masked.step(lr, dense, grads);
        let sparse_loss = sparse.train_step(&images, &labels, &optimizer, lr).unwrap();
        assert!(
            (dense_loss - sparse_loss).abs() <= 1e-4 * dense_loss.abs(),
            "step {step}: loss {dense_loss} dense vs {sparse_loss} sparse"
        );
    }
    // Running statistics are shared between clones of a module: read the
    // dense values before writing the sparse ones into a clone.
    let expected = state(&dense);
    let trained = sparse.write_into(dense.clone());
    check_close(&expected, &state(&trained), &mask);
}

#[test]
fn sparse_resnet_logits_match_dense_masked_logits() {
    let device = ndarray();
    let mask = pattern_mask(&resnet(&device, 3, 5), 11);
    let dense = mask.apply(resnet(&device, 3, 5)).unwrap();
    let mut sparse = SparseResNet::from_module(&dense, &mask, NormSettings::default()).unwrap();
    // Train a little so the running statistics are not the initial 0 and 1.
    for step in 0..3 {
        let (images, labels) = batch(step);
        sparse.train_step(&images, &labels, &sgd(), 0.05).unwrap();
    }
    let dense = sparse.write_into(dense);
    let (images, labels) = batch(7);
    let (x, _) = upload(&images, &labels, &device);
    let expected: Vec<f32> = dense.forward(x).into_data().try_to_vec().unwrap();
    let logits = sparse.forward(&images, BATCH).unwrap();
    assert_eq!(logits.len(), expected.len());
    for (a, b) in logits.iter().zip(&expected) {
        assert!((a - b).abs() <= TOLERANCE, "{a} vs {b}");
    }
    // One example at a time gives the same logits (inference statistics).
    let one = sparse.forward(&images[192..384], 1).unwrap();
    for (a, b) in one.iter().zip(&expected[10..20]) {
        assert!((a - b).abs() <= TOLERANCE, "{a} vs {b}");
    }
}

#[test]
fn what_is_not_a_resnet_is_refused_with_the_reason() {
    let device = ndarray();
    let lenet = crate::common::init(&device, 0);
    let mask = pattern_mask(&lenet, 50);
    let err = SparseResNet::from_module(&lenet, &mask, NormSettings::default()).unwrap_err();
    assert!(
        matches!(err, SparseError::NotAResNet(ref m) if m.contains("conv.weight")),
        "{err}"
    );
    let model = resnet(&device, 3, 0);
    let good = pattern_mask(&model, 50);
    let bad = Mask::from_layers(good.layers().map(|(p, l)| {
        let shape = if p == "blocks.1.conv2.weight" {
            vec![32, 32, 1, 9]
        } else {
            l.shape().to_vec()
        };
        let layer = burn_lottery::mask::LayerMask::from_kept(p, shape, l.kept().to_vec());
        (p.to_string(), layer.unwrap())
    }));
    let err = SparseResNet::from_module(&model, &bad, NormSettings::default()).unwrap_err();
    assert!(
        matches!(err, SparseError::Shape(ref m) if m.contains("blocks.1.conv2.weight")),
        "{err}"
    );
    let mut sparse = SparseResNet::from_module(&model, &good, NormSettings::default()).unwrap();
    // Images that are not square RGB images of the batch, and labels past
    // the classes, are errors, not panics.
    let (images, labels) = batch(0);
    assert!(matches!(
        sparse.forward(&images[1..], BATCH),
        Err(SparseError::Shape(_))
    ));
    assert!(matches!(
        sparse.loss(&images, &[0, 1, 2, 3, 4, 10]),
        Err(SparseError::Shape(_))
    ));
    assert!(sparse.loss(&images, &labels).is_ok());
}

/// Counts the trainer's checkpoint calls (every step on either path) and
/// keeps its execution decision.
#[derive(Default)]
struct Checkpoints {
    calls: u64,
    execution: Option<Execution>,
}

impl TrainObserver<ResNet> for Checkpoints {
    fn execution(&mut self, execution: &Execution) {
        self.execution = Some(execution.clone());
    }

    fn checkpoint(&mut self, _: u64, _: &ResNet, _: &MaskedOptimizer) -> Result<(), String> {
        self.calls += 1;
        Ok(())
    }
}

impl Checkpoints {
    fn decision(&self) -> (P, R) {
        let e = self
            .execution
            .as_ref()
            .expect("the trainer says which path");
        (e.path, e.reason)
    }
}

/// The synthetic task with its loss doubled: not the loss the sparse path
/// computes, so its first-batch check sends the range to the dense path.
struct DoubledLoss(ExperimentData);

impl Task<ResNet> for DoubledLoss {
    type Batch = TensorBatch;

    fn batches<'a>(
        &'a self,
        order: &DataOrder,
        iterations: Range<u64>,
        device: &'a Device,
    ) -> Result<Batches<'a, TensorBatch>, TaskError> {
        Task::<ResNet>::batches(&self.0, order, iterations, device)
    }

    fn loss(&self, model: &ResNet, batch: TensorBatch) -> Tensor<1> {
        Task::<ResNet>::loss(&self.0, model, batch).mul_scalar(2.0)
    }

    fn evaluate(
        &self,
        model: &ResNet,
        split: Split,
        batch_size: usize,
        device: &Device,
    ) -> Result<Metrics, TaskError> {
        Task::<ResNet>::evaluate(&self.0, model, split, batch_size, device)
    }

    fn metrics(&self) -> MetricSpec {
        Task::<ResNet>::metrics(&self.0)
    }

    fn host_batch(&self, batch: &TensorBatch) -> Option<(Vec<f32>, Vec<i64>)> {
        Task::<ResNet>::host_batch(&self.0, batch)
    }
}

/// A ResNet range whose first-batch check fails trains densely, with the
/// reason, and exactly as with sparse training off: the check's forward
/// pass leaves no trace in BatchNorm's running statistics.
#[test]
fn a_resnet_fallback_leaves_batch_norm_as_the_dense_path_has_it() {
    let device = ndarray().autodiff();
    let task = DoubledLoss(data());
    let recipe = TrainingRecipe {
        optimizer: sgd(),
        training_iterations: 3,
        ..crate::common::tiny_recipe()
    };
    let order = DataOrder {
        batch_size: recipe.batch_size,
        order_seed: 0,
        augment_seed: None,
    };
    let mask = pattern_mask(&resnet(&device, 1, 0), 45);
    let run = |settings: &SparseTraining| {
        let model = resnet(&device, 1, 0);
        let mut optimizer =
            MaskedOptimizer::new(recipe.optimizer.init(), &mask, &model, &device).unwrap();
        let model = optimizer.prepare(model);
        let mut calls = Checkpoints::default();
        let trained = Trainer::new(&recipe, &task, &device)
            .with_sparse(settings, &mask)
            .train(model, &mut optimizer, 0..3, &order, &mut calls)
            .unwrap();
        (state(&trained), calls.decision())
    };
    let (dense, decision) = run(&SparseTraining::default());
    assert_eq!(decision, (P::Dense, R::SparseTrainingOff));
    let (fallback, decision) = run(&SparseTraining::on());
    assert_eq!(decision, (P::Dense, R::LossMismatch));
    assert!(dense == fallback, "the fallback trains as the dense path");
}

#[test]
fn the_trainer_trains_a_sparse_resnet_below_the_configured_density() {
    let device = ndarray().autodiff();
    let task = data();
    let recipe = TrainingRecipe {
        optimizer: sgd(),
        training_iterations: 6,
        ..crate::common::tiny_recipe()
    };
    let order = DataOrder {
        batch_size: recipe.batch_size,
        order_seed: 0,
        augment_seed: None,
    };
    let mask = pattern_mask(&resnet(&device, 1, 0), 45);
    let run = |settings: &SparseTraining| {
        // A fresh model each run: clones share BatchNorm running statistics.
        let model = resnet(&device, 1, 0);
        let mut optimizer =
            MaskedOptimizer::new(recipe.optimizer.init(), &mask, &model, &device).unwrap();
        let model = optimizer.prepare(model);
        let mut calls = Checkpoints::default();
        let trained = Trainer::new(&recipe, &task, &device)
            .with_sparse(settings, &mask)
            .train(model, &mut optimizer, 0..6, &order, &mut calls)
            .unwrap();
        assert_eq!(calls.calls, 6, "a checkpoint offered after every step");
        (state(&trained), calls.decision())
    };
    let (dense, decision) = run(&SparseTraining::default());
    assert_eq!(decision, (P::Dense, R::SparseTrainingOff));
    let (_, decision) = run(&SparseTraining::below(0.3));
    assert_eq!(
        decision,
        (P::Dense, R::AboveThreshold),
        "0.45 is not below 0.3"
    );
    let (sparse, decision) = run(&SparseTraining::on());
    assert_eq!(
        decision,
        (P::Sparse, R::BelowThreshold),
        "density 0.45 is below a ResNet's default {RESNET_BELOW_DENSITY}"
    );
    check_close(&dense, &sparse, &mask);
}

/// A 2-level IMP experiment of ResNet-8 on the synthetic images (12
/// iterations a level of SGD with momentum, rewinding to 2), with `sparse`
/// settings. (Adam would magnify the rounding differences of near-zero
/// gradients into whole steps and move near-ties of the next mask.)
fn imp_config(sparse: SparseTraining) -> ImpConfig {
    let base = crate::common::tiny_imp_config("sparse_resnet_imp", 2);
    ImpConfig {
        sparse_training: sparse,
        training: TrainingRecipe {
            training_iterations: 12,
            optimizer: sgd(),
            ..base.training.clone()
        },
        rewind_iteration: 2,
        ..base
    }
}

/// [`imp_config`] run under `root`.
fn run_imp(root: &std::path::Path, sparse: SparseTraining) -> ImpReport {
    let device = ndarray().autodiff();
    let config = imp_config(sparse);
    let init = |device: &Device, seed| resnet(device, 1, seed);
    Imp::new(config)
        .run(root, &device, &data(), init, &mut Silent)
        .unwrap()
}

#[test]
fn imp_trains_resnet_levels_sparsely_and_reads_sparse_tickets() {
    let dir = tempfile::tempdir().unwrap();
    let dense = run_imp(dir.path(), SparseTraining::default());
    // Densities 1, 0.8, 0.64: both pruned levels go sparse.
    let settings = SparseTraining::below(0.9);
    let sparse = run_imp(dir.path(), settings.clone());
    assert_eq!(
        executions(&dense),
        vec![(P::Dense, R::SparseTrainingOff); 3]
    );
    assert_eq!(
        executions(&sparse),
        vec![
            (P::Dense, R::DenseMask),
            (P::Sparse, R::BelowThreshold),
            (P::Sparse, R::BelowThreshold),
        ]
    );
    assert!(report_csv(&dense).starts_with(&format!("{CSV_HEADER}\n")));
    let csv = report_csv(&sparse);
    assert!(
        csv.lines()
            .all(|l| !l.contains(",dense,") || l.ends_with(",dense,dense_mask"))
    );
    assert_eq!(csv.matches(",sparse,below_threshold\n").count(), 2, "{csv}");
    let file = |report: &ImpReport, level, name: fn(&LevelFiles) -> String| {
        let files = Layout::level(&Branch::Main, level);
        std::fs::read(report.directory.join(name(&files))).unwrap()
    };
    for level in 0..=2 {
        let (a, b) = (
            file(&dense, level, LevelFiles::mask),
            file(&sparse, level, LevelFiles::mask),
        );
        let differing = a.iter().zip(&b).filter(|(x, y)| x != y).count();
        assert!(
            a.len() == b.len() && differing == 0,
            "level {level}: {differing} mask bytes differ"
        );
        let (d, s) = (&dense.summaries[level], &sparse.summaries[level]);
        let (dl, sl) = (d.final_train_loss.unwrap(), s.final_train_loss.unwrap());
        assert!(
            (dl - sl).abs() <= 1e-3 * dl.abs().max(1.0),
            "level {level}: loss {dl} vs {sl}"
        );
    }
    // The sparse ticket of a stored level gives the stored model's logits.
    let device = ndarray();
    let imp = Imp::new(imp_config(settings));
    let init = |device: &Device, seed| resnet(device, 1, seed);
    let mut ticket = imp
        .sparse_ticket(dir.path(), &Branch::Main, 2, &device, init)
        .unwrap();
    assert!(matches!(ticket, SparseTicket::ResNet(_)));
    let checkpoint = RewindCheckpoint::from_bytes(&file(&sparse, 2, LevelFiles::final_checkpoint));
    let stored = checkpoint.unwrap().restore(resnet(&device, 1, 0)).unwrap();
    let images: Vec<f32> = (0..4 * 64)
        .map(|i| ((i * 37) % 19) as f32 / 9.0 - 1.0)
        .collect();
    let x = Tensor::from_data(TensorData::new(images.clone(), [4, 1, 8, 8]), &device);
    let expected: Vec<f32> = stored.forward(x).into_data().try_to_vec().unwrap();
    let logits = ticket.forward(&images, 4).unwrap();
    for (a, b) in logits.iter().zip(&expected) {
        assert!((a - b).abs() <= TOLERANCE, "{a} vs {b}");
    }
}

#[test]
fn a_density_outside_zero_to_one_is_refused_before_any_work() {
    for bad in [1.5, 0.0, -0.2, f64::NAN] {
        let imp = Imp::new(imp_config(SparseTraining::below(bad)));
        let err = imp.validate().unwrap_err().to_string();
        assert!(err.contains("below_density"), "{bad}: {err}");
    }
    assert!(
        Imp::new(imp_config(SparseTraining::below(1.0)))
            .validate()
            .is_ok()
    );
}
