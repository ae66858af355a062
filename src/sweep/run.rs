//! [`Sweep`]: the experiments and jobs of a [`SweepSpec`], and running them.

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use burn::module::Module;
use burn::tensor::Device;

use super::SweepError;
use super::job::{Job, JobState};
use super::spec::SweepSpec;
use crate::imp::store::ExperimentStore;
use crate::imp::{
    Branch, Condition, Imp, ImpConfig, ImpObserver, Layout, LevelSummary, RunOptions, Seeds,
};
use crate::task::Task;

/// A sweep: the [`SweepSpec`] applied to a base configuration (see the
/// [module docs](super)).
#[derive(Debug, Clone)]
pub struct Sweep {
    spec: SweepSpec,
    experiments: Vec<Imp>,
    jobs: Vec<Job>,
}

/// A job before numbering: (experiment, branch, level) and its dependencies.
type Key = (usize, Branch, usize);

impl Sweep {
    /// The sweep of `spec` over `base`, the network's configuration: each
    /// experiment is `base` with the spec's levels, iterations (the recipe
    /// [`shortened`](crate::train::recipe::TrainingRecipe::shortened)),
    /// rewind point, seed (all three streams) and controls, run with
    /// `options`.
    pub fn new(spec: SweepSpec, base: &ImpConfig, options: RunOptions) -> Result<Self, SweepError> {
        let mut training = base.training.clone();
        if let Some(iterations) = spec.iterations {
            training = training.shortened(iterations);
        }
        spec.validate(training.training_iterations)?;
        let mut experiments = Vec::new();
        for &seed in &spec.seeds {
            for &k in &spec.rewind_points {
                let config = ImpConfig {
                    training: training.clone(),
                    levels: spec.levels,
                    target_density: None,
                    rewind_iteration: k,
                    seeds: Seeds::all(seed),
                    controls: spec.controls.clone(),
                    ..base.clone()
                };
                let imp = Imp::new(config).with_options(options.clone());
                imp.validate()?;
                experiments.push(imp);
            }
        }
        let jobs = plan(&spec, &experiments);
        Ok(Self {
            spec,
            experiments,
            jobs,
        })
    }

    /// The description.
    pub fn spec(&self) -> &SweepSpec {
        &self.spec
    }

    /// The experiments, seed-major: (seed 0, k 0), (seed 0, k 1), ...
    pub fn experiments(&self) -> &[Imp] {
        &self.experiments
    }

    /// Every job, numbered in waves (see [`Job::wave`]).
    pub fn jobs(&self) -> &[Job] {
        &self.jobs
    }

    /// The job numbered `index`.
    pub fn job(&self, index: usize) -> Result<&Job, SweepError> {
        self.jobs.get(index).ok_or(SweepError::NoSuchJob {
            index,
            count: self.jobs.len(),
        })
    }

    /// The first and last job of every wave.
    pub fn waves(&self) -> Vec<(usize, usize)> {
        let mut waves: Vec<(usize, usize)> = Vec::new();
        for job in &self.jobs {
            match waves.get_mut(job.wave) {
                Some(range) => range.1 = job.index,
                None => waves.push((job.index, job.index)),
            }
        }
        waves
    }

    /// Whether `job`'s level is finished under `root` (read only, no lock).
    pub fn is_finished(&self, root: &Path, job: &Job) -> bool {
        let directory = self.experiments[job.experiment].directory(root);
        ExperimentStore::open_read_only(directory)
            .is_ok_and(|store| level_finished(&store, &job.branch, job.level))
    }

    /// Where every job stands under `root`.
    pub fn status(&self, root: &Path) -> Vec<JobState> {
        let finished: Vec<bool> = self
            .jobs
            .iter()
            .map(|j| self.is_finished(root, j))
            .collect();
        self.jobs
            .iter()
            .map(|job| {
                let waiting: Vec<usize> = job
                    .depends_on
                    .iter()
                    .copied()
                    .filter(|&d| !finished[d])
                    .collect();
                if finished[job.index] {
                    JobState::Finished
                } else if waiting.is_empty() {
                    JobState::Ready
                } else {
                    JobState::Waiting(waiting)
                }
            })
            .collect()
    }

