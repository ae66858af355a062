//! The training loop's hooks during a level: the metrics log, periodic
//! checkpoints, the rewind point on the way through iteration k, and the
//! user's observer.

use burn::module::Module;

use super::layout::{Layout, LevelFiles};
use super::runner::RunOptions;
use super::store::ExperimentStore;
use super::summary::ImpObserver;
use crate::rewind::RewindCheckpoint;
use crate::sparse::Execution;
use crate::train::masked::MaskedOptimizer;
use crate::train::trainer::TrainObserver;

/// The header of a level's metrics CSV.
pub(crate) const METRICS_HEADER: &str = "name,iteration,value\n";

/// The lines of a metrics CSV (`name,iteration,value`) up to `iteration`.
pub(crate) fn metrics_up_to(csv: &str, iteration: u64) -> Result<String, String> {
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

/// Connects the training loop of one level to the store and the observer.
pub(crate) struct ProgressHooks<'a> {
    store: &'a mut ExperimentStore,
    observer: &'a mut dyn ImpObserver,
    metrics: String,
    last_loss: Option<f64>,
    log_every: u64,
    checkpoint_every: u64,
    /// Save the rewind point when this iteration completes.
    capture_rewind_at: Option<u64>,
    /// The level's training length: no progress checkpoint is saved there
    /// (the level's final files follow; resuming from the very end would
    /// lose the last training loss of the summary).
    total: u64,
    progress_path: String,
    metrics_path: String,
    /// The typed error behind a checkpoint that could not be saved (the
    /// training loop only carries its message).
    failure: Option<super::runner::ImpError>,
    /// Which path trains the level, and why.
    execution: Option<Execution>,
    /// The observer's answer to `should_stop` for the step whose
    /// checkpoint is due (asked once per step).
    stop: bool,
    /// Progress checkpoints hold the mask in force (it changes as the
    /// level trains).
    with_mask: bool,
}

impl<'a> ProgressHooks<'a> {
    /// Hooks for the level of `files`, continuing `metrics`.
    pub(crate) fn new(
        store: &'a mut ExperimentStore,
        observer: &'a mut dyn ImpObserver,
        files: &LevelFiles,
        metrics: String,
        options: &RunOptions,
        capture_rewind_at: Option<u64>,
        total: u64,
    ) -> Self {
        Self {
            store,
            observer,
            metrics,
            last_loss: None,
            log_every: options.log_every.max(1),
            checkpoint_every: options.checkpoint_every,
            capture_rewind_at,
            total,
            progress_path: files.progress(),
            metrics_path: files.progress_metrics(),
            failure: None,
            execution: None,
            stop: false,
            with_mask: false,
        }
    }

    /// Saves the mask in force with every progress checkpoint when
    /// `with_mask` (a level whose mask changes as it trains).
    pub(crate) fn with_mask(mut self, with_mask: bool) -> Self {
        self.with_mask = with_mask;
        self
    }

    /// Whether a periodic checkpoint is saved when `completed` iterations
    /// are done.
    fn periodic_at(&self, completed: u64) -> bool {
        self.checkpoint_every > 0
            && completed.is_multiple_of(self.checkpoint_every)
            && completed < self.total
    }

    /// The typed error that stopped training at a checkpoint, if any.
    pub(crate) fn take_failure(&mut self) -> Option<super::runner::ImpError> {
        self.failure.take()
    }

    /// Keeps `error` as the reason training stops; returns its message.
    fn fail(&mut self, error: impl Into<super::runner::ImpError>) -> String {
        let error = error.into();
        let message = error.to_string();
        self.failure = Some(error);
        message
    }

    /// The metrics logged, the last training loss read and the path that
    /// trained.
    pub(crate) fn into_metrics(self) -> (String, Option<f64>, Option<Execution>) {
        (self.metrics, self.last_loss, self.execution)
    }
}

impl<M: Module> TrainObserver<M> for ProgressHooks<'_> {
    fn after_step(&mut self, completed: u64, loss: Option<f64>, _learning_rate: f64) {
        self.observer.step(completed, loss);
    }

    fn losses(&mut self, first: u64, losses: &[f64]) {
        for (completed, &loss) in (first + 1..).zip(losses) {
            if completed.is_multiple_of(self.log_every) {
                self.metrics
                    .push_str(&format!("train_loss,{completed},{loss}\n"));
            }
            self.last_loss = Some(loss);
        }
    }

    fn execution(&mut self, execution: &Execution) {
        self.execution = Some(execution.clone());
    }

    fn checkpoint_due(&mut self, completed: u64) -> bool {
        self.stop = self.observer.should_stop();
        self.stop || self.periodic_at(completed) || self.capture_rewind_at == Some(completed)
    }

    fn checkpoint(
        &mut self,
        completed: u64,
        model: &M,
        optimizer: &MaskedOptimizer,
    ) -> Result<(), String> {
        let capture = |with_mask: bool| {
            let checkpoint = RewindCheckpoint::capture(model, completed);
            let checkpoint = match with_mask {
                true => checkpoint.with_mask(optimizer.mask()),
                false => checkpoint,
            };
            checkpoint
                .with_optimizer(optimizer.optimizer())
                .and_then(|c| c.to_bytes())
        };
        if self.capture_rewind_at == Some(completed) && !self.store.contains(Layout::REWIND) {
            let bytes = capture(false).map_err(|e| self.fail(e))?;
            if let Err(e) = self.store.write(Layout::REWIND, &bytes) {
                return Err(self.fail(e));
            }
        }
        if self.periodic_at(completed) {
            if let Err(e) = self
                .store
                .write(&self.metrics_path, self.metrics.as_bytes())
            {
                return Err(self.fail(e));
            }
            let bytes = capture(self.with_mask).map_err(|e| self.fail(e))?;
            if let Err(e) = self.store.write(&self.progress_path, &bytes) {
                return Err(self.fail(e));
            }
        }
        // Asked in `checkpoint_due`, once per step.
        if std::mem::take(&mut self.stop) {
            return Err("stopped by the observer".into());
        }
        Ok(())
    }
}
