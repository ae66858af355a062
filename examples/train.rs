//! Trains a dense network with one of the preset recipes and reports the
//! training loss and the test accuracy.
//!
//! ```text
//! cargo run --features wgpu --example train -- \
//!     --model lenet --dataset fashion-mnist --device ndarray --iterations 8000 --seed 0
//! cargo run --features wgpu --example train -- \
//!     --model resnet20 --dataset fashion-mnist --device flex --iterations 200 \
//!     --batch-size 64 --log-every 10 --test-limit 1000
//! ```
//!
//! Recipes: `lenet` uses [`TrainingRecipe::lenet_fashion_mnist`] (Adam 1.2e-3,
//! batch 60, constant learning rate, 50,000 iterations); `resnet20` uses
//! [`TrainingRecipe::resnet20_cifar10`] (SGD momentum 0.9, lr 0.1, weight decay
//! 1e-4, batch 128, 62,560 iterations, lr x0.1 at 31,280 and 46,920,
//! augmentation). `--iterations N` shortens (or lengthens) the run; a
//! multi-step schedule's milestones are scaled by `N / T` (rounded, so 200
//! iterations drop the lr at 100 and 150), a constant schedule stays constant.
//!
//! Images are normalized per channel: CIFAR-10 with its usual constants,
//! Fashion-MNIST with the training set's mean and std. Augmentation (random
//! crop with padding 4, horizontal flip) follows the recipe unless
//! `--no-augment`. With ResNet-20 on Fashion-MNIST the network takes 1x28x28
//! images (`input_channels = 1`); it is fully convolutional with global
//! average pooling, so the size is no problem.
//!
//! The model is initialized from `--seed` (the same values on every
//! backend), and the data order and augmentation are drawn from it too, so
//! a run is reproducible. The loss printed every `--log-every` iterations is
//! the mean training batch loss since the previous line.

use std::sync::Arc;
use std::time::Instant;

use burn::tensor::Device;
use burn_lottery::data::{
    Augmentation, DataSource, DatasetSplits, ExperimentData, ImageDataset, Normalization,
    load_cifar10, load_fashion_mnist,
};
use burn_lottery::device::device_by_name;
use burn_lottery::mask::{Mask, ParamSelector};
use burn_lottery::models::{Classifier, LeNetConfig, ResNetConfig};
use burn_lottery::params::num_trainable_params;
use burn_lottery::train::masked::MaskedOptimizer;
use burn_lottery::train::recipe::TrainingRecipe;
use burn_lottery::train::schedule::LrDecay;
use burn_lottery::train::trainer::{Evaluation, TrainObserver, TrainOptions, Trainer, evaluate};
use clap::{Parser, ValueEnum};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum ModelKind {
    /// LeNet-300-100 (fully connected), LeNet recipe.
    Lenet,
    /// ResNet-20, CIFAR ResNet recipe.
    Resnet20,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum DatasetKind {
    FashionMnist,
    Cifar10,
}

/// Train a dense network with a preset recipe.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// The network (and its recipe).
    #[arg(long, value_enum, default_value = "lenet")]
    model: ModelKind,
    /// The dataset.
    #[arg(long, value_enum, default_value = "fashion-mnist")]
    dataset: DatasetKind,
    /// Directory holding the dataset files (default: the usual search order,
    /// then the cache, then a download).
    #[arg(long)]
    data_dir: Option<std::path::PathBuf>,
    /// Backend: flex, ndarray or wgpu (as compiled in).
    #[arg(long, default_value = "flex")]
    device: String,
    /// Training length in iterations (default: the recipe's).
    #[arg(long)]
    iterations: Option<u64>,
    /// Batch size (default: the recipe's).
    #[arg(long)]
    batch_size: Option<usize>,
    /// Seed of the initialization, the data order and the augmentation.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Evaluate on the test set every this many iterations (0: only at the end).
    #[arg(long, default_value_t = 0)]
    eval_every: u64,
    /// Print the mean training loss every this many iterations.
    #[arg(long, default_value_t = 500)]
    log_every: u64,
    /// Evaluate on the first N test images only (0: all).
    #[arg(long, default_value_t = 0)]
    test_limit: usize,
    /// Batch size of the evaluation.
    #[arg(long, default_value_t = 500)]
    eval_batch_size: usize,
    /// Turn the recipe's augmentation off.
    #[arg(long)]
    no_augment: bool,
}

