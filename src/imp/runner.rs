//! The IMP loop: train dense, prune, rewind, retrain; controls as branches.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use super::config::ImpConfig;
use super::store::{ExperimentStore, StoreError};
use crate::data::{
    Augmentation, DataError, DataSource, ImageDataset, LoaderConfig, Normalization, SeededLoader,
    load_cifar10, load_fashion_mnist,
};
use crate::mask::{Mask, MaskError};
use crate::models::Classifier;
use crate::prune::{PruneError, Pruner, random_mask_like};
use crate::report::{self, MetricLabel, ReportError, ReportRow, Table};
use crate::rewind::{RewindCheckpoint, RewindError};
use crate::seed::derive_seed;
use crate::train::masked::MaskedOptimizer;
use crate::train::trainer::{
    Evaluation, TrainError, TrainObserver, TrainOptions, Trainer, evaluate,
};

/// Errors of an IMP experiment. Each wraps the failing concern's own error.
#[derive(Debug, thiserror::Error)]
pub enum ImpError {
    /// The configuration is invalid.
    #[error("invalid IMP configuration: {0}")]
    Config(String),
    /// Building or validating a mask failed.
    #[error(transparent)]
    Mask(#[from] MaskError),
    /// Pruning failed.
    #[error(transparent)]
    Prune(#[from] PruneError),
    /// Saving or restoring a checkpoint failed.
    #[error(transparent)]
    Rewind(#[from] RewindError),
    /// Training failed (e.g. the loss became NaN).
    #[error("{condition} level {level}: {source}")]
    Train {
        /// Condition being trained.
        condition: String,
        /// Level being trained.
        level: usize,
        /// The error.
        source: TrainError,
    },
    /// The experiment directory failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The data pipeline failed.
    #[error(transparent)]
    Data(#[from] DataError),
    /// The model does not fit the data.
    #[error(transparent)]
    Model(#[from] crate::models::ModelConfigError),
    /// Writing the report failed.
    #[error(transparent)]
    Report(#[from] ReportError),
}

/// Training and test data of an experiment.
#[derive(Debug, Clone)]
pub struct ExperimentData {
    /// Training set.
    pub train: Arc<ImageDataset>,
    /// Test set (accuracy reported at the end of every level).
    pub test: Arc<ImageDataset>,
    /// Per-channel normalization (e.g. the training set's statistics).
    pub normalization: Normalization,
    /// Augmentation used when the recipe enables it.
    pub augmentation: Option<Augmentation>,
}

impl ExperimentData {
    /// Fashion-MNIST from `dir` (or the lookup of [`DataSource::fashion_mnist`]:
    /// `$FASHION_MNIST_DIR`, Debian's package, the cache, a download),
    /// normalized by the training set's statistics, without augmentation.
    pub fn fashion_mnist(dir: Option<&Path>) -> Result<Self, DataError> {
        let source = match dir {
            Some(dir) => DataSource::fashion_mnist().with_dir(dir),
            None => DataSource::fashion_mnist(),
        };
        let splits = load_fashion_mnist(&source)?;
        Ok(Self {
            normalization: Normalization::from_dataset(&splits.train),
            train: Arc::new(splits.train),
            test: Arc::new(splits.test),
            augmentation: None,
        })
    }

    /// CIFAR-10 from `dir` (or the lookup of [`DataSource::cifar10`],
    /// downloading when absent), with the reference normalization and
    /// augmentation (random crop with padding 4, horizontal flip).
    pub fn cifar10(dir: Option<&Path>) -> Result<Self, DataError> {
        let source = match dir {
            Some(dir) => DataSource::cifar10().with_dir(dir),
            None => DataSource::cifar10(),
        };
        let splits = load_cifar10(&source)?;
        Ok(Self {
            train: Arc::new(splits.train),
            test: Arc::new(splits.test),
            normalization: Normalization::cifar10(),
            augmentation: Some(Augmentation::cifar10()),
        })
    }
}

/// Operational settings that do not change results (not part of the
/// experiment's hash).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RunOptions {
    /// Save a resumable checkpoint of the level in progress every this many
    /// iterations (0 = never; default 1000).
    pub checkpoint_every: u64,
    /// Record the training loss every this many iterations (default 100).
    pub log_every: u64,
    /// Batch size of evaluation (default 1000).
    pub eval_batch_size: usize,
    /// Options of the training loop.
    pub train: TrainOptions,
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            checkpoint_every: 1000,
            log_every: 100,
            eval_batch_size: 1000,
            train: TrainOptions::default(),
        }
    }
}

/// What one trained network (a level of a condition) achieved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LevelSummary {
    /// Condition (`imp_rewind500`, `random_reinit`, `random_prune`).
    pub condition: String,
    /// Pruning level.
    pub level: usize,
    /// Kept prunable weights.
    pub kept: usize,
    /// All prunable weights.
    pub total: usize,
    /// `kept / total`.
    pub weights_remaining: f64,
    /// Test accuracy at the end of training.
    pub test_accuracy: f64,
    /// Test loss at the end of training.
    pub test_loss: f64,
    /// The last recorded training loss.
    pub final_train_loss: Option<f64>,
    /// Wall-clock seconds of training and evaluation (of the last session
    /// that worked on the level).
    pub wall_seconds: f64,
}

impl LevelSummary {
    /// The summary of a network trained under `mask` since `started` and
    /// evaluated as `evaluation`.
    pub(crate) fn new(
        condition: String,
        level: usize,
        mask: &Mask,
        evaluation: &Evaluation,
        final_train_loss: Option<f64>,
        started: Instant,
    ) -> Self {
        Self {
            condition,
            level,
            kept: mask.kept_count(),
            total: mask.total_count(),
            weights_remaining: mask.density(),
            test_accuracy: evaluation.accuracy,
            test_loss: evaluation.loss,
            final_train_loss,
            wall_seconds: started.elapsed().as_secs_f64(),
        }
    }
}

/// Receives progress of an experiment; every method defaults to nothing.
pub trait ImpObserver {
    /// A level starts training (or is found finished, `skipped = true`).
    fn level_started(&mut self, condition: &str, level: usize, density: f64, range: (u64, u64)) {
        let _ = (condition, level, density, range);
    }
    /// A training step finished; `loss` when it was read.
    fn step(&mut self, completed: u64, loss: Option<f64>) {
        let _ = (completed, loss);
    }
    /// A level is done (`skipped`: it was already stored and was not trained).
    fn level_finished(&mut self, summary: &LevelSummary, skipped: bool) {
        let _ = (summary, skipped);
    }
    /// A stored file was found unusable (it fails its checksum or does not
    /// parse) and was discarded; the work it held is recomputed. Only
    /// resumable progress is discarded this way: a finished level's file that
    /// fails stops the run with an error naming it.
    fn file_discarded(&mut self, file: &Path, reason: &str) {
        let _ = (file, reason);
    }
    /// Asked after every step: `true` stops the run (as an interruption
    /// would: the level resumes from its last periodic checkpoint next time).
    fn should_stop(&mut self) -> bool {
        false
    }
}

/// An observer that does nothing.
pub struct Silent;

impl ImpObserver for Silent {}

/// The result of an experiment.
#[derive(Debug, Clone)]
pub struct ImpReport {
    /// The experiment directory.
    pub directory: PathBuf,
    /// One row per trained network.
    pub rows: Vec<ReportRow>,
    /// One summary per trained network.
    pub summaries: Vec<LevelSummary>,
    /// Levels (of any condition) that were trained in this run, not found finished.
    pub trained_levels: usize,
}

/// An IMP experiment: `Imp::new(config).run(...)`.
#[derive(Debug, Clone)]
pub struct Imp {
    config: ImpConfig,
    options: RunOptions,
}

/// How a level's starting weights are made.
#[derive(Clone, Copy)]
enum Start {
    /// Level 0: the seeded initialization.
    Init,
    /// Rewind the survivors to iteration k.
    Rewind,
    /// Fresh weights from this seed (random reinitialization control).
    Reinit(u64),
}

const REWIND_FILE: &str = "rewind.ckpt";
const METRICS_HEADER: &str = "name,iteration,value\n";

/// The lines of a metrics CSV (`name,iteration,value`) up to `iteration`.
fn metrics_up_to(csv: &str, iteration: u64) -> Result<String, String> {
    let mut lines = csv.lines();
    if lines.next() != Some(METRICS_HEADER.trim_end()) {
        return Err("the metrics do not start with their header".into());
    }
    let mut kept = String::from(METRICS_HEADER);
    for line in lines {
        let at: u64 = line
            .split(',')
            .nth(1)
            .and_then(|i| i.parse().ok())
            .ok_or_else(|| format!("malformed metrics line {line:?}"))?;
        if at <= iteration {
            kept.push_str(line);
            kept.push('\n');
        }
    }
    Ok(kept)
}

impl Imp {
    /// An experiment with default [`RunOptions`].
    pub fn new(config: ImpConfig) -> Self {
        Self {
            config,
            options: RunOptions::default(),
        }
    }

    /// Sets the operational options.
    pub fn with_options(mut self, options: RunOptions) -> Self {
        self.options = options;
        self
    }

    /// The configuration.
    pub fn config(&self) -> &ImpConfig {
        &self.config
    }

    /// Checks the configuration before any work starts.
    pub fn validate(&self) -> Result<(), ImpError> {
        let c = &self.config;
        c.training
            .validate()
            .map_err(|e| ImpError::Config(e.to_string()))?;
        c.pruning.validate()?;
        if c.rewind_iteration > c.training.training_iterations {
            return Err(ImpError::Config(format!(
                "rewind_iteration {} is beyond the training length {}",
                c.rewind_iteration, c.training.training_iterations
            )));
        }
        if let Some(d) = c.target_density
            && !(d.is_finite() && d > 0.0 && d < 1.0)
        {
            return Err(ImpError::Config(format!(
                "target_density must be in (0, 1), got {d}"
            )));
        }
        if self.options.eval_batch_size == 0 {
            return Err(ImpError::Config("eval_batch_size must be > 0".into()));
        }
        Ok(())
    }

    /// The experiment directory under `output_root`.
    pub fn directory(&self, output_root: &Path) -> PathBuf {
        output_root.join(self.config.directory_name())
    }

    /// Runs (or resumes) the experiment under `output_root`, on `device`
    /// (an autodiff device is made from it). `init(device, seed)` builds the
    /// model with its seeded initialization.
    ///
    /// Finished levels are read back, not retrained; a level interrupted
    /// after a periodic checkpoint continues from it.
    pub fn run<M, F>(
        &self,
        output_root: &Path,
        device: &Device,
        data: &ExperimentData,
        init: F,
        observer: &mut dyn ImpObserver,
    ) -> Result<ImpReport, ImpError>
    where
        M: Classifier,
        F: Fn(&Device, u64) -> M,
    {
        self.validate()?;
        let device = device.clone().autodiff();
        let config = &self.config;
        let directory = self.directory(output_root);
        let pruner = config.pruning.init()?;
        // The selector is checked against the model before the experiment
        // directory is created: a refused configuration leaves nothing behind.
        let template = init(&device, config.seeds.init);
        crate::models::check_fits_data(
            &template,
            data.train.image_shape(),
            data.train.num_classes(),
            &device,
        )?;
        let dense = Mask::dense(&template, &config.selector)?;
        drop(template);
        let mut store = config.open_store(&directory)?;
        // The rewind point is shared by every level: check it up front.
        if store.contains(REWIND_FILE) {
            store.read(REWIND_FILE)?;
        }

        let mut run = LevelRunner {
            imp: self,
            store: &mut store,
            device: &device,
            data,
            init: &init,
            observer,
            trained: 0,
        };
        let main = config.condition();
        let mut summaries = Vec::new();
        let mut mask = dense;
        for level in 0..=config.levels {
            let start = if level == 0 {
                Start::Init
            } else {
                Start::Rewind
            };
            if level > 0 {
                mask = run.next_mask(level, &mask, &pruner)?;
            }
            summaries.push(run.level(&main, "main", level, &mask, start, None)?);
            for &seed in &config.controls.data_orders {
                let condition = format!("data_order_{seed}");
                let line = format!("branches/{condition}");
                summaries.push(run.level(
                    &condition,
                    &line,
                    level,
                    &mask,
                    Start::Rewind,
                    Some(seed),
                )?);
            }
            if level > 0 && config.controls.random_reinit {
                let seed = derive_seed(config.seeds.init, &format!("random_reinit/{level}"));
                summaries.push(run.level(
                    "random_reinit",
                    "branches/random_reinit",
                    level,
                    &mask,
                    Start::Reinit(seed),
                    None,
                )?);
            }
            if level > 0 && config.controls.random_prune {
                let path = format!("branches/random_prune/level_{level:02}/mask.bin");
                let random = if run.store.contains(&path) {
                    Mask::from_bytes(&run.store.read(&path)?)?
                } else {
                    let seed = derive_seed(config.seeds.init, &format!("random_prune/{level}"));
                    let random = random_mask_like(&mask, seed);
                    run.store.write(&path, &random.to_bytes())?;
                    random
                };
                summaries.push(run.level(
                    "random_prune",
                    "branches/random_prune",
                    level,
                    &random,
                    Start::Rewind,
                    None,
                )?);
            }
            if config.target_density.is_some_and(|t| mask.density() <= t) {
                break;
            }
        }
        let trained_levels = run.trained;
        let rows: Vec<ReportRow> = summaries
            .iter()
            .map(|s| ReportRow {
                condition: s.condition.clone(),
                seed: config.seeds.init,
                level: s.level,
                weights_remaining: s.weights_remaining,
                value: s.test_accuracy,
            })
            .collect();
        store.write(
            "report.csv",
            report::to_csv(&rows, &MetricLabel::accuracy()).as_bytes(),
        )?;
        // The plot is drawn to a temporary file, then stored atomically.
        let plot = directory.join(format!(".report.svg.tmp-{}", std::process::id()));
        report::plot_accuracy_vs_weights(&rows, &config.name, &plot)?;
        let svg = std::fs::read(&plot).map_err(|source| StoreError::Io {
            path: plot.clone(),
            source,
        });
        let _ = std::fs::remove_file(&plot);
        store.write("report.svg", &svg?)?;
        Ok(ImpReport {
            directory,
            rows,
            summaries,
            trained_levels,
        })
    }
}

impl ImpReport {
    /// The report as a terminal table.
    pub fn table(&self) -> Table<'_> {
        Table::new(&self.rows, MetricLabel::accuracy())
    }
}

struct LevelRunner<'a, F> {
    imp: &'a Imp,
    store: &'a mut ExperimentStore,
    device: &'a Device,
    data: &'a ExperimentData,
    init: &'a F,
    observer: &'a mut dyn ImpObserver,
    trained: usize,
}

