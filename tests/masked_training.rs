//! Masked training: pruned weights are exactly zero after every step and
//! optimizer state never builds up for them.

use crate::common::{Mlp, TinyNet, ndarray, sparse_mask, tiny_batch, tiny_grads};
use burn::optim::{
    AdamConfig, GradientsParams, ModuleOptimizer, SgdConfig, decay::WeightDecayConfig,
    momentum::MomentumConfig,
};
use burn::tensor::{Device, Tensor};
use burn_lottery::mask::{LayerMask, Mask, MaskError, MaskedParams, ParamSelector};
use burn_lottery::params::float_values;
use burn_lottery::train::masked::MaskedOptimizer;

fn sgd() -> ModuleOptimizer {
    SgdConfig::new()
        .with_momentum(Some(MomentumConfig::new().with_dampening(0.0)))
        .with_weight_decay(Some(WeightDecayConfig::new(1e-2)))
        .init()
}

fn adam() -> ModuleOptimizer {
    AdamConfig::new()
        .with_weight_decay(Some(WeightDecayConfig::new(1e-2)))
        .init()
}

fn assert_pruned_zero<M: burn::module::Module>(model: &M, mask: &Mask, step: usize) {
    let values = float_values(model, |p| mask.contains(p));
    for (path, layer) in mask.layers() {
        for (i, (&v, &k)) in values[path].iter().zip(layer.kept()).enumerate() {
            if !k {
                assert!(v == 0.0, "step {step}: {path}[{i}] = {v}");
            }
        }
    }
}

/// A batch drawn on the host from `seed` (not from the device's global
/// generator, which tests running in parallel share).
fn mlp_batch(device: &Device, seed: u64) -> (Tensor<2>, Tensor<2>) {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut draw = |n: usize| -> Vec<f32> {
        (0..n)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0
            })
            .collect()
    };
    let x = Tensor::<1>::from_floats(draw(16 * 16).as_slice(), device).reshape([16, 16]);
    let y = Tensor::<1>::from_floats(draw(16 * 4).as_slice(), device).reshape([16, 4]);
    (x, y)
}

fn mlp_grads(model: &Mlp, device: &Device, seed: u64) -> GradientsParams {
    let (x, y) = mlp_batch(device, seed);
    let loss = (model.forward(x) - y).powf_scalar(2.0).mean();
    GradientsParams::from_grads(loss.backward(), model)
}

#[test]
fn fifty_steps_keep_pruned_weights_exactly_zero_sgd_and_adam() {
    let device = ndarray().autodiff();
    for (name, optimizer) in [("sgd", sgd()), ("adam", adam())] {
        // Conv + BatchNorm + Linear.
        let model = TinyNet::new(&device);
        let mask = sparse_mask(&model);
        let mut optim = MaskedOptimizer::new(optimizer.clone(), &mask, &model, &device).unwrap();
        let mut model = optim.prepare(model);
        let start = float_values(&model, |p| mask.contains(p));
        for step in 0..50 {
            let (x, y) = tiny_batch(&device, step as u64);
            let grads = tiny_grads(&model, x, y);
            model = optim.step(0.05, model, grads);
            assert_pruned_zero(&model, &mask, step);
        }
        // Kept weights did train.
        let end = float_values(&model, |p| mask.contains(p));
        assert_ne!(start, end, "{name}: nothing trained");

        // The optimizer state of pruned entries is zero: one more step with
        // masked gradients but WITHOUT re-masking the weights leaves every
        // pruned weight at exactly 0 (any momentum or Adam moment would move it).
        let masks = MaskedParams::new(&mask, &device);
        let mut inner = optim.into_inner();
        let (x, y) = tiny_batch(&device, 99);
        let mut grads = tiny_grads(&model, x, y);
        masks.apply_to_grads(&model, &mut grads);
        let model = inner.step(0.05, model, grads);
        assert_pruned_zero(&model, &mask, 50);
    }
}

#[test]
fn without_masked_gradients_momentum_would_revive_weights() {
    // The control for the test above: zeroing weights alone is not enough.
    let device = ndarray().autodiff();
    let model = Mlp::new(&device);
    let mask = sparse_mask(&model);
    let masks = MaskedParams::new(&mask, &device);
    let mut model = masks.apply_to_weights(model);
    let mut optim = sgd();
    for step in 0..5 {
        let grads = mlp_grads(&model, &device, step);
        model = masks.apply_to_weights(optim.step(0.05, model, grads));
    }
    // Gradients zero for this last step, but momentum carries the revival.
    let mut grads = mlp_grads(&model, &device, 9);
    masks.apply_to_grads(&model, &mut grads);
    let revived = optim.step(0.05, model, grads);
    let values = float_values(&revived, |p| mask.contains(p));
    let nonzero = mask
        .layers()
        .flat_map(|(p, l)| {
            values[p]
                .iter()
                .zip(l.kept())
                .filter(|(v, k)| !**k && **v != 0.0)
                .map(|_| ())
                .collect::<Vec<_>>()
        })
        .count();
    assert!(
        nonzero > 0,
        "momentum should move pruned weights when only weights are masked"
    );
}

#[test]
fn dense_mask_training_equals_plain_training() {
    let device = ndarray().autodiff();
    device.seed(3);
    let model = Mlp::new(&device);
    let dense = Mask::dense(&model, &ParamSelector::default()).unwrap();
    assert!(MaskedParams::new(&dense, &device).is_dense());
    let mut masked = MaskedOptimizer::new(sgd(), &dense, &model, &device).unwrap();
    let mut plain = sgd();
    let mut a = model.clone();
    let mut b = model;
    for step in 0..5 {
        let ga = mlp_grads(&a, &device, step);
        a = masked.step(0.1, a, ga);
        let gb = mlp_grads(&b, &device, step);
        b = plain.step(0.1, b, gb);
    }
    assert_eq!(float_values(&a, |_| true), float_values(&b, |_| true));
}

/// A mask saved for another model is refused when the optimizer is built,
/// naming the parameter, instead of failing inside a step (a wrong shape)
/// or silently enforcing nothing (a parameter the model lacks).
#[test]
fn a_mask_that_does_not_fit_the_model_is_refused_by_name() {
    let device = ndarray().autodiff();
    let model = Mlp::new(&device);
    let wrong_shape = Mask::from_layers([(
        "fc1.weight".to_string(),
        LayerMask::from_kept("fc1.weight", vec![16, 8], vec![true; 128]).unwrap(),
    )]);
    let err = MaskedOptimizer::new(sgd(), &wrong_shape, &model, &device)
        .err()
        .expect("a mask of another shape is refused");
    assert!(
        matches!(&err, MaskError::ShapeMismatch { path, mask_shape, param_shape }
            if path == "fc1.weight" && mask_shape == &[16, 8] && param_shape == &[16, 32]),
        "{err}"
    );
    let other_model = Mask::dense(&TinyNet::new(&device), &ParamSelector::default()).unwrap();
    let err = MaskedOptimizer::new(sgd(), &other_model, &model, &device)
        .err()
        .expect("a mask of another model is refused");
    let MaskError::UnknownParameter { path } = &err else {
        panic!("expected an unknown parameter, got {err}");
    };
    assert!(other_model.contains(path) && err.to_string().contains(path.as_str()));
}
