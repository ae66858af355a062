//! The training loop: resuming, determinism, learning, evaluation, errors
//! and observers, on ndarray with LeNet-300-100 and a small synthetic
//! dataset.

use crate::common::{sparse_mask, state};
use burn::module::Module;
use burn::tensor::Device;
use std::sync::Arc;

use burn_lottery::data::{ExperimentData, ImageDataset, Normalization};
use burn_lottery::mask::{Mask, ParamSelector};
use burn_lottery::models::{LeNet, LeNetConfig};
use burn_lottery::rewind::RewindCheckpoint;
use burn_lottery::task::DataOrder;
use burn_lottery::train::host_reads;
use burn_lottery::train::masked::MaskedOptimizer;
use burn_lottery::train::recipe::{OptimizerConfig, TrainingRecipe};
use burn_lottery::train::schedule::LrSchedule;
use burn_lottery::train::trainer::{
    NoObserver, TrainError, TrainObserver, TrainOptions, Trainer, evaluate,
};

const CLASSES: usize = 4;
const SIDE: usize = 28;

#[allow(deprecated)]
fn device() -> Device {
    Device::ndarray().autodiff()
}

/// A tiny deterministic generator for the synthetic pixels.
fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// `n` gray 28x28 images of `CLASSES` classes: class `c` lights up quadrant
/// `c` (pixels 150..=255) over background noise (0..60). Trivially separable.
fn synthetic(n: usize, seed: u64) -> ImageDataset {
    let mut state = seed;
    let mut images = Vec::with_capacity(n * SIDE * SIDE);
    let mut labels = Vec::with_capacity(n);
    for i in 0..n {
        let class = i % CLASSES;
        labels.push(class as u8);
        let (qy, qx) = (class / 2, class % 2);
        for y in 0..SIDE {
            for x in 0..SIDE {
                let r = splitmix(&mut state);
                let lit = y / (SIDE / 2) == qy && x / (SIDE / 2) == qx;
                images.push(if lit {
                    150 + (r % 106) as u8
                } else {
                    (r % 60) as u8
                });
            }
        }
    }
    ImageDataset::new(images, labels, 1, SIDE, SIDE, CLASSES).unwrap()
}

fn lenet_config() -> LeNetConfig {
    LeNetConfig::lenet_300_100().with_num_classes(CLASSES)
}

fn lenet(device: &Device, seed: u64) -> LeNet {
    lenet_config().init_seeded(device, seed)
}

fn recipe(optimizer: OptimizerConfig, iterations: u64) -> TrainingRecipe {
    TrainingRecipe {
        batch_size: 16,
        training_iterations: iterations,
        optimizer,
        schedule: LrSchedule::constant(),
        augment: false,
    }
}

/// The image task over `dataset` (train and test) and one of its data orders.
struct Stream {
    data: ExperimentData,
    order: DataOrder,
}

fn stream_with(dataset: &ImageDataset, normalization: Normalization, seed: u64) -> Stream {
    let dataset = Arc::new(dataset.clone());
    Stream {
        data: ExperimentData {
            train: Arc::clone(&dataset),
            test: dataset,
            normalization,
            augmentation: None,
        },
        order: DataOrder {
            batch_size: 16,
            order_seed: seed,
            augment_seed: None,
        },
    }
}

fn loader(dataset: &ImageDataset, data_order_seed: u64) -> Stream {
    stream_with(
        dataset,
        Normalization::from_dataset(dataset),
        data_order_seed,
    )
}

fn dense_mask<M: Module>(model: &M) -> Mask {
    Mask::dense(model, &ParamSelector::default()).unwrap()
}

/// The recipe's optimizer enforcing `model`'s dense mask.
fn dense_optimizer(recipe: &TrainingRecipe, model: &LeNet, device: &Device) -> MaskedOptimizer {
    MaskedOptimizer::new(recipe.optimizer.init(), &dense_mask(model), model, device).unwrap()
}

/// Records everything the loop reports.
#[derive(Default)]
struct Recorder {
    steps: Vec<(u64, Option<f64>, f64)>,
    /// Every loss delivered, with its iteration.
    losses: Vec<(u64, f64)>,
    checkpoints: Vec<u64>,
    stop_at: Option<u64>,
    /// Never asks for a checkpoint (so losses are read every `loss_every`).
    no_checkpoints: bool,
}

impl Recorder {
    /// The losses delivered, in order; checks each step's came exactly once.
    fn losses(&self) -> Vec<f64> {
        let iterations: Vec<u64> = self.losses.iter().map(|l| l.0).collect();
        let first = iterations.first().copied().unwrap_or(0);
        let expected: Vec<u64> = (first..first + iterations.len() as u64).collect();
        assert_eq!(iterations, expected, "losses out of order or repeated");
        self.losses.iter().map(|l| l.1).collect()
    }
}