impl<M, F> LevelRunner<'_, F>
where
    M: Classifier,
    F: Fn(&Device, u64) -> M,
{
    fn template(&self) -> M {
        (self.init)(self.device, self.imp.config.seeds.init)
    }

    /// The mask of a main-line level: stored, or pruned from the previous
    /// level's trained weights.
    fn next_mask(
        &mut self,
        level: usize,
        previous: &Mask,
        pruner: &impl Pruner,
    ) -> Result<Mask, ImpError> {
        let path = format!("main/level_{level:02}/mask.bin");
        if self.store.contains(&path) {
            return Ok(Mask::from_bytes(&self.store.read(&path)?)?);
        }
        let final_path = format!("main/level_{:02}/final.ckpt", level - 1);
        let trained = RewindCheckpoint::from_bytes(&self.store.read(&final_path)?)?
            .restore(self.template())?;
        let mask = pruner.next_mask(&trained, previous)?;
        self.store.write(&path, &mask.to_bytes())?;
        Ok(mask)
    }

    /// The level's periodic checkpoint and the metrics recorded up to it,
    /// or the file that cannot be used and why.
    fn read_progress(
        &self,
        progress_path: &str,
        metrics_path: &str,
    ) -> Result<(RewindCheckpoint, String), (String, String)> {
        let bytes = self
            .store
            .read(progress_path)
            .map_err(|e| (progress_path.to_string(), e.to_string()))?;
        let checkpoint = RewindCheckpoint::from_bytes(&bytes)
            .map_err(|e| (progress_path.to_string(), e.to_string()))?;
        let metrics = if self.store.contains(metrics_path) {
            let bytes = self
                .store
                .read(metrics_path)
                .map_err(|e| (metrics_path.to_string(), e.to_string()))?;
            String::from_utf8(bytes).map_err(|e| (metrics_path.to_string(), e.to_string()))?
        } else {
            String::from(METRICS_HEADER)
        };
        // The metrics are saved just before the checkpoint: a run killed
        // between the two leaves metrics newer than the checkpoint. Lines
        // past the checkpoint's iteration are logged again on resume.
        let metrics = metrics_up_to(&metrics, checkpoint.iteration())
            .map_err(|reason| (metrics_path.to_string(), reason))?;
        Ok((checkpoint, metrics))
    }

    fn level(
        &mut self,
        condition: &str,
        line: &str,
        level: usize,
        mask: &Mask,
        start: Start,
        data_order: Option<u64>,
    ) -> Result<LevelSummary, ImpError> {
        let config = &self.imp.config;
        let options = &self.imp.options;
        let dir = format!("{line}/level_{level:02}");
        let summary_path = format!("{dir}/summary.json");
        let total = config.training.training_iterations;
        let k = config.rewind_iteration;
        let progress_path = format!("{dir}/progress.ckpt");
        let metrics_path = format!("{dir}/progress_metrics.csv");
        // A level is finished when its summary (written last) and every
        // other file it produces are recorded; one that was deleted (see
        // `ExperimentStore::open`) has the level trained again.
        let outputs = ["mask.bin", "final.ckpt", "metrics.csv", "sparsity.json"];
        let complete = outputs
            .iter()
            .all(|file| self.store.contains(&format!("{dir}/{file}")))
            && (!matches!(start, Start::Init) || self.store.contains(REWIND_FILE));
        if self.store.contains(&summary_path) && !complete {
            self.store.remove(&summary_path)?;
        }
        if self.store.contains(&summary_path) {
            // A run killed right after the summary leaves the level's
            // progress files behind; they are no longer needed.
            self.store.remove(&progress_path)?;
            self.store.remove(&metrics_path)?;
            // Every file of a finished level must still pass its checksum:
            // one that fails stops the run, naming it.
            self.store.verify_under(&format!("{dir}/"))?;
            let summary: LevelSummary = serde_json::from_slice(&self.store.read(&summary_path)?)
                .map_err(|e| ImpError::Config(format!("{summary_path}: {e}")))?;
            self.observer
                .level_started(condition, level, mask.density(), (total, total));
            self.observer.level_finished(&summary, true);
            return Ok(summary);
        }
        // A mask read back from the directory (possibly edited by hand) must
        // fit the model before it is trained with.
        mask.validate(&self.template(), Some(&config.selector))?;
        let started = Instant::now();
        if !self.store.contains(&format!("{dir}/mask.bin")) {
            self.store
                .write(&format!("{dir}/mask.bin"), &mask.to_bytes())?;
        }
        let fresh_optimizer = || config.training.optimizer.init();
        let mut metrics = String::from(METRICS_HEADER);
        // A periodic checkpoint (or its metrics) that fails its checksum or
        // does not parse (e.g. the process died between writing it and
        // recording it) is reported to the observer and discarded: the level
        // restarts from its beginning rather than use it.
        let progress = if self.store.contains(&progress_path) {
            let rewind_missing = matches!(start, Start::Init) && !self.store.contains(REWIND_FILE);
            match self.read_progress(&progress_path, &metrics_path) {
                // The rewind point is captured on the way through iteration
                // k: a checkpoint past it cannot bring a missing one back.
                Ok((checkpoint, _)) if rewind_missing && checkpoint.iteration() >= k => {
                    self.observer.file_discarded(
                        &self.store.path(&progress_path),
                        &format!(
                            "it is past the rewind iteration {k} and {REWIND_FILE} is missing"
                        ),
                    );
                    self.store.remove(&progress_path)?;
                    self.store.remove(&metrics_path)?;
                    None
                }
                Ok(stored) => Some(stored),
                Err((file, reason)) => {
                    self.observer
                        .file_discarded(&self.store.path(&file), &reason);
                    self.store.remove(&progress_path)?;
                    self.store.remove(&metrics_path)?;
                    None
                }
            }
        } else {
            None
        };
        let (model, optimizer, first) = if let Some((checkpoint, stored_metrics)) = progress {
            metrics = stored_metrics;
            let model = checkpoint.restore(self.template())?;
            let optimizer = checkpoint.restore_optimizer(fresh_optimizer())?;
            (model, optimizer, checkpoint.iteration())
        } else {
            match start {
                Start::Init => (self.template(), fresh_optimizer(), 0),
                Start::Rewind => {
                    let rewind = RewindCheckpoint::from_bytes(&self.store.read(REWIND_FILE)?)?;
                    let model = rewind.rewind(self.template(), mask)?;
                    let optimizer = if config.restore_optimizer_state {
                        rewind.restore_optimizer(fresh_optimizer())?
                    } else {
                        fresh_optimizer()
                    };
                    (model, optimizer, k)
                }
                Start::Reinit(seed) => (
                    mask.apply((self.init)(self.device, seed))?,
                    fresh_optimizer(),
                    k,
                ),
            }
        };
        self.observer
            .level_started(condition, level, mask.density(), (first, total));
        let mut optimizer = MaskedOptimizer::new(optimizer, mask, self.device);
        let model = optimizer.prepare(model);
        let main_dense = matches!(start, Start::Init);
        if main_dense && first == 0 && k == 0 && !self.store.contains(REWIND_FILE) {
            let checkpoint =
                RewindCheckpoint::capture(&model, 0).with_optimizer(optimizer.optimizer())?;
            self.store.write(REWIND_FILE, &checkpoint.to_bytes()?)?;
        }
        let loader = SeededLoader::new(
            Arc::clone(&self.data.train),
            LoaderConfig {
                batch_size: config.training.batch_size,
                data_order_seed: data_order.unwrap_or(config.seeds.data_order),
                augment_seed: config.seeds.augmentation,
                augmentation: if config.training.augment {
                    self.data.augmentation
                } else {
                    None
                },
                normalization: self.data.normalization.clone(),
            },
        )?;
        let mut hooks = Hooks {
            store: &mut *self.store,
            observer: &mut *self.observer,
            metrics,
            last_loss: None,
            log_every: options.log_every.max(1),
            checkpoint_every: options.checkpoint_every,
            total,
            capture_rewind_at: (main_dense && k > 0).then_some(k),
            progress_path: progress_path.clone(),
            metrics_path: metrics_path.clone(),
        };
        let train_error = |source| ImpError::Train {
            condition: condition.to_string(),
            level,
            source,
        };
        let model = Trainer::new(&config.training, &loader, self.device)
            .with_options(options.train.clone())
            .train(model, &mut optimizer, first..total, &mut hooks)
            .map_err(train_error)?;
        let Hooks {
            mut metrics,
            last_loss,
            ..
        } = hooks;
        let evaluation = evaluate(
            &model,
            &self.data.test,
            &self.data.normalization,
            options.eval_batch_size,
            self.device,
        )
        .map_err(train_error)?;
        metrics.push_str(&format!("test_loss,{total},{}\n", evaluation.loss));
        metrics.push_str(&format!("test_accuracy,{total},{}\n", evaluation.accuracy));
        let summary = LevelSummary::new(
            condition.to_string(),
            level,
            mask,
            &evaluation,
            last_loss,
            started,
        );
        let final_checkpoint = RewindCheckpoint::capture(&model, total);
        self.store
            .write(&format!("{dir}/final.ckpt"), &final_checkpoint.to_bytes()?)?;
        self.store
            .write(&format!("{dir}/metrics.csv"), metrics.as_bytes())?;
        let sparsity = serde_json::to_vec_pretty(&mask.report()).expect("report serializes");
        self.store
            .write(&format!("{dir}/sparsity.json"), &sparsity)?;
        // The summary is written last: its presence marks the level finished.
        let json = serde_json::to_vec_pretty(&summary).expect("summary serializes");
        self.store.write(&summary_path, &json)?;
        self.store.remove(&progress_path)?;
        self.store.remove(&metrics_path)?;
        self.trained += 1;
        self.observer.level_finished(&summary, false);
        Ok(summary)
    }
}

