//! Branches, the experiment layout, stored summaries and the data order
//! that every task shares: the shape the IMP runner and the stability
//! analysis are built on.

use crate::common::{data, init, ndarray, state, synthetic, tiny_imp_config};
use burn::data::dataloader::batcher::Batcher;
use burn::data::dataset::InMemDataset;
use burn::tensor::{Device, Int, Tensor, TensorData};
use burn_lottery::data::{LoaderConfig, Normalization, SeededLoader, SeededOrder};
use burn_lottery::imp::{
    Branch, Condition, Controls, Imp, ImpConfig, Layout, LevelSummary, RunOptions, Silent, Start,
};
use burn_lottery::models::{LeNet, cross_entropy};
use burn_lottery::stability::{BarrierOptions, StabilityAnalyzer};
use burn_lottery::task::{DataOrder, DatasetTask, MetricSpec, Metrics, Split, Task, TaskError};

#[test]
fn the_layout_keeps_every_path_of_existing_experiments() {
    // These strings are the on-disk format: experiments stored before the
    // runner was rebuilt around branches must still be found.
    let cases = [
        (Branch::Main, 3, "main/level_03"),
        (Branch::RandomReinit, 1, "branches/random_reinit/level_01"),
        (Branch::RandomPrune, 12, "branches/random_prune/level_12"),
        (Branch::DataOrder(7), 0, "branches/data_order_7/level_00"),
        (
            Branch::Stability {
                condition: Condition::Imp,
                seed: 11,
            },
            2,
            "branches/stability/imp/data_order_11/level_02",
        ),
        (
            Branch::Stability {
                condition: Condition::RandomPrune,
                seed: 12,
            },
            2,
            "branches/stability/random_prune/data_order_12/level_02",
        ),
    ];
    for (branch, level, dir) in cases {
        let files = Layout::level(&branch, level);
        assert_eq!(files.dir(), dir);
        assert_eq!(files.mask(), format!("{dir}/mask.bin"));
        assert_eq!(files.final_checkpoint(), format!("{dir}/final.ckpt"));
        assert_eq!(files.summary(), format!("{dir}/summary.json"));
        assert_eq!(files.progress(), format!("{dir}/progress.ckpt"));
        assert_eq!(files.outputs().len(), 4);
    }
    assert_eq!(Layout::REWIND, "rewind.ckpt");
    assert_eq!(Layout::CONFIG, "config.json");
    assert_eq!(Layout::MANIFEST, "manifest.json");
    assert_eq!(Layout::REPORT_CSV, "report.csv");
}

#[test]
fn branches_know_their_names_starts_and_data_orders() {
    let mut config = tiny_imp_config("b", 2);
    config.seeds.data_order = 3;
    config.seeds.augmentation = 4;
    config.training.augment = true;
    assert_eq!(Branch::Main.name(&config), "imp_rewind5");
    assert_eq!(Branch::Main.start(0, &config), Start::Init);
    assert_eq!(Branch::Main.start(1, &config), Start::Rewind);
    assert!(matches!(
        Branch::RandomReinit.start(1, &config),
        Start::Reinit(_)
    ));
    assert_ne!(
        Branch::RandomReinit.start(1, &config),
        Branch::RandomReinit.start(2, &config),
        "a fresh seed per level"
    );
    assert!(!Branch::RandomPrune.trains_at(0) && Branch::RandomPrune.trains_at(1));
    assert!(Branch::DataOrder(9).trains_at(0));
    let order = |b: Branch, config: &ImpConfig| {
        let o = b.data_order(config);
        (o.order_seed, o.augment_seed)
    };
    assert_eq!(order(Branch::Main, &config), (3, Some(4)));
    assert_eq!(order(Branch::RandomPrune, &config), (3, Some(4)));
    assert_eq!(order(Branch::DataOrder(9), &config), (9, Some(4)));
    let copy = |seed| Branch::Stability {
        condition: Condition::Imp,
        seed,
    };
    assert_eq!(order(copy(9), &config), (9, Some(9)));
    assert_eq!(
        order(copy(3), &config),
        (3, Some(4)),
        "the main line's own stream"
    );
    assert_eq!(copy(9).name(&config), "imp_rewind5_data_order_9");
    // A copy with the main line's data order is the main line's network,
    // except the dense level when rewinding to k > 0.
    assert_eq!(copy(3).same_network_as(1, &config), Some(Branch::Main));
    assert_eq!(copy(3).same_network_as(0, &config), None);
    assert_eq!(copy(9).same_network_as(1, &config), None);
    config.training.augment = false;
    assert_eq!(order(Branch::Main, &config), (3, None));
}