impl<M> TrainObserver<M> for Recorder {
    fn after_step(&mut self, completed: u64, loss: Option<f64>, learning_rate: f64) {
        self.steps.push((completed, loss, learning_rate));
    }

    fn losses(&mut self, first: u64, losses: &[f64]) {
        self.losses.extend((first..).zip(losses.iter().copied()));
    }

    fn checkpoint_due(&mut self, _completed: u64) -> bool {
        !self.no_checkpoints
    }

    fn checkpoint(
        &mut self,
        completed: u64,
        _model: &M,
        _optimizer: &MaskedOptimizer,
    ) -> Result<(), String> {
        self.checkpoints.push(completed);
        if self.stop_at == Some(completed) {
            Err(format!("disk full at {completed}"))
        } else {
            Ok(())
        }
    }
}

/// Trains a fresh seeded LeNet for `range` from scratch (dense unless `mask`).
fn train_fresh(
    recipe: &TrainingRecipe,
    loader: &Stream,
    mask: Option<&Mask>,
    range: std::ops::Range<u64>,
    options: &TrainOptions,
    observer: &mut dyn TrainObserver<LeNet>,
) -> Result<(LeNet, MaskedOptimizer), TrainError> {
    let device = device();
    let model = lenet(&device, 7);
    let mask = mask.cloned().unwrap_or_else(|| dense_mask(&model));
    let mut optimizer =
        MaskedOptimizer::new(recipe.optimizer.init(), &mask, &model, &device).unwrap();
    let model = optimizer.prepare(model);
    let model = Trainer::new(recipe, &loader.data, &device)
        .with_options(options.clone())
        .train(model, &mut optimizer, range, &loader.order, observer)?;
    Ok((model, optimizer))
}

/// Trains `0..T` straight through and `0..k` + checkpoint + `k..T` into a
/// fresh model and optimizer; asserts bit-identical results.
fn assert_resume_is_exact(recipe: &TrainingRecipe, sparse: bool, k: u64) {
    let device = device();
    let dataset = synthetic(64, 1);
    let loader = loader(&dataset, 3);
    let total = recipe.training_iterations;
    let mask = if sparse {
        sparse_mask(&lenet(&device, 0))
    } else {
        dense_mask(&lenet(&device, 0))
    };
    let label = format!("{:?} sparse={sparse}", recipe.optimizer);

    // Straight through, with prefetching.
    let (straight, _) = train_fresh(
        recipe,
        &loader,
        Some(&mask),
        0..total,
        &TrainOptions::default(),
        &mut NoObserver,
    )
    .unwrap();
    let straight = state(&straight);

    // 0..k, then a checkpoint (through bytes, as if saved to disk).
    let (first, optimizer) = train_fresh(
        recipe,
        &loader,
        Some(&mask),
        0..k,
        &TrainOptions::default(),
        &mut NoObserver,
    )
    .unwrap();
    let checkpoint = RewindCheckpoint::capture(&first, k)
        .with_optimizer(optimizer.optimizer())
        .unwrap();
    let checkpoint = RewindCheckpoint::from_bytes(&checkpoint.to_bytes().unwrap()).unwrap();
    drop((first, optimizer));

    // A freshly built model with other values, a fresh optimizer.
    let template = lenet(&device, 99);
    assert_ne!(state(&template), state(&lenet(&device, 7)));
    let resume = |with_state: bool| {
        let model = checkpoint.restore(lenet(&device, 99)).unwrap();
        let inner = if with_state {
            checkpoint
                .restore_optimizer(recipe.optimizer.init())
                .unwrap()
        } else {
            recipe.optimizer.init()
        };
        let mut optimizer = MaskedOptimizer::new(inner, &mask, &model, &device).unwrap();
        let model = Trainer::new(recipe, &loader.data, &device)
            .train(
                model,
                &mut optimizer,
                k..total,
                &loader.order,
                &mut NoObserver,
            )
            .unwrap();
        state(&model)
    };
    let resumed = resume(true);
    assert_eq!(
        resumed.keys().collect::<Vec<_>>(),
        straight.keys().collect::<Vec<_>>()
    );
    for (path, values) in &straight {
        assert!(
            resumed[path] == *values,
            "{label}: {path} differs after resuming at {k}"
        );
    }

    // The control: a fresh optimizer state gives other weights.
    assert_ne!(
        resume(false),
        straight,
        "{label}: optimizer state had no effect"
    );

    if sparse {
        for (path, layer) in mask.layers() {
            for (i, (&v, &kept)) in straight[path].iter().zip(layer.kept()).enumerate() {
                if !kept {
                    assert!(v == 0.0, "{label}: pruned {path}[{i}] = {v}");
                }
            }
        }
        assert!(mask.sparsity() > 0.6);
    }
}

