use crate::mask::MaskError;

/// Errors from configuring or running a pruner.
#[derive(Debug, thiserror::Error)]
pub enum PruneError {
    /// A fraction is not strictly between 0 and 1 (or is NaN).
    #[error("{name} must be strictly between 0 and 1, got {value}")]
    InvalidFraction {
        /// Setting name.
        name: String,
        /// Value given.
        value: f64,
    },
    /// The minimum density per layer is not in [0, 1).
    #[error("min_density_per_layer must be in [0, 1), got {value}")]
    InvalidMinDensity {
        /// Value given.
        value: f64,
    },
    /// A per-layer override pattern matches no masked parameter.
    #[error("layer override pattern `{pattern}` matches no masked parameter")]
    OverrideMatchesNothing {
        /// The pattern.
        pattern: String,
    },
    /// The weights given do not include a masked parameter.
    #[error("no weights given for masked parameter `{path}`")]
    MissingWeights {
        /// Parameter path.
        path: String,
    },
    /// The weights of a parameter have the wrong number of entries.
    #[error("weights of `{path}` have {actual} entries, the mask has {expected}")]
    WeightCount {
        /// Parameter path.
        path: String,
        /// Entries in the mask.
        expected: usize,
        /// Entries given.
        actual: usize,
    },
    /// A weight is NaN or infinite, so magnitudes cannot be ranked.
    #[error("weight {index} of `{path}` is NaN or infinite")]
    NonFiniteWeight {
        /// Parameter path.
        path: String,
        /// Flat index.
        index: usize,
    },
    /// One pruning pool holds more weights than positions can be encoded for.
    #[error("a pruning pool of {weights} weights exceeds the supported 2^32")]
    PoolTooLarge {
        /// Weights in the pool.
        weights: usize,
    },
    /// A score is NaN or infinite, so scores cannot be ranked.
    #[error("score {index} of `{path}` is NaN or infinite")]
    NonFiniteScore {
        /// Parameter path.
        path: String,
        /// Flat index.
        index: usize,
    },
    /// More weights asked to be kept than there are.
    #[error("cannot keep {asked} weights: only {available} are available")]
    KeepTooMany {
        /// Weights asked for.
        asked: usize,
        /// Weights available.
        available: usize,
    },
    /// A density is not in [0, 1].
    #[error("density must be in [0, 1], got {value}")]
    InvalidDensity {
        /// Value given.
        value: f64,
    },
    /// A setting of pruning at initialization is invalid.
    #[error("pruning at initialization: {0}")]
    InvalidAtInit(String),
    /// An N:M setting is invalid.
    #[error("{0}")]
    InvalidNOfM(String),
    /// A layer's input dimension is not a multiple of the N:M group size.
    #[error(
        "N:M groups of {m} run along the input dimension, but `{path}` has an input dimension of {input} (d_in of a Linear weight [d_in, d_out], c_in*k_h*k_w of a convolution weight [c_out, c_in, k_h, k_w]); leave it out of the selector"
    )]
    NOfMIndivisible {
        /// Parameter path.
        path: String,
        /// Its input dimension.
        input: usize,
        /// The group size.
        m: usize,
    },
    /// N:M groups need a Linear or convolution weight (rank 2 or more).
    #[error("N:M groups need a Linear or convolution weight; `{path}` has shape {shape:?}")]
    NOfMShape {
        /// Parameter path.
        path: String,
        /// Its shape.
        shape: Vec<usize>,
    },
    /// A mask keeps more than N weights in a group.
    #[error("`{path}` keeps {kept} weights in N:M group {group}, more than {n} of {m}")]
    NOfMViolated {
        /// Parameter path.
        path: String,
        /// Group index (see [`NOfM::layout`](super::NOfM::layout)).
        group: usize,
        /// Weights the group keeps.
        kept: usize,
        /// N.
        n: usize,
        /// M.
        m: usize,
    },
    /// A setting of the early-bird search is invalid.
    #[error("early-bird tickets: {0}")]
    InvalidEarlyBird(String),
    /// A setting of gradual magnitude pruning is invalid.
    #[error("gradual magnitude pruning: {0}")]
    InvalidGradual(String),
    /// A dynamic sparse training (SET, RigL) setting is invalid.
    #[error("dynamic sparse training: {0}")]
    InvalidDynamic(String),
    /// A setting of structured pruning is invalid, or does not fit the mask.
    #[error("structured pruning: {0}")]
    InvalidStructured(String),
    /// The task failed to give batches or an objective.
    #[error(transparent)]
    Task(#[from] crate::task::TaskError),
    /// The mask does not fit the model.
    #[error(transparent)]
    Mask(#[from] MaskError),
}
