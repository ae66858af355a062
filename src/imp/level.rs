//! Training one branch at one level: written once, for the IMP runner and
//! the stability analysis alike.
//!
//! A level is finished when its summary (written last) and every other file
//! it produces are recorded in the store; a finished level is read back, not
//! retrained. A level interrupted after a periodic checkpoint continues from
//! it; a checkpoint that fails its checksum or does not parse is reported to
//! the observer and discarded, and the level restarts from its beginning.

use std::time::Instant;

use burn::module::Module;
use burn::tensor::Device;

use super::branch::{Branch, Start};
use super::config::ImpConfig;
use super::layout::{Layout, LevelFiles};
use super::progress::{METRICS_HEADER, ProgressHooks, metrics_up_to};
use super::runner::{ImpError, RunOptions};
use super::store::ExperimentStore;
use super::summary::{ImpObserver, LevelSummary};
use crate::mask::Mask;
use crate::prune::MaskSchedule;
use crate::rewind::RewindCheckpoint;
use crate::sparse::Execution;
use crate::task::{Metrics, Split, Task};
use crate::train::masked::MaskedOptimizer;
use crate::train::trainer::{TrainError, Trainer};

/// Where a level's training starts: the model, its optimizer, the mask in
/// force, the first iteration to train and the metrics recorded so far.
struct Resume<M> {
    model: M,
    optimizer: burn::optim::ModuleOptimizer,
    mask: Mask,
    first: u64,
    metrics: String,
}

/// What a level trained: the network, the mask it ended with, the metrics
/// recorded, the last training loss and the path that trained it.
struct Trained<M> {
    model: M,
    mask: Mask,
    metrics: String,
    last_loss: Option<f64>,
    execution: Option<Execution>,
}

/// Trains branches of one experiment (see the [module docs](self)).
pub(crate) struct BranchTrainer<'a, T, F> {
    pub(crate) config: &'a ImpConfig,
    pub(crate) options: &'a RunOptions,
    pub(crate) store: &'a mut ExperimentStore,
    /// The autodiff device.
    pub(crate) device: &'a Device,
    pub(crate) task: &'a T,
    pub(crate) init: &'a F,
    pub(crate) observer: &'a mut dyn ImpObserver,
    /// Levels trained (not found finished) so far.
    pub(crate) trained: usize,
}

