//! [`Experiment`]: one place for what every driver needs (the root
//! directory, the device, the task, the model's seeded initialization and
//! the training recipe), from which IMP, its controls and methods, the
//! stability analysis and sweep jobs are built.
//!
//! ```
//! use burn::optim::AdamWConfig;
//! use burn::lr_scheduler::cosine::CosineAnnealingLrSchedulerConfig;
//! use burn_lottery::prelude::*;
//! # use std::sync::Arc;
//! # use burn_lottery::data::{ExperimentData, ImageDataset, Normalization};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let images: Vec<u8> = (0..100 * 64).map(|i| ((i * 37 + i / 64 * 11) % 256) as u8).collect();
//! # let labels: Vec<u8> = (0..100).map(|i| (i % 10) as u8).collect();
//! # let dataset = Arc::new(ImageDataset::new(images, labels, 1, 8, 8, 10)?);
//! # let task = ExperimentData { normalization: Normalization::from_dataset(&dataset),
//! #     train: dataset.clone(), test: dataset, augmentation: None };
//! # let root = tempfile::tempdir()?;
//! # #[allow(deprecated)]
//! # let device = burn::tensor::Device::ndarray();
//! let experiment = Experiment::new(root.path(), &device, task, |device, seed| {
//!     LeNetConfig::new().with_input_size(64).init_seeded(device, seed)
//! })
//! .name("tiny_lenet")
//! .batches(20, 30)
//! .optimizer(AdamWConfig::new().with_weight_decay(1e-4))
//! .scheduler(CosineAnnealingLrSchedulerConfig::new(1e-3, 30));
//! let imp = experiment.imp(|c| ImpConfig { levels: 2, rewind_iteration: 5, ..c });
//! let report = imp.run()?;
//! assert_eq!(report.rows.len(), 3);
//! let instability = imp.stability().analyze_pair(Condition::Imp, 1, (1, 2))?;
//! assert!(instability.curve.barrier().is_finite());
//! # Ok(())
//! # }
//! ```

use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::tensor::Device;

use crate::imp::{
    Branch, Imp, ImpConfig, ImpError, ImpObserver, ImpReport, LevelSummary, RunOptions, Seeds,
    Silent,
};
use crate::stability::StabilityAnalyzer;
use crate::sweep::{Sweep, SweepError, SweepReport, SweepSpec};
use crate::task::Task;
use crate::train::recipe::{BurnOptimizer, OptimizerConfig, TrainingRecipe};
use crate::train::scheduler::BurnScheduler;

/// The root, device, task, model initialization and recipe of a study (see
/// the [module docs](self)). `init(device, seed)` builds the model with
/// its seeded initialization.
pub struct Experiment<T, F> {
    root: PathBuf,
    device: Device,
    task: T,
    init: F,
    name: String,
    recipe: TrainingRecipe,
    seeds: Seeds,
    options: RunOptions,
}

impl<M, T, F> Experiment<T, F>
where
    M: Module,
    T: Task<M>,
    F: Fn(&Device, u64) -> M,
{
    /// An experiment stored under `root`, training on `device`. Defaults:
    /// name `experiment`; batch 64, 1,000 iterations, Adam (PyTorch's
    /// semantics) at a constant 1e-3, no augmentation; seeds 0; default
    /// [`RunOptions`].
    pub fn new(root: impl AsRef<Path>, device: &Device, task: T, init: F) -> Self {
        Self {
            root: root.as_ref().to_path_buf(),
            device: device.clone(),
            task,
            init,
            name: "experiment".into(),
            recipe: TrainingRecipe {
                batch_size: 64,
                training_iterations: 1000,
                optimizer: OptimizerConfig::adam(1e-3),
                schedule: Default::default(),
                augment: false,
            },
            seeds: Seeds::default(),
            options: RunOptions::default(),
        }
    }

    /// Names the experiment (the prefix of its directory names).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Replaces the whole training recipe (e.g. a preset such as
    /// [`TrainingRecipe::lenet_fashion_mnist`]).
    pub fn recipe(mut self, recipe: TrainingRecipe) -> Self {
        self.recipe = recipe;
        self
    }

    /// Trains in batches of `batch_size` for `iterations` steps.
    pub fn batches(mut self, batch_size: usize, iterations: u64) -> Self {
        self.recipe.batch_size = batch_size;
        self.recipe.training_iterations = iterations;
        self
    }

    /// Trains with burn's optimizer `optimizer` (`AdamWConfig`, `SgdConfig`,
    /// ...), keeping the current learning rate or scheduler.
    pub fn optimizer(mut self, optimizer: impl Into<BurnOptimizer>) -> Self {
        let current = &self.recipe.optimizer;
        self.recipe.optimizer = OptimizerConfig::Burn {
            learning_rate: current.learning_rate(),
            scheduler: current.scheduler().cloned(),
            optimizer: optimizer.into(),
        };
        self
    }

    /// Trains with `optimizer` as a whole, e.g. a PyTorch-semantics preset
    /// ([`OptimizerConfig::sgd_momentum`]).
    pub fn optimizer_config(mut self, optimizer: OptimizerConfig) -> Self {
        self.recipe.optimizer = optimizer;
        self
    }

    /// A constant base learning rate (scaled by the recipe's schedule),
    /// replacing any scheduler.
    pub fn learning_rate(mut self, learning_rate: f64) -> Self {
        self.recipe.optimizer = self.recipe.optimizer.with_learning_rate(learning_rate);
        self
    }

    /// Learning rates from burn's `scheduler` (any of burn's scheduler
    /// configs, or a `ModuleLrSchedulerConfig` with per-group rates); a
    /// preset optimizer becomes its general form. The recipe's multiplier
    /// schedule is reset to constant.
    pub fn scheduler(mut self, scheduler: impl Into<BurnScheduler>) -> Self {
        let (_, optimizer) = self.recipe.optimizer.to_burn();
        self.recipe.optimizer = OptimizerConfig::scheduled(optimizer, scheduler);
        self.recipe.schedule = Default::default();
        self
    }

    /// The seeds of initialization, data order and augmentation.
    pub fn seeds(mut self, seeds: Seeds) -> Self {
        self.seeds = seeds;
        self
    }

    /// Operational options (checkpoint interval, evaluation batch, ...).
    pub fn options(mut self, options: RunOptions) -> Self {
        self.options = options;
        self
    }

    /// The training recipe.
    pub fn training(&self) -> &TrainingRecipe {
        &self.recipe
    }

    /// The root directory experiments are stored under.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The task.
    pub fn task(&self) -> &T {
        &self.task
    }

    /// The IMP configuration this experiment implies: its name, recipe and
    /// seeds, with every other setting at [`ImpConfig`]'s default.
    pub fn imp_config(&self) -> ImpConfig {
        ImpConfig {
            name: self.name.clone(),
            training: self.recipe.clone(),
            seeds: self.seeds,
            ..ImpConfig::default()
        }
    }

    /// An IMP study of this experiment: `configure` receives
    /// [`imp_config`](Self::imp_config) and returns the configuration to
    /// run, e.g. `|c| ImpConfig { levels: 12, rewind_iteration: 500, ..c }`.
    /// One-shot pruning and pruning at initialization are
    /// [`PruningMethod`](crate::imp::PruningMethod)s of the same
    /// configuration.
    pub fn imp(&self, configure: impl FnOnce(ImpConfig) -> ImpConfig) -> ImpStudy<'_, T, F> {
        let imp = Imp::new(configure(self.imp_config())).with_options(self.options.clone());
        ImpStudy {
            experiment: self,
            imp,
        }
    }

    /// A sweep of `spec` over the IMP configuration `configure` returns
    /// (see [`imp`](Self::imp)).
    pub fn sweep(
        &self,
        spec: SweepSpec,
        configure: impl FnOnce(ImpConfig) -> ImpConfig,
    ) -> Result<SweepStudy<'_, T, F>, SweepError> {
        let sweep = Sweep::new(spec, &configure(self.imp_config()), self.options.clone())?;
        Ok(SweepStudy {
            experiment: self,
            sweep,
        })
    }
}

