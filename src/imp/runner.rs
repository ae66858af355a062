//! The IMP loop: train dense, prune, rewind, retrain; controls as branches.
//! Each branch at each level is trained by the one
//! [`BranchTrainer`](super::level) that the stability analysis uses too.

use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use super::branch::Branch;
use super::config::{ImpConfig, first_repeat};
use super::layout::Layout;
use super::level::BranchTrainer;
use super::method::PruningMethod;
use super::store::{ExperimentStore, StoreError};
use super::summary::{ImpObserver, LevelSummary};
use crate::data::DataError;
use crate::mask::{Mask, MaskError};
use crate::prune::{MagnitudePruner, PruneError, Pruner, random_mask_like};
use crate::report::{self, MetricLabel, ReportError, ReportRow, Table};
use crate::rewind::{RewindCheckpoint, RewindError};
use crate::seed::derive_seed;
use crate::task::{MetricSpec, Task, TaskError};
use crate::train::trainer::{TrainError, TrainOptions};

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
    /// The task refused the model or failed.
    #[error(transparent)]
    Task(#[from] TaskError),
    /// Writing the report failed.
    #[error(transparent)]
    Report(#[from] ReportError),
    /// A level that [`Imp::run_level`] builds on is not finished yet.
    #[error("{} is not finished yet: train it first", .0.display())]
    NotFinished(PathBuf),
}

/// Operational settings that do not change results (not part of the
/// experiment's hash).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RunOptions {
    /// Save a resumable checkpoint of the level in progress every this many
    /// iterations (0 = never; default 1000).
    pub checkpoint_every: u64,
    /// Record the training loss every this many iterations (default 100).
    pub log_every: u64,
    /// Batch size of evaluation (default 1000; does not change results).
    pub eval_batch_size: usize,
    /// Options of the training loop.
    pub train: TrainOptions,
    /// The file system the experiment directory is on (the real one by
    /// default; a crash test puts a simulated one here).
    #[serde(skip)]
    pub file_system: crate::io::FsHandle,
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            checkpoint_every: 1000,
            log_every: 100,
            eval_batch_size: 1000,
            train: TrainOptions::default(),
            file_system: crate::io::FsHandle::default(),
        }
    }
}

/// The result of an experiment.
#[derive(Debug, Clone)]
pub struct ImpReport {
    /// The experiment directory.
    pub directory: PathBuf,
    /// The metric the rows report (the task's [`MetricSpec::reported`]).
    pub metric: MetricLabel,
    /// One row per trained network.
    pub rows: Vec<ReportRow>,
    /// One summary per trained network.
    pub summaries: Vec<LevelSummary>,
    /// Levels (of any condition) that were trained in this run, not found finished.
    pub trained_levels: usize,
}

impl ImpReport {
    /// The report as a terminal table.
    pub fn table(&self) -> Table<'_> {
        Table::new(&self.rows, self.metric.clone())
    }

    /// Writes the report to `dir` (created if missing), as the experiment
    /// directory holds it: `report.csv` ([`report::write_csv`]) and
    /// `report.svg`, the metric against weights remaining under `title`
    /// ([`report::plot_metric_vs_weights`]). Each file is replaced
    /// atomically. For a report kept apart from its experiment, e.g. a
    /// results folder under version control.
    pub fn write_to(&self, dir: &Path, title: &str) -> Result<(), ReportError> {
        std::fs::create_dir_all(dir).map_err(|source| ReportError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        report::write_csv(&self.rows, &self.metric, &dir.join(Layout::REPORT_CSV))?;
        report::plot_metric_vs_weights(
            &self.rows,
            &self.metric,
            title,
            &dir.join(Layout::REPORT_SVG),
        )
    }
}

/// An IMP experiment: `Imp::new(config).run(...)`.
#[derive(Debug, Clone)]
pub struct Imp {
    config: ImpConfig,
    options: RunOptions,
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

    /// The operational options.
    pub fn options(&self) -> &RunOptions {
        &self.options
    }

