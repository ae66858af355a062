//! Training: iterations, learning-rate schedules, the paper's recipes and
//! masked optimizer steps.

pub mod iteration;
mod losses;
pub mod masked;
pub mod optimizer;
pub mod recipe;
pub mod schedule;
pub mod scheduler;
pub mod trainer;

pub use losses::host_reads;
