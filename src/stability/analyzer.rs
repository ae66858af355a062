//! [`StabilityAnalyzer`]: stability analysis of an existing IMP experiment.
//!
//! Pointed at an experiment directory (the [`Imp`] that made it, its output
//! root, the [`Task`], model initializer and device), it reads the stored
//! rewind point and masks, trains the extra copies it needs from the rewind
//! point with other data-order seeds as [`Branch::Stability`] branches (the
//! same routine, files and resumption as every IMP level; see
//! [`Layout`]) so a re-run reuses them. A copy with the main line's data-order seed is
//! the main line's own trained network (read, not retrained), except for
//! the dense level 0 of an experiment rewinding to `k > 0`, whose main run
//! trained `0..T` in one go: its copy from `k` is trained as a branch.
//!
//! A copy with data-order seed `s` draws its augmentation with seed `s` too
//! (the main line's seed uses the main line's augmentation seed). Level 0
//! is the dense network in every condition: the random-pruning condition
//! shares the main line's level-0 copies.
//!
//! Reading finished levels takes no lock (see [`crate::imp::lock`]), so an
//! analysis can run while other processes write the experiment; a copy
//! that has to be trained takes its level's lock like any IMP level.

use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use super::StabilityError;
use super::barrier::{BarrierOptions, InterpolationCurve, interpolation_curve};
use super::distance::{Distance, distance, host_weights};
use super::report::StabilityRow;
pub use crate::imp::Condition;
use crate::imp::store::ExperimentStore;
use crate::imp::{
    Branch, BranchTrainer, Imp, ImpConfig, ImpObserver, ImpReport, Layout, LevelSummary,
    RunOptions, first_repeat,
};
use crate::mask::{Mask, MaskOverlap};
use crate::task::Task;
use crate::train::trainer::TrainOptions;

/// Distance and instability of two copies trained from the same rewind point.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PairResult {
    /// Condition name (`imp_rewind0`, `random_prune`, ...).
    pub condition: String,
    /// Pruning level (0 = dense).
    pub level: usize,
    /// Fraction of prunable weights the level's mask keeps.
    pub weights_remaining: f64,
    /// The experiment's rewind iteration k.
    pub rewind_iteration: u64,
    /// Data-order seeds of the two copies (`a`, `b`).
    pub seeds: (u64, u64),
    /// Distance between the copies on the weights the mask keeps.
    pub distance: Distance,
    /// Errors along the linear path (`alpha = 1` is copy `a`).
    pub curve: InterpolationCurve,
}

impl PairResult {
    /// The CSV row.
    pub fn row(&self) -> StabilityRow {
        StabilityRow {
            condition: self.condition.clone(),
            level: self.level,
            weights_remaining: self.weights_remaining,
            rewind_iteration: self.rewind_iteration,
            l2_distance: self.distance.l2,
            l2_normalized: self.distance.l2_normalized,
            angle: self.distance.angle,
            error_barrier: self.curve.barrier(),
            endpoint_error_a: self.curve.endpoint_error_a(),
            endpoint_error_b: self.curve.endpoint_error_b(),
        }
    }
}

/// The distance between two copies trained with data-order `seeds`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PairDistance {
    /// Data-order seeds of the two copies.
    pub seeds: (u64, u64),
    /// Their distance on the mask.
    pub distance: Distance,
}

/// Stability analysis of one IMP experiment (see the module docs).
pub struct StabilityAnalyzer<'a, T, F> {
    imp: Imp,
    output_root: PathBuf,
    task: &'a T,
    init: F,
    device: Device,
    options: BarrierOptions,
    train_options: TrainOptions,
    verbose: bool,
}

/// Prints a line to stderr for every stability copy trained or read.
struct CopyProgress {
    verbose: bool,
    rewind_iteration: u64,
}

impl ImpObserver for CopyProgress {
    fn level_finished(&mut self, summary: &LevelSummary, skipped: bool) {
        if !self.verbose {
            return;
        }
        let (name, level, k) = (&summary.condition, summary.level, self.rewind_iteration);
        if skipped {
            eprintln!("{name} level {level}: stored");
        } else {
            eprintln!(
                "{name} level {level}: trained from {k} in {:.1} s, test {}",
                summary.wall_seconds, summary.metrics
            );
        }
    }
}