/// An IMP configuration of an [`Experiment`], ready to run.
pub struct ImpStudy<'e, T, F> {
    experiment: &'e Experiment<T, F>,
    imp: Imp,
}

impl<'e, M, T, F> ImpStudy<'e, T, F>
where
    M: Module,
    T: Task<M>,
    F: Fn(&Device, u64) -> M,
{
    /// The IMP runner (configuration and options).
    pub fn imp(&self) -> &Imp {
        &self.imp
    }

    /// The experiment directory.
    pub fn directory(&self) -> PathBuf {
        self.imp.directory(&self.experiment.root)
    }

    /// Runs (or resumes) every level and branch, silently.
    pub fn run(&self) -> Result<ImpReport, ImpError> {
        self.run_with(&mut Silent)
    }

    /// Runs (or resumes) every level and branch, reporting to `observer`
    /// (e.g. [`crate::report::Progress`]).
    pub fn run_with(&self, observer: &mut dyn ImpObserver) -> Result<ImpReport, ImpError> {
        let e = self.experiment;
        self.imp.run(&e.root, &e.device, &e.task, &e.init, observer)
    }

    /// Trains one `branch` at one `level` (see [`Imp::run_level`]).
    pub fn run_level(
        &self,
        branch: Branch,
        level: usize,
        observer: &mut dyn ImpObserver,
    ) -> Result<LevelSummary, ImpError> {
        let e = self.experiment;
        self.imp.run_level(
            &e.root,
            &e.device,
            &e.task,
            &e.init,
            (branch, level),
            observer,
        )
    }

    /// The stability analysis of this IMP experiment.
    pub fn stability(&self) -> StabilityAnalyzer<'e, T, &'e F> {
        let e = self.experiment;
        StabilityAnalyzer::new(self.imp.clone(), &e.root, &e.task, &e.init, &e.device)
    }
}

/// A sweep of an [`Experiment`] (see [`crate::sweep`]).
pub struct SweepStudy<'e, T, F> {
    experiment: &'e Experiment<T, F>,
    sweep: Sweep,
}

impl<M, T, F> SweepStudy<'_, T, F>
where
    M: Module,
    T: Task<M>,
    F: Fn(&Device, u64) -> M,
{
    /// The sweep's experiments and jobs.
    pub fn sweep(&self) -> &Sweep {
        &self.sweep
    }

    /// Runs job `index` (see [`Sweep::run_job`]).
    pub fn run_job(
        &self,
        index: usize,
        observer: &mut dyn ImpObserver,
    ) -> Result<LevelSummary, SweepError> {
        let e = self.experiment;
        self.sweep
            .run_job(index, &e.root, &e.device, &e.task, &e.init, observer)
    }

    /// Merges the finished jobs into one report (see [`Sweep::report`]).
    pub fn report(&self) -> Result<SweepReport, SweepError> {
        let e = self.experiment;
        self.sweep.report(&e.root, &e.device, &e.task, &e.init)
    }

    /// Runs the whole sweep in this process (see
    /// [`Sweep::run_single_process`]).
    pub fn run_single_process(
        &self,
        observer: &mut dyn ImpObserver,
    ) -> Result<SweepReport, SweepError> {
        let e = self.experiment;
        self.sweep
            .run_single_process(&e.root, &e.device, &e.task, &e.init, observer)
    }
}
