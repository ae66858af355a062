//! Rewind checkpoints: a model's full state at an iteration `k`.
//!
//! A [`RewindCheckpoint`] holds every parameter and every BatchNorm running
//! statistic of a model at iteration `k` (and optionally the optimizer
//! state). [`RewindCheckpoint::rewind`] gives back the model as it was at `k`
//! with a mask applied: the weight-rewinding step of IMP.
//!
//! ```
//! use burn_lottery::{mask::{Mask, ParamSelector}, rewind::RewindCheckpoint};
//! use burn::nn::LinearConfig;
//! # #[allow(deprecated)] let device = burn::tensor::Device::ndarray();
//! let model = LinearConfig::new(4, 2).init(&device);
//! let checkpoint = RewindCheckpoint::capture(&model, 500);
//! let mask = Mask::dense(&model, &ParamSelector::default()).unwrap();
//! let fresh = LinearConfig::new(4, 2).init(&device);
//! let rewound = checkpoint.rewind(fresh, &mask).unwrap();
//! assert_eq!(
//!     rewound.weight.val().into_data(),
//!     model.weight.val().into_data()
//! );
//! ```

use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::optim::ModuleOptimizer;
use burn::store::ModuleRecord;
use burn::tensor::Bytes;

use crate::io::{checksum, write_atomic};
use crate::mask::{Mask, MaskError};

const MAGIC: &[u8; 8] = b"BLRWND\0\x01";
/// Version 2 adds a mask section (a checkpoint of a run whose mask
/// changes); a checkpoint without a mask is still written as version 1.
const MAGIC_WITH_MASK: &[u8; 8] = b"BLRWND\0\x02";
const NO_OPTIMIZER: u64 = u64::MAX;

/// Errors from capturing, saving, loading and applying rewind checkpoints.
#[derive(Debug, thiserror::Error)]
pub enum RewindError {
    /// The checkpoint's parameters do not fit the model (another architecture,
    /// missing parameters, shape mismatch).
    #[error("checkpoint does not fit the model: {0}")]
    Mismatch(String),
    /// The mask does not fit the model.
    #[error(transparent)]
    Mask(#[from] MaskError),
    /// burn could not encode or decode the stored state.
    #[error("checkpoint state could not be encoded or decoded: {0}")]
    Record(String),
    /// Reading or writing the checkpoint file failed.
    #[error("checkpoint file {path}: {source}")]
    Io {
        /// File path.
        path: PathBuf,
        /// Underlying error.
        source: std::io::Error,
    },
    /// The file is truncated, corrupt or not a checkpoint.
    #[error("checkpoint file {path} is not a valid rewind checkpoint: {reason}")]
    Corrupt {
        /// File path (or `<bytes>`).
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// A model's parameters and BatchNorm statistics at an iteration, with
/// optional optimizer state.
#[derive(Debug, Clone)]
pub struct RewindCheckpoint {
    iteration: u64,
    model: ModuleRecord,
    optimizer: Option<Vec<u8>>,
    mask: Option<Mask>,
}

impl RewindCheckpoint {
    /// Captures `model` at `iteration`. BatchNorm running statistics are
    /// synchronized first, so the checkpoint holds their current values.
    pub fn capture<M: Module>(model: &M, iteration: u64) -> Self {
        Self {
            iteration,
            model: model.valid().into_record(),
            optimizer: None,
            mask: None,
        }
    }

    /// Adds the mask in force (a run whose mask changes during training
    /// resumes under it).
    pub fn with_mask(mut self, mask: &Mask) -> Self {
        self.mask = Some(mask.clone());
        self
    }

    /// The mask captured with [`RewindCheckpoint::with_mask`], if any.
    pub fn mask(&self) -> Option<&Mask> {
        self.mask.as_ref()
    }

    /// Adds the optimizer's state (momentum, Adam moments) to the checkpoint.
    pub fn with_optimizer(mut self, optimizer: &ModuleOptimizer) -> Result<Self, RewindError> {
        let bytes = optimizer
            .into_bytes()
            .map_err(|e| RewindError::Record(e.to_string()))?;
        self.optimizer = Some(bytes.to_vec());
        Ok(self)
    }

    /// The iteration the state was captured at.
    pub fn iteration(&self) -> u64 {
        self.iteration
    }

    /// Whether optimizer state was captured.
    pub fn has_optimizer_state(&self) -> bool {
        self.optimizer.is_some()
    }

    /// Loads the captured state into `template`, a model of the same
    /// architecture (its values are replaced; it is consumed because burn's
    /// BatchNorm statistics are shared between a module and its clones).
    ///
    /// burn checks names and shapes and reports a mismatch, but panics on a
    /// tensor of another kind (e.g. integers where the model has floats, as
    /// in a corrupted or foreign file whose checksum was recomputed): that
    /// panic is caught and reported as [`RewindError::Mismatch`] too.
    pub fn restore<M: Module>(&self, template: M) -> Result<M, RewindError> {
        let record = self.model.clone();
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            template.try_load_record(record)
        }))
        .map_err(|panic| RewindError::Mismatch(panic_message(panic.as_ref())))?
        .map_err(|e| RewindError::Mismatch(e.to_string()))
    }

