//! Training: iterations, learning-rate schedules, the paper's recipes and
//! masked optimizer steps.

pub mod iteration;
pub mod masked;
pub mod recipe;
pub mod schedule;
pub mod trainer;
