//! # burn-lottery
//!
//! Lottery tickets for [burn](https://burn.dev): iterative magnitude pruning (IMP)
//! with weight rewinding ("Stabilizing the Lottery Ticket Hypothesis",
//! Frankle et al., arXiv 1903.01611).
//!
//! The crate never names a concrete backend: everything that creates tensors
//! takes a `&Device`, and the same code runs on ndarray, flex or wgpu,
//! whichever the cargo features compiled in.

pub mod data;
pub mod device;
pub mod imp;
pub mod io;
pub mod mask;
pub mod models;
pub mod params;
pub mod prune;
pub mod report;
pub mod rewind;
pub mod seed;
pub mod train;