#[test]
fn summaries_stored_before_generic_tasks_still_read() {
    let legacy = r#"{
  "condition": "imp_rewind0", "level": 2, "kept": 64, "total": 100,
  "weights_remaining": 0.64, "test_accuracy": 0.875, "test_loss": 0.5,
  "final_train_loss": 0.25, "wall_seconds": 1.5
}"#;
    let summary: LevelSummary = serde_json::from_str(legacy).unwrap();
    assert_eq!(summary.metric("accuracy"), Some(0.875));
    assert_eq!(summary.metric("error"), Some(0.125));
    assert_eq!(summary.metric("loss"), Some(0.5));
    // Progress lines print metrics in name order.
    assert_eq!(
        summary.metrics.to_string(),
        "accuracy 0.8750, error 0.1250, loss 0.5000"
    );
    // Today's form round-trips.
    let json = serde_json::to_string(&summary).unwrap();
    assert!(json.contains("\"metrics\""));
    assert_eq!(
        serde_json::from_str::<LevelSummary>(&json).unwrap(),
        summary
    );
}

#[test]
fn one_seeded_order_serves_the_image_loader_and_burn_datasets() {
    let dataset = synthetic(50, 1);
    let loader = SeededLoader::new(
        dataset.clone(),
        LoaderConfig::new(8, Normalization::from_dataset(&dataset)).with_seeds(5, 0),
    )
    .unwrap();
    let order = SeededOrder::new(50, 8, 5).unwrap();
    for iteration in [0, 1, 6, 7, 13, 100] {
        assert_eq!(
            loader.batch_indices(iteration),
            order.batch_indices(iteration)
        );
    }
    assert_eq!(order.iterations_per_epoch(), 7);
    assert_eq!(
        order.batch_indices(6).len(),
        2,
        "the last batch of an epoch"
    );
    assert!(SeededOrder::new(0, 8, 5).is_err());
    assert!(SeededOrder::new(5, 0, 5).is_err());
}

/// Items are their own indices; a batch is the index vector.
#[derive(Clone)]
struct Indices;

impl Batcher<usize, Tensor<1, Int>> for Indices {
    fn batch(&self, items: Vec<usize>, device: &Device) -> Tensor<1, Int> {
        let n = items.len();
        let values: Vec<i64> = items.into_iter().map(|i| i as i64).collect();
        Tensor::from_data(TensorData::new(values, [n]), device)
    }
}

fn index_task() -> DatasetTask<LeNet, usize, Tensor<1, Int>> {
    DatasetTask::new(
        InMemDataset::new((0..50).collect::<Vec<usize>>()),
        InMemDataset::new((0..10).collect::<Vec<usize>>()),
        Indices,
        |_: &LeNet, batch: Tensor<1, Int>| batch.float().mean(),
        // The batch mean of the indices, and a constant.
        |_: &LeNet, batch: Tensor<1, Int>| {
            let mean: f32 = batch.float().mean().into_scalar();
            Metrics::new()
                .with("mean_index", f64::from(mean))
                .with("one", 1.0)
        },
        MetricSpec::lower_is_better("mean_index"),
    )
}

fn ints(t: Tensor<1, Int>) -> Vec<usize> {
    t.into_data()
        .try_to_vec::<i64>()
        .unwrap()
        .into_iter()
        .map(|i| i as usize)
        .collect()
}

#[test]
fn dataset_task_batches_follow_the_seeded_order_and_evaluation_weights_batches() {
    let task = index_task();
    let device = ndarray();
    let order = DataOrder {
        batch_size: 8,
        order_seed: 5,
        augment_seed: None,
    };
    let seeded = SeededOrder::new(50, 8, 5).unwrap();
    let batches: Vec<Vec<usize>> = Task::<LeNet>::batches(&task, &order, 5..9, &device)
        .unwrap()
        .map(|b| ints(b.unwrap()))
        .collect();
    for (i, batch) in (5..9).zip(&batches) {
        assert_eq!(*batch, seeded.batch_indices(i), "iteration {i}");
    }
    // Augmentation is refused with a clear error, not ignored.
    let augmenting = DataOrder {
        augment_seed: Some(1),
        ..order
    };
    let err = Task::<LeNet>::batches(&task, &augmenting, 0..1, &device)
        .err()
        .unwrap();
    assert!(matches!(err, TaskError::Invalid(_)), "{err}");

    // Evaluation: batches of 4 over 0..10 (means 1.5, 5.5, 8.5 with sizes
    // 4, 4, 2) average to the mean of 0..10 = 4.5.
    let model = init(&device, 0);
    let metrics = task.evaluate(&model, Split::Test, 4, &device).unwrap();
    assert_eq!(metrics.get("mean_index"), Some(4.5));
    assert_eq!(metrics.get("one"), Some(1.0));
    let subset = task
        .evaluate(&model, Split::TrainSubset(3), 2, &device)
        .unwrap();
    assert_eq!(subset.get("mean_index"), Some(1.0));
    assert!(task.evaluate(&model, Split::Test, 0, &device).is_err());
}

