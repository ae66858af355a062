//! RewindCheckpoint: exact state restore, save/load, corruption, mismatch.

use crate::common::{Mlp, TinyNet, ndarray, state, tiny_batch, tiny_grads};
use burn::optim::{AdamConfig, SgdConfig, momentum::MomentumConfig};
use burn_lottery::mask::{LayerMask, Mask, ParamSelector};
use burn_lottery::rewind::{RewindCheckpoint, RewindError};

/// TinyNet after a few SGD steps, so BatchNorm statistics are non-trivial.
fn trained_tiny() -> TinyNet {
    let device = ndarray().autodiff();
    let mut model = TinyNet::new(&device);
    let mut optim = SgdConfig::new().init();
    for step in 0..3 {
        let (x, y) = tiny_batch(&device, step);
        let grads = tiny_grads(&model, x, y);
        model = optim.step(0.05, model, grads);
    }
    model
}

#[test]
fn rewind_restores_parameters_and_batchnorm_statistics_bit_exactly() {
    let model = trained_tiny();
    let before = state(&model);
    assert!(
        before["bn.running_mean"].iter().any(|&v| v != 0.0),
        "training should have moved the running mean"
    );
    let checkpoint = RewindCheckpoint::capture(&model, 500);
    assert_eq!(checkpoint.iteration(), 500);

    let fresh = TinyNet::new(&ndarray().autodiff());
    assert_ne!(state(&fresh), before);
    let dense = Mask::dense(&fresh, &ParamSelector::default()).unwrap();
    let restored = checkpoint.rewind(fresh, &dense).unwrap();
    assert_eq!(state(&restored), before);

    // Through a file, in a "new process" (fresh template, fresh ids).
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("rewind.ckpt");
    checkpoint.save(&file).unwrap();
    let loaded = RewindCheckpoint::load(&file).unwrap();
    assert_eq!(loaded.iteration(), 500);
    let restored = loaded.restore(TinyNet::new(&ndarray())).unwrap();
    assert_eq!(state(&restored), before);
}

#[test]
fn rewind_applies_the_mask() {
    let model = trained_tiny();
    let before = state(&model);
    let checkpoint = RewindCheckpoint::capture(&model, 10);
    let dense = Mask::dense(&model, &ParamSelector::default()).unwrap();
    let mask = Mask::from_layers(dense.layers().map(|(p, l)| {
        let kept = (0..l.total_count()).map(|i| i % 3 != 0).collect();
        (
            p.to_string(),
            LayerMask::from_kept(p, l.shape().to_vec(), kept).unwrap(),
        )
    }));
    let rewound = state(&checkpoint.rewind(TinyNet::new(&ndarray()), &mask).unwrap());
    for (path, values) in &rewound {
        for (i, &v) in values.iter().enumerate() {
            let expected = match mask.layer(path) {
                Some(l) if !l.kept()[i] => 0.0,
                _ => before[path][i],
            };
            assert_eq!(v, expected, "{path}[{i}]");
        }
    }
}

#[test]
fn bad_files_and_other_architectures_are_typed_errors() {
    let model = trained_tiny();
    let checkpoint = RewindCheckpoint::capture(&model, 3);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("rewind.ckpt");
    checkpoint.save(&file).unwrap();
    let bytes = std::fs::read(&file).unwrap();

    for cut in [0, 5, 20, bytes.len() / 2, bytes.len() - 1] {
        std::fs::write(&file, &bytes[..cut]).unwrap();
        let err = RewindCheckpoint::load(&file).unwrap_err();
        assert!(
            matches!(err, RewindError::Corrupt { .. }),
            "cut {cut}: {err}"
        );
        assert!(err.to_string().contains("rewind.ckpt"));
    }
    let mut flipped = bytes.clone();
    let mid = flipped.len() / 2;
    flipped[mid] ^= 1;
    assert!(matches!(
        RewindCheckpoint::from_bytes(&flipped),
        Err(RewindError::Corrupt { .. })
    ));
    assert!(matches!(
        RewindCheckpoint::load(dir.path().join("absent.ckpt")),
        Err(RewindError::Io { .. })
    ));

    // A checkpoint of TinyNet does not fit an Mlp.
    let err = checkpoint.restore(Mlp::new(&ndarray())).unwrap_err();
    assert!(matches!(err, RewindError::Mismatch(_)), "{err}");
    // A mask of another model is refused before anything is loaded.
    let mlp_mask = Mask::dense(&Mlp::new(&ndarray()), &ParamSelector::default()).unwrap();
    assert!(matches!(
        checkpoint.rewind(TinyNet::new(&ndarray()), &mlp_mask),
        Err(RewindError::Mask(_))
    ));
}

#[test]
fn optimizer_state_is_restored_when_captured() {
    // Continue training from a checkpoint with restored Adam state: the result
    // equals training straight through.
    let device = ndarray().autodiff();
    // Batches drawn on the host from their seed: the device's generator is
    // shared with the tests that run at the same time.
    let batch = |seed: u64| {
        use rand::{RngExt, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let mut draw =
            |n: usize| -> Vec<f32> { (0..n).map(|_| rng.random::<f32>() - 0.5).collect() };
        let x = crate::common::tensor(draw(8 * 16), [8, 16], &device);
        let y = crate::common::tensor(draw(8 * 4), [8, 4], &device);
        (x, y)
    };
    let step = |model: Mlp, optim: &mut burn::optim::ModuleOptimizer, seed| {
        let (x, y) = batch(seed);
        let loss = (model.forward(x) - y).powf_scalar(2.0).mean();
        let grads = burn::optim::GradientsParams::from_grads(loss.backward(), &model);
        optim.step(0.01, model, grads)
    };
    for config in [
        AdamConfig::new().init(),
        SgdConfig::new()
            .with_momentum(Some(MomentumConfig::new().with_dampening(0.0)))
            .init(),
    ] {
        let mut optim = config.clone();
        let mut model = Mlp::new(&device);
        for s in 0..3 {
            model = step(model, &mut optim, s);
        }
        let checkpoint = RewindCheckpoint::capture(&model, 3)
            .with_optimizer(&optim)
            .unwrap();
        assert!(checkpoint.has_optimizer_state());
        let bytes = checkpoint.to_bytes().unwrap();
        for s in 3..6 {
            model = step(model, &mut optim, s);
        }
        let straight = state(&model);

        let loaded = RewindCheckpoint::from_bytes(&bytes).unwrap();
        let mut resumed = loaded.restore(Mlp::new(&device)).unwrap();
        let mut optim2 = loaded.restore_optimizer(config.clone()).unwrap();
        for s in 3..6 {
            resumed = step(resumed, &mut optim2, s);
        }
        assert_eq!(state(&resumed), straight);

        // Without the optimizer state the continuation differs (fresh state).
        let mut fresh = loaded.restore(Mlp::new(&device)).unwrap();
        let mut fresh_optim = config.clone();
        for s in 3..6 {
            fresh = step(fresh, &mut fresh_optim, s);
        }
        assert_ne!(state(&fresh), straight);
        let no_state = RewindCheckpoint::capture(&Mlp::new(&device), 0);
        assert!(!no_state.has_optimizer_state());
    }
}
