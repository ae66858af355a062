//! `Experiment`, burn's optimizers and schedulers in IMP, and configurations
//! that cannot drift: typos refused by name, directory names pinned, an
//! experiment stored by the previous schema found and resumed.

use std::path::Path;

use burn::lr_scheduler::LrSchedulerConfig;
use burn::lr_scheduler::cosine::CosineAnnealingLrSchedulerConfig;
use burn::lr_scheduler::module_lr_scheduler::ModuleLrSchedulerConfig;
use burn::module::ParamGroup;
use burn::optim::{AdamWConfig, SgdConfig};
use burn_lottery::imp::schema::{self, DEFAULTS_V1};
use burn_lottery::optim_state::optimizer_state_by_path;
use burn_lottery::prelude::*;
use burn_lottery::rewind::RewindCheckpoint;
use burn_lottery::train::iteration::Iteration;
use burn_lottery::train::masked::MaskedOptimizer;
use burn_lottery::train::recipe::BurnOptimizer;
use burn_lottery::train::trainer::{NoObserver, Trainer};
use serde_json::{Value, json};

use crate::common::{self, data, init, ndarray, sparse_mask, state, tiny_recipe};

/// [`tiny_recipe`] with AdamW (weight decay 1e-2) under burn's cosine
/// annealing from 3e-3 over the 30 iterations.
fn adamw_cosine() -> TrainingRecipe {
    TrainingRecipe {
        optimizer: OptimizerConfig::scheduled(
            AdamWConfig::new().with_weight_decay(1e-2),
            CosineAnnealingLrSchedulerConfig::new(3e-3, 30),
        ),
        ..tiny_recipe()
    }
}

/// Trains `init(0)` under `mask` for `recipe`'s iterations, stopping at
/// `split` and continuing from a stored checkpoint of the model and the
/// optimizer's state when `split` is `Some`.
fn train_split(
    recipe: &TrainingRecipe,
    split: Option<u64>,
) -> std::collections::BTreeMap<String, Vec<f32>> {
    let device = ndarray().autodiff();
    let task = data();
    let trainer = Trainer::new(recipe, &task, &device);
    let order = recipe.data_order(3, 3);
    let mask = sparse_mask(&init(&device, 0));
    let end = recipe.training_iterations;
    let k = split.unwrap_or(end);
    let model = init(&device, 0);
    let mut optimizer =
        MaskedOptimizer::new(recipe.optimizer.init(), &mask, &model, &device).unwrap();
    let model = optimizer.prepare(model);
    let model = trainer
        .train(model, &mut optimizer, 0..k, &order, &mut NoObserver)
        .unwrap();
    if split.is_none() {
        return state(&model);
    }
    let stored = RewindCheckpoint::capture(&model, k)
        .with_optimizer(optimizer.optimizer())
        .unwrap()
        .to_bytes()
        .unwrap();
    let checkpoint = RewindCheckpoint::from_bytes(&stored).unwrap();
    let model = checkpoint.restore(init(&device, 9)).unwrap();
    let restored = checkpoint
        .restore_optimizer_for(recipe.optimizer.init(), &model)
        .unwrap();
    let mut optimizer = MaskedOptimizer::new(restored, &mask, &model, &device).unwrap();
    let model = trainer
        .train(model, &mut optimizer, k..end, &order, &mut NoObserver)
        .unwrap();
    state(&model)
}

#[test]
fn adamw_and_a_burn_scheduler_continue_bit_identically_from_a_checkpoint() {
    let recipe = adamw_cosine();
    recipe.validate().unwrap();
    // The scheduler drives the rate: cosine from 3e-3 towards 0.
    assert_eq!(recipe.lr_at(Iteration(0)), 3e-3);
    assert!(recipe.lr_at(Iteration(29)) < 1e-5);
    let full = train_split(&recipe, None);
    assert_eq!(full, train_split(&recipe, Some(12)));
    assert_eq!(full, train_split(&recipe, Some(29)));
    // ... and it matters: a constant rate trains other weights.
    let constant = TrainingRecipe {
        optimizer: OptimizerConfig::burn(3e-3, AdamWConfig::new().with_weight_decay(1e-2)),
        ..tiny_recipe()
    };
    assert_ne!(full, train_split(&constant, None));
}

