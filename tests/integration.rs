//! The integration tests, one module per concern, in one test binary: every
//! test binary links all of burn (about 600 MB with line tables), so one
//! binary instead of one per file saves minutes of linking and gigabytes of
//! disk on a cold build. Run one concern with a filter: `cargo test --features
//! wgpu --test integration mask::`. The kill/resume harness is its own binary
//! (`tests/kill_resume.rs`) because it drives child processes from `main`.

mod common;

mod branches;
mod concurrency;
mod connectivity;
mod data_cifar;
mod data_idx;
mod data_loader;
mod decaying_recipe;
mod downstream;
mod dynamic_sparsity;
mod early_bird;
mod examples_cli;
mod experiment;
mod fuzz;
mod hostile;
mod imp;
mod mask;
mod masked_training;
mod methods;
mod models;
mod multi_device;
mod nm;
mod pinned;
mod power_loss;
mod prune;
mod report;
mod rewind;
mod schedule;
mod sparse;
mod sparse_resnet;
mod stability;
mod step_task;
mod store_integrity;
mod structured;
mod sweep;
#[cfg(feature = "cli")]
mod sweep_cli;
mod trainer;
mod wgpu;
