//! The IMP loop with rewinding, its branches (controls, other data orders,
//! stability copies) and the experiment directory.
//!
//! An experiment lives in `<output>/<name>-<hash>/`, named by a hash of its
//! [`ImpConfig`]; [`Layout`] says where every file of it goes. Every
//! [`Branch`] at every level is trained the same way, by one routine shared
//! with the stability analysis.

mod branch;
mod config;
mod early_bird;
mod layout;
mod level;
pub mod lock;
mod method;
mod progress;
mod retrain;
mod runner;
pub mod schema;
pub mod store;
mod summary;
mod ticket;

pub use branch::{Branch, Condition, Start};
pub(crate) use config::first_repeat;
pub use config::{Controls, ImpConfig, Seeds};
pub use layout::{Layout, LevelFiles};
pub(crate) use level::BranchTrainer;
pub use method::PruningMethod;
pub use retrain::Retrain;
pub use runner::{Imp, ImpError, ImpReport, RunOptions};
pub use summary::{ImpObserver, LevelSummary, Silent};

/// Kept for code written before the data types moved to [`crate::data`].
pub use crate::data::ExperimentData;