    /// The model as it was at the checkpoint's iteration, with `mask` applied.
    pub fn rewind<M: Module>(&self, template: M, mask: &Mask) -> Result<M, RewindError> {
        mask.validate(&template, None)?;
        Ok(mask.apply(self.restore(template)?)?)
    }

    /// Loads the captured optimizer state into `optimizer`, or returns it
    /// unchanged (fresh) when none was captured. A state burn cannot read
    /// (it panics on some malformed records; the panic is caught) is a
    /// [`RewindError::Record`].
    pub fn restore_optimizer(
        &self,
        optimizer: ModuleOptimizer,
    ) -> Result<ModuleOptimizer, RewindError> {
        match &self.optimizer {
            Some(bytes) => load_optimizer_bytes(optimizer, bytes.clone()),
            None => Ok(optimizer),
        }
    }

    /// [`RewindCheckpoint::restore_optimizer`] after checking that the
    /// captured state belongs to `model` (parameter ids, shapes, ranks; see
    /// [`check_optimizer_state`](crate::optim_state::check_optimizer_state)):
    /// state that does not fit is a [`RewindError::Mismatch`], not a panic
    /// inside burn at the first step.
    pub fn restore_optimizer_for<M: Module>(
        &self,
        optimizer: ModuleOptimizer,
        model: &M,
    ) -> Result<ModuleOptimizer, RewindError> {
        if let Some(bytes) = &self.optimizer {
            crate::optim_state::check_optimizer_state(bytes, model)?;
        }
        self.restore_optimizer(optimizer)
    }

    /// [`RewindCheckpoint::restore_optimizer_for`] with the state of every
    /// weight `mask` prunes set to zero (see
    /// [`mask_optimizer_state`](crate::optim_state::mask_optimizer_state)):
    /// what rewinding with the optimizer state restores.
    pub fn restore_masked_optimizer_for<M: Module>(
        &self,
        optimizer: ModuleOptimizer,
        model: &M,
        mask: &Mask,
    ) -> Result<ModuleOptimizer, RewindError> {
        match &self.optimizer {
            Some(bytes) => {
                crate::optim_state::check_optimizer_state(bytes, model)?;
                let masked = crate::optim_state::mask_optimizer_state(bytes, model, mask)?;
                load_optimizer_bytes(optimizer, masked)
            }
            None => Ok(optimizer),
        }
    }

    /// The captured optimizer state (burn's `ModuleOptimizer::into_bytes`),
    /// if any.
    pub fn optimizer_bytes(&self) -> Option<&[u8]> {
        self.optimizer.as_deref()
    }

    /// Serializes the checkpoint: magic, iteration, the model and optimizer
    /// states as burnpack, the mask if any (then with its length in the
    /// header and version 2's magic), and a CRC-32 of everything.
    pub fn to_bytes(&self) -> Result<Vec<u8>, RewindError> {
        let model = self
            .model
            .clone()
            .into_bytes()
            .map_err(|e| RewindError::Record(e.to_string()))?;
        let mask = self.mask.as_ref().map(Mask::to_bytes);
        let mut out = Vec::with_capacity(model.len() + 64);
        out.extend_from_slice(if mask.is_some() {
            MAGIC_WITH_MASK
        } else {
            MAGIC
        });
        out.extend_from_slice(&self.iteration.to_le_bytes());
        out.extend_from_slice(&(model.len() as u64).to_le_bytes());
        let optimizer_len = self
            .optimizer
            .as_ref()
            .map_or(NO_OPTIMIZER, |o| o.len() as u64);
        out.extend_from_slice(&optimizer_len.to_le_bytes());
        if let Some(mask) = &mask {
            out.extend_from_slice(&(mask.len() as u64).to_le_bytes());
        }
        out.extend_from_slice(&model);
        if let Some(o) = &self.optimizer {
            out.extend_from_slice(o);
        }
        if let Some(mask) = &mask {
            out.extend_from_slice(mask);
        }
        let crc = checksum(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        Ok(out)
    }

    /// Parses [`RewindCheckpoint::to_bytes`]; never panics on bad input.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, RewindError> {
        Self::parse(bytes, Path::new("<bytes>"))
    }

