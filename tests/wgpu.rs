//! The wgpu backend against ndarray: the same masked training, pruning,
//! rewinding and IMP loop on a GPU device. CI runs these on Mesa's software
//! Vulkan driver (lavapipe), so they need no GPU, only `--features wgpu` and
//! a Vulkan driver; without one the device cannot start and these tests fail
//! loudly rather than skip.
//!
//! Tolerance: GPU kernels sum in a different order than the CPU, so trained
//! weights agree with ndarray to rounding, not bit for bit. After 20 masked
//! training steps every weight may differ by at most `WEIGHT_TOLERANCE`
//! (1e-5 absolute, on weights of order 0.1–1) and every step's loss by
//! `LOSS_TOLERANCE` (1e-5 relative). Measured on lavapipe: at most 2.4e-7 for
//! weights and 2.4e-7 for losses (LeNet with Adam and SGD, ResNet-8 with SGD
//! and BatchNorm), so the bounds leave a 40x margin. Everything computed on
//! the host from the same weights (masks, pruning decisions, checkpoint
//! contents) must be identical.
//!
//! Fusion on and off: this binary is built with burn's `fusion` (the `wgpu`
//! feature), and `the_agreement_tests_pass_with_fusion_switched_off` runs
//! the tests below again in a child process with burn's fusion switched off
//! at run time (`BURN_FUSION_MAX_EXPLORATIONS=0`: every queued operation runs
//! as its own kernel of the backend underneath, as in a build without
//! `fusion`), held to the same tolerances; there the training runs also
//! check that no fused kernel was launched.
#![cfg(any(feature = "wgpu", feature = "wgpu-unfused"))]

use std::collections::BTreeMap;
use std::process::Command;

use crate::common::{
    TinyNet, data, init, ndarray, sparse_mask, state, synthetic, tiny_batch, tiny_grads,
    tiny_imp_config,
};
use burn::module::Module;
use burn::optim::{
    AdamConfig, ModuleOptimizer, SgdConfig, decay::WeightDecayConfig, momentum::MomentumConfig,
};
use burn::tensor::Device;
use burn_lottery::data::{ExperimentData, ImageDataset, Normalization};
use burn_lottery::device::{DeviceError, device_by_name};
use burn_lottery::imp::{Imp, RunOptions, Silent};
use burn_lottery::launches::LaunchCounter;
use burn_lottery::mask::{Mask, ParamSelector};
use burn_lottery::models::{Classifier, ResNet, ResNetConfig};
use burn_lottery::prune::{MagnitudePrunerConfig, Pruner, kept_after_levels};
use burn_lottery::rewind::RewindCheckpoint;
use burn_lottery::train::masked::MaskedOptimizer;
use burn_lottery::train::recipe::{OptimizerConfig, TrainingRecipe};
use burn_lottery::train::schedule::LrSchedule;
use burn_lottery::train::trainer::{NoObserver, Trainer};

/// The image task over `dataset` (train and test alike).
fn image_task(dataset: ImageDataset) -> ExperimentData {
    let dataset = std::sync::Arc::new(dataset);
    ExperimentData {
        normalization: Normalization::from_dataset(&dataset),
        train: std::sync::Arc::clone(&dataset),
        test: dataset,
        augmentation: None,
    }
}

/// Largest absolute difference allowed between a weight trained on wgpu and
/// the same weight trained on ndarray (20 steps, same start and batches).
const WEIGHT_TOLERANCE: f32 = 1e-5;
/// Largest relative difference allowed between the losses of the two runs.
const LOSS_TOLERANCE: f64 = 1e-5;

fn wgpu() -> Device {
    device_by_name("wgpu").expect("this test binary is built with the wgpu feature")
}

/// `wgpu:N` names the N-th discrete GPU (one process per GPU) and is refused
/// up front, saying what wgpu finds, where the machine has no such GPU
/// (burn would panic in its device thread at the first tensor); anything
/// else after `wgpu:` is an unknown device, named in the error with the
/// names this build has.
#[test]
fn a_gpu_index_is_part_of_the_device_name() {
    assert!(device_by_name("wgpu").is_ok());
    let Err(DeviceError::WgpuNotFound {
        adapters, discrete, ..
    }) = device_by_name("wgpu:64")
    else {
        panic!("this machine has no 65 discrete GPUs");
    };
    assert!(
        adapters >= 1 && discrete <= adapters,
        "{adapters} {discrete}"
    );
    for index in 0..discrete {
        assert!(device_by_name(&format!("wgpu:{index}")).is_ok());
    }
    let missing = format!("wgpu:{discrete}");
    let message = device_by_name(&missing).unwrap_err().to_string();
    assert!(message.contains(&format!("`{missing}`")), "{message}");
    let finds = format!("finds {adapters} adapter(s), {discrete} of them discrete GPUs");
    assert!(message.contains(&finds), "{message}");
    for name in ["wgpu:first", "wgpu:", "cuda"] {
        let message = device_by_name(name).unwrap_err().to_string();
        assert!(message.contains(&format!("`{name}`")), "{message}");
        assert!(message.contains("wgpu:N"), "{message}");
    }
}