#[test]
fn resuming_from_a_checkpoint_equals_training_straight_through_adam() {
    let recipe = recipe(OptimizerConfig::adam(1e-3), 20);
    assert_resume_is_exact(&recipe, false, 9);
    assert_resume_is_exact(&recipe, true, 9);
}

#[test]
fn resuming_from_a_checkpoint_equals_training_straight_through_sgd_momentum() {
    // Momentum 0.9, weight decay 1e-4, and an lr drop after the resume point.
    let mut recipe = recipe(OptimizerConfig::sgd_momentum(0.05), 20);
    recipe.schedule = LrSchedule::multi_step(vec![14], 0.1);
    assert_resume_is_exact(&recipe, false, 7);
    assert_resume_is_exact(&recipe, true, 7);
}

#[test]
fn same_seeds_give_identical_runs_and_another_data_order_differs() {
    let dataset = synthetic(64, 1);
    let recipe = recipe(OptimizerConfig::adam(1e-3), 12);
    let run = |data_order_seed: u64| {
        let mut recorder = Recorder::default();
        let (model, _) = train_fresh(
            &recipe,
            &loader(&dataset, data_order_seed),
            None,
            0..12,
            &TrainOptions::default(),
            &mut recorder,
        )
        .unwrap();
        (state(&model), recorder.losses())
    };
    let (a, loss_a) = run(5);
    let (b, loss_b) = run(5);
    assert_eq!(loss_a.len(), 12);
    assert_eq!(a, b, "same seeds, different weights");
    assert_eq!(loss_a, loss_b, "same seeds, different losses");

    let (c, loss_c) = run(6);
    assert_ne!(a, c, "another data order gave the same weights");
    assert_ne!(loss_a, loss_c);
    // The first epoch (4 batches of 16) covers the same images in another
    // order; the weights differ from the first step on.
    assert_ne!(loss_a[1], loss_c[1]);
}

#[test]
fn the_loss_falls_and_evaluation_reports_high_accuracy() {
    let device = device();
    let dataset = synthetic(64, 1);
    let test_set = synthetic(40, 2);
    let normalization = Normalization::from_dataset(&dataset);
    let recipe = recipe(OptimizerConfig::adam(1e-3), 30);
    let loader = loader(&dataset, 0);

    let untrained = lenet(&device, 7);
    let before = evaluate(&untrained, &test_set, &normalization, 16, &device).unwrap();
    assert_eq!(before.examples, 40);
    assert!((0.0..=1.0).contains(&before.accuracy));
    assert!(before.loss.is_finite() && before.loss > 0.0);

    let mut recorder = Recorder::default();
    let (model, _) = train_fresh(
        &recipe,
        &loader,
        None,
        0..30,
        &TrainOptions::default(),
        &mut recorder,
    )
    .unwrap();
    let losses = recorder.losses();
    assert_eq!(losses.len(), 30);
    let first: f64 = losses[..4].iter().sum::<f64>() / 4.0;
    let last: f64 = losses[26..].iter().sum::<f64>() / 4.0;
    assert!(
        last < 0.25 * first,
        "loss did not fall: first {first:.4}, last {last:.4} ({losses:?})"
    );

    // A batch size that does not divide the dataset: every example counted once.
    for batch_size in [7, 16, 64, 100] {
        let after = evaluate(&model, &test_set, &normalization, batch_size, &device).unwrap();
        assert_eq!(after.examples, test_set.len(), "batch {batch_size}");
        assert!((0.0..=1.0).contains(&after.accuracy));
        assert!(
            after.accuracy >= 0.95,
            "batch {batch_size}: accuracy {}",
            after.accuracy
        );
        assert!(after.loss < before.loss);
    }
    let train_eval = evaluate(&model, &dataset, &normalization, 64, &device).unwrap();
    assert_eq!(train_eval.examples, 64);
    assert_eq!(train_eval.accuracy, 1.0);
}

