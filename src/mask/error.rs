use std::path::PathBuf;

/// Errors from building, validating, applying, saving and loading masks.
#[derive(Debug, thiserror::Error)]
pub enum MaskError {
    /// The mask names a parameter the model does not have.
    #[error("mask names parameter `{path}`, which the model does not have")]
    UnknownParameter {
        /// Parameter path.
        path: String,
    },
    /// The model has a prunable parameter the mask does not cover.
    #[error("model parameter `{path}` is prunable but the mask has no entry for it")]
    MissingParameter {
        /// Parameter path.
        path: String,
    },
    /// Mask and parameter shapes differ.
    #[error("shape mismatch for `{path}`: mask has {mask_shape:?}, parameter has {param_shape:?}")]
    ShapeMismatch {
        /// Parameter path.
        path: String,
        /// Shape recorded in the mask.
        mask_shape: Vec<usize>,
        /// Shape of the model's parameter (or of the other mask).
        param_shape: Vec<usize>,
    },
    /// A mask value is neither 0 nor 1.
    #[error("mask for `{path}` holds the non-binary value {value} at index {index}")]
    NonBinary {
        /// Parameter path.
        path: String,
        /// Flat index of the offending entry.
        index: usize,
        /// The value found.
        value: f64,
    },
    /// The number of mask values does not match the shape.
    #[error("mask for `{path}` has {actual} values but its shape {shape:?} needs {expected}")]
    LengthMismatch {
        /// Parameter path.
        path: String,
        /// Shape given.
        shape: Vec<usize>,
        /// Elements the shape needs.
        expected: usize,
        /// Elements supplied.
        actual: usize,
    },
    /// A shape whose number of entries does not fit in `usize`.
    #[error("mask for `{path}` has shape {shape:?}, whose entry count overflows")]
    ShapeOverflow {
        /// Parameter path.
        path: String,
        /// Shape given.
        shape: Vec<usize>,
    },
    /// The selector chose no parameter at all.
    #[error("the parameter selector matches no parameter of the model")]
    EmptySelection,
    /// An include/exclude pattern matches no parameter.
    #[error("selector pattern `{pattern}` matches no parameter of the model")]
    PatternMatchesNothing {
        /// The pattern.
        pattern: String,
    },
    /// Two masks cover different parameters.
    #[error("masks cover different parameters: `{path}` is only in one of them")]
    LayerSetMismatch {
        /// A path present in only one mask.
        path: String,
    },
    /// Reading or writing a mask file failed.
    #[error("mask file {path}: {source}")]
    Io {
        /// File path.
        path: PathBuf,
        /// Underlying error.
        source: std::io::Error,
    },
    /// A mask file is truncated, corrupt or not a mask file.
    #[error("mask file {path} is not a valid mask: {reason}")]
    Corrupt {
        /// File path (or `<bytes>` for in-memory data).
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}