/// Largest absolute difference between two model states, and where.
fn max_difference(a: &BTreeMap<String, Vec<f32>>, b: &BTreeMap<String, Vec<f32>>) -> (f32, String) {
    assert_eq!(
        a.keys().collect::<Vec<_>>(),
        b.keys().collect::<Vec<_>>(),
        "the two models have different parameters"
    );
    let mut worst = (0.0f32, String::new());
    for (path, values) in a {
        for (i, (x, y)) in values.iter().zip(&b[path]).enumerate() {
            let d = (x - y).abs();
            assert!(d.is_finite(), "{path}[{i}]: {x} vs {y}");
            if d > worst.0 {
                worst = (d, format!("{path}[{i}]: {x} vs {y}"));
            }
        }
    }
    worst
}

fn assert_pruned_exactly_zero(state: &BTreeMap<String, Vec<f32>>, mask: &Mask, label: &str) {
    for (path, layer) in mask.layers() {
        for (i, (&v, &kept)) in state[path].iter().zip(layer.kept()).enumerate() {
            if !kept {
                assert!(v == 0.0, "{label}: pruned {path}[{i}] = {v}");
            }
        }
    }
}

/// A small CIFAR-style ResNet (depth 8) for 1-channel 8x8 images.
fn resnet(device: &Device, seed: u64) -> ResNet {
    ResNetConfig::new()
        .with_depth(8)
        .with_input_channels(1)
        .init_seeded(device, seed)
}

/// One training run: the final weights, the loss of every step, the mask.
struct Run {
    state: BTreeMap<String, Vec<f32>>,
    losses: Vec<f64>,
    mask: Mask,
}

/// Trains `model` (made by `build` on each device) for 20 masked iterations
/// of `recipe` on ndarray and on wgpu from the same seeded initial weights and
/// the same batches; returns both final states and the losses.
fn train_on_both<M: Classifier>(build: impl Fn(&Device) -> M, recipe: &TrainingRecipe) -> [Run; 2] {
    let task = image_task(synthetic(200, 1));
    let order = recipe.data_order(3, 4);
    [(ndarray(), false), (wgpu(), true)].map(|(device, on_gpu)| {
        let device = device.autodiff();
        let model = build(&device);
        let mask = sparse_mask(&model);
        let mut optimizer =
            MaskedOptimizer::new(recipe.optimizer.init(), &mask, &model, &device).unwrap();
        let model = optimizer.prepare(model);
        let mut losses = LossLog::default();
        let counter = (on_gpu && fusion_switched_off()).then(LaunchCounter::start);
        let model = Trainer::new(recipe, &task, &device)
            .train(
                model,
                &mut optimizer,
                0..recipe.training_iterations,
                &order,
                &mut losses,
            )
            .unwrap();
        if let Some(counter) = counter {
            assert_nothing_fused(counter, &device);
        }
        Run {
            state: state(&model),
            losses: losses.0,
            mask,
        }
    })
}

/// Whether this process runs with burn's fusion switched off at run time
/// (the child process of `the_agreement_tests_pass_with_fusion_switched_off`).
fn fusion_switched_off() -> bool {
    std::env::var("BURN_FUSION_MAX_EXPLORATIONS").as_deref() == Ok("0")
}

/// Fails if the work `counter` watched launched a fused kernel (or nothing).
/// Tests run one at a time in the child, so the count is this test's alone.
fn assert_nothing_fused(counter: LaunchCounter, device: &Device) {
    let launches = counter.finish(device).unwrap();
    assert!(launches.total() > 0, "training launched no kernel");
    assert_eq!(
        launches.fused(),
        0,
        "fusion was switched off, yet: {launches}"
    );
}

/// Collects the training loss of every step.
#[derive(Default)]
struct LossLog(Vec<f64>);

impl<M> burn_lottery::train::trainer::TrainObserver<M> for LossLog {
    fn losses(&mut self, _first: u64, losses: &[f64]) {
        self.0.extend(losses);
    }
}

fn recipe(optimizer: OptimizerConfig) -> TrainingRecipe {
    TrainingRecipe {
        batch_size: 20,
        training_iterations: 20,
        optimizer,
        schedule: LrSchedule::constant(),
        augment: false,
    }
}