/// Prints the mean loss every `every` iterations and the throughput.
struct Logger {
    every: u64,
    total: u64,
    batch_size: usize,
    sum: f64,
    count: u64,
    start: Instant,
    last: (Instant, u64),
    /// Seconds spent in evaluation, excluded from the throughput.
    paused: f64,
}

impl Logger {
    /// A logger printing every `every` of `total` iterations of
    /// `batch_size` images, its clock started now.
    fn new(every: u64, total: u64, batch_size: usize) -> Self {
        Self {
            every: every.max(1),
            total,
            batch_size,
            sum: 0.0,
            count: 0,
            start: Instant::now(),
            last: (Instant::now(), 0),
            paused: 0.0,
        }
    }

    /// Leaves `time` (an evaluation) out of the throughput.
    fn pause(&mut self, time: std::time::Duration) {
        self.paused += time.as_secs_f64();
        self.last.0 += time;
    }

    /// The last line: the final accuracy and the training throughput.
    fn finish(&self, eval: &Evaluation) {
        let train_secs = self.start.elapsed().as_secs_f64() - self.paused;
        println!(
            "final: test accuracy {:.2}% on {} images after {} iterations; \
             training {train_secs:.1}s ({:.0} images/s), evaluation {:.1}s",
            100.0 * eval.accuracy,
            eval.examples,
            self.total,
            (self.total as f64 * self.batch_size as f64) / train_secs,
            self.paused
        );
    }
}

impl<M> TrainObserver<M> for Logger {
    fn after_step(&mut self, completed: u64, loss: Option<f64>, learning_rate: f64) {
        if let Some(loss) = loss {
            self.sum += loss;
            self.count += 1;
        }
        if (completed.is_multiple_of(self.every) || completed == self.total) && self.count > 0 {
            let now = Instant::now();
            let steps = completed - self.last.1;
            let rate = (steps as f64 * self.batch_size as f64)
                / (now - self.last.0).as_secs_f64().max(1e-9);
            println!(
                "iter {completed:>6}/{} loss {:.4} lr {learning_rate:.3e} {:>8.0} images/s elapsed {:.1}s",
                self.total,
                self.sum / self.count as f64,
                rate,
                self.start.elapsed().as_secs_f64() - self.paused,
            );
            self.sum = 0.0;
            self.count = 0;
            self.last = (now, completed);
        }
    }
}

fn load(args: &Args) -> Result<DatasetSplits, Box<dyn std::error::Error>> {
    let source = match args.dataset {
        DatasetKind::FashionMnist => DataSource::fashion_mnist(),
        DatasetKind::Cifar10 => DataSource::cifar10(),
    };
    let source = match &args.data_dir {
        Some(dir) => source.with_dir(dir),
        None => source,
    };
    Ok(match args.dataset {
        DatasetKind::FashionMnist => load_fashion_mnist(&source)?,
        DatasetKind::Cifar10 => load_cifar10(&source)?,
    })
}

/// The recipe of `model`, with the length and batch size overridden.
fn recipe(args: &Args) -> TrainingRecipe {
    let mut recipe = match args.model {
        ModelKind::Lenet => TrainingRecipe::lenet_fashion_mnist(),
        ModelKind::Resnet20 => TrainingRecipe::resnet20_cifar10(),
    };
    if let Some(n) = args.iterations {
        let t = recipe.training_iterations;
        if let LrDecay::MultiStep { milestones, .. } = &mut recipe.schedule.decay {
            let mut scaled: Vec<u64> = milestones
                .iter()
                .map(|&m| ((m as f64) * n as f64 / t as f64).round() as u64)
                .filter(|&m| m > 0 && m < n)
                .collect();
            scaled.dedup();
            *milestones = scaled;
        }
        recipe.schedule.warmup_iterations =
            (recipe.schedule.warmup_iterations as f64 * n as f64 / t as f64).round() as u64;
        recipe.training_iterations = n;
    }
    if let Some(b) = args.batch_size {
        recipe.batch_size = b;
    }
    if args.no_augment {
        recipe.augment = false;
    }
    recipe
}

