//! [`Layout`]: every path of an experiment directory, in one place.

use super::branch::{Branch, Condition};

/// Every path of an experiment directory:
///
/// ```text
/// config.json  manifest.json             the configuration; size + XXH3-64 of every file
/// rewind.ckpt                            state at the rewind iteration k (from level 0)
/// main/level_LL/                         the IMP line
/// branches/random_reinit/level_LL/       controls
/// branches/random_prune/level_LL/
/// branches/data_order_<s>/level_LL/      other data orders
/// branches/stability/imp/data_order_<s>/level_LL/           stability copies
/// branches/stability/random_prune/data_order_<s>/level_LL/
/// report.csv  report.svg
/// early_bird/level_LL.json  early_bird/level_LL_distances.csv   early-bird search of level LL
/// connectivity.csv                       error barriers between consecutive levels
/// locks/                                 OS file locks of writers, with their holders
/// ```
///
/// Every level directory holds `mask.bin`, `final.ckpt`, `metrics.csv`,
/// `sparsity.json` and `summary.json` (written last: the level is finished
/// when it is recorded), and while the level trains `progress.ckpt` and
/// `progress_metrics.csv`. `mask.bin` is the mask the level trains under,
/// written before training; for a method whose mask changes as the level
/// trains (GMP, SET, RigL) it is the mask the level ends with, written when
/// it finishes, and `progress.ckpt` holds the mask in force. Paths are relative to the experiment directory
/// (the keys of its [`ExperimentStore`](super::store::ExperimentStore)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout;

impl Layout {
    /// The experiment's configuration (written when the directory is made).
    pub const CONFIG: &'static str = "config.json";
    /// Size and XXH3-64 hash of every file of the experiment.
    pub const MANIFEST: &'static str = "manifest.json";
    /// The state at the rewind iteration, shared by every level.
    pub const REWIND: &'static str = "rewind.ckpt";
    /// The experiment's report (one row per trained network).
    pub const REPORT_CSV: &'static str = "report.csv";
    /// Its plot.
    pub const REPORT_SVG: &'static str = "report.svg";
    /// Error barriers between the trained networks of consecutive levels
    /// (see [`StabilityAnalyzer::level_connectivity`](crate::stability::StabilityAnalyzer::level_connectivity)).
    pub const CONNECTIVITY_CSV: &'static str = "connectivity.csv";
    /// The experiment lock, held for the moment of each store update (see
    /// [`lock`](super::lock)).
    pub const EXPERIMENT_LOCK: &'static str = "locks/experiment.lock";

    /// The lock of a level directory (e.g. `main/level_03` gives
    /// `locks/main.level_03.lock`), held by the process that writes it.
    pub fn level_lock(level_dir: &str) -> String {
        format!("locks/{}.lock", level_dir.replace('/', "."))
    }

    /// The early-bird search of main-line `level`: the epoch drawn and the
    /// settings (see [`EarlyBirdRecord`](crate::prune::EarlyBirdRecord)).
    pub fn early_bird_record(level: usize) -> String {
        format!("early_bird/level_{level:02}.json")
    }

    /// The mask distance of every epoch of the early-bird search of
    /// main-line `level` (`epoch,iteration,distance`).
    pub fn early_bird_distances(level: usize) -> String {
        format!("early_bird/level_{level:02}_distances.csv")
    }

    /// The directory of a branch (its levels are subdirectories).
    pub fn branch_dir(branch: &Branch) -> String {
        match branch {
            Branch::Main => "main".into(),
            Branch::RandomReinit => "branches/random_reinit".into(),
            Branch::RandomPrune => "branches/random_prune".into(),
            Branch::DataOrder(seed) => format!("branches/data_order_{seed}"),
            Branch::Stability { condition, seed } => {
                let of = match condition {
                    Condition::Imp => "imp",
                    Condition::RandomPrune => "random_prune",
                };
                format!("branches/stability/{of}/data_order_{seed}")
            }
        }
    }

    /// The files of `branch` at `level`.
    pub fn level(branch: &Branch, level: usize) -> LevelFiles {
        LevelFiles {
            dir: format!("{}/level_{level:02}", Self::branch_dir(branch)),
        }
    }
}

/// The files of one level of one branch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LevelFiles {
    dir: String,
}

impl LevelFiles {
    /// The level's directory, e.g. `main/level_03`.
    pub fn dir(&self) -> &str {
        &self.dir
    }

    fn file(&self, name: &str) -> String {
        format!("{}/{name}", self.dir)
    }

    /// The mask the level trains under (or, when it changes during
    /// training, ends with).
    pub fn mask(&self) -> String {
        self.file("mask.bin")
    }

    /// The trained network (state at the end of training).
    pub fn final_checkpoint(&self) -> String {
        self.file("final.ckpt")
    }

    /// Training losses and test metrics (`name,iteration,value`).
    pub fn metrics(&self) -> String {
        self.file("metrics.csv")
    }

    /// Per-layer kept/total counts of the mask.
    pub fn sparsity(&self) -> String {
        self.file("sparsity.json")
    }

    /// The [`LevelSummary`](super::LevelSummary), written last.
    pub fn summary(&self) -> String {
        self.file("summary.json")
    }

    /// The periodic checkpoint of a level in progress.
    pub fn progress(&self) -> String {
        self.file("progress.ckpt")
    }

    /// The metrics recorded up to the periodic checkpoint.
    pub fn progress_metrics(&self) -> String {
        self.file("progress_metrics.csv")
    }

    /// Every file a finished level holds besides its summary.
    pub fn outputs(&self) -> [String; 4] {
        [
            self.mask(),
            self.final_checkpoint(),
            self.metrics(),
            self.sparsity(),
        ]
    }
}
