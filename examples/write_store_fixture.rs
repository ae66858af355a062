//! Writes the small experiment directory that `tests/config_names.rs`
//! reopens with the current code (`tests/fixtures/store_v1/`): a two-level
//! IMP run of a tiny LeNet on synthetic 8x8 images, with Adam (so the stored
//! configuration holds a tagged optimizer) and the random-pruning control.
//!
//! The committed fixture was written by this example at commit eaf212c,
//! before configuration schema 2 (one tag key, canonical hashing): it is
//! the format every experiment stored by earlier releases has.
//!
//! ```sh
//! cargo run --features wgpu,cli --example write_store_fixture -- tests/fixtures/store_v1
//! ```

use std::path::PathBuf;
use std::sync::Arc;

use burn_lottery::data::{ExperimentData, ImageDataset, Normalization};
use burn_lottery::imp::{Controls, Imp, ImpConfig, RunOptions, Seeds, Silent};
use burn_lottery::models::LeNetConfig;
use burn_lottery::prune::MagnitudePrunerConfig;
use burn_lottery::train::recipe::TrainingRecipe;

/// The fixture's configuration (the test builds the same one).
fn config() -> ImpConfig {
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

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out: PathBuf = std::env::args()
        .nth(1)
        .ok_or("usage: write_store_fixture OUTPUT_DIR")?
        .into();
    let data = fixture_data()?;
    #[allow(deprecated)]
    let device = burn::tensor::Device::ndarray();
    let options = RunOptions {
        checkpoint_every: 0,
        ..RunOptions::default()
    };
    let report = Imp::new(config()).with_options(options).run(
        &out,
        &device,
        &data,
        |device, seed| {
            LeNetConfig::new()
                .with_input_size(64)
                .with_hidden1(6)
                .with_hidden2(5)
                .init_seeded(device, seed)
        },
        &mut Silent,
    )?;
    println!("{}", report.directory.display());
    // Schema 1's defaults, as `ImpConfig`'s hashing freezes them.
    println!("{}", serde_json::to_string(&ImpConfig::default())?);
    for preset in presets() {
        println!("{}", preset.directory_name());
    }
    println!("{}", report.table());
    Ok(())
}

/// 40 synthetic 8x8 grey images in 10 classes, the same set for training and
/// test.
fn fixture_data() -> Result<ExperimentData, Box<dyn std::error::Error>> {
    let images: Vec<u8> = (0..40 * 64)
        .map(|i| ((i * 37 + i / 64 * 11) % 256) as u8)
        .collect();
    let labels: Vec<u8> = (0..40).map(|i| (i % 10) as u8).collect();
    let dataset = Arc::new(ImageDataset::new(images, labels, 1, 8, 8, 10)?);
    Ok(ExperimentData {
        normalization: Normalization::from_dataset(&dataset),
        train: dataset.clone(),
        test: dataset,
        augmentation: None,
    })
}

/// The presets whose directory names the fixture pins.
fn presets() -> Vec<ImpConfig> {
    vec![
        ImpConfig::resnet20_cifar10(),
        ImpConfig::lenet_fashion_mnist(50_000, 0, 0),
        ImpConfig::lenet_fashion_mnist(8_000, 100, 1),
        config(),
        ImpConfig {
            name: "synthetic".into(),
            training: burn_lottery::train::recipe::TrainingRecipe {
                batch_size: 20,
                training_iterations: 30,
                optimizer: burn_lottery::train::recipe::OptimizerConfig::adam(3e-3),
                schedule: burn_lottery::train::schedule::LrSchedule::constant(),
                augment: false,
            },
            pruning: MagnitudePrunerConfig::new(0.2),
            levels: 3,
            rewind_iteration: 5,
            seeds: Seeds::all(0),
            ..ImpConfig::default()
        },
        ImpConfig {
            retrain: burn_lottery::imp::Retrain::FineTuning { iterations: 7500 },
            method: burn_lottery::imp::PruningMethod::OneShot,
            controls: Controls::random(true),
            ..ImpConfig::lenet_fashion_mnist(8_000, 500, 0)
        },
    ]
}