fn assert_runs_agree(label: &str, runs: &[Run; 2]) {
    let [
        Run {
            state: cpu,
            losses: cpu_losses,
            mask,
        },
        Run {
            state: gpu,
            losses: gpu_losses,
            ..
        },
    ] = runs;
    let (worst, at) = max_difference(cpu, gpu);
    let worst_loss = cpu_losses
        .iter()
        .zip(gpu_losses)
        .map(|(a, b)| (a - b).abs() / a.abs().max(1.0))
        .fold(0.0, f64::max);
    eprintln!(
        "{label}: largest weight difference {worst} ({at}), largest relative loss difference {worst_loss:e}"
    );
    assert!(
        worst <= WEIGHT_TOLERANCE,
        "{label}: weights differ by {worst} at {at}"
    );
    assert_eq!(cpu_losses.len(), 20, "{label}: a loss per step");
    assert_eq!(gpu_losses.len(), 20, "{label}: a loss per step");
    for (step, (a, b)) in cpu_losses.iter().zip(gpu_losses).enumerate() {
        assert!(
            (a - b).abs() <= LOSS_TOLERANCE * a.abs().max(1.0),
            "{label}: step {step} loss {a} (ndarray) vs {b} (wgpu)"
        );
    }
    // Training moved the weights (the comparison is not between two
    // untouched initializations).
    let start = cpu_losses[0];
    let end = cpu_losses[cpu_losses.len() - 1];
    assert!(end < start, "{label}: loss {start} -> {end}");
    assert_pruned_exactly_zero(gpu, mask, &format!("{label} on wgpu"));
}

/// The tests of this file that train or prune on wgpu, by their full names
/// in the integration test binary.
const WGPU_TESTS: [&str; 5] = [
    "wgpu::masked_lenet_training_on_wgpu_matches_ndarray",
    "wgpu::masked_resnet_training_on_wgpu_matches_ndarray",
    "wgpu::pruned_weights_stay_exactly_zero_on_wgpu",
    "wgpu::magnitude_pruning_on_wgpu_gives_the_ndarray_mask",
    "wgpu::a_two_level_imp_run_and_its_rewind_work_on_wgpu",
];

#[test]
fn the_agreement_tests_pass_with_fusion_switched_off() {
    let output = Command::new(std::env::current_exe().unwrap())
        .args(WGPU_TESTS)
        .args(["--exact", "--test-threads", "1"])
        .env("BURN_FUSION_MAX_EXPLORATIONS", "0")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "with fusion off:\n{stdout}\n{stderr}"
    );
    let passed = format!("{} passed; 0 failed", WGPU_TESTS.len());
    assert!(
        stdout.contains(&passed),
        "with fusion off, expected {passed}:\n{stdout}"
    );
}

#[test]
fn masked_lenet_training_on_wgpu_matches_ndarray() {
    let runs = train_on_both(|d| init(d, 0), &recipe(OptimizerConfig::adam(3e-3)));
    assert_runs_agree("LeNet, Adam", &runs);
    let runs = train_on_both(|d| init(d, 0), &recipe(OptimizerConfig::sgd_momentum(0.05)));
    assert_runs_agree("LeNet, SGD momentum", &runs);
}

#[test]
fn masked_resnet_training_on_wgpu_matches_ndarray() {
    let runs = train_on_both(
        |d| resnet(d, 0),
        &recipe(OptimizerConfig::sgd_momentum(0.05)),
    );
    assert_runs_agree("ResNet-8, SGD momentum", &runs);
}

#[test]
fn pruned_weights_stay_exactly_zero_on_wgpu() {
    let device = wgpu().autodiff();
    let sgd = SgdConfig::new()
        .with_momentum(Some(MomentumConfig::new().with_dampening(0.0)))
        .with_weight_decay(Some(WeightDecayConfig::new(1e-2)))
        .init();
    let adam = AdamConfig::new()
        .with_weight_decay(Some(WeightDecayConfig::new(1e-2)))
        .init();
    for (name, optimizer) in [("sgd", sgd), ("adam", adam)] {
        let optimizer: ModuleOptimizer = optimizer;
        // Conv + BatchNorm + Linear.
        let model = TinyNet::new(&device);
        let mask = sparse_mask(&model);
        let mut masked = MaskedOptimizer::new(optimizer, &mask, &model, &device).unwrap();
        let mut model = masked.prepare(model);
        let start = state(&model);
        assert_pruned_exactly_zero(&start, &mask, &format!("{name} after prepare"));
        for step in 0..20u64 {
            let (x, y) = tiny_batch(&device, step);
            let grads = tiny_grads(&model, x, y);
            model = masked.step(0.05, model, grads);
            assert_pruned_exactly_zero(&state(&model), &mask, &format!("{name} step {step}"));
        }
        // The kept weights did train.
        let end = state(&model);
        let (moved, _) = max_difference(&start, &end);
        assert!(moved > 1e-3, "{name}: kept weights moved only {moved}");
    }
}

