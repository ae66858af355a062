//! The IMP loop with rewinding, its controls and the experiment directory.

pub mod store;
