//! Merging the finished jobs of a sweep into one report, and the same
//! report from a single process (the reference).

use std::collections::HashMap;
use std::path::Path;

use burn::module::Module;
use burn::tensor::Device;

use super::SweepError;
use super::run::Sweep;
use crate::imp::store::ExperimentStore;
use crate::imp::store::StoreError;
use crate::imp::{Branch, ImpError, ImpObserver, Layout, LevelSummary};
use crate::report::{self, MetricLabel, ReportError, ReportRow};
use crate::stability::{PairResult, StabilityAnalyzer, StabilityRow};
use crate::task::Task;

/// The header of `stability.csv`: the experiment's seed and the two copies'
/// data-order seeds, then the columns of
/// [`stability::CSV_HEADER`](crate::stability::CSV_HEADER).
pub const STABILITY_CSV_HEADER: &str = "seed,copy_a,copy_b";

/// One analyzed pair of stability copies of a sweep.
#[derive(Debug, Clone, PartialEq)]
pub struct StabilityEntry {
    /// The experiment's seed.
    pub seed: u64,
    /// The data-order seeds of the two copies.
    pub copies: (u64, u64),
    /// The analysis.
    pub row: StabilityRow,
}

/// The merged results of a sweep.
#[derive(Debug, Clone)]
pub struct SweepReport {
    /// The reported metric.
    pub metric: MetricLabel,
    /// One row per finished network, experiments in order (seed, then k),
    /// then branches (main line, data orders, controls), then levels.
    /// Controls are named `<control>_rewind<k>` when the sweep has several
    /// rewind points.
    pub rows: Vec<ReportRow>,
    /// One row per analyzed pair of stability copies.
    pub stability: Vec<StabilityEntry>,
    /// Jobs whose network is not finished (by number), and stability pairs
    /// that could not be analyzed for that reason.
    pub missing: Vec<usize>,
}

impl SweepReport {
    /// `report.csv`.
    pub fn report_csv(&self) -> String {
        report::to_csv(&self.rows, &self.metric)
    }

    /// `stability.csv`.
    pub fn stability_csv(&self) -> String {
        let mut out = format!("{STABILITY_CSV_HEADER},{}\n", crate::stability::CSV_HEADER);
        for StabilityEntry {
            seed,
            copies: (a, b),
            row,
        } in &self.stability
        {
            let line = crate::stability::report::to_csv(std::slice::from_ref(row));
            let line = line.lines().nth(1).unwrap_or_default();
            out.push_str(&format!("{seed},{a},{b},{line}\n"));
        }
        out
    }

    /// Writes `report.csv`, `report.svg` (titled `title`) and
    /// `stability.csv` into `dir`. While no job is finished there is nothing
    /// to plot: the CSV files get their headers and there is no `report.svg`
    /// (one left in `dir` by an earlier report is removed).
    pub fn write(&self, dir: &Path, title: &str) -> Result<(), SweepError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| ReportError::Io { path, source }
        };
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let csv = dir.join(Layout::REPORT_CSV);
        crate::io::write_atomic(&csv, self.report_csv().as_bytes()).map_err(io(&csv))?;
        let stability = dir.join("stability.csv");
        crate::io::write_atomic(&stability, self.stability_csv().as_bytes())
            .map_err(io(&stability))?;
        let svg = dir.join(Layout::REPORT_SVG);
        if !self.rows.is_empty() {
            report::plot_metric_vs_weights(&self.rows, &self.metric, title, &svg)?;
        } else if svg.exists() {
            std::fs::remove_file(&svg).map_err(io(&svg))?;
        }
        Ok(())
    }
}

/// Report rows by experiment, before ordering.
type Rows = Vec<(usize, ReportRow)>;

impl Sweep {
    /// Merges every finished job under `root` into one report (read only:
    /// no lock, nothing written, so it can run while jobs are running), and
    /// analyzes every pair of finished stability copies on `task` (their
    /// interpolation is evaluated on `device`). What is not finished is
    /// listed in [`SweepReport::missing`].
    pub fn report<M, T, F>(
        &self,
        root: &Path,
        device: &Device,
        task: &T,
        init: F,
    ) -> Result<SweepReport, SweepError>
    where
        M: Module,
        T: Task<M>,
        F: Fn(&Device, u64) -> M + Clone,
    {
        let mut rows: Rows = Vec::new();
        let mut missing = Vec::new();
        for job in self.jobs() {
            if matches!(job.branch, Branch::Stability { .. }) {
                if !self.is_finished(root, job) {
                    missing.push(job.index);
                }
                continue;
            }
            match self.stored_summary(root, job.experiment, &job.branch, job.level)? {
                Some(summary) => {
                    rows.push((job.experiment, self.row(job.experiment, &summary, task)))
                }
                None => missing.push(job.index),
            }
        }
        let stability = self.pairs(root, device, task, init, false)?;
        Ok(self.finish(rows, stability, missing, task))
    }

    /// Runs the whole sweep in this process under `root`: every experiment
    /// with [`Imp::run`](crate::imp::Imp::run) (the main line and the
    /// controls, level by level), then every stability pair with the
    /// [`StabilityAnalyzer`] (training the copies). The reference a
    /// cluster run's [`report`](Self::report) is compared with.
    pub fn run_single_process<M, T, F>(
        &self,
        root: &Path,
        device: &Device,
        task: &T,
        init: F,
        observer: &mut dyn ImpObserver,
    ) -> Result<SweepReport, SweepError>
    where
        M: Module,
        T: Task<M>,
        F: Fn(&Device, u64) -> M + Clone,
    {
        let mut rows: Rows = Vec::new();
        for (e, imp) in self.experiments().iter().enumerate() {
            let report = imp.run(root, device, task, init.clone(), observer)?;
            rows.extend(report.summaries.iter().map(|s| (e, self.row(e, s, task))));
        }
        let stability = self.pairs(root, device, task, init, true)?;
        Ok(self.finish(rows, stability, Vec::new(), task))
    }