#[test]
fn per_group_learning_rates_pass_through_the_masked_optimizer() {
    let scheduler = ModuleLrSchedulerConfig::new(LrSchedulerConfig::Constant(3e-3)).with_group(
        ParamGroup::from_paths(vec!["fc3.weight", "fc3.bias"]),
        LrSchedulerConfig::Constant(0.0),
    );
    let recipe = TrainingRecipe {
        optimizer: OptimizerConfig::scheduled(SgdConfig::new(), scheduler),
        ..tiny_recipe()
    };
    recipe.validate().unwrap();
    let device = ndarray();
    let before = state(
        &sparse_mask(&init(&device, 0))
            .apply(init(&device, 0))
            .unwrap(),
    );
    let after = train_split(&recipe, None);
    assert_eq!(
        after["fc3.weight"], before["fc3.weight"],
        "rate 0: unchanged"
    );
    assert_ne!(
        after["fc1.weight"], before["fc1.weight"],
        "rate 3e-3: trained"
    );
}

#[test]
fn restoring_optimizer_state_at_a_rewind_zeroes_the_pruned_entries() {
    let device = ndarray().autodiff();
    let task = data();
    let recipe = tiny_recipe();
    let trainer = Trainer::new(&recipe, &task, &device);
    let start = init(&device, 0);
    let dense = Mask::dense(&start, &ParamSelector::default()).unwrap();
    let mut optimizer =
        MaskedOptimizer::new(recipe.optimizer.init(), &dense, &start, &device).unwrap();
    let model = trainer
        .train(
            start,
            &mut optimizer,
            0..5,
            &recipe.data_order(0, 0),
            &mut NoObserver,
        )
        .unwrap();
    let checkpoint = RewindCheckpoint::capture(&model, 5)
        .with_optimizer(optimizer.optimizer())
        .unwrap();
    let dense_state =
        optimizer_state_by_path(checkpoint.optimizer_bytes().unwrap(), &model).unwrap();
    let mask = sparse_mask(&model);
    let rewound = checkpoint.rewind(init(&device, 1), &mask).unwrap();
    let restored = checkpoint
        .restore_masked_optimizer_for(recipe.optimizer.init(), &rewound, &mask)
        .unwrap();
    let bytes = restored.into_bytes().unwrap();
    let masked_state = optimizer_state_by_path(&bytes, &rewound).unwrap();
    let mut checked = 0;
    for (name, tensor) in &masked_state.tensors {
        let path = name.rsplit_once('.').map_or(name.as_str(), |(p, _)| p);
        let path = path.split(".moment").next().unwrap_or(path);
        let original = f32s(&dense_state.tensors[name].bytes);
        let values = f32s(&tensor.bytes);
        match mask.layer(path) {
            Some(layer) if layer.total_count() == values.len() => {
                for ((v, o), keep) in values.iter().zip(&original).zip(layer.kept()) {
                    assert_eq!(*v, if *keep { *o } else { 0.0 }, "{name}");
                }
                assert!(
                    original
                        .iter()
                        .zip(layer.kept())
                        .any(|(o, k)| !k && *o != 0.0)
                );
                checked += 1;
            }
            _ => assert_eq!(values, original, "{name}: not masked, unchanged"),
        }
    }
    assert!(
        checked >= 3,
        "Adam's moments of the masked weights were checked: {checked}"
    );
}

fn f32s(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .collect()
}