    /// The trainer of this experiment's branches over `store`.
    fn branch_trainer<'a, T, F>(
        &'a self,
        store: &'a mut ExperimentStore,
        device: &'a Device,
        task: &'a T,
        init: &'a F,
        observer: &'a mut dyn ImpObserver,
    ) -> BranchTrainer<'a, T, F> {
        BranchTrainer {
            config: &self.config,
            options: &self.options,
            store,
            device,
            task,
            init,
            observer,
            trained: 0,
        }
    }

    /// Checks the configuration before any work starts.
    pub fn validate(&self) -> Result<(), ImpError> {
        let c = &self.config;
        c.training
            .validate()
            .map_err(|e| ImpError::Config(e.to_string()))?;
        c.pruning.validate()?;
        c.retrain.validate().map_err(ImpError::Config)?;
        c.method.validate(&c.retrain).map_err(ImpError::Config)?;
        c.sparse_training.validate().map_err(ImpError::Config)?;
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
        check_data_orders(&c.controls.data_orders, c.seeds.data_order)
    }

    /// The experiment directory under `output_root`.
    pub fn directory(&self, output_root: &Path) -> PathBuf {
        output_root.join(self.config.directory_name())
    }

    /// Checks the configuration and that the model fits the task, then
    /// opens the experiment's store: a refused configuration or model
    /// leaves nothing behind. Returns the store and the dense mask.
    pub(crate) fn open<M, T, F>(
        &self,
        output_root: &Path,
        device: &Device,
        task: &T,
        init: &F,
    ) -> Result<(ExperimentStore, Mask), ImpError>
    where
        M: Module,
        T: Task<M>,
        F: Fn(&Device, u64) -> M,
    {
        self.validate()?;
        let template = init(device, self.config.seeds.init);
        task.check_model(&template, device).map_err(|e| match e {
            TaskError::Model(model) => ImpError::Model(model),
            other => ImpError::Task(other),
        })?;
        let dense = Mask::dense(&template, &self.config.selector)?;
        drop(template);
        let store = self.config.open_store_in(
            self.options.file_system.clone(),
            &self.directory(output_root),
        )?;
        // The rewind point is shared by every level: check it up front.
        if store.contains(Layout::REWIND) {
            store.read(Layout::REWIND)?;
        }
        Ok((store, dense))
    }

    /// Runs (or resumes) the experiment under `output_root` on `task`, on
    /// `device` (an autodiff device is made from it). `init(device, seed)`
    /// builds the model with its seeded initialization.
    ///
    /// Finished levels are read back, not retrained; a level interrupted
    /// after a periodic checkpoint continues from it.
    pub fn run<M, T, F>(
        &self,
        output_root: &Path,
        device: &Device,
        task: &T,
        init: F,
        observer: &mut dyn ImpObserver,
    ) -> Result<ImpReport, ImpError>
    where
        M: Module,
        T: Task<M>,
        F: Fn(&Device, u64) -> M,
    {
        let device = device.clone().autodiff();
        let pruner = self.config.pruning.init()?;
        let (mut store, dense) = self.open(output_root, &device, task, &init)?;
        let mut trainer = self.branch_trainer(&mut store, &device, task, &init, observer);
        let mut summaries = Vec::new();
        let mut mask = dense.clone();
        for level in 0..=self.config.levels {
            if level > 0 {
                mask = next_mask(&mut trainer, level, &mask, &dense, &pruner)?;
            }
            for branch in self.branches() {
                if branch.trains_at(level) {
                    let branch_mask = branch_mask(&mut trainer, &branch, level, &mask)?;
                    summaries.push(trainer.train(branch, level, &branch_mask)?);
                }
                if branch == Branch::Main && self.config.method.changes_mask_during_training() {
                    // The controls follow the mask the main line ended with.
                    mask = finished_mask(&trainer, &Branch::Main, level, &dense)?;
                }
            }
            if self
                .config
                .target_density
                .is_some_and(|t| mask.density() <= t)
            {
                break;
            }
        }
        let trained_levels = trainer.trained;
        self.report(&mut store, summaries, trained_levels, task.metrics())
    }

    /// Trains one `branch` at one `level` of the experiment under
    /// `output_root` (or reads it back when finished), as [`Imp::run`] does,
    /// given that the levels it builds on are finished, possibly by other
    /// processes: the main line's level `level - 1` for the main line, the
    /// main line's `level` for a control or data order, and the
    /// condition's `level` for a [`Branch::Stability`] copy. One that is
    /// not gives [`ImpError::NotFinished`]. This is one job of a sweep
    /// ([`crate::sweep`]); several such jobs may run at once on one
    /// experiment (each level is locked by its writer).
    pub fn run_level<M, T, F>(
        &self,
        output_root: &Path,
        device: &Device,
        task: &T,
        init: F,
        (branch, level): (Branch, usize),
        observer: &mut dyn ImpObserver,
    ) -> Result<LevelSummary, ImpError>
    where
        M: Module,
        T: Task<M>,
        F: Fn(&Device, u64) -> M,
    {
        let device = device.clone().autodiff();
        let pruner = self.config.pruning.init()?;
        let (mut store, dense) = self.open(output_root, &device, task, &init)?;
        let mut trainer = self.branch_trainer(&mut store, &device, task, &init, observer);
        let mask = match branch {
            Branch::Main if level == 0 => dense,
            Branch::Main => {
                let from = self.config.method.builds_on(level);
                let previous = finished_mask(&trainer, &Branch::Main, from, &dense)?;
                next_mask(&mut trainer, level, &previous, &dense, &pruner)?
            }
            Branch::Stability { condition, .. } => {
                finished_mask(&trainer, &condition.at_level(level).branch(), level, &dense)?
            }
            _ => {
                let main = finished_mask(&trainer, &Branch::Main, level, &dense)?;
                branch_mask(&mut trainer, &branch, level, &main)?
            }
        };
        trainer.train(branch, level, &mask)
    }

    /// The branches trained at every level, in order: the main line, the
    /// other data orders, then the controls.
    pub fn branches(&self) -> Vec<Branch> {
        let controls = &self.config.controls;
        let mut branches = vec![Branch::Main];
        branches.extend(controls.data_orders.iter().map(|&s| Branch::DataOrder(s)));
        if controls.random_reinit {
            branches.push(Branch::RandomReinit);
        }
        if controls.random_prune {
            branches.push(Branch::RandomPrune);
        }
        branches
    }

    /// Writes `report.csv` and `report.svg` of the summaries.
    fn report(
        &self,
        store: &mut ExperimentStore,
        summaries: Vec<LevelSummary>,
        trained_levels: usize,
        spec: MetricSpec,
    ) -> Result<ImpReport, ImpError> {
        let metric = MetricLabel::new(&spec.reported, spec.percent)?;
        let rows: Vec<ReportRow> = summaries
            .iter()
            .map(|s| {
                ReportRow {
                    condition: s.condition.clone(),
                    seed: self.config.seeds.init,
                    level: s.level,
                    weights_remaining: s.weights_remaining,
                    value: s.metric(&spec.reported).unwrap_or(f64::NAN),
                    execution: None,
                    execution_reason: None,
                }
                .with_execution(s.execution.as_ref())
            })
            .collect();
        store.write(
            Layout::REPORT_CSV,
            report::to_csv(&rows, &metric).as_bytes(),
        )?;
        let directory = store.root().to_path_buf();
        let svg = report::metric_vs_weights_svg(
            &rows,
            &metric,
            &self.config.name,
            &store.path(Layout::REPORT_SVG),
        )?;
        store.write(Layout::REPORT_SVG, svg.as_bytes())?;
        Ok(ImpReport {
            directory,
            metric,
            rows,
            summaries,
            trained_levels,
        })
    }
}

