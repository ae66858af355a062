//! Lottery tickets of a model written for burn-train: an MLP on
//! Fashion-MNIST that implements burn-train's `TrainStep` and
//! `InferenceStep` (as it would for burn's `Learner`), with burn-train's
//! `AccuracyMetric` and `LossMetric`. The crate's [`StepTask`] takes the
//! loss from the model's own steps and the metrics from burn-train: no
//! loss or metric is written twice.
//!
//! * **Model.** 784-300-100-10 with ReLU (LeNet-300-100's shape), burn's
//!   `Linear` layers seeded with `burn_lottery::models::init_weights`; its
//!   `classify` method gives burn-train's `ClassificationOutput`
//!   (cross-entropy loss, logits, targets) to both steps.
//! * **Data.** Fashion-MNIST's 60,000 training and 10,000 test images as
//!   a burn `Dataset` of `(pixels, label)` items, normalized in the
//!   `Batcher` with the training set's mean and standard deviation.
//! * **IMP.** burn's `AdamWConfig` (weight decay 1e-4) with burn's cosine
//!   annealing scheduler from 1.2e-3, batch 60, `--iterations` per level
//!   (default 1000), rewinding to `--rewind` (default 100), pruning 20% of
//!   the remaining weights per level (fc3 at half that rate, as the paper
//!   does for LeNet's output layer) for `--levels` levels (default 5).
//!
//! ```sh
//! apt-get install -y dataset-fashion-mnist
//! cargo run --release --features wgpu,cli --example burn_train_mlp -- \
//!     --report docs/results/burn_train_mlp
//! ```

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use burn::data::dataloader::batcher::Batcher;
use burn::data::dataset::{Dataset, DatasetError};
use burn::lr_scheduler::cosine::CosineAnnealingLrSchedulerConfig;
use burn::module::Module;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::nn::{Linear, LinearConfig};
use burn::optim::AdamWConfig;
use burn::tensor::activation::relu;
use burn::tensor::{Device, Int, Tensor, TensorData};
use burn::train::metric::{AccuracyMetric, LossMetric};
use burn::train::{ClassificationOutput, InferenceStep, TrainOutput, TrainStep};
use burn_lottery::data::ImageDataset;
use burn_lottery::device::device_by_name;
use burn_lottery::models::init_weights;
use burn_lottery::prelude::*;
use burn_lottery::report::{self, Table};
use clap::Parser;

#[derive(Parser, Debug)]
#[command(about = "IMP with rewinding for a burn-train model (TrainStep/InferenceStep)")]
struct Args {
    /// Directory with the Fashion-MNIST IDX files (default: $FASHION_MNIST_DIR,
    /// Debian's /usr/share/datasets/fashion-mnist, or a download).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Where experiments are stored (one directory per configuration).
    #[arg(long, default_value = "experiments")]
    output: PathBuf,
    /// Where the report goes.
    #[arg(long, default_value = "experiments/burn_train_mlp")]
    report: PathBuf,
    /// Device: flex, ndarray or wgpu (as compiled in).
    #[arg(long, default_value = "flex")]
    device: String,
    /// Training iterations per level.
    #[arg(long, default_value_t = 1000)]
    iterations: u64,
    /// Pruning levels after the dense level 0.
    #[arg(long, default_value_t = 5)]
    levels: usize,
    /// Iteration the surviving weights are rewound to.
    #[arg(long, default_value_t = 100)]
    rewind: u64,
}

/// The model, as a burn-train user writes it.
#[derive(Module, Debug)]
struct Mlp {
    fc1: Linear,
    fc2: Linear,
    fc3: Linear,
}

/// Images `[n, 784]` and labels `[n]`.
type Batch = (Tensor<2>, Tensor<1, Int>);

impl Mlp {
    fn init(device: &Device, seed: u64) -> Self {
        let model = Self {
            fc1: LinearConfig::new(784, 300).init(device),
            fc2: LinearConfig::new(300, 100).init(device),
            fc3: LinearConfig::new(100, 10).init(device),
        };
        init_weights(model, seed)
    }

