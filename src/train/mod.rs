//! Training: iterations, learning-rate schedules, the paper's recipes and
//! masked optimizer steps.

pub mod iteration;
pub mod masked;
pub mod optimizer;
pub mod recipe;
pub mod schedule;
pub mod scheduler;
pub mod trainer;