#[test]
fn a_non_finite_loss_is_an_error_naming_the_iteration() {
    let dataset = synthetic(64, 1);

    // Pixels scaled by 1/1e-45 overflow to infinity: the loss of the very
    // first step taken is not finite, whatever the iteration it starts at.
    let bad = Normalization::new(vec![0.0], vec![1e-45]).unwrap();
    let bad_loader = stream_with(&dataset, bad, 0);
    let recipe_adam = recipe(OptimizerConfig::adam(1e-3), 20);
    {
        let mut recorder = Recorder::default();
        let options = TrainOptions { loss_every: 1 };
        let err = train_fresh(
            &recipe_adam,
            &bad_loader,
            None,
            5..20,
            &options,
            &mut recorder,
        )
        .err()
        .expect("training on infinite inputs succeeded");
        match &err {
            TrainError::NonFiniteLoss { iteration, loss } => {
                assert_eq!(*iteration, 5);
                assert!(!loss.is_finite());
            }
            other => panic!("expected NonFiniteLoss, got {other}"),
        }
        assert!(err.to_string().contains("iteration 5"), "{err}");
        assert!(recorder.steps.is_empty());
    }

    // An absurd learning rate: the first loss is fine, a later one is not.
    let recipe_huge = recipe(OptimizerConfig::sgd_momentum(1e30), 20);
    let run = |loss_every: u64| {
        let mut recorder = Recorder {
            no_checkpoints: true,
            ..Recorder::default()
        };
        let options = TrainOptions { loss_every };
        let err = train_fresh(
            &recipe_huge,
            &loader(&dataset, 0),
            None,
            0..20,
            &options,
            &mut recorder,
        )
        .err()
        .expect("lr 1e30 trained without a non-finite loss");
        let TrainError::NonFiniteLoss { iteration, loss } = err else {
            panic!("expected NonFiniteLoss, got {err}");
        };
        assert!(!loss.is_finite());
        (iteration, recorder)
    };
    let (iteration, every_step) = run(1);
    assert!(iteration >= 1, "iteration {iteration}");
    // Every step before the bad one was reported, with a finite loss.
    assert_eq!(every_step.steps.len() as u64, iteration);
    assert_eq!(every_step.losses().len() as u64, iteration);
    assert!(every_step.losses().iter().all(|l| l.is_finite()));

    // Losses read every 7 steps: the same iteration is named (all of a
    // window's losses are read), found at the end of its window.
    let (deferred, windowed) = run(7);
    assert_eq!(deferred, iteration);
    let window_end = ((iteration / 7 + 1) * 7).min(20);
    assert_eq!(windowed.steps.len() as u64, window_end - 1);
    assert_eq!(windowed.losses().len() as u64, iteration / 7 * 7);
    assert_eq!(
        windowed.losses(),
        every_step.losses()[..(iteration / 7 * 7) as usize]
    );
}

#[test]
fn the_host_reads_once_per_loss_window_and_once_per_evaluation() {
    let dataset = synthetic(64, 1);
    let recipe = recipe(OptimizerConfig::adam(1e-3), 30);
    let loader = loader(&dataset, 0);
    let reads = |loss_every: u64| {
        let mut recorder = Recorder {
            no_checkpoints: true,
            ..Recorder::default()
        };
        let before = host_reads();
        let options = TrainOptions { loss_every };
        let (model, _) =
            train_fresh(&recipe, &loader, None, 0..30, &options, &mut recorder).unwrap();
        let reads = host_reads() - before;
        (reads, recorder.losses(), model)
    };
    let (per_step, losses, _) = reads(1);
    assert_eq!(per_step, 30);
    let (windowed, windowed_losses, model) = reads(10);
    assert_eq!(windowed, 3);
    // Every step's loss still reaches the observer, the same values.
    assert_eq!(windowed_losses, losses);
    // The default window: one read for a range shorter than it.
    assert_eq!(reads(TrainOptions::default().loss_every).0, 1);

    // An evaluation reads once, whatever its number of batches (10 here).
    let normalization = Normalization::from_dataset(&dataset);
    let before = host_reads();
    let evaluation = evaluate(&model, &dataset, &normalization, 7, &device()).unwrap();
    assert_eq!(host_reads() - before, 1);
    assert_eq!(evaluation.examples, 64);
}