    /// The loss and outputs both steps report.
    fn classify(&self, (images, labels): Batch) -> ClassificationOutput {
        let logits = self
            .fc3
            .forward(relu(self.fc2.forward(relu(self.fc1.forward(images)))));
        let loss = CrossEntropyLossConfig::new()
            .init(&logits.device())
            .forward(logits.clone(), labels.clone());
        ClassificationOutput::new(loss, logits, labels)
    }
}

impl TrainStep for Mlp {
    type Input = Batch;
    type Output = ClassificationOutput;

    fn step(&self, batch: Batch) -> TrainOutput<ClassificationOutput> {
        let output = self.classify(batch);
        TrainOutput::new(self, output.loss.backward(), output)
    }
}

impl InferenceStep for Mlp {
    type Input = Batch;
    type Output = ClassificationOutput;

    fn step(&self, batch: Batch) -> ClassificationOutput {
        self.classify(batch)
    }
}

/// One split of Fashion-MNIST as a burn `Dataset` of `(pixels, label)`.
struct Images(Arc<ImageDataset>);

impl Dataset<(Vec<u8>, u8)> for Images {
    fn get(&self, index: usize) -> Result<(Vec<u8>, u8), DatasetError> {
        Ok((self.0.image(index).to_vec(), self.0.label(index)))
    }

    fn len(&self) -> usize {
        self.0.len()
    }
}

/// Normalizes pixels with the training set's mean and standard deviation.
#[derive(Clone)]
struct Normalize {
    mean: f32,
    std: f32,
}

impl Batcher<(Vec<u8>, u8), Batch> for Normalize {
    fn batch(&self, items: Vec<(Vec<u8>, u8)>, device: &Device) -> Batch {
        let n = items.len();
        let pixels: Vec<f32> = items
            .iter()
            .flat_map(|(image, _)| image.iter())
            .map(|&p| (f32::from(p) / 255.0 - self.mean) / self.std)
            .collect();
        let labels: Vec<i64> = items.iter().map(|(_, label)| i64::from(*label)).collect();
        (
            Tensor::from_data(TensorData::new(pixels, [n, 784]), device),
            Tensor::from_data(TensorData::new(labels, [n]), device),
        )
    }
}

fn main() {
    if let Err(error) = run() {
        eprintln!("error: {error}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let device = device_by_name(&args.device)?;
    let data = ExperimentData::fashion_mnist(args.data_dir.as_deref())?;
    let (mean, std) = data.train.channel_mean_std();
    let normalize = Normalize {
        mean: mean[0],
        std: std[0],
    };
    let task = StepTask::<Mlp, _, _>::new(Images(data.train), Images(data.test), normalize)
        .metric(AccuracyMetric::new())
        .metric(LossMetric::new());

    let started = Instant::now();
    let experiment = Experiment::new(&args.output, &device, task, Mlp::init)
        .name("burn_train_mlp")
        .batches(60, args.iterations)
        .optimizer(AdamWConfig::new().with_weight_decay(1e-4))
        .scheduler(CosineAnnealingLrSchedulerConfig::new(
            1.2e-3,
            args.iterations as usize,
        ));
    let imp = experiment.imp(|c| ImpConfig {
        levels: args.levels,
        rewind_iteration: args.rewind,
        pruning: MagnitudePrunerConfig::new(0.2).with_layer_rate("fc3.weight", 0.1),
        ..c
    });
    eprintln!("experiment: {}", imp.directory().display());
    let result = imp.run_with(&mut Progress::new())?;

    // The reported metric is burn-train's first one: `Accuracy` as `accuracy`.
    std::fs::create_dir_all(&args.report)?;
    report::write_csv(
        &result.rows,
        &result.metric,
        &args.report.join("report.csv"),
    )?;
    println!("{}", Table::new(&result.rows, result.metric.clone()));
    println!(
        "report: {} ({:.1} min)",
        args.report.join("report.csv").display(),
        started.elapsed().as_secs_f64() / 60.0
    );
    Ok(())
}
