//! Iterations, learning-rate schedules and training recipes.
#![allow(deprecated)] // Device::ndarray()

use burn_lottery::train::iteration::{Iteration, StepSpec, iterations_per_epoch};
use burn_lottery::train::recipe::{OptimizerConfig, RecipeError, TrainingRecipe};
use burn_lottery::train::schedule::{LrDecay, LrSchedule, ScheduleError};

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-12
}

#[test]
fn resnet_preset_learning_rates() {
    let r = TrainingRecipe::resnet20_cifar10();
    assert_eq!(r.batch_size, 128);
    assert_eq!(r.training_iterations, 62_560);
    assert!(r.augment);
    for (it, lr) in [
        (0, 0.1),
        (1, 0.1),
        (31_279, 0.1),
        (31_280, 0.01),
        (46_919, 0.01),
        (46_920, 0.001),
        (62_559, 0.001),
    ] {
        let got = r.lr_at(Iteration(it));
        assert!(close(got, lr), "iteration {it}: {got} != {lr}");
    }
    assert_eq!(
        r.schedule.decay,
        LrDecay::MultiStep {
            milestones: vec![31_280, 46_920],
            gamma: 0.1
        }
    );
    assert_eq!(
        r.optimizer,
        OptimizerConfig::Sgd {
            learning_rate: 0.1,
            momentum: 0.9,
            weight_decay: 1e-4,
            nesterov: false
        }
    );
    r.validate().unwrap();
}

#[test]
fn lenet_preset() {
    let r = TrainingRecipe::lenet_fashion_mnist();
    assert_eq!(r.batch_size, 60);
    assert_eq!(r.training_iterations, 50_000);
    assert!(!r.augment);
    assert!(close(r.lr_at(Iteration(0)), 1.2e-3));
    assert!(close(r.lr_at(Iteration(49_999)), 1.2e-3));
    match r.optimizer {
        OptimizerConfig::Adam { epsilon, .. } => assert_eq!(epsilon, 1e-8),
        _ => panic!("expected Adam"),
    }
    r.validate().unwrap();
    let q = TrainingRecipe::lenet_fashion_mnist_quick();
    q.validate().unwrap();
    assert!(q.training_iterations <= 1000);
    let q = TrainingRecipe::resnet20_cifar10_quick();
    q.validate().unwrap();
    assert!(q.training_iterations <= 1000);
}

#[test]
fn warmup() {
    let s = LrSchedule::multi_step(vec![100], 0.1).with_warmup(10);
    let base = 0.2;
    assert!(close(s.lr_at(base, Iteration(0)), 0.0));
    assert!(close(s.lr_at(base, Iteration(1)), 0.02));
    assert!(close(s.lr_at(base, Iteration(5)), 0.1));
    assert!(close(s.lr_at(base, Iteration(9)), 0.18));
    assert!(close(s.lr_at(base, Iteration(10)), 0.2));
    assert!(close(s.lr_at(base, Iteration(99)), 0.2));
    assert!(close(s.lr_at(base, Iteration(100)), 0.02));
    // Warmup and decay multiply when a milestone falls inside the warmup.
    let s = LrSchedule::multi_step(vec![2], 0.5).with_warmup(4);
    assert!(close(s.multiplier_at(Iteration(3)), 0.5 * 0.75));
}

#[test]
fn step_and_constant() {
    let s = LrSchedule::step(10, 0.5);
    assert!(close(s.multiplier_at(Iteration(9)), 1.0));
    assert!(close(s.multiplier_at(Iteration(10)), 0.5));
    assert!(close(s.multiplier_at(Iteration(25)), 0.25));
    let c = LrSchedule::constant();
    assert!(close(c.lr_at(0.3, Iteration(1_000_000)), 0.3));
}