impl<'a, M, T, F> StabilityAnalyzer<'a, T, F>
where
    M: Module,
    T: Task<M>,
    F: Fn(&Device, u64) -> M,
{
    /// An analyzer of the experiment `imp` stores under `output_root`, on
    /// `task`; `init(device, seed)` builds the model (as for [`Imp::run`]).
    pub fn new(
        imp: Imp,
        output_root: impl AsRef<Path>,
        task: &'a T,
        init: F,
        device: &Device,
    ) -> Self {
        Self {
            imp,
            output_root: output_root.as_ref().to_path_buf(),
            task,
            init,
            device: device.clone(),
            options: BarrierOptions::default(),
            train_options: TrainOptions::default(),
            verbose: false,
        }
    }

    /// Sets the instability options (points, BatchNorm statistics, ...).
    pub fn with_options(mut self, options: BarrierOptions) -> Self {
        self.options = options;
        self
    }

    /// Sets the options of the training loop used for the extra copies.
    pub fn with_train_options(mut self, options: TrainOptions) -> Self {
        self.train_options = options;
        self
    }

    /// Prints a line to stderr for every copy trained or read.
    pub fn with_progress(mut self, verbose: bool) -> Self {
        self.verbose = verbose;
        self
    }

    /// The instability options.
    pub fn options(&self) -> &BarrierOptions {
        &self.options
    }

    /// The experiment's configuration.
    pub fn config(&self) -> &ImpConfig {
        self.imp.config()
    }

    /// The experiment directory.
    pub fn directory(&self) -> PathBuf {
        self.imp.directory(&self.output_root)
    }

    /// Runs (or resumes; finished levels are reused) the IMP experiment itself.
    pub fn run_experiment(
        &self,
        observer: &mut dyn ImpObserver,
    ) -> Result<ImpReport, StabilityError> {
        Ok(self.imp.run(
            &self.output_root,
            &self.device,
            self.task,
            &self.init,
            observer,
        )?)
    }

    /// The IMP runner of the experiment.
    pub(super) fn imp(&self) -> &Imp {
        &self.imp
    }

    /// The task.
    pub(super) fn task(&self) -> &'a T {
        self.task
    }

    /// The model initializer.
    pub(super) fn init(&self) -> &F {
        &self.init
    }

    /// The device models are evaluated on.
    pub(super) fn device(&self) -> &Device {
        &self.device
    }

    /// Opens the experiment's store for reading (no lock, nothing written);
    /// it must exist.
    pub(super) fn store(&self) -> Result<ExperimentStore, StabilityError> {
        let directory = self.directory();
        let fs = self.imp.options().file_system.clone();
        let config = directory.join(Layout::CONFIG);
        if !matches!(fs.fs().kind(&config), Ok(Some(_))) {
            return Err(StabilityError::Config(format!(
                "no IMP experiment at {}; run it first (StabilityAnalyzer::run_experiment)",
                directory.display()
            )));
        }
        Ok(ExperimentStore::open_read_only_in(fs, &directory)?)
    }

    /// The mask of `condition` at `level` (level 0: the dense mask), from
    /// its finished level.
    fn stored_mask(
        store: &ExperimentStore,
        condition: Condition,
        level: usize,
    ) -> Result<Mask, StabilityError> {
        let files = Layout::level(&condition.at_level(level).branch(), level);
        if !store.contains(&files.summary()) {
            return Err(StabilityError::Config(format!(
                "{}/{} is not finished: run the IMP experiment first",
                store.root().display(),
                files.dir()
            )));
        }
        Ok(Mask::from_bytes(&store.read(&files.mask())?)?)
    }

    /// The mask of a level of a condition (level 0: the dense mask).
    pub fn mask(&self, condition: Condition, level: usize) -> Result<Mask, StabilityError> {
        Self::stored_mask(&self.store()?, condition, level)
    }

    /// The network of `condition` at `level` trained from the rewind point
    /// with data-order seed `seed`: read from the main line or a stored
    /// branch, or trained now (resumably) as the branch
    /// [`Branch::Stability`], exactly as the IMP runner trains its branches.
    pub fn trained_copy(
        &self,
        condition: Condition,
        level: usize,
        seed: u64,
    ) -> Result<M, StabilityError> {
        let condition = condition.at_level(level);
        let branch = Branch::Stability { condition, seed };
        let store = self.store()?;
        let mask = Self::stored_mask(&store, condition, level)?;
        let trained = branch
            .same_network_as(level, self.config())
            .unwrap_or(branch);
        let finished = Layout::level(&trained, level)
            .outputs()
            .iter()
            .all(|file| store.contains(file));
        // Only a copy that has to be trained opens the experiment for writing
        // (which checks its configuration and takes the level's lock).
        let mut store = if finished {
            store
        } else {
            let fs = self.imp.options().file_system.clone();
            self.imp.config().open_store_in(fs, &self.directory())?
        };
        let options = RunOptions {
            train: self.train_options.clone(),
            eval_batch_size: self.options.eval_batch_size,
            ..self.imp.options().clone()
        };
        let mut progress = CopyProgress {
            verbose: self.verbose,
            rewind_iteration: self.config().rewind_iteration,
        };
        let device = self.device.clone().autodiff();
        let mut trainer = BranchTrainer {
            config: self.config(),
            options: &options,
            store: &mut store,
            device: &device,
            task: self.task,
            init: &self.init,
            observer: &mut progress,
            trained: 0,
        };
        if !finished {
            trainer.train(trained, level, &mask)?;
        }
        Ok(trainer.trained_model(&trained, level)?)
    }

    /// Distance and instability of two copies of `condition` at `level`
    /// trained from the rewind point with data-order seeds `seeds`.
    pub fn analyze_pair(
        &self,
        condition: Condition,
        level: usize,
        seeds: (u64, u64),
    ) -> Result<PairResult, StabilityError> {
        distinct("data-order seed", &[seeds.0, seeds.1])?;
        let mask = self.mask(condition, level)?;
        let a = self.trained_copy(condition, level, seeds.0)?;
        let b = self.trained_copy(condition, level, seeds.1)?;
        let distance = distance(&host_weights(&a), &host_weights(&b), &mask)?;
        let seed = self.config().seeds.init;
        let curve = interpolation_curve(
            &a,
            &b,
            |d| (self.init)(d, seed),
            self.task,
            &self.options,
            &self.device,
        )?;
        Ok(PairResult {
            condition: condition.name(self.config()),
            level,
            weights_remaining: mask.density(),
            rewind_iteration: self.config().rewind_iteration,
            seeds,
            distance,
            curve,
        })
    }

    /// Stability to data order: the distance of every pair of copies of
    /// `condition` at `level` trained with the data-order `seeds` (N >= 2),
    /// on the level's mask. Summarize with [`mean_and_std`](super::mean_and_std).
    pub fn data_order_distances(
        &self,
        condition: Condition,
        level: usize,
        seeds: &[u64],
    ) -> Result<Vec<PairDistance>, StabilityError> {
        if seeds.len() < 2 {
            return Err(StabilityError::Config(
                "at least two data-order seeds are needed".into(),
            ));
        }
        distinct("data-order seed", seeds)?;
        let mask = self.mask(condition, level)?;
        let weights = seeds
            .iter()
            .map(|&s| Ok(host_weights(&self.trained_copy(condition, level, s)?)))
            .collect::<Result<Vec<_>, StabilityError>>()?;
        let mut out = Vec::new();
        for i in 0..seeds.len() {
            for j in i + 1..seeds.len() {
                out.push(PairDistance {
                    seeds: (seeds[i], seeds[j]),
                    distance: distance(&weights[i], &weights[j], &mask)?,
                });
            }
        }
        Ok(out)
    }

    /// Stability to pruning: the distance, on the weights the level's IMP
    /// mask keeps, between the subnetwork trained from the rewind point
    /// with data-order `seed` and the dense network trained from the rewind
    /// point with the same data order.
    pub fn pruning_distance(&self, level: usize, seed: u64) -> Result<Distance, StabilityError> {
        let mask = self.mask(Condition::Imp, level)?;
        let sub = self.trained_copy(Condition::Imp, level, seed)?;
        let dense = self.trained_copy(Condition::Imp, 0, seed)?;
        distance(&host_weights(&sub), &host_weights(&dense), &mask)
    }

    /// Overlap (intersection over union of kept weights) of the masks of
    /// consecutive entries of `levels` of a condition, e.g. `[0, 3, 6]` gives
    /// (0, 3) and (3, 6). For two runs, compare
    /// [`mask`](Self::mask)s of two analyzers with [`Mask::overlap`].
    pub fn level_overlaps(
        &self,
        condition: Condition,
        levels: &[usize],
    ) -> Result<Vec<(usize, usize, MaskOverlap)>, StabilityError> {
        let masks = levels
            .iter()
            .map(|&l| self.mask(condition, l))
            .collect::<Result<Vec<_>, _>>()?;
        levels
            .windows(2)
            .zip(masks.windows(2))
            .map(|(l, m)| Ok((l[0], l[1], m[0].overlap(&m[1])?)))
            .collect()
    }

    /// [`analyze_pair`](Self::analyze_pair) for every condition and level;
    /// `on_result` sees each result as it is done. A condition, level or
    /// seed named twice is refused before anything trains.
    pub fn sweep(
        &self,
        conditions: &[Condition],
        levels: &[usize],
        seeds: (u64, u64),
        mut on_result: impl FnMut(&PairResult),
    ) -> Result<Vec<PairResult>, StabilityError> {
        distinct("condition", conditions)?;
        distinct("level", levels)?;
        distinct("data-order seed", &[seeds.0, seeds.1])?;
        let mut results = Vec::new();
        for &condition in conditions {
            for &level in levels {
                let result = self.analyze_pair(condition, level, seeds)?;
                on_result(&result);
                results.push(result);
            }
        }
        Ok(results)
    }
}

/// Refuses a `what` named twice in `values`: two copies with one data
/// order are one network (distance and barrier 0), and a repeated level or
/// condition repeats its rows.
fn distinct<V: PartialEq + std::fmt::Debug>(
    what: &str,
    values: &[V],
) -> Result<(), StabilityError> {
    match first_repeat(values) {
        Some(v) => Err(StabilityError::Config(format!(
            "{what} {v:?} is named twice in {values:?}; name each once"
        ))),
        None => Ok(()),
    }
}