/// A configuration with every kind of setting away from its default, so
/// that every struct and tagged enum of the tree appears in its JSON.
fn everything_config() -> ImpConfig {
    let mut pruning = MagnitudePrunerConfig::new(0.3).with_layer_rate("fc3.weight", 0.1);
    pruning.min_density_per_layer = 0.01;
    ImpConfig {
        name: "everything".into(),
        training: TrainingRecipe {
            optimizer: OptimizerConfig::scheduled(
                AdamWConfig::new(),
                CosineAnnealingLrSchedulerConfig::new(1e-3, 30),
            ),
            ..tiny_recipe()
        },
        pruning,
        selector: ParamSelector {
            exclude: vec!["fc3.*".into()],
            ..ParamSelector::default()
        },
        controls: Controls {
            random_reinit: true,
            random_prune: true,
            data_orders: vec![3],
        },
        retrain: Retrain::FineTuning { iterations: 7 },
        method: PruningMethod::AtInitialization(AtInitConfig::default()),
        target_density: Some(0.1),
        ..ImpConfig::default()
    }
}

/// Every object in `value`, as a JSON pointer.
fn object_pointers(value: &Value, at: String, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            out.push(at.clone());
            for (key, v) in map {
                object_pointers(v, format!("{at}/{key}"), out);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                object_pointers(v, format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

#[test]
fn a_misspelt_field_anywhere_in_a_configuration_is_refused_by_name() {
    let config = everything_config();
    let json = serde_json::to_value(&config).unwrap();
    assert_eq!(
        serde_json::from_value::<ImpConfig>(json.clone()).unwrap(),
        config
    );
    let mut pointers = Vec::new();
    object_pointers(&json, String::new(), &mut pointers);
    assert!(pointers.len() >= 12, "{pointers:?}");
    for pointer in &pointers {
        let mut typo = json.clone();
        let object = typo.pointer_mut(pointer).unwrap().as_object_mut().unwrap();
        // burn's own enums are tagged externally (`{"Cosine": {...}}`):
        // there the key is the variant, and a misspelt variant is refused.
        let variant = object
            .keys()
            .next()
            .filter(|k| object.len() == 1 && k.starts_with(|c: char| c.is_ascii_uppercase()));
        let misspelt = match variant.cloned() {
            Some(variant) => {
                let inner = object.remove(&variant).unwrap();
                object.insert(format!("{variant}x"), inner);
                format!("{variant}x")
            }
            None => {
                object.insert("misspelt_field".into(), json!(1));
                "misspelt_field".into()
            }
        };
        let error = serde_json::from_value::<ImpConfig>(typo)
            .expect_err(&format!("a misspelt field at {pointer:?} was accepted"));
        assert!(
            error.to_string().contains(&misspelt),
            "at {pointer:?}: {error}"
        );
    }
    // The examples.
    for (typo, field) in [
        (json!({"selector": {"exlude": ["fc3.*"]}}), "exlude"),
        (json!({"controls": {"random_prun": true}}), "random_prun"),
        (json!({"seeds": {"inti": 3}}), "inti"),
    ] {
        let error = serde_json::from_value::<ImpConfig>(typo).unwrap_err();
        assert!(error.to_string().contains(field), "{error}");
    }
}

#[test]
fn other_configurations_refuse_misspelt_fields() {
    let recipe = tiny_recipe()
        .to_json_string()
        .replace("\"batch_size\"", "\"batch_sise\"");
    let error = TrainingRecipe::from_json_str(&recipe).unwrap_err();
    assert!(error.to_string().contains("batch_sise"), "{error}");
    let error = serde_json::from_value::<RunOptions>(json!({"checkpoint_evry": 5})).unwrap_err();
    assert!(error.to_string().contains("checkpoint_evry"), "{error}");
    let error =
        serde_json::from_value::<burn_lottery::stability::BarrierOptions>(json!({"pionts": 5}))
            .unwrap_err();
    assert!(error.to_string().contains("pionts"), "{error}");
    let error = serde_json::from_value::<SweepSpec>(
        json!({"network": "n", "seeds": [0], "rewind_points": [0], "levels": 1, "levles": 2}),
    )
    .unwrap_err();
    assert!(error.to_string().contains("levles"), "{error}");
    let error = serde_json::from_value::<BurnOptimizer>(json!({"kind": "adamw_typo"})).unwrap_err();
    assert!(error.to_string().contains("adamw_typo"), "{error}");
    // A schema-1 recipe file (optimizer tagged `type`) still reads.
    let v1 = tiny_recipe()
        .to_json_string()
        .replace("\"kind\": \"adam\"", "\"type\": \"adam\"");
    assert_ne!(v1, tiny_recipe().to_json_string());
    assert_eq!(TrainingRecipe::from_json_str(&v1).unwrap(), tiny_recipe());
}

#[test]
fn every_tagged_enum_uses_one_tag_key() {
    let json = serde_json::to_string(&everything_config()).unwrap();
    for old in ["\"type\":", "\"mode\":"] {
        assert!(!json.contains(old), "{old} in {json}");
    }
    assert!(json.contains(&format!("\"{}\":\"burn\"", schema::TAG_KEY)));
    assert!(json.contains("\"kind\":\"fine_tuning\""));
}

/// Directory names of configurations stored before schema 2 (computed by
/// the crate at commit eaf212c): they must never change.
/// A configuration, built on demand.
type Build = fn() -> ImpConfig;

const PINNED_NAMES: [(&str, Build); 6] = [
    (
        "resnet20_cifar10-08f44b07b5901a25",
        ImpConfig::resnet20_cifar10,
    ),
    ("lenet_fashion_mnist-ce1f694bacf18c3c", || {
        ImpConfig::lenet_fashion_mnist(50_000, 0, 0)
    }),
    ("lenet_fashion_mnist-aaa0309a4502f07e", || {
        ImpConfig::lenet_fashion_mnist(8_000, 100, 1)
    }),
    ("fixture_lenet-ba03bafd92989836", fixture_config),
    ("synthetic-b79a780e77b7d805", || {
        common::tiny_imp_config("synthetic", 3)
    }),
    ("lenet_fashion_mnist-fbd447c5f784e291", || ImpConfig {
        retrain: Retrain::FineTuning { iterations: 7500 },
        method: PruningMethod::OneShot,
        controls: Controls::random(true),
        ..ImpConfig::lenet_fashion_mnist(8_000, 500, 0)
    }),
];

#[test]
fn directory_names_are_pinned() {
    for (name, config) in PINNED_NAMES {
        assert_eq!(config().directory_name(), name);
    }
}

#[test]
fn directory_names_do_not_follow_changed_defaults() {
    let config = serde_json::to_value(common::tiny_imp_config("synthetic", 3)).unwrap();
    let default = serde_json::to_value(ImpConfig::default()).unwrap();
    let mut changed = default.clone();
    changed["levels"] = json!(4);
    changed["rewind_iteration"] = json!(0);
    changed["training"]["batch_size"] = json!(7);
    changed["pruning"]["fraction"] = json!(0.5);
    assert_eq!(
        schema::hashed_form(config.clone(), changed),
        schema::hashed_form(config, default)
    );
    // The frozen baseline reads as a configuration of today.
    let baseline = schema::migrate(serde_json::from_str(DEFAULTS_V1).unwrap()).unwrap();
    assert_eq!(
        serde_json::from_value::<ImpConfig>(baseline).unwrap(),
        ImpConfig::default()
    );
}

/// The configuration of `tests/fixtures/store_v1` (see
/// `examples/write_store_fixture.rs`).
fn fixture_config() -> ImpConfig {
    ImpConfig {
        name: "fixture_lenet".into(),
        training: TrainingRecipe::lenet_fashion_mnist().shortened(12),
        pruning: MagnitudePrunerConfig::new(0.5),
        levels: 2,
        rewind_iteration: 3,
        seeds: Seeds::all(7),
        controls: Controls {
            random_prune: true,
            ..Controls::default()
        },
        ..ImpConfig::default()
    }
}

fn fixture_data() -> ExperimentData {
    let images: Vec<u8> = (0..40 * 64)
        .map(|i| ((i * 37 + i / 64 * 11) % 256) as u8)
        .collect();
    let labels: Vec<u8> = (0..40).map(|i| (i % 10) as u8).collect();
    let dataset = std::sync::Arc::new(
        burn_lottery::data::ImageDataset::new(images, labels, 1, 8, 8, 10).unwrap(),
    );
    ExperimentData {
        normalization: burn_lottery::data::Normalization::from_dataset(&dataset),
        train: dataset.clone(),
        test: dataset,
        augmentation: None,
    }
}

fn fixture_model(device: &burn::tensor::Device, seed: u64) -> burn_lottery::models::LeNet {
    LeNetConfig::new()
        .with_input_size(64)
        .with_hidden1(6)
        .with_hidden2(5)
        .init_seeded(device, seed)
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let target = to.join(path.file_name().unwrap());
        if path.is_dir() {
            copy_dir(&path, &target);
        } else {
            std::fs::copy(&path, &target).unwrap();
        }
    }
}

#[test]
fn an_experiment_stored_by_schema_1_is_found_and_resumed() {
    let fixture = common::repo_root().join("tests/fixtures/store_v1");
    let root = tempfile::tempdir().unwrap();
    copy_dir(&fixture, root.path());
    let config = fixture_config();
    let directory = root.path().join(config.directory_name());
    assert!(
        directory.join("config.json").exists(),
        "found under its name"
    );
    let stored_config = std::fs::read(directory.join("config.json")).unwrap();
    assert!(String::from_utf8_lossy(&stored_config).contains("\"type\": \"adam\""));
    let stored_report = std::fs::read_to_string(directory.join("report.csv")).unwrap();

    let device = ndarray();
    let experiment = Experiment::new(root.path(), &device, fixture_data(), fixture_model)
        .recipe(config.training.clone())
        .seeds(config.seeds)
        .name("fixture_lenet");
    let imp = experiment.imp(|c| ImpConfig {
        pruning: MagnitudePrunerConfig::new(0.5),
        levels: 2,
        rewind_iteration: 3,
        controls: config.controls.clone(),
        ..c
    });
    assert_eq!(imp.imp().config(), &config);
    let report = imp.run().unwrap();
    assert_eq!(
        report.trained_levels, 0,
        "every level read back, none retrained"
    );
    assert_eq!(
        std::fs::read_to_string(directory.join("report.csv")).unwrap(),
        stored_report
    );
    // New work in the old directory: a stability copy, trained and stored.
    let pair = imp
        .stability()
        .analyze_pair(Condition::Imp, 1, (11, 12))
        .unwrap();
    assert!(pair.curve.barrier().is_finite());
    assert_eq!(
        std::fs::read(directory.join("config.json")).unwrap(),
        stored_config
    );
}

#[test]
fn experiment_runs_what_imp_runs() {
    let device = ndarray();
    let root = tempfile::tempdir().unwrap();
    let config = common::tiny_imp_config("exp", 1);
    let direct = Imp::new(config.clone())
        .run(root.path(), &device, &data(), init, &mut Silent)
        .unwrap();
    let experiment = Experiment::new(root.path(), &device, data(), init)
        .name("exp")
        .recipe(tiny_recipe())
        .seeds(Seeds::all(0));
    let imp = experiment.imp(|c| ImpConfig {
        pruning: MagnitudePrunerConfig::new(0.2),
        levels: 1,
        rewind_iteration: 5,
        ..c
    });
    assert_eq!(imp.directory(), direct.directory);
    let again = imp.run().unwrap();
    assert_eq!(again.trained_levels, 0);
    assert_eq!(again.rows, direct.rows);
}

#[test]
fn builder_sets_the_learning_rate_source() {
    let device = ndarray();
    let e = Experiment::new("unused", &device, data(), init).optimizer(SgdConfig::new());
    assert_eq!(e.training().optimizer.learning_rate(), Some(1e-3));
    let e = e.scheduler(CosineAnnealingLrSchedulerConfig::new(0.1, 10));
    assert_eq!(e.training().optimizer.learning_rate(), None);
    assert!(e.training().optimizer.scheduler().is_some());
    e.training().validate().unwrap();
    let e = e.learning_rate(0.05);
    assert_eq!(e.training().optimizer.learning_rate(), Some(0.05));
    assert!(e.training().optimizer.scheduler().is_none());
    // A preset under a scheduler becomes its general form: same optimizer.
    let e = Experiment::new("unused", &device, data(), init)
        .optimizer_config(OptimizerConfig::sgd_momentum(0.1))
        .scheduler(CosineAnnealingLrSchedulerConfig::new(0.1, 10));
    let (_, general) = OptimizerConfig::sgd_momentum(0.1).to_burn();
    assert!(matches!(
        &e.training().optimizer,
        OptimizerConfig::Burn { optimizer, .. } if *optimizer == general
    ));
}

#[test]
fn a_learning_rate_needs_exactly_one_source() {
    let both = TrainingRecipe {
        optimizer: OptimizerConfig::Burn {
            learning_rate: Some(0.1),
            scheduler: Some(CosineAnnealingLrSchedulerConfig::new(0.1, 30).into()),
            optimizer: SgdConfig::new().into(),
        },
        ..tiny_recipe()
    };
    assert!(
        both.validate()
            .unwrap_err()
            .to_string()
            .contains("exactly one")
    );
    let scheduled_and_decayed = TrainingRecipe {
        schedule: LrSchedule::step(10, 0.1),
        ..adamw_cosine()
    };
    assert!(
        scheduled_and_decayed
            .validate()
            .unwrap_err()
            .to_string()
            .contains("leave `schedule` constant")
    );
    let bad_beta = TrainingRecipe {
        optimizer: OptimizerConfig::burn(1e-3, AdamWConfig::new().with_beta_1(1.5)),
        ..tiny_recipe()
    };
    assert!(
        bad_beta
            .validate()
            .unwrap_err()
            .to_string()
            .contains("beta_1")
    );
    let bad_cosine = TrainingRecipe {
        optimizer: OptimizerConfig::scheduled(
            AdamWConfig::new(),
            CosineAnnealingLrSchedulerConfig::new(2.0, 30),
        ),
        ..tiny_recipe()
    };
    assert!(
        bad_cosine
            .validate()
            .unwrap_err()
            .to_string()
            .contains("scheduler")
    );
}

#[test]
fn a_burn_optimizer_without_a_sparse_form_trains_densely_and_says_why() {
    use burn_lottery::sparse::{ExecutionPath, ExecutionReason, SparseTraining};
    let device = ndarray();
    let root = tempfile::tempdir().unwrap();
    let config = ImpConfig {
        training: TrainingRecipe {
            optimizer: OptimizerConfig::burn(3e-3, AdamWConfig::new()),
            ..tiny_recipe()
        },
        sparse_training: SparseTraining::below(0.9),
        ..common::tiny_imp_config("adamw_sparse", 1)
    };
    let report = Imp::new(config)
        .run(root.path(), &device, &data(), init, &mut Silent)
        .unwrap();
    let level_1 = report.summaries[1].execution.clone().unwrap();
    assert_eq!(level_1.path, ExecutionPath::Dense);
    assert_eq!(level_1.reason, ExecutionReason::UnsupportedOptimizer);
    assert!(level_1.detail.contains("adamw"), "{}", level_1.detail);
}