#[test]
fn a_metric_the_spec_names_but_evaluation_lacks_is_an_error() {
    let task = DatasetTask::new(
        InMemDataset::new(vec![0usize, 1]),
        InMemDataset::new(vec![0usize, 1]),
        Indices,
        |_: &LeNet, batch: Tensor<1, Int>| batch.float().mean(),
        |_: &LeNet, _| Metrics::new().with("mse", 0.0),
        MetricSpec::accuracy(),
    );
    let device = ndarray();
    let err = task
        .evaluate(&init(&device, 0), Split::Test, 2, &device)
        .unwrap_err();
    assert!(err.to_string().contains("accuracy"), "{err}");
}

#[test]
fn image_task_metrics_are_accuracy_error_and_loss() {
    let data = data();
    let device = ndarray().autodiff();
    let model = init(&device, 0);
    let metrics = data.evaluate(&model, Split::Test, 64, &device).unwrap();
    let accuracy = metrics.get("accuracy").unwrap();
    assert_eq!(metrics.get("error"), Some(1.0 - accuracy));
    assert!(metrics.get("loss").unwrap() > 0.0);
    assert_eq!(Task::<LeNet>::metrics(&data), MetricSpec::accuracy());
    // The loss of a batch is the cross-entropy of the model's logits.
    let order = DataOrder {
        batch_size: 16,
        order_seed: 0,
        augment_seed: None,
    };
    let batch = Task::<LeNet>::batches(&data, &order, 0..1, &device)
        .unwrap()
        .next()
        .unwrap()
        .unwrap();
    let expected: f32 =
        cross_entropy(model.forward(batch.images.clone()), batch.labels.clone()).into_scalar();
    let loss: f32 = data.loss(&model, batch).into_scalar();
    assert_eq!(loss, expected);
}

fn stability_config() -> ImpConfig {
    ImpConfig {
        controls: Controls::random(true),
        ..tiny_imp_config("branches_stability", 1)
    }
}

#[test]
fn a_lost_stability_copy_is_recomputed_like_any_level() {
    let out = tempfile::tempdir().unwrap();
    let device = ndarray();
    let data = data();
    let imp = Imp::new(stability_config()).with_options(RunOptions {
        eval_batch_size: 64,
        ..RunOptions::default()
    });
    let analyzer = StabilityAnalyzer::new(imp.clone(), out.path(), &data, init, &device)
        .with_options(BarrierOptions {
            points: 3,
            eval_batch_size: 64,
            ..BarrierOptions::default()
        });
    analyzer.run_experiment(&mut Silent).unwrap();
    let copy = analyzer
        .trained_copy(Condition::RandomPrune, 1, 21)
        .unwrap();
    let branch = Branch::Stability {
        condition: Condition::RandomPrune,
        seed: 21,
    };
    let files = Layout::level(&branch, 1);
    let dir = imp.directory(out.path());
    // A stability copy stores what every level stores.
    for file in files.outputs().iter().chain([&files.summary()]) {
        assert!(dir.join(file).exists(), "{file}");
    }
    // It trains under the random-pruning control's mask.
    let control_mask = std::fs::read(dir.join(Layout::level(&Branch::RandomPrune, 1).mask()));
    assert_eq!(
        std::fs::read(dir.join(files.mask())).unwrap(),
        control_mask.unwrap()
    );
    std::fs::remove_file(dir.join(files.final_checkpoint())).unwrap();
    let again = analyzer
        .trained_copy(Condition::RandomPrune, 1, 21)
        .unwrap();
    assert_eq!(state(&again), state(&copy), "recomputed, bit for bit");
    assert!(dir.join(files.final_checkpoint()).exists());
}

#[test]
fn the_experiment_report_names_the_task_metric() {
    let out = tempfile::tempdir().unwrap();
    let report = Imp::new(tiny_imp_config("report_metric", 1))
        .run(out.path(), &ndarray(), &data(), init, &mut Silent)
        .unwrap();
    assert_eq!(report.metric, burn_lottery::report::MetricLabel::accuracy());
    for (row, summary) in report.rows.iter().zip(&report.summaries) {
        assert_eq!(Some(row.value), summary.metric("accuracy"));
    }
}