    /// Waits (polling every `poll`) up to `timeout` for the dependencies of
    /// job `index` to finish; the first unfinished one after the timeout is
    /// [`SweepError::NotReady`].
    pub fn wait_for_dependencies(
        &self,
        root: &Path,
        index: usize,
        timeout: Duration,
        poll: Duration,
    ) -> Result<(), SweepError> {
        let job = self.job(index)?;
        let started = Instant::now();
        loop {
            let pending = job
                .depends_on
                .iter()
                .find(|&&d| !self.is_finished(root, &self.jobs[d]));
            match pending {
                None => return Ok(()),
                Some(&d) if started.elapsed() >= timeout => {
                    return Err(SweepError::NotReady {
                        job: index,
                        dependency: d,
                        description: self.jobs[d].to_string(),
                    });
                }
                Some(_) => std::thread::sleep(poll),
            }
        }
    }

    /// Runs job `index` under `root` (resuming whatever it finds, reading
    /// it back when finished). Its dependencies must be finished:
    /// otherwise [`SweepError::NotReady`] names the first that is not.
    pub fn run_job<M, T, F>(
        &self,
        index: usize,
        root: &Path,
        device: &Device,
        task: &T,
        init: F,
        observer: &mut dyn ImpObserver,
    ) -> Result<LevelSummary, SweepError>
    where
        M: Module,
        T: Task<M>,
        F: Fn(&Device, u64) -> M,
    {
        self.wait_for_dependencies(root, index, Duration::ZERO, Duration::ZERO)?;
        let job = &self.jobs[index];
        let imp = &self.experiments[job.experiment];
        Ok(imp.run_level(root, device, task, init, (job.branch, job.level), observer)?)
    }
}

/// The jobs of `experiments`, numbered in waves.
fn plan(spec: &SweepSpec, experiments: &[Imp]) -> Vec<Job> {
    let mut keyed: Vec<(Key, Vec<Key>)> = Vec::new();
    for (e, imp) in experiments.iter().enumerate() {
        keyed.extend(experiment_jobs(spec, e, imp));
    }
    // Waves: one more than the deepest dependency.
    let mut wave: HashMap<Key, usize> = HashMap::new();
    for (key, deps) in &keyed {
        let w = deps.iter().map(|d| wave[d] + 1).max().unwrap_or(0);
        wave.insert(*key, w);
    }
    let mut order: Vec<usize> = (0..keyed.len()).collect();
    order.sort_by_key(|&i| (wave[&keyed[i].0], i));
    let index: HashMap<Key, usize> = order
        .iter()
        .enumerate()
        .map(|(n, &i)| (keyed[i].0, n))
        .collect();
    order
        .iter()
        .enumerate()
        .map(|(n, &i)| {
            let ((e, branch, level), deps) = &keyed[i];
            let config = experiments[*e].config();
            Job {
                index: n,
                experiment: *e,
                seed: config.seeds.init,
                rewind_iteration: config.rewind_iteration,
                branch: *branch,
                condition: branch.name(config),
                level: *level,
                depends_on: deps.iter().map(|d| index[d]).collect(),
                wave: wave[&keyed[i].0],
            }
        })
        .collect()
}

/// The jobs of one experiment with their dependencies, each after its
/// dependencies: per level, the main line, its branches, the stability
/// copies.
fn experiment_jobs(spec: &SweepSpec, e: usize, imp: &Imp) -> Vec<(Key, Vec<Key>)> {
    let config = imp.config();
    let mut jobs = Vec::new();
    for level in 0..=config.levels {
        let main = (e, Branch::Main, level);
        // The level the main line's mask is made from: the previous one
        // for IMP, the dense level 0 for methods whose levels are
        // independent (one-shot, at initialization, GMP, SET, RigL, ...).
        let from = config.method.builds_on(level);
        let previous = (level > 0).then(|| vec![(e, Branch::Main, from)]);
        jobs.push((main, previous.unwrap_or_default()));
        for branch in imp.branches().into_iter().skip(1) {
            if branch.trains_at(level) {
                jobs.push(((e, branch, level), vec![main]));
            }
        }
        for condition in spec.stability_conditions() {
            let condition = condition.at_level(level);
            if level == 0 && condition != Condition::Imp {
                continue;
            }
            let source = (e, condition.branch(), level);
            for &seed in &spec.stability.copies {
                let branch = Branch::Stability { condition, seed };
                let key = (e, branch, level);
                if branch.same_network_as(level, config).is_none()
                    && !jobs.iter().any(|(k, _)| *k == key)
                {
                    jobs.push((key, vec![source]));
                }
            }
        }
    }
    jobs
}

/// Whether every file of a finished level (its summary last) is recorded.
pub(super) fn level_finished(store: &ExperimentStore, branch: &Branch, level: usize) -> bool {
    Layout::level(branch, level)
        .outputs()
        .iter()
        .all(|file| store.contains(file))
}