#[test]
fn ranges_outside_the_recipe_are_rejected() {
    let dataset = synthetic(64, 1);
    let loader = loader(&dataset, 0);
    let recipe = recipe(OptimizerConfig::adam(1e-3), 10);
    for (start, end) in [(0, 11), (5, 3), (10, 12), (11, 11)] {
        let mut recorder = Recorder::default();
        let err = train_fresh(
            &recipe,
            &loader,
            None,
            start..end,
            &TrainOptions::default(),
            &mut recorder,
        )
        .err()
        .unwrap_or_else(|| panic!("{start}..{end} was accepted"));
        match err {
            TrainError::InvalidRange {
                start: s,
                end: e,
                total,
            } => assert_eq!((s, e, total), (start, end, 10)),
            other => panic!("{start}..{end}: expected InvalidRange, got {other}"),
        }
        assert!(recorder.steps.is_empty());
    }

    // An empty range inside the recipe is a no-op.
    let device = device();
    let model = lenet(&device, 7);
    let before = state(&model);
    let mut optimizer = dense_optimizer(&recipe, &model, &device);
    let mut recorder = Recorder::default();
    let model = Trainer::new(&recipe, &loader.data, &device)
        .with_options(TrainOptions::default().clone())
        .train(model, &mut optimizer, 4..4, &loader.order, &mut recorder)
        .unwrap();
    assert_eq!(state(&model), before);
    assert!(recorder.steps.is_empty() && recorder.checkpoints.is_empty());

    // An invalid recipe is refused before anything runs.
    let mut broken = recipe.clone();
    broken.batch_size = 0;
    assert!(matches!(
        train_fresh(
            &broken,
            &loader,
            None,
            0..1,
            &TrainOptions::default(),
            &mut NoObserver
        ),
        Err(TrainError::Recipe(_))
    ));
}

#[test]
fn observers_see_every_step_and_can_stop_training() {
    let dataset = synthetic(64, 1);
    let loader = loader(&dataset, 0);
    let mut recipe = recipe(OptimizerConfig::sgd_momentum(0.01), 12);
    recipe.schedule = LrSchedule::multi_step(vec![8], 0.1);
    let options = TrainOptions { loss_every: 3 };

    let mut recorder = Recorder::default();
    train_fresh(&recipe, &loader, None, 3..11, &options, &mut recorder).unwrap();
    let completed: Vec<u64> = recorder.steps.iter().map(|s| s.0).collect();
    assert_eq!(completed, (4..=11).collect::<Vec<_>>());
    assert_eq!(recorder.checkpoints, completed);
    for &(done, loss, lr) in &recorder.steps {
        // Loss read every 3rd step of the range, and at its last step.
        let read = (done - 3) % 3 == 0 || done == 11;
        assert_eq!(loss.is_some(), read, "completed {done}");
        assert!(loss.is_none_or(|l| l.is_finite() && l > 0.0));
        // The learning rate of the step just taken (iteration done - 1).
        let expected = if done - 1 < 8 { 0.01 } else { 0.01 * 0.1 };
        assert!((lr - expected).abs() < 1e-12, "completed {done}: lr {lr}");
    }

    // A checkpoint that fails stops training right there.
    {
        let mut recorder = Recorder {
            stop_at: Some(7),
            ..Recorder::default()
        };
        let options = TrainOptions::default();
        let err = train_fresh(&recipe, &loader, None, 3..12, &options, &mut recorder)
            .err()
            .expect("training went on after a failed checkpoint");
        match &err {
            TrainError::Stopped { iteration, reason } => {
                assert_eq!(*iteration, 7);
                assert_eq!(reason, "disk full at 7");
            }
            other => panic!("expected Stopped, got {other}"),
        }
        assert!(err.to_string().contains("disk full"));
        assert_eq!(recorder.checkpoints, vec![4, 5, 6, 7]);
        assert_eq!(recorder.steps.len(), 4);
    }
}

#[test]
fn a_data_order_that_disagrees_with_the_recipe_is_rejected() {
    let device = device();
    let dataset = synthetic(64, 1);
    let recipe = recipe(OptimizerConfig::adam(1e-3), 10);
    let model = lenet(&device, 7);
    let mut optimizer = dense_optimizer(&recipe, &model, &device);
    let mut other_batch = loader(&dataset, 0);
    other_batch.order.batch_size = recipe.batch_size + 1;
    let err = Trainer::new(&recipe, &other_batch.data, &device)
        .train(
            model.clone(),
            &mut optimizer,
            0..10,
            &other_batch.order,
            &mut NoObserver,
        )
        .unwrap_err();
    assert!(matches!(err, TrainError::LoaderMismatch(_)), "{err}");
    assert!(err.to_string().contains("batch size 17"));
    // Augmentation asked of a recipe without it.
    let mut augmenting = loader(&dataset, 0);
    augmenting.order.augment_seed = Some(1);
    let err = Trainer::new(&recipe, &augmenting.data, &device)
        .train(
            model,
            &mut optimizer,
            0..10,
            &augmenting.order,
            &mut NoObserver,
        )
        .unwrap_err();
    assert!(matches!(err, TrainError::LoaderMismatch(_)), "{err}");
}