#[test]
fn iterations_and_epochs() {
    assert_eq!(iterations_per_epoch(50_000, 128), 391);
    assert_eq!(iterations_per_epoch(60_000, 60), 1000);
    assert_eq!(iterations_per_epoch(1, 128), 1);
    let ipe = 391;
    for it in [0u64, 1, 390, 391, 392, 31_280, 62_559] {
        let (e, b) = Iteration(it).to_epoch_batch(ipe);
        assert!(b < ipe);
        assert_eq!(Iteration::from_epoch_batch(e, b, ipe), Iteration(it));
    }
    assert_eq!(Iteration(31_280).to_epoch_batch(ipe), (80, 0));
    assert_eq!(Iteration(391).epoch(ipe), 1);
    assert_eq!(Iteration(392).batch_in_epoch(ipe), 1);
    assert!(Iteration(782).is_epoch_start(ipe));
    assert_eq!(Iteration::from_epoch_batch(160, 0, ipe), Iteration(62_560));
    assert_eq!(Iteration(5).next(), Iteration(6));
    assert_eq!(serde_json::to_string(&Iteration(500)).unwrap(), "500");
    let back: Iteration = serde_json::from_str("500").unwrap();
    assert_eq!(back, Iteration(500));
}

#[test]
#[should_panic]
fn batch_out_of_range_panics() {
    Iteration::from_epoch_batch(0, 391, 391);
}

#[test]
fn step_strings() {
    let ipe = 391;
    let p = |s: &str| s.parse::<StepSpec>().unwrap();
    assert_eq!(p("500it").to_iteration(ipe), Iteration(500));
    assert_eq!(p("2ep").to_iteration(ipe), Iteration(782));
    assert_eq!(p("2ep100it").to_iteration(ipe), Iteration(882));
    assert_eq!(p("160ep").to_iteration(ipe), Iteration(62_560));
    assert_eq!(p("0it"), StepSpec::iterations(0));
    assert_eq!(p("3ep"), StepSpec::epochs(3));
    for bad in ["", "ep", "500", "5xx", "2it3ep", "1ep2ep", "it500", "-3it"] {
        assert!(bad.parse::<StepSpec>().is_err(), "{bad:?} parsed");
    }
    for s in ["500it", "2ep", "2ep100it"] {
        assert_eq!(p(s).to_string(), s);
        let json = serde_json::to_string(&p(s)).unwrap();
        assert_eq!(json, format!("\"{s}\""));
        let back: StepSpec = serde_json::from_str(&json).unwrap();
        assert_eq!(back, p(s));
    }
}

#[test]
fn preset_json_round_trip() {
    for r in [
        TrainingRecipe::resnet20_cifar10(),
        TrainingRecipe::resnet20_cifar10_quick(),
        TrainingRecipe::lenet_fashion_mnist(),
        TrainingRecipe::lenet_fashion_mnist_quick(),
        TrainingRecipe {
            schedule: LrSchedule::step(1000, 0.5).with_warmup(100),
            ..TrainingRecipe::resnet20_cifar10()
        },
    ] {
        let json = r.to_json_string();
        let back = TrainingRecipe::from_json_str(&json).unwrap();
        assert_eq!(back, r);
    }
    let json = TrainingRecipe::resnet20_cifar10().to_json_string();
    assert!(json.contains("\"kind\": \"sgd\""), "{json}");
    assert!(json.contains("\"kind\": \"multi_step\""), "{json}");
}

#[test]
fn edited_json_loads() {
    let json = r#"{
        "batch_size": 32,
        "training_iterations": 1000,
        "optimizer": {"type": "sgd", "learning_rate": 0.05, "momentum": 0.0,
                      "weight_decay": 0.0, "nesterov": false},
        "schedule": {"decay": {"kind": "constant"}},
        "augment": false
    }"#;
    let r = TrainingRecipe::from_json_str(json).unwrap();
    assert_eq!(r.schedule.warmup_iterations, 0);
    assert!(close(r.lr_at(Iteration(999)), 0.05));
    // Typos are caught.
    let typo = json.replace("batch_size", "batchsize");
    assert!(matches!(
        TrainingRecipe::from_json_str(&typo),
        Err(RecipeError::Json(_))
    ));
}

