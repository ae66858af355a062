//! Kernel launches of training steps on wgpu (Mesa's lavapipe in CI),
//! counted by `burn_lottery::launches::LaunchCounter`. A GPU step of a small
//! network is host-bound, its cost roughly proportional to its launches, so
//! these counts catch a change that makes the step slower on a GPU without
//! needing one (and a `wgpu` build that lost burn's fusion, which would
//! launch every operation as its own kernel). Alone in its binary: a
//! counter counts every launch of the process, and nothing else may train
//! on the GPU meanwhile.
#![cfg(any(feature = "wgpu", feature = "wgpu-unfused"))]

mod common;

use std::sync::Arc;

use burn::tensor::Device;
use burn_lottery::data::{ExperimentData, Normalization};
use burn_lottery::device::device_by_name;
use burn_lottery::launches::{LaunchCount, LaunchCounter};
use burn_lottery::mask::{Mask, ParamSelector};
use burn_lottery::models::{ResNet, ResNetConfig};
use burn_lottery::train::masked::MaskedOptimizer;
use burn_lottery::train::recipe::{OptimizerConfig, TrainingRecipe};
use burn_lottery::train::schedule::LrSchedule;
use burn_lottery::train::trainer::{NoObserver, TrainOptions, Trainer};
use common::{sparse_mask, synthetic};

/// Steps trained before counting (autotuning launches candidate kernels the
/// first time it meets a shape), then steps counted.
const WARMUP: u64 = 10;
const COUNTED: u64 = 10;

/// A CIFAR-style ResNet-8 for 1-channel 8x8 images: convolutions,
/// BatchNorm, the strided shortcuts, global pooling, a linear head.
fn resnet(device: &Device) -> ResNet {
    ResNetConfig::new()
        .with_depth(8)
        .with_input_channels(1)
        .init_seeded(device, 0)
}

/// The kernels launched by `COUNTED` SGD steps (momentum, weight decay) of
/// ResNet-8 through the trainer under the mask `mask` makes of the model,
/// after `WARMUP` steps, reading the losses every `loss_every` steps.
fn launches_of_steps(mask: impl Fn(&ResNet) -> Mask, loss_every: u64) -> LaunchCount {
    let recipe = TrainingRecipe {
        batch_size: 20,
        training_iterations: WARMUP + COUNTED,
        optimizer: OptimizerConfig::sgd_momentum(0.05),
        schedule: LrSchedule::constant(),
        augment: false,
    };
    let dataset = Arc::new(synthetic(200, 1));
    let task = ExperimentData {
        normalization: Normalization::from_dataset(&dataset),
        train: dataset.clone(),
        test: dataset,
        augmentation: None,
    };
    let device = device_by_name("wgpu").unwrap().autodiff();
    let model = resnet(&device);
    let mask = mask(&model);
    let mut optimizer =
        MaskedOptimizer::new(recipe.optimizer.init(), &mask, &model, &device).unwrap();
    let model = optimizer.prepare(model);
    let order = recipe.data_order(3, 4);
    let trainer = Trainer::new(&recipe, &task, &device).with_options(TrainOptions { loss_every });
    let model = trainer
        .train(model, &mut optimizer, 0..WARMUP, &order, &mut NoObserver)
        .unwrap();
    let counter = LaunchCounter::start();
    let model = trainer
        .train(
            model,
            &mut optimizer,
            WARMUP..WARMUP + COUNTED,
            &order,
            &mut NoObserver,
        )
        .unwrap();
    let launches = counter.finish(&device).unwrap();
    drop(model);
    launches
}

/// One test, so that nothing else launches kernels while a count runs.
#[test]
fn training_steps_launch_a_reproducible_number_of_kernels_and_masks_add_at_most_two_per_tensor() {
    let dense = |m: &ResNet| Mask::dense(m, &ParamSelector::default()).unwrap();
    let first = launches_of_steps(dense, COUNTED);
    let again = launches_of_steps(dense, COUNTED);
    let reading_every_step = launches_of_steps(dense, 1);
    let masked = launches_of_steps(sparse_mask, COUNTED);
    let per_step = |count: &LaunchCount| count.total() as f64 / COUNTED as f64;
    eprintln!("dense: {} launches per step: {first}", per_step(&first));
    eprintln!("masked: {} launches per step: {masked}", per_step(&masked));

    // The same steps launch the same kernels: the count is a figure a test
    // can hold a change to.
    assert!(first.total() > 0, "a training step launches kernels");
    // The `wgpu` feature brings burn's fusion (`wgpu-unfused` does not): a
    // build that lost it would launch each operation as its own kernel.
    let fused = first.fused();
    if cfg!(feature = "wgpu") {
        assert!(
            fused > 0,
            "built with `wgpu`, yet nothing was fused: {first}"
        );
    } else {
        assert_eq!(fused, 0, "built without fusion, yet: {first}");
    }
    assert_eq!(
        first, again,
        "two identical runs launched different kernels"
    );
    // Reading the losses back launches nothing (a transfer of the window's
    // loss tensors, not a kernel gathering them first), so reading every
    // step costs waits for the device, not launches.
    eprintln!("reading every step: {}", per_step(&reading_every_step));
    assert_eq!(
        reading_every_step, first,
        "reading the losses every step launched other kernels than every {COUNTED} steps"
    );

    // Enforcing the mask is one multiplication of each masked tensor's
    // gradient and one of its weights per step, at most: never more.
    let tensors = sparse_mask(&resnet(&common::ndarray())).layers().count() as f64;
    let added = per_step(&masked) - per_step(&first);
    eprintln!("the mask adds {added} launches per step ({tensors} masked tensors)");
    assert!(
        added <= 2.0 * tensors,
        "the mask added {added} launches per step for {tensors} masked tensors"
    );
}