fn run<M: Classifier>(
    model: M,
    args: &Args,
    recipe: &TrainingRecipe,
    data: &DatasetSplits,
    device: &Device,
) -> Result<(), Box<dyn std::error::Error>> {
    println!(
        "model {:?}: {} trainable parameters",
        args.model,
        num_trainable_params(&model)
    );
    let normalization = match args.dataset {
        DatasetKind::Cifar10 => Normalization::cifar10(),
        DatasetKind::FashionMnist => Normalization::from_dataset(&data.train),
    };
    let task = ExperimentData {
        train: Arc::new(data.train.clone()),
        test: Arc::new(data.test.clone()),
        normalization: normalization.clone(),
        augmentation: Some(Augmentation::cifar10()),
    };
    let order = recipe.data_order(args.seed, args.seed);
    let test: ImageDataset = if args.test_limit > 0 && args.test_limit < data.test.len() {
        data.test.subset(0..args.test_limit)?
    } else {
        data.test.clone()
    };

    let mask = Mask::dense(&model, &ParamSelector::default())?;
    let mut optimizer = MaskedOptimizer::new(recipe.optimizer.init(), &mask, &model, device)?;
    let total = recipe.training_iterations;
    let mut logger = Logger::new(args.log_every, total, recipe.batch_size);
    let options = TrainOptions { loss_every: 1 };
    let chunk = if args.eval_every == 0 {
        total
    } else {
        args.eval_every
    };
    let mut model = model;
    let mut done = 0;
    while done < total {
        let end = (done + chunk).min(total);
        model = Trainer::new(recipe, &task, device)
            .with_options(options.clone())
            .train(model, &mut optimizer, done..end, &order, &mut logger)?;
        done = end;
        let eval_start = Instant::now();
        let eval = evaluate(&model, &test, &normalization, args.eval_batch_size, device)?;
        let eval_time = eval_start.elapsed();
        logger.pause(eval_time);
        println!(
            "eval iter {done:>6}: test loss {:.4} accuracy {:.2}% ({} images, {:.1}s)",
            eval.loss,
            100.0 * eval.accuracy,
            eval.examples,
            eval_time.as_secs_f64()
        );
        if done == total {
            logger.finish(&eval);
        }
    }
    Ok(())
}

fn main() {
    // Keep freed buffers for reuse (faster CPU steps; see burn_lottery::alloc).
    burn_lottery::alloc::retain_freed_memory();
    if let Err(e) = main_with(Args::parse()) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn main_with(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let device = device_by_name(&args.device)?.autodiff();
    let recipe = recipe(&args);
    recipe.validate()?;
    let data = load(&args)?;
    println!(
        "{:?} on {:?} ({} train / {} test images {:?}), device {}, seed {}",
        args.model,
        args.dataset,
        data.train.len(),
        data.test.len(),
        data.train.image_shape(),
        args.device,
        args.seed
    );
    println!("recipe: {}", serde_json::to_string(&recipe)?);
    let channels = data.train.channels();
    match args.model {
        ModelKind::Lenet => {
            let model = LeNetConfig::lenet_300_100()
                .with_input_size(data.train.image_len())
                .with_num_classes(data.train.num_classes())
                .init_seeded(&device, args.seed);
            run(model, &args, &recipe, &data, &device)
        }
        ModelKind::Resnet20 => {
            let model = ResNetConfig::resnet20()
                .with_input_channels(channels)
                .with_num_classes(data.train.num_classes())
                .init_seeded(&device, args.seed);
            run(model, &args, &recipe, &data, &device)
        }
    }
}