impl<M, T, F> BranchTrainer<'_, T, F>
where
    M: Module,
    T: Task<M>,
    F: Fn(&Device, u64) -> M,
{
    /// The model with the experiment's seeded initialization.
    pub(crate) fn template(&self) -> M {
        (self.init)(self.device, self.config.seeds.init)
    }

    /// The trained network of `branch` at `level` (which must be finished).
    pub(crate) fn trained_model(&self, branch: &Branch, level: usize) -> Result<M, ImpError> {
        let files = Layout::level(branch, level);
        let checkpoint =
            RewindCheckpoint::from_bytes(&self.store.read(&files.final_checkpoint())?)?;
        Ok(checkpoint.restore(self.template())?)
    }

    /// Trains `branch` at `level` under `mask` from its starting point (or
    /// from its last periodic checkpoint), or reads it back when finished.
    /// The level's lock is held meanwhile (taken here unless the caller
    /// took it already, and released at the end).
    pub(crate) fn train(
        &mut self,
        branch: Branch,
        level: usize,
        mask: &Mask,
    ) -> Result<LevelSummary, ImpError> {
        let dir = Layout::level(&branch, level).dir().to_string();
        self.store.lock_level(&dir)?;
        let result = self.train_locked(branch, level, mask);
        self.store.unlock_level(&dir);
        result
    }

    fn train_locked(
        &mut self,
        branch: Branch,
        level: usize,
        mask: &Mask,
    ) -> Result<LevelSummary, ImpError> {
        let files = Layout::level(&branch, level);
        let start = branch.start(level, self.config);
        let name = branch.name(self.config);
        let iterations = branch.iterations(level, self.config);
        if let Some(summary) = self.finished(&files, start, &name, level, mask, iterations.end)? {
            return Ok(summary);
        }
        // A mask read back from the directory (possibly edited by hand) must
        // fit the model before it is trained with.
        mask.validate(&self.template(), Some(&self.config.selector))?;
        let schedule = self.mask_schedule(&branch, level)?;
        let started = Instant::now();
        // A level whose mask changes stores the mask it ends with.
        let (mask, density) = match &schedule {
            Some(s) => (
                s.initial_mask(),
                s.final_kept() as f64 / mask.total_count() as f64,
            ),
            None => (mask, mask.density()),
        };
        if schedule.is_none() && !self.store.contains(&files.mask()) {
            self.store.write(&files.mask(), &mask.to_bytes())?;
        }
        let resume = self.resume(&files, start, mask, iterations.start, schedule.is_some())?;
        self.observer
            .level_started(&name, level, density, (resume.first, iterations.end));
        let trained =
            self.train_from(&branch, level, &files, start, resume, schedule.as_deref())?;
        let evaluation = evaluate(
            self.task,
            &trained.model,
            Split::Test,
            self.options,
            self.device,
        )
        .map_err(|e| ImpError::Train {
            condition: name.clone(),
            level,
            source: TrainError::Task(e),
        })?;
        let summary = LevelSummary::new(
            name,
            level,
            &trained.mask,
            evaluation,
            trained.last_loss,
            started,
        )
        .with_execution(trained.execution.clone());
        self.store_level(&files, trained, summary, iterations.end, schedule.is_some())
    }

    /// The mask schedule of `branch` at `level`: the main line's at levels
    /// >= 1 under a method whose mask changes during training.
    fn mask_schedule(
        &self,
        branch: &Branch,
        level: usize,
    ) -> Result<Option<Box<dyn MaskSchedule>>, ImpError> {
        if *branch != Branch::Main || level == 0 {
            return Ok(None);
        }
        let method = &self.config.method;
        if !method.changes_mask_during_training() {
            return Ok(None);
        }
        let dense = Mask::dense(&self.template(), &self.config.selector)?;
        Ok(method.mask_schedule(self.config, level, dense)?)
    }

    /// The stored summary of a finished level (after checking its files),
    /// or `None` when the level has to be trained. `end` is the level's last
    /// iteration.
    fn finished(
        &mut self,
        files: &LevelFiles,
        start: Start,
        name: &str,
        level: usize,
        mask: &Mask,
        end: u64,
    ) -> Result<Option<LevelSummary>, ImpError> {
        let summary_path = files.summary();
        // A file of a finished level that was deleted (see
        // `ExperimentStore::open`) has the level trained again.
        let complete = files.outputs().iter().all(|f| self.store.contains(f))
            && (start != Start::Init || self.store.contains(Layout::REWIND));
        if self.store.contains(&summary_path) && !complete {
            self.store.remove(&summary_path)?;
        }
        if !self.store.contains(&summary_path) {
            return Ok(None);
        }
        // A run killed right after the summary leaves the level's progress
        // files behind; they are no longer needed.
        self.remove_progress(files)?;
        // Every file of a finished level must still pass its checksum: one
        // that fails stops the run, naming it.
        self.store.verify_under(&format!("{}/", files.dir()))?;
        let summary: LevelSummary = serde_json::from_slice(&self.store.read(&summary_path)?)
            .map_err(|e| ImpError::Config(format!("{summary_path}: {e}")))?;
        self.observer
            .level_started(name, level, mask.density(), (end, end));
        self.observer.level_finished(&summary, true);
        Ok(Some(summary))
    }

    fn remove_progress(&mut self, files: &LevelFiles) -> Result<(), ImpError> {
        self.store.remove(&files.progress())?;
        self.store.remove(&files.progress_metrics())?;
        Ok(())
    }

    /// The level's periodic checkpoint and the metrics recorded up to it,
    /// or the file that cannot be used and why.
    fn read_progress(
        &self,
        files: &LevelFiles,
    ) -> Result<(RewindCheckpoint, String), (String, String)> {
        let (progress, metrics_path) = (files.progress(), files.progress_metrics());
        let fail = |file: &str| {
            let file = file.to_string();
            move |e: String| (file, e)
        };
        let bytes = self
            .store
            .read(&progress)
            .map_err(|e| fail(&progress)(e.to_string()))?;
        let checkpoint =
            RewindCheckpoint::from_bytes(&bytes).map_err(|e| fail(&progress)(e.to_string()))?;
        let metrics = if self.store.contains(&metrics_path) {
            let bytes = self
                .store
                .read(&metrics_path)
                .map_err(|e| fail(&metrics_path)(e.to_string()))?;
            String::from_utf8(bytes).map_err(|e| fail(&metrics_path)(e.to_string()))?
        } else {
            String::from(METRICS_HEADER)
        };
        // The metrics are saved just before the checkpoint: a run killed
        // between the two leaves metrics newer than the checkpoint. Lines
        // past the checkpoint's iteration are logged again on resume.
        let metrics =
            metrics_up_to(&metrics, checkpoint.iteration()).map_err(fail(&metrics_path))?;
        Ok((checkpoint, metrics))
    }

    /// The usable periodic checkpoint of the level, if any; an unusable one
    /// is reported and discarded.
    fn stored_progress(
        &mut self,
        files: &LevelFiles,
        start: Start,
        mask_changes: bool,
    ) -> Result<Option<(RewindCheckpoint, String)>, ImpError> {
        if !self.store.contains(&files.progress()) {
            return Ok(None);
        }
        let k = self.config.rewind_iteration;
        let rewind_missing = start == Start::Init && !self.store.contains(Layout::REWIND);
        let discard = match self.read_progress(files) {
            // The rewind point is captured on the way through iteration k: a
            // checkpoint past it cannot bring a missing one back.
            Ok((checkpoint, _)) if rewind_missing && checkpoint.iteration() >= k => (
                files.progress(),
                format!(
                    "it is past the rewind iteration {k} and {} is missing",
                    Layout::REWIND
                ),
            ),
            Ok((checkpoint, _)) if mask_changes && checkpoint.mask().is_none() => (
                files.progress(),
                "it holds no mask, and the level's mask changes as it trains".into(),
            ),
            Ok(stored) => return Ok(Some(stored)),
            Err(unusable) => unusable,
        };
        self.observer
            .file_discarded(&self.store.path(&discard.0), &discard.1);
        self.remove_progress(files)?;
        Ok(None)
    }

    /// Where the level's training starts: its periodic checkpoint (with
    /// the mask it holds when `mask_changes`), or the branch's starting
    /// weights under `mask` with a fresh optimizer at iteration `first`.
    fn resume(
        &mut self,
        files: &LevelFiles,
        start: Start,
        mask: &Mask,
        first: u64,
        mask_changes: bool,
    ) -> Result<Resume<M>, ImpError> {
        let fresh_optimizer = || self.config.training.optimizer.init();
        if let Some((checkpoint, metrics)) = self.stored_progress(files, start, mask_changes)? {
            let model = checkpoint.restore(self.template())?;
            let mask = checkpoint.mask().unwrap_or(mask).clone();
            mask.validate(&model, Some(&self.config.selector))?;
            return Ok(Resume {
                optimizer: checkpoint.restore_optimizer_for(fresh_optimizer(), &model)?,
                model,
                mask,
                first: checkpoint.iteration(),
                metrics,
            });
        }
        let (model, optimizer) = match start {
            Start::Init => (self.template(), fresh_optimizer()),
            Start::Rewind => {
                let rewind = RewindCheckpoint::from_bytes(&self.store.read(Layout::REWIND)?)?;
                let model = rewind.rewind(self.template(), mask)?;
                let optimizer = if self.config.restore_optimizer_state {
                    rewind.restore_masked_optimizer_for(fresh_optimizer(), &model, mask)?
                } else {
                    fresh_optimizer()
                };
                (model, optimizer)
            }
            Start::Reinit(seed) => (
                mask.apply((self.init)(self.device, seed))?,
                fresh_optimizer(),
            ),
            Start::Trained(from) => (
                mask.apply(self.trained_model(&Branch::Main, from)?)?,
                fresh_optimizer(),
            ),
        };
        Ok(Resume {
            model,
            optimizer,
            mask: mask.clone(),
            first,
            metrics: String::from(METRICS_HEADER),
        })
    }

    /// Trains from `resume` to the end of the recipe under its mask,
    /// changed by `schedule` when there is one.
    fn train_from(
        &mut self,
        branch: &Branch,
        level: usize,
        files: &LevelFiles,
        start: Start,
        resume: Resume<M>,
        schedule: Option<&dyn MaskSchedule>,
    ) -> Result<Trained<M>, ImpError> {
        let config = self.config;
        let k = config.rewind_iteration;
        let end = branch.iterations(level, config).end;
        let mut optimizer =
            MaskedOptimizer::new(resume.optimizer, &resume.mask, &resume.model, self.device)?;
        let model = optimizer.prepare(resume.model);
        let from_init = start == Start::Init;
        if from_init && resume.first == 0 && k == 0 && !self.store.contains(Layout::REWIND) {
            let checkpoint =
                RewindCheckpoint::capture(&model, 0).with_optimizer(optimizer.optimizer())?;
            self.store.write(Layout::REWIND, &checkpoint.to_bytes()?)?;
        }
        let mut hooks = ProgressHooks::new(
            &mut *self.store,
            &mut *self.observer,
            files,
            resume.metrics,
            self.options,
            (from_init && k > 0).then_some(k),
            end,
        )
        .with_mask(schedule.is_some());
        let model = Trainer::new(&config.training, self.task, self.device)
            .with_options(self.options.train.clone())
            .with_fixed_learning_rate(branch.fixed_learning_rate(level, config))
            .with_sparse(&config.sparse_training, &resume.mask)
            .with_mask_schedule(schedule)
            .train(
                model,
                &mut optimizer,
                resume.first..end,
                &branch.data_order(config),
                &mut hooks,
            )
            .map_err(|source| {
                // A checkpoint that could not be saved stops training with
                // its own typed error (e.g. the store's, for a full disk).
                hooks.take_failure().unwrap_or_else(|| ImpError::Train {
                    condition: branch.name(config),
                    level,
                    source,
                })
            })?;
        let (metrics, last_loss, execution) = hooks.into_metrics();
        Ok(Trained {
            model,
            mask: optimizer.mask().clone(),
            metrics,
            last_loss,
            execution,
        })
    }

    /// Writes a trained level's files, the summary last (`end`: the level's
    /// last iteration; `final_mask`: the mask it ended with is its
    /// `mask.bin`). Returns the summary as it reads back from its file, so a
    /// finished level reports the same values whether it was trained now or
    /// read back by a later run.
    fn store_level(
        &mut self,
        files: &LevelFiles,
        trained: Trained<M>,
        summary: LevelSummary,
        end: u64,
        final_mask: bool,
    ) -> Result<LevelSummary, ImpError> {
        let Trained {
            model,
            mask,
            mut metrics,
            ..
        } = trained;
        append_test_metrics(&mut metrics, &summary.metrics, end);
        if final_mask {
            self.store.write(&files.mask(), &mask.to_bytes())?;
        }
        let final_checkpoint = RewindCheckpoint::capture(&model, end);
        self.store
            .write(&files.final_checkpoint(), &final_checkpoint.to_bytes()?)?;
        self.store.write(&files.metrics(), metrics.as_bytes())?;
        let sparsity = serde_json::to_vec_pretty(&mask.report()).expect("report serializes");
        self.store.write(&files.sparsity(), &sparsity)?;
        // The summary is written last: its presence marks the level finished.
        let json = serde_json::to_vec_pretty(&summary).expect("summary serializes");
        self.store.write(&files.summary(), &json)?;
        self.remove_progress(files)?;
        self.trained += 1;
        let summary: LevelSummary =
            serde_json::from_slice(&json).expect("a summary reads back what it wrote");
        self.observer.level_finished(&summary, false);
        Ok(summary)
    }
}

/// Evaluates `model` in inference mode (`valid()`: BatchNorm on its
/// running statistics) on the plain (non-autodiff) device.
fn evaluate<M: Module, T: Task<M>>(
    task: &T,
    model: &M,
    split: Split,
    options: &RunOptions,
    device: &Device,
) -> Result<Metrics, crate::task::TaskError> {
    let device = device.clone().without_autodiff();
    task.evaluate(&model.valid(), split, options.eval_batch_size, &device)
}

/// Appends `test_<name>,<iteration>,<value>` for every test metric.
fn append_test_metrics(csv: &mut String, metrics: &Metrics, iteration: u64) {
    for (name, value) in metrics.iter() {
        csv.push_str(&format!("test_{name},{iteration},{value}\n"));
    }
}
