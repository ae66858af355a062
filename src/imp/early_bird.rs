//! The early-bird search of a main-line level
//! ([`PruningMethod::EarlyBird`](super::PruningMethod::EarlyBird)): the
//! dense run from the experiment's initialization, on the main line's data
//! order, with the experiment's magnitude pruner taking the level's mask at
//! the end of every epoch, stopped as soon as
//! [`EarlyBirdDetector`] fires. The epochs' distances and the epoch drawn
//! are stored; the level's mask is then stored by the runner, so a resumed
//! experiment reads it back instead of searching again (a search killed
//! before its mask was stored starts over).

use burn::module::Module;
use burn::tensor::Device;

use super::branch::Branch;
use super::layout::Layout;
use super::level::BranchTrainer;
use super::runner::ImpError;
use super::summary::ImpObserver;
use crate::mask::Mask;
use crate::prune::{
    EarlyBirdConfig, EarlyBirdDetector, EarlyBirdRecord, EpochDistance, MagnitudePruner,
    PruneError, mask_distance,
};
use crate::task::Task;
use crate::train::masked::MaskedOptimizer;
use crate::train::trainer::{TrainError, TrainObserver, Trainer};

/// Follows the dense run epoch by epoch and stops it when the ticket is
/// drawn.
struct Search<'a> {
    config: &'a EarlyBirdConfig,
    pruner: &'a MagnitudePruner,
    dense: &'a Mask,
    level: usize,
    detector: EarlyBirdDetector,
    epochs: Vec<EpochDistance>,
    /// The newest epoch's mask.
    latest: Option<Mask>,
    /// The epoch at which the detector fired.
    drawn: Option<u64>,
    /// The typed error behind a mask that could not be taken.
    failure: Option<PruneError>,
    observer: &'a mut dyn ImpObserver,
    /// The observer asked to stop at this step.
    stop: bool,
}

impl<'a> Search<'a> {
    /// A search at `level` with `config`, reporting to `observer`.
    fn new(
        config: &'a EarlyBirdConfig,
        (pruner, dense): (&'a MagnitudePruner, &'a Mask),
        level: usize,
        observer: &'a mut dyn ImpObserver,
    ) -> Self {
        Self {
            config,
            pruner,
            dense,
            level,
            detector: EarlyBirdDetector::new(config),
            epochs: Vec::new(),
            latest: None,
            drawn: None,
            failure: None,
            observer,
            stop: false,
        }
    }

    /// The drawn mask and the record of the search, once the dense run of
    /// `end` iterations (the recipe's length) stopped with `result`: the
    /// mask of the epoch at which the detector fired, or, when it never
    /// fired, that of the network trained to the end. A run stopped for
    /// another reason gives its error (`condition` names it).
    fn into_ticket<M: Module>(
        mut self,
        result: Result<M, TrainError>,
        end: u64,
        condition: String,
    ) -> Result<(Mask, EarlyBirdRecord), ImpError> {
        let drawn_iteration = match result {
            Err(TrainError::Stopped { iteration, .. }) if self.drawn.is_some() => iteration,
            Ok(model) => {
                if self.epochs.last().map(|e| e.iteration) != Some(end) {
                    self.end_of_epoch(&model, end)?;
                }
                end
            }
            Err(source) => {
                let level = self.level;
                return Err(self.failure.map(ImpError::from).unwrap_or(ImpError::Train {
                    condition,
                    level,
                    source,
                }));
            }
        };
        let mask = self
            .latest
            .take()
            .expect("the search takes a mask at the latest at the end of training");
        let record = EarlyBirdRecord {
            level: self.level,
            kept: mask.kept_count(),
            total: mask.total_count(),
            config: self.config.clone(),
            drawn_epoch: self.drawn,
            drawn_iteration,
            epochs: self.epochs,
        };
        Ok((mask, record))
    }

    /// Takes the mask of `model` once `iteration` iterations are done
    /// (the end of epoch `ceil(iteration / epoch_iterations)`) and its
    /// distance to the previous one; returns whether the detector fires.
    fn end_of_epoch<M: Module>(&mut self, model: &M, iteration: u64) -> Result<bool, PruneError> {
        let mask = self.pruner.one_shot(model, self.dense, self.level)?;
        let distance = match &self.latest {
            Some(previous) => Some(mask_distance(previous, &mask)?),
            None => None,
        };
        let epoch = iteration.div_ceil(self.config.epoch_iterations);
        self.epochs.push(EpochDistance {
            epoch,
            iteration,
            distance,
        });
        self.latest = Some(mask);
        let fired = distance.is_some_and(|d| self.detector.push(d));
        if fired {
            self.drawn = Some(epoch);
        }
        Ok(fired)
    }
}

/// The reason the search stops the dense run once the ticket is drawn.
const DRAWN: &str = "early-bird ticket drawn";

impl<M: Module> TrainObserver<M> for Search<'_> {
    fn checkpoint_due(&mut self, completed: u64) -> bool {
        self.stop = self.observer.should_stop();
        self.stop || completed.is_multiple_of(self.config.epoch_iterations)
    }

    fn checkpoint(
        &mut self,
        completed: u64,
        model: &M,
        _optimizer: &MaskedOptimizer,
    ) -> Result<(), String> {
        if std::mem::take(&mut self.stop) {
            return Err("stopped by the observer".into());
        }
        if !completed.is_multiple_of(self.config.epoch_iterations) {
            return Ok(());
        }
        match self.end_of_epoch(model, completed) {
            Ok(true) => Err(DRAWN.into()),
            Ok(false) => Ok(()),
            Err(error) => {
                let message = error.to_string();
                self.failure = Some(error);
                Err(message)
            }
        }
    }
}

/// Runs the early-bird search of main-line `level` (its mask keeps the
/// per-group counts `level` levels of `pruner` keep, from `dense`), stores
/// its distances and record (see [`Layout::early_bird_record`]) and returns
/// the drawn mask (see [`Search::into_ticket`]).
pub(crate) fn draw<M, T, F>(
    trainer: &mut BranchTrainer<'_, T, F>,
    early_bird: &EarlyBirdConfig,
    level: usize,
    dense: &Mask,
    pruner: &MagnitudePruner,
) -> Result<Mask, ImpError>
where
    M: Module,
    T: Task<M>,
    F: Fn(&Device, u64) -> M,
{
    early_bird.validate()?;
    let config = trainer.config;
    let end = config.training.training_iterations;
    let template = trainer.template();
    let mut optimizer = MaskedOptimizer::new(
        config.training.optimizer.init(),
        dense,
        &template,
        trainer.device,
    )?;
    let model = optimizer.prepare(template);
    let mut search = Search::new(early_bird, (pruner, dense), level, &mut *trainer.observer);
    let result = Trainer::new(&config.training, trainer.task, trainer.device)
        .with_options(trainer.options.train.clone())
        .train(
            model,
            &mut optimizer,
            0..end,
            &Branch::Main.data_order(config),
            &mut search,
        );
    let condition = format!("{} (early-bird search)", config.condition());
    let (mask, record) = search.into_ticket(result, end, condition)?;
    let json = serde_json::to_vec_pretty(&record).expect("a record serializes");
    trainer.store.write(
        &Layout::early_bird_distances(level),
        record.distances_csv().as_bytes(),
    )?;
    trainer
        .store
        .write(&Layout::early_bird_record(level), &json)?;
    Ok(mask)
}
