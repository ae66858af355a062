//! Stability analysis: how far apart, and how linearly connected, are
//! networks trained from the same rewind point?
//!
//! From "Stabilizing the Lottery Ticket Hypothesis" (Frankle, Dziugaite,
//! Roy, Carbin) and its follow-up "Linear Mode Connectivity and the Lottery
//! Ticket Hypothesis" (Frankle et al., arXiv 1912.05671):
//!
//! * [`distance`](mod@distance): the L2 distance between two networks on
//!   the weights a mask keeps (the paper's raw figure), normalized by the
//!   mean masked norm, and the angle between the masked vectors.
//! * [`interpolate`](mod@interpolate): the network `alpha*W1 + (1-alpha)*W2`,
//!   BatchNorm running statistics included.
//! * [`barrier`]: the error along that linear path and the error barrier
//!   (max error minus the mean of the endpoint errors), with the BatchNorm
//!   statistics interpolated (default) or recomputed at each alpha.
//! * [`analyzer`]: [`StabilityAnalyzer`], pointed at an IMP experiment
//!   directory: trains the extra copies from the stored rewind point (stored
//!   as branches, reused on re-runs), measures stability to data order and
//!   to pruning, and runs rewind sweeps.
//! * [`connectivity`](mod@connectivity): the error barrier between the
//!   trained networks of consecutive IMP levels (Paul et al., ICLR 2023),
//!   stored in the experiment directory and read back on re-runs.
//! * [`report`]: sweep rows, CSV and plots.
//!
//! ```
//! use burn_lottery::mask::{Mask, ParamSelector};
//! use burn_lottery::stability::{host_weights, distance, interpolate};
//! use burn::nn::LinearConfig;
//! # #[allow(deprecated)] let device = burn::tensor::Device::ndarray();
//! let a = LinearConfig::new(4, 2).init(&device);
//! let b = LinearConfig::new(4, 2).init(&device);
//! let mask = Mask::dense(&a, &ParamSelector::default()).unwrap();
//! let (wa, wb) = (host_weights(&a), host_weights(&b));
//! assert_eq!(distance(&wa, &wa, &mask).unwrap().l2, 0.0);
//! let middle = interpolate(LinearConfig::new(4, 2).init(&device), &wa, &wb, 0.5).unwrap();
//! let d = distance(&wa, &host_weights(&middle), &mask).unwrap();
//! let full = distance(&wa, &wb, &mask).unwrap();
//! assert!((d.l2 - full.l2 / 2.0).abs() < 1e-5);
//! ```

pub mod analyzer;
pub mod barrier;
pub mod connectivity;
pub mod distance;
pub mod interpolate;
pub mod report;

pub use analyzer::{Condition, PairDistance, PairResult, StabilityAnalyzer};
pub use barrier::{
    BarrierOptions, BnStatistics, InterpolationCurve, alphas, error_barrier, interpolation_curve,
};
pub use connectivity::{
    CONNECTIVITY_CSV_HEADER, ConnectivityRow, LevelConnectivity, connectivity_csv,
    connectivity_from_csv,
};
pub use distance::{Distance, HostWeights, distance, host_weights, masked_distance, mean_and_std};
pub use interpolate::{blend, interpolate, interpolate_parameters};
pub use report::{CSV_HEADER, StabilityRow};

/// Errors of the stability analysis.
#[derive(Debug, thiserror::Error)]
pub enum StabilityError {
    /// Two networks, a mask or a template do not fit together.
    #[error("networks do not fit together: {0}")]
    Mismatch(String),
    /// An option or request is invalid.
    #[error("invalid stability analysis: {0}")]
    Config(String),
    /// Evaluation or training failed.
    #[error(transparent)]
    Train(#[from] crate::train::trainer::TrainError),
    /// The data pipeline failed.
    #[error(transparent)]
    Data(#[from] crate::data::DataError),
    /// The task failed to make batches or to evaluate.
    #[error(transparent)]
    Task(#[from] crate::task::TaskError),
    /// The experiment directory failed.
    #[error(transparent)]
    Store(#[from] crate::imp::store::StoreError),
    /// The IMP experiment failed.
    #[error(transparent)]
    Imp(#[from] crate::imp::ImpError),
    /// A stored mask cannot be read or does not fit.
    #[error(transparent)]
    Mask(#[from] crate::mask::MaskError),
    /// A stored checkpoint cannot be read or does not fit.
    #[error(transparent)]
    Rewind(#[from] crate::rewind::RewindError),
    /// Writing a report failed.
    #[error(transparent)]
    Report(#[from] crate::report::ReportError),
}
