//! # burn-lottery
//!
//! Lottery tickets for [burn](https://burn.dev): iterative magnitude pruning
//! (IMP) with weight rewinding, from "Stabilizing the Lottery Ticket
//! Hypothesis" (Frankle, Dziugaite, Roy, Carbin; arXiv 1903.01611).
//!
//! IMP trains a dense network from iteration 0 to T, saving its state at an
//! early iteration k; then repeatedly prunes 20% of the remaining weights
//! with the smallest magnitude, rewinds the survivors to their values at k
//! and trains again from k to T. The pieces, each in its own module:
//!
//! * [`mask`]: [`Mask`](mask::Mask), one binary mask per prunable parameter,
//!   keyed by its module path, chosen by a [`ParamSelector`](mask::ParamSelector).
//! * [`prune`]: the [`Pruner`](prune::Pruner) trait, global or layer-wise
//!   magnitude pruning, random pruning, and the one rounding rule.
//! * [`rewind`]: [`RewindCheckpoint`](rewind::RewindCheckpoint), a model's
//!   full state (BatchNorm statistics included) at iteration k.
//! * [`train`]: masked optimizer steps, recipes, schedules, the training loop.
//! * [`experiment`]: [`Experiment`](experiment::Experiment), from which IMP,
//!   the stability analysis and sweeps are built; [`prelude`] has what an
//!   ordinary program needs.
//! * [`task`]: the [`Task`](task::Task) trait: what IMP needs from a learning
//!   problem (batches of a seeded data order, a loss, evaluation metrics), so
//!   any burn model, data and loss can be pruned; burn `Dataset`s and
//!   `Batcher`s plug in through [`DatasetTask`](task::DatasetTask).
//! * [`imp`]: the IMP loop, its branches (controls, data orders, stability
//!   copies) and the experiment directory.
//! * [`models`], [`data`]: the paper's networks and datasets (image
//!   classification is the [`ExperimentData`](data::ExperimentData) task).
//! * [`report`]: tables, CSV, plots, progress output.
//! * [`sparse`]: masked `Linear` chains (LeNet) that train and infer over
//!   their kept weights only, faster below about 30% density (off by default).
//! * [`alloc`]: an opt-in malloc setting that makes CPU training faster.
//! * `launches` (wgpu builds): counting the GPU kernel launches of a step.
//!
//! The crate never names a concrete backend: everything that creates
//! tensors takes a `&Device`, and the same code runs on ndarray, flex or
//! wgpu, whichever the cargo features compiled in.
//!
//! ## The whole IMP loop
//!
//! Two levels of IMP with rewinding on a tiny LeNet and a synthetic
//! dataset (use [`data::load_fashion_mnist`] or [`data::load_cifar10`] for
//! real data), through an [`Experiment`](experiment::Experiment): the root
//! directory, the device, the task, the model's seeded initialization and
//! the training recipe in one place.
//!
//! ```
//! use std::sync::Arc;
//! use burn_lottery::data::{ImageDataset, Normalization};
//! use burn_lottery::prelude::*;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // 100 images of 1x8x8 in 10 classes.
//! let images: Vec<u8> = (0..100 * 64).map(|i| ((i * 37 + i / 64 * 11) % 256) as u8).collect();
//! let labels: Vec<u8> = (0..100).map(|i| (i % 10) as u8).collect();
//! let dataset = Arc::new(ImageDataset::new(images, labels, 1, 8, 8, 10)?);
//! let data = ExperimentData {
//!     normalization: Normalization::from_dataset(&dataset),
//!     train: dataset.clone(),
//!     test: dataset,
//!     augmentation: None,
//! };
//! # #[allow(deprecated)]
//! let device = burn::tensor::Device::ndarray();
//! let output = tempfile::tempdir()?;
//! let experiment = Experiment::new(output.path(), &device, data, |device, seed| {
//!     LeNetConfig::new().with_input_size(64).init_seeded(device, seed)
//! })
//! .name("doc")
//! .recipe(TrainingRecipe::lenet_fashion_mnist().shortened(20));
//! let report = experiment
//!     .imp(|c| ImpConfig {
//!         pruning: MagnitudePrunerConfig::new(0.2), // global, 20% of the remaining weights
//!         levels: 2,
//!         rewind_iteration: 5, // rewind survivors to iteration k = 5
//!         ..c
//!     })
//!     .run()?;
//! println!("{}", report.table());
//! assert_eq!(report.rows.len(), 3); // levels 0, 1, 2
//! assert!((report.rows[2].weights_remaining - 0.64).abs() < 0.01);
//! # Ok(())
//! # }
//! ```

#![warn(missing_docs)]

pub mod alloc;
pub mod data;
pub mod device;
pub mod experiment;
pub mod imp;
pub mod io;
#[cfg(feature = "cubecl")]
pub mod launches;
pub mod mask;
pub mod models;
pub mod multi_device;
pub mod optim_state;
pub mod params;
pub mod prune;
pub mod report;
pub mod rewind;
pub mod seed;
pub mod sparse;
pub mod stability;
pub mod sweep;
pub mod task;
pub mod train;

/// What an ordinary program needs: `use burn_lottery::prelude::*;`.
pub mod prelude {
    pub use crate::data::{ExperimentData, load_cifar10, load_fashion_mnist};
    pub use crate::experiment::{Experiment, ImpStudy, SweepStudy};
    pub use crate::imp::{
        Branch, Controls, Imp, ImpConfig, ImpObserver, ImpReport, PruningMethod, Retrain,
        RunOptions, Seeds, Silent,
    };
    pub use crate::mask::{Mask, ParamSelector};
    pub use crate::models::{LeNetConfig, ResNetConfig, VggConfig};
    pub use crate::prune::{
        AtInitConfig, DynamicConfig, GradualConfig, InitCriterion, MagnitudePrunerConfig,
    };
    pub use crate::report::Progress;
    pub use crate::stability::Condition;
    pub use crate::sweep::SweepSpec;
    pub use crate::task::{
        DataOrder, DatasetTask, MetricSpec, Metrics, Split, StepTask, Task, TaskError,
    };
    pub use crate::train::recipe::{OptimizerConfig, TrainingRecipe};
    pub use crate::train::schedule::LrSchedule;
}
