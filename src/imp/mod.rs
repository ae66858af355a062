//! The IMP loop with rewinding, its controls and the experiment directory.
//!
//! An experiment lives in `<output>/<name>-<hash>/`, named by a hash of its
//! [`ImpConfig`]:
//!
//! ```text
//! config.json  manifest.json (size + XXH3-64 hash of every file)
//! rewind.ckpt                      state at the rewind iteration k (from level 0)
//! main/level_LL/                   mask.bin, final.ckpt, metrics.csv,
//!                                  sparsity.json, summary.json (written last)
//! branches/random_reinit/level_LL/ the controls, laid out the same way
//! branches/random_prune/level_LL/
//! report.csv  report.svg
//! ```

mod config;
mod runner;
pub mod store;
mod ticket;

pub use config::{Controls, ImpConfig, Seeds};
pub use runner::{
    ExperimentData, Imp, ImpError, ImpObserver, ImpReport, LevelSummary, RunOptions, Silent,
};