    /// The summary of a finished level, or `None`.
    fn stored_summary(
        &self,
        root: &Path,
        experiment: usize,
        branch: &Branch,
        level: usize,
    ) -> Result<Option<LevelSummary>, SweepError> {
        let directory = self.experiments()[experiment].directory(root);
        let path = Layout::level(branch, level).summary();
        let store = match ExperimentStore::open_read_only(&directory) {
            Ok(store) if store.contains(&path) => store,
            Ok(_) | Err(StoreError::NotRecorded { .. }) => return Ok(None),
            Err(e) => return Err(ImpError::Store(e).into()),
        };
        let bytes = store.read(&path).map_err(ImpError::Store)?;
        let summary = serde_json::from_slice(&bytes)
            .map_err(|e| ImpError::Config(format!("{}: {e}", store.path(&path).display())))?;
        Ok(Some(summary))
    }

    /// The report row of a summary of experiment `e`.
    fn row<M: Module, T: Task<M>>(&self, e: usize, summary: &LevelSummary, task: &T) -> ReportRow {
        let config = self.experiments()[e].config();
        ReportRow {
            condition: self.label(e, &summary.condition),
            seed: config.seeds.init,
            level: summary.level,
            weights_remaining: summary.weights_remaining,
            value: summary.metric(&task.metrics().reported).unwrap_or(f64::NAN),
            execution: None,
            execution_reason: None,
        }
        .with_execution(summary.execution.as_ref())
    }

    /// The report name of condition `name` of experiment `e`: controls and
    /// data orders get `_rewind<k>` when the sweep has several rewind points.
    fn label(&self, e: usize, name: &str) -> String {
        let config = self.experiments()[e].config();
        if name != config.condition() && self.spec().rewind_points.len() > 1 {
            format!("{name}_rewind{}", config.rewind_iteration)
        } else {
            name.to_string()
        }
    }

    /// Every stability pair of every experiment: analyzed when both copies
    /// are finished (or, with `train`, after training them).
    fn pairs<M, T, F>(
        &self,
        root: &Path,
        device: &Device,
        task: &T,
        init: F,
        train: bool,
    ) -> Result<Vec<StabilityEntry>, SweepError>
    where
        M: Module,
        T: Task<M>,
        F: Fn(&Device, u64) -> M + Clone,
    {
        let copies = &self.spec().stability.copies;
        let mut out = Vec::new();
        for imp in self.experiments() {
            let analyzer = StabilityAnalyzer::new(imp.clone(), root, task, init.clone(), device)
                .with_train_options(imp.options().train.clone());
            let seed = imp.config().seeds.init;
            for condition in self.spec().stability_conditions() {
                for level in 0..=imp.config().levels {
                    if level == 0 && condition != condition.at_level(0) {
                        continue;
                    }
                    for (i, &a) in copies.iter().enumerate() {
                        for &b in &copies[i + 1..] {
                            if !train && !self.copies_finished(root, imp, condition, level, (a, b))
                            {
                                continue;
                            }
                            let result: PairResult =
                                analyzer.analyze_pair(condition, level, (a, b))?;
                            out.push(StabilityEntry {
                                seed,
                                copies: (a, b),
                                row: result.row(),
                            });
                        }
                    }
                }
            }
        }
        Ok(out)
    }

    fn copies_finished(
        &self,
        root: &Path,
        imp: &crate::imp::Imp,
        condition: crate::imp::Condition,
        level: usize,
        seeds: (u64, u64),
    ) -> bool {
        let Ok(store) = ExperimentStore::open_read_only(imp.directory(root)) else {
            return false;
        };
        [seeds.0, seeds.1].iter().all(|&seed| {
            let condition = condition.at_level(level);
            let branch = Branch::Stability { condition, seed };
            let trained = branch
                .same_network_as(level, imp.config())
                .unwrap_or(branch);
            super::run::level_finished(&store, &trained, level)
        })
    }

    /// Orders the rows (experiment, branch, level) and builds the report.
    fn finish<M: Module, T: Task<M>>(
        &self,
        rows: Rows,
        stability: Vec<StabilityEntry>,
        missing: Vec<usize>,
        task: &T,
    ) -> SweepReport {
        let mut position: HashMap<(usize, String), usize> = HashMap::new();
        for (e, imp) in self.experiments().iter().enumerate() {
            for (p, branch) in imp.branches().iter().enumerate() {
                position.insert((e, self.label(e, &branch.name(imp.config()))), p);
            }
        }
        let mut rows = rows;
        rows.sort_by_key(|(e, r)| {
            (
                *e,
                position.get(&(*e, r.condition.clone())).copied(),
                r.level,
            )
        });
        let spec = task.metrics();
        SweepReport {
            metric: MetricLabel::new(&spec.reported, spec.percent)
                .unwrap_or_else(|_| MetricLabel::accuracy()),
            rows: rows.into_iter().map(|(_, r)| r).collect(),
            stability,
            missing,
        }
    }
}