/// Refuses a data-order control that repeats another or the main line's
/// own order `main`: its branch would be a network already trained (the
/// same numbers, its rows counted twice in the report).
fn check_data_orders(orders: &[u64], main: u64) -> Result<(), ImpError> {
    if let Some(seed) = first_repeat(orders) {
        return Err(ImpError::Config(format!(
            "controls.data_orders lists {seed} twice"
        )));
    }
    if orders.contains(&main) {
        return Err(ImpError::Config(format!(
            "controls.data_orders lists {main}, the main line's own data order \
             (seeds.data_order): that branch would retrain the main line's networks"
        )));
    }
    Ok(())
}

/// The mask of a finished level of `branch` (level 0: `dense`), or
/// [`ImpError::NotFinished`].
fn finished_mask<M, T, F>(
    trainer: &BranchTrainer<'_, T, F>,
    branch: &Branch,
    level: usize,
    dense: &Mask,
) -> Result<Mask, ImpError>
where
    M: Module,
    T: Task<M>,
    F: Fn(&Device, u64) -> M,
{
    let files = Layout::level(branch, level);
    if !trainer.store.contains(&files.summary()) {
        return Err(ImpError::NotFinished(trainer.store.path(files.dir())));
    }
    if level == 0 {
        return Ok(dense.clone());
    }
    Ok(Mask::from_bytes(&trainer.store.read(&files.mask())?)?)
}