    fn parse(bytes: &[u8], file: &Path) -> Result<Self, RewindError> {
        let corrupt = |reason: String| RewindError::Corrupt {
            path: file.to_path_buf(),
            reason,
        };
        let with_mask = bytes.len() >= MAGIC.len() && &bytes[..MAGIC.len()] == MAGIC_WITH_MASK;
        if bytes.len() < MAGIC.len() || (&bytes[..MAGIC.len()] != MAGIC && !with_mask) {
            return Err(corrupt("wrong magic number".into()));
        }
        let header = MAGIC.len() + if with_mask { 32 } else { 24 };
        if bytes.len() < header + 4 {
            return Err(corrupt(format!("truncated: only {} bytes", bytes.len())));
        }
        let (body, crc) = bytes.split_at(bytes.len() - 4);
        if checksum(body) != u32::from_le_bytes(crc.try_into().unwrap()) {
            return Err(corrupt(
                "checksum mismatch (file truncated or corrupted)".into(),
            ));
        }
        let word = |i: usize| u64::from_le_bytes(body[8 + 8 * i..16 + 8 * i].try_into().unwrap());
        let (iteration, model_len, optimizer_len) = (word(0), word(1), word(2));
        let mask_len = if with_mask { word(3) } else { 0 };
        let optimizer_size = if optimizer_len == NO_OPTIMIZER {
            0
        } else {
            optimizer_len
        };
        let expected = (header as u64)
            .checked_add(model_len)
            .and_then(|n| n.checked_add(optimizer_size))
            .and_then(|n| n.checked_add(mask_len));
        if expected != Some(body.len() as u64) {
            return Err(corrupt("section lengths do not match the file size".into()));
        }
        let model_end = header + model_len as usize;
        let optimizer_end = model_end + optimizer_size as usize;
        let model =
            ModuleRecord::from_bytes(Bytes::from_bytes_vec(body[header..model_end].to_vec()))
                .map_err(|e| corrupt(format!("model state: {e}")))?;
        let optimizer =
            (optimizer_len != NO_OPTIMIZER).then(|| body[model_end..optimizer_end].to_vec());
        let mask = match with_mask {
            true => Some(
                Mask::from_bytes(&body[optimizer_end..])
                    .map_err(|e| corrupt(format!("mask: {e}")))?,
            ),
            false => None,
        };
        Ok(Self {
            iteration,
            model,
            optimizer,
            mask,
        })
    }

    /// Saves the checkpoint atomically (temporary file, then rename).
    pub fn save(&self, path: impl AsRef<Path>) -> Result<(), RewindError> {
        let path = path.as_ref();
        write_atomic(path, &self.to_bytes()?).map_err(|source| RewindError::Io {
            path: path.to_path_buf(),
            source,
        })
    }

    /// Loads a checkpoint saved by [`RewindCheckpoint::save`], verifying its checksum.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, RewindError> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|source| RewindError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&bytes, path)
    }
}

/// The message of a caught panic.
fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "loading the state panicked".into())
}

/// Loads burn optimizer state `bytes` into `optimizer`; burn's panic on
/// some malformed records is caught and reported as [`RewindError::Record`].
fn load_optimizer_bytes(
    optimizer: ModuleOptimizer,
    bytes: Vec<u8>,
) -> Result<ModuleOptimizer, RewindError> {
    let bytes = Bytes::from_bytes_vec(bytes);
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| optimizer.from_bytes(bytes)))
        .map_err(|panic| RewindError::Record(panic_message(panic.as_ref())))?
        .map_err(|e| RewindError::Record(e.to_string()))
}