/// Connects the training loop to the store and the user's observer.
struct Hooks<'a> {
    store: &'a mut ExperimentStore,
    observer: &'a mut dyn ImpObserver,
    metrics: String,
    last_loss: Option<f64>,
    log_every: u64,
    checkpoint_every: u64,
    /// The level's training length: no progress checkpoint is saved there
    /// (the level's final files follow; resuming from the very end would
    /// lose the last training loss of the summary).
    total: u64,
    capture_rewind_at: Option<u64>,
    progress_path: String,
    metrics_path: String,
}

impl<M: Classifier> TrainObserver<M> for Hooks<'_> {
    fn after_step(&mut self, completed: u64, loss: Option<f64>, _learning_rate: f64) {
        if let Some(loss) = loss {
            self.last_loss = Some(loss);
            if completed.is_multiple_of(self.log_every) {
                self.metrics
                    .push_str(&format!("train_loss,{completed},{loss}\n"));
            }
        }
        self.observer.step(completed, loss);
    }

    fn checkpoint(
        &mut self,
        completed: u64,
        model: &M,
        optimizer: &MaskedOptimizer,
    ) -> Result<(), String> {
        let capture = || {
            RewindCheckpoint::capture(model, completed)
                .with_optimizer(optimizer.optimizer())
                .and_then(|c| c.to_bytes())
                .map_err(|e| e.to_string())
        };
        if self.capture_rewind_at == Some(completed) && !self.store.contains(REWIND_FILE) {
            self.store
                .write(REWIND_FILE, &capture()?)
                .map_err(|e| e.to_string())?;
        }
        if self.checkpoint_every > 0
            && completed.is_multiple_of(self.checkpoint_every)
            && completed < self.total
        {
            self.store
                .write(&self.metrics_path, self.metrics.as_bytes())
                .map_err(|e| e.to_string())?;
            self.store
                .write(&self.progress_path, &capture()?)
                .map_err(|e| e.to_string())?;
        }
        if self.observer.should_stop() {
            return Err("stopped by the observer".into());
        }
        Ok(())
    }
}