#[test]
fn validation_errors() {
    let base = TrainingRecipe::resnet20_cifar10;
    let err = |r: TrainingRecipe| r.validate().unwrap_err();

    assert!(matches!(
        err(TrainingRecipe {
            batch_size: 0,
            ..base()
        }),
        RecipeError::ZeroBatchSize
    ));
    assert!(matches!(
        err(TrainingRecipe {
            training_iterations: 0,
            ..base()
        }),
        RecipeError::ZeroTrainingIterations
    ));
    for lr in [-0.1, 0.0, f64::NAN, f64::INFINITY] {
        assert!(matches!(
            err(TrainingRecipe {
                optimizer: OptimizerConfig::sgd_momentum(lr),
                ..base()
            }),
            RecipeError::InvalidLearningRate(_)
        ));
    }
    assert!(matches!(
        err(TrainingRecipe {
            optimizer: OptimizerConfig::Sgd {
                learning_rate: 0.1,
                momentum: 1.5,
                weight_decay: 0.0,
                nesterov: false
            },
            ..base()
        }),
        RecipeError::InvalidHyperparameter {
            name: "momentum",
            ..
        }
    ));
    assert!(matches!(
        err(TrainingRecipe {
            optimizer: OptimizerConfig::Sgd {
                learning_rate: 0.1,
                momentum: 0.0,
                weight_decay: 0.0,
                nesterov: true
            },
            ..base()
        }),
        RecipeError::NesterovWithoutMomentum
    ));
    assert!(matches!(
        err(TrainingRecipe {
            optimizer: OptimizerConfig::Sgd {
                learning_rate: 0.1,
                momentum: 0.9,
                weight_decay: -1e-4,
                nesterov: false
            },
            ..base()
        }),
        RecipeError::InvalidHyperparameter {
            name: "weight_decay",
            ..
        }
    ));
    assert!(matches!(
        err(TrainingRecipe {
            optimizer: OptimizerConfig::Adam {
                learning_rate: 1e-3,
                beta_1: 0.9,
                beta_2: 0.999,
                epsilon: 0.0,
                weight_decay: 0.0
            },
            ..base()
        }),
        RecipeError::InvalidHyperparameter {
            name: "epsilon",
            ..
        }
    ));
    assert!(matches!(
        err(TrainingRecipe {
            schedule: LrSchedule::multi_step(vec![200, 100], 0.1),
            ..base()
        }),
        RecipeError::Schedule(ScheduleError::UnsortedMilestones(_))
    ));
    assert!(matches!(
        err(TrainingRecipe {
            schedule: LrSchedule::multi_step(vec![100], -0.1),
            ..base()
        }),
        RecipeError::Schedule(ScheduleError::InvalidGamma(_))
    ));
    assert!(matches!(
        err(TrainingRecipe {
            schedule: LrSchedule::step(0, 0.1),
            ..base()
        }),
        RecipeError::Schedule(ScheduleError::ZeroStepSize)
    ));
    assert!(matches!(
        err(TrainingRecipe {
            training_iterations: 10,
            schedule: LrSchedule::constant().with_warmup(11),
            ..base()
        }),
        RecipeError::WarmupTooLong { .. }
    ));
    // Error messages are readable.
    let msg = err(TrainingRecipe {
        batch_size: 0,
        ..base()
    })
    .to_string();
    assert!(msg.contains("batch_size"), "{msg}");
}

/// One scalar weight `w`, loss `w * x`: the gradient is `x` (+ weight decay).
#[derive(burn::module::Module, Debug)]
struct Scalar {
    w: burn::module::Param<burn::tensor::Tensor<1>>,
}

/// `w` after `steps` optimizer steps at lr `lr` from `w = 1` with gradient `x`.
fn run_steps(config: &OptimizerConfig, x: f32, lr: f64, steps: usize) -> f32 {
    use burn::module::Param;
    use burn::optim::GradientsParams;
    use burn::tensor::{Device, Tensor};
    let device = Device::ndarray().autodiff();
    let mut model = Scalar {
        w: Param::from_tensor(Tensor::<1>::from_data([1.0f32], &device)),
    };
    let mut optim = config.init();
    for _ in 0..steps {
        let loss = model.w.val().mul_scalar(x).sum();
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optim.step(lr, model, grads);
    }
    model.w.val().into_data().to_vec::<f32>().unwrap()[0]
}