/// The mask of a main-line level: stored, or made by the experiment's
/// [`PruningMethod`]: pruned from the previous level's trained weights (IMP),
/// from the dense trained weights in one step, scored at the rewind point,
/// or drawn early from a dense run (early-bird tickets); for gradual
/// pruning, SET and RigL, the mask the level starts training under.
fn next_mask<M, T, F>(
    trainer: &mut BranchTrainer<'_, T, F>,
    level: usize,
    previous: &Mask,
    dense: &Mask,
    pruner: &MagnitudePruner,
) -> Result<Mask, ImpError>
where
    M: Module,
    T: Task<M>,
    F: Fn(&Device, u64) -> M,
{
    let files = Layout::level(&Branch::Main, level);
    // Held until the level is trained (BranchTrainer::train releases it).
    trainer.store.lock_level(files.dir())?;
    let path = files.mask();
    if trainer.store.contains(&path) {
        return Ok(Mask::from_bytes(&trainer.store.read(&path)?)?);
    }
    let config = trainer.config;
    // A level whose mask changes as it trains starts from its schedule's
    // mask; its `mask.bin` is the one it ends with, stored when finished.
    if let Some(schedule) = config.method.mask_schedule(config, level, dense.clone())? {
        return Ok(schedule.initial_mask().clone());
    }
    let mask = prune_main_level(trainer, level, previous, dense, pruner)?;
    trainer.store.write(&path, &mask.to_bytes())?;
    Ok(mask)
}

/// The mask [`next_mask`] makes with the experiment's [`PruningMethod`] for a
/// main-line level whose mask is fixed while it trains.
fn prune_main_level<M, T, F>(
    trainer: &mut BranchTrainer<'_, T, F>,
    level: usize,
    previous: &Mask,
    dense: &Mask,
    pruner: &MagnitudePruner,
) -> Result<Mask, ImpError>
where
    M: Module,
    T: Task<M>,
    F: Fn(&Device, u64) -> M,
{
    let config = trainer.config;
    Ok(match &config.method {
        PruningMethod::Iterative => {
            pruner.next_mask(&trainer.trained_model(&Branch::Main, level - 1)?, previous)?
        }
        PruningMethod::OneShot => {
            pruner.one_shot(&trainer.trained_model(&Branch::Main, 0)?, dense, level)?
        }
        PruningMethod::AtInitialization(at_init) => {
            let rewind = RewindCheckpoint::from_bytes(&trainer.store.read(Layout::REWIND)?)?;
            let model = rewind.restore(trainer.template())?;
            let seed = derive_seed(config.seeds.init, &format!("at_init/{level}"));
            at_init.prune(
                &model,
                dense,
                pruner.kept_after(dense, level)?,
                trainer.task,
                &Branch::Main.data_order(config),
                seed,
                trainer.device,
            )?
        }
        PruningMethod::Structured(structured) => {
            let pruner = structured.init()?;
            let from = config
                .method
                .pruned_from(level)
                .expect("from a trained level");
            let model = trainer.trained_model(&Branch::Main, from)?;
            match structured.one_shot {
                true => pruner.one_shot(&model, dense, level)?,
                false => pruner.next_mask(&model, previous)?,
            }
        }
        PruningMethod::EarlyBird(early_bird) => {
            super::early_bird::draw(trainer, early_bird, level, dense, pruner)?
        }
        PruningMethod::Gradual(_) | PruningMethod::Dynamic(_) => {
            unreachable!("a method whose mask changes during training has a schedule")
        }
    })
}

/// The mask `branch` trains under at `level`, given the main line's: the
/// random-pruning control draws (and stores) its own.
fn branch_mask<M, T, F>(
    trainer: &mut BranchTrainer<'_, T, F>,
    branch: &Branch,
    level: usize,
    main: &Mask,
) -> Result<Mask, ImpError>
where
    M: Module,
    T: Task<M>,
    F: Fn(&Device, u64) -> M,
{
    if *branch != Branch::RandomPrune {
        return Ok(main.clone());
    }
    let files = Layout::level(branch, level);
    trainer.store.lock_level(files.dir())?;
    let path = files.mask();
    if trainer.store.contains(&path) {
        return Ok(Mask::from_bytes(&trainer.store.read(&path)?)?);
    }
    let random = random_mask_like(main, Branch::random_prune_seed(trainer.config, level));
    trainer.store.write(&path, &random.to_bytes())?;
    Ok(random)
}
