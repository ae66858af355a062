//! [`StabilityAnalyzer`]: stability analysis of an existing IMP experiment.
//!
//! Pointed at an experiment directory (the [`Imp`] that made it, its output
//! root, data, model initializer and device), it reads the stored rewind
//! point (`rewind.ckpt`) and masks, trains the extra copies it needs from
//! the rewind point with other data-order seeds and stores them as branches
//!
//! ```text
//! branches/stability/imp/data_order_<seed>/level_LL/           final.ckpt, summary.json
//! branches/stability/random_prune/data_order_<seed>/level_LL/
//! ```
//!
//! so a re-run reuses them. A copy with the main line's data-order seed is
//! the main line's own trained network (read, not retrained), except for
//! the dense level 0 of an experiment rewinding to `k > 0`, whose main run
//! trained `0..T` in one go: its copy from `k` is trained as a branch.
//!
//! A copy with data-order seed `s` draws its augmentation with seed `s` too
//! (the main line's seed uses the main line's augmentation seed). Level 0
//! is the dense network in every condition: the random-pruning condition
//! shares the main line's level-0 copies.
//!
//! Do not run an analyzer on an experiment that an IMP run is writing at the
//! same time: both would rewrite its manifest.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use super::StabilityError;
use super::barrier::{BarrierOptions, InterpolationCurve, interpolation_curve};
use super::distance::{Distance, distance, host_weights};
use super::report::StabilityRow;
use crate::data::{LoaderConfig, SeededLoader};
use crate::imp::store::ExperimentStore;
use crate::imp::{ExperimentData, Imp, ImpConfig, ImpObserver, ImpReport, LevelSummary};
use crate::mask::{Mask, MaskOverlap};
use crate::models::Classifier;
use crate::rewind::RewindCheckpoint;
use crate::train::masked::MaskedOptimizer;
use crate::train::trainer::{NoObserver, TrainOptions, Trainer, evaluate};

/// Which subnetworks of an experiment are analyzed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Condition {
    /// The IMP main line (`imp_rewind<k>`).
    Imp,
    /// The random-pruning control (random mask with the level's per-layer
    /// counts, weights from the rewind point).
    RandomPrune,
}

impl Condition {
    /// The report name: `imp_rewind<k>` or `random_prune`.
    pub fn name(&self, rewind_iteration: u64) -> String {
        match self {
            Self::Imp => format!("imp_rewind{rewind_iteration}"),
            Self::RandomPrune => "random_prune".into(),
        }
    }

    fn directory(&self) -> &'static str {
        match self {
            Self::Imp => "imp",
            Self::RandomPrune => "random_prune",
        }
    }

    /// Level 0 is the dense network in every condition.
    fn at_level(self, level: usize) -> Self {
        if level == 0 { Self::Imp } else { self }
    }
}

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
pub struct StabilityAnalyzer<'a, F> {
    imp: Imp,
    output_root: PathBuf,
    data: &'a ExperimentData,
    init: F,
    device: Device,
    options: BarrierOptions,
    train_options: TrainOptions,
    verbose: bool,
}