#[test]
fn sgd_has_pytorch_semantics() {
    // Momentum 0.9 without dampening, no weight decay, gradient 2:
    // v1 = 2, w1 = 1 - 0.2 = 0.8; v2 = 0.9*2 + 2 = 3.8, w2 = 0.8 - 0.38 = 0.42.
    // (burn's default dampening 0.1 would give 0.44.)
    let sgd = OptimizerConfig::Sgd {
        learning_rate: 0.1,
        momentum: 0.9,
        weight_decay: 0.0,
        nesterov: false,
    };
    let w = run_steps(&sgd, 2.0, 0.1, 2);
    assert!((w - 0.42).abs() < 1e-6, "{w}");
    // Weight decay 0.01 added to the gradient before momentum:
    // g1 = 2.01, w1 = 0.799; g2 = 2 + 0.00799, v2 = 0.9*2.01 + g2 = 3.81699, w2 = 0.417301.
    let sgd_wd = OptimizerConfig::Sgd {
        learning_rate: 0.1,
        momentum: 0.9,
        weight_decay: 0.01,
        nesterov: false,
    };
    let w = run_steps(&sgd_wd, 2.0, 0.1, 2);
    assert!((w - 0.417_301).abs() < 1e-6, "{w}");
}

#[test]
fn adam_has_pytorch_epsilon() {
    // First Adam step: w1 = w0 - lr * g / (|g| + eps). With g = 1e-6 and
    // eps = 1e-8 that is 1 - 0.1/1.01; burn's default eps = 1e-5 would give 1 - 0.1/11.
    let adam = OptimizerConfig::adam(0.1);
    let w = run_steps(&adam, 1e-6, 0.1, 1);
    let expected = 1.0 - 0.1 / 1.01;
    assert!((w as f64 - expected).abs() < 1e-5, "{w} vs {expected}");
}

#[test]
fn shortened_recipes_scale_the_schedule() {
    use burn_lottery::train::iteration::Iteration;
    use burn_lottery::train::recipe::TrainingRecipe;
    let full = TrainingRecipe::resnet20_cifar10();
    let short = full.shortened(6256);
    assert_eq!(short.training_iterations, 6256);
    assert_eq!(short.lr_at(Iteration(3127)), 0.1);
    assert!((short.lr_at(Iteration(3128)) - 0.01).abs() < 1e-12);
    assert!((short.lr_at(Iteration(4692)) - 0.001).abs() < 1e-12);
    assert_eq!(full.shortened(62_560), full);
    let lenet = TrainingRecipe::lenet_fashion_mnist();
    assert_eq!(lenet.shortened(8000).schedule, lenet.schedule);
}

#[test]
fn presets_and_plain_configs_build_the_optimizers_they_describe() {
    // Each configuration's optimizer, stepped on `w * 2` from w = 1 at lr
    // 0.1, moves w as PyTorch's optimizer of that description does.
    let plain = |momentum: f64, nesterov: bool| OptimizerConfig::Sgd {
        learning_rate: 0.1,
        momentum,
        weight_decay: 0.0,
        nesterov,
    };
    // Plain SGD: w -= lr * 2 per step.
    let w = run_steps(&plain(0.0, false), 2.0, 0.1, 3);
    assert!((w - 0.4).abs() < 1e-6, "{w}");
    // Nesterov: v1 = 2, step 2 + 0.9 * 2 = 3.8, w1 = 0.62; v2 = 3.8,
    // step 2 + 0.9 * 3.8 = 5.42, w2 = 0.078.
    let w = run_steps(&plain(0.9, true), 2.0, 0.1, 2);
    assert!((w - 0.078).abs() < 1e-6, "{w}");
    // The ResNet-20 preset: momentum 0.9 and weight decay 1e-4:
    // g1 = 2.0001, w1 = 0.79999; g2 = 2.000079999, v2 = 3.800169999,
    // w2 = 0.4199730001.
    let resnet = TrainingRecipe::resnet20_cifar10().optimizer;
    let w = run_steps(&resnet, 2.0, 0.1, 2);
    assert!((w - 0.419_973).abs() < 1e-6, "{w}");
    // The LeNet preset: Adam without weight decay; under a constant
    // gradient its bias-corrected step is lr * g / (|g| + eps), about lr.
    let lenet = TrainingRecipe::lenet_fashion_mnist().optimizer;
    assert!(matches!(
        lenet,
        OptimizerConfig::Adam { weight_decay, .. } if weight_decay == 0.0
    ));
    let w = run_steps(&lenet, 2.0, 0.1, 2);
    assert!((w - 0.8).abs() < 1e-5, "{w}");
}