#[test]
fn magnitude_pruning_on_wgpu_gives_the_ndarray_mask() {
    // Weights trained a little on wgpu, then the very same weights copied to
    // ndarray: three levels of global pruning must agree mask for mask.
    let gpu = wgpu();
    let recipe = recipe(OptimizerConfig::sgd_momentum(0.05));
    let task = image_task(synthetic(200, 1));
    let device = gpu.autodiff();
    let model = resnet(&device, 1);
    let mask = Mask::dense(&model, &ParamSelector::default()).unwrap();
    let mut optimizer =
        MaskedOptimizer::new(recipe.optimizer.init(), &mask, &model, &device).unwrap();
    let model = optimizer.prepare(model);
    let trained = Trainer::new(&recipe, &task, &device)
        .train(
            model,
            &mut optimizer,
            0..5,
            &recipe.data_order(0, 0),
            &mut NoObserver,
        )
        .unwrap()
        .valid();
    let on_cpu = trained.clone().to_device(&ndarray());
    assert_eq!(state(&trained), state(&on_cpu), "transfer is exact");

    let pruner = MagnitudePrunerConfig::new(0.2).init().unwrap();
    let (mut gpu_mask, mut cpu_mask) = (mask.clone(), mask);
    for level in 1..=3 {
        gpu_mask = pruner.next_mask(&trained, &gpu_mask).unwrap();
        cpu_mask = pruner.next_mask(&on_cpu, &cpu_mask).unwrap();
        assert_eq!(gpu_mask, cpu_mask, "level {level}");
        assert_eq!(
            gpu_mask.kept_count(),
            kept_after_levels(gpu_mask.total_count(), 0.2, level)
        );
    }
}

#[test]
fn a_two_level_imp_run_and_its_rewind_work_on_wgpu() {
    let config = tiny_imp_config("wgpu", 2);
    let options = RunOptions {
        checkpoint_every: 10,
        eval_batch_size: 64,
        ..RunOptions::default()
    };
    let imp = Imp::new(config.clone()).with_options(options);
    let out_gpu = tempfile::tempdir().unwrap();
    let out_cpu = tempfile::tempdir().unwrap();
    let gpu = imp
        .run(out_gpu.path(), &wgpu(), &data(), init, &mut Silent)
        .unwrap();
    let cpu = imp
        .run(out_cpu.path(), &ndarray(), &data(), init, &mut Silent)
        .unwrap();
    assert_eq!(gpu.trained_levels, 3);
    assert_eq!(gpu.rows.len(), 3);

    let mask_at = |dir: &std::path::Path, level: usize| {
        Mask::load(dir.join(format!("main/level_{level:02}/mask.bin"))).unwrap()
    };
    for level in 0..=2 {
        let (g, c) = (gpu.rows[level].clone(), cpu.rows[level].clone());
        assert_eq!(g.level, level);
        assert_eq!(
            g.weights_remaining, c.weights_remaining,
            "level {level}: same pruning counts"
        );
        assert!(
            (g.value - c.value).abs() <= 0.02,
            "level {level}: accuracy {} (wgpu) vs {} (ndarray)",
            g.value,
            c.value
        );
        // Masks are computed from weights that agree to rounding; a weight
        // right at the pruning threshold may fall either way.
        let (gm, cm) = (
            mask_at(&gpu.directory, level),
            mask_at(&cpu.directory, level),
        );
        let iou = gm.overlap(&cm).unwrap().iou;
        assert!(iou >= 0.99, "level {level}: mask overlap {iou}");
    }
    assert!(gpu.rows[0].value > 0.5, "{:?}", gpu.rows[0]);

    // Rewinding on wgpu restores the stored iteration-5 weights exactly, with
    // the level-2 mask applied, and the checkpoint is portable to ndarray.
    let checkpoint = RewindCheckpoint::load(gpu.directory.join("rewind.ckpt")).unwrap();
    assert_eq!(checkpoint.iteration(), 5);
    let mask = mask_at(&gpu.directory, 2);
    let rewound_gpu = checkpoint.rewind(init(&wgpu(), 99), &mask).unwrap();
    let rewound_cpu = checkpoint.rewind(init(&ndarray(), 99), &mask).unwrap();
    let (g, c) = (state(&rewound_gpu), state(&rewound_cpu));
    assert_eq!(g, c, "the same checkpoint restores the same values");
    assert_pruned_exactly_zero(&g, &mask, "rewound on wgpu");
    let restored = state(&checkpoint.restore(init(&wgpu(), 99)).unwrap());
    for (path, values) in &restored {
        match mask.layer(path) {
            Some(layer) => {
                for (i, (&v, &kept)) in values.iter().zip(layer.kept()).enumerate() {
                    let expected = if kept { v } else { 0.0 };
                    assert_eq!(g[path][i], expected, "{path}[{i}]");
                }
            }
            None => assert_eq!(&g[path], values, "{path} is not masked"),
        }
    }
}