impl<'a, M, F> StabilityAnalyzer<'a, F>
where
    M: Classifier,
    F: Fn(&Device, u64) -> M,
{
    /// An analyzer of the experiment `imp` stores under `output_root`;
    /// `init(device, seed)` builds the model (as for [`Imp::run`]).
    pub fn new(
        imp: Imp,
        output_root: impl AsRef<Path>,
        data: &'a ExperimentData,
        init: F,
        device: &Device,
    ) -> Self {
        Self {
            imp,
            output_root: output_root.as_ref().to_path_buf(),
            data,
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
            self.data,
            &self.init,
            observer,
        )?)
    }

    /// Opens the experiment's store, which must exist and hold the same
    /// [`ImpConfig`] (settings added since it was written take their defaults).
    fn store(&self) -> Result<ExperimentStore, StabilityError> {
        let directory = self.directory();
        if !directory.join("config.json").exists() {
            return Err(StabilityError::Config(format!(
                "no IMP experiment at {}; run it first (StabilityAnalyzer::run_experiment)",
                directory.display()
            )));
        }
        Ok(self.imp.config().open_store(&directory)?)
    }

    fn require_finished(store: &ExperimentStore, dir: &str) -> Result<(), StabilityError> {
        if store.contains(&format!("{dir}/summary.json")) {
            Ok(())
        } else {
            Err(StabilityError::Config(format!(
                "{}/{dir} is not finished: run the IMP experiment first",
                store.root().display()
            )))
        }
    }

    /// The mask of a level of a condition (level 0: the dense mask).
    pub fn mask(&self, condition: Condition, level: usize) -> Result<Mask, StabilityError> {
        let store = self.store()?;
        let dir = Self::line_dir(condition.at_level(level), level);
        Self::require_finished(&store, &dir)?;
        Ok(Mask::from_bytes(&store.read(&format!("{dir}/mask.bin"))?)?)
    }

    fn line_dir(condition: Condition, level: usize) -> String {
        match condition {
            Condition::Imp => format!("main/level_{level:02}"),
            Condition::RandomPrune => format!("branches/random_prune/level_{level:02}"),
        }
    }

    fn restore(&self, store: &ExperimentStore, path: &str) -> Result<M, StabilityError> {
        let checkpoint = RewindCheckpoint::from_bytes(&store.read(path)?)?;
        let device = self.device.clone().autodiff();
        Ok(checkpoint.restore((self.init)(&device, self.config().seeds.init))?)
    }

    /// The network of `condition` at `level` trained from the rewind point
    /// with data-order seed `seed`: read from the main line or a stored
    /// branch, or trained now and stored as a branch.
    pub fn trained_copy(
        &self,
        condition: Condition,
        level: usize,
        seed: u64,
    ) -> Result<M, StabilityError> {
        let config = self.config().clone();
        let condition = condition.at_level(level);
        let k = config.rewind_iteration;
        let mut store = self.store()?;
        let line = Self::line_dir(condition, level);
        Self::require_finished(&store, &line)?;
        let main_is_copy = seed == config.seeds.data_order
            && (level > 0 || (k == 0 && !config.restore_optimizer_state));
        if main_is_copy {
            if self.verbose {
                eprintln!(
                    "{} level {level}, data order {seed}: the trained {line}",
                    condition.name(k)
                );
            }
            return self.restore(&store, &format!("{line}/final.ckpt"));
        }
        let dir = format!(
            "branches/stability/{}/data_order_{seed}/level_{level:02}",
            condition.directory()
        );
        if store.contains(&format!("{dir}/summary.json")) {
            if self.verbose {
                eprintln!(
                    "{} level {level}, data order {seed}: stored in {dir}",
                    condition.name(k)
                );
            }
            return self.restore(&store, &format!("{dir}/final.ckpt"));
        }
        let started = Instant::now();
        let mask = Mask::from_bytes(&store.read(&format!("{line}/mask.bin"))?)?;
        let device = self.device.clone().autodiff();
        let rewind = RewindCheckpoint::from_bytes(&store.read("rewind.ckpt")?)?;
        let model = rewind.rewind((self.init)(&device, config.seeds.init), &mask)?;
        let optimizer = config.training.optimizer.init();
        let optimizer = if config.restore_optimizer_state {
            rewind.restore_optimizer(optimizer)?
        } else {
            optimizer
        };
        let mut optimizer = MaskedOptimizer::new(optimizer, &mask, &device);
        let model = optimizer.prepare(model);
        let augment_seed = if seed == config.seeds.data_order {
            config.seeds.augmentation
        } else {
            seed
        };
        let loader = SeededLoader::new(
            Arc::clone(&self.data.train),
            LoaderConfig {
                batch_size: config.training.batch_size,
                data_order_seed: seed,
                augment_seed,
                augmentation: if config.training.augment {
                    self.data.augmentation
                } else {
                    None
                },
                normalization: self.data.normalization.clone(),
            },
        )?;
        let total = config.training.training_iterations;
        let model = Trainer::new(&config.training, &loader, &device)
            .with_options(self.train_options.clone())
            .train(model, &mut optimizer, k..total, &mut NoObserver)?;
        let evaluation = evaluate(
            &model,
            &self.data.test,
            &self.data.normalization,
            self.options.eval_batch_size,
            &device,
        )?;
        let summary = LevelSummary::new(
            format!("{}_data_order_{seed}", condition.name(k)),
            level,
            &mask,
            &evaluation,
            None,
            started,
        );
        let checkpoint = RewindCheckpoint::capture(&model, total);
        store.write(&format!("{dir}/final.ckpt"), &checkpoint.to_bytes()?)?;
        let json = serde_json::to_vec_pretty(&summary).expect("summary serializes");
        store.write(&format!("{dir}/summary.json"), &json)?;
        if self.verbose {
            eprintln!(
                "{} level {level}, data order {seed}: trained {k}..{total} in {:.1} s, test accuracy {:.2}%",
                condition.name(k),
                summary.wall_seconds,
                100.0 * evaluation.accuracy
            );
        }
        Ok(model)
    }

    /// Distance and instability of two copies of `condition` at `level`
    /// trained from the rewind point with data-order seeds `seeds`.
    pub fn analyze_pair(
        &self,
        condition: Condition,
        level: usize,
        seeds: (u64, u64),
    ) -> Result<PairResult, StabilityError> {
        let mask = self.mask(condition, level)?;
        let a = self.trained_copy(condition, level, seeds.0)?;
        let b = self.trained_copy(condition, level, seeds.1)?;
        let distance = distance(&host_weights(&a), &host_weights(&b), &mask)?;
        let seed = self.config().seeds.init;
        let curve = interpolation_curve(
            &a,
            &b,
            |d| (self.init)(d, seed),
            self.data,
            &self.options,
            &self.device,
        )?;
        Ok(PairResult {
            condition: condition.name(self.config().rewind_iteration),
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
    /// `on_result` sees each result as it is done.
    pub fn sweep(
        &self,
        conditions: &[Condition],
        levels: &[usize],
        seeds: (u64, u64),
        mut on_result: impl FnMut(&PairResult),
    ) -> Result<Vec<PairResult>, StabilityError> {
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
