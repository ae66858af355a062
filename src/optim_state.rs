//! Optimizer state as stored in checkpoints: read by parameter path, and
//! checked against the model it is loaded for.
//!
//! burn keys optimizer state by `ParamId`, which is random per process and
//! restored with the model's record. A state whose ids or shapes do not
//! fit the model (a file from another model whose checksum was recomputed)
//! would make burn panic at the first step; [`check_optimizer_state`]
//! refuses it first with a [`RewindError::Mismatch`] naming the problem.

use std::collections::{BTreeMap, HashMap};

use burn::module::Module;
use burn::store::burn_pack::{Reader, Tensor as PackTensor};
use burn::tensor::Bytes;

use crate::params::float_params;
use crate::rewind::RewindError;

/// The suffix of the scalar burn stores each parameter's rank under.
const RANK_KEY: &str = "__rank";

/// One tensor of an optimizer's state (e.g. Adam's first moment of a weight).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateTensor {
    /// The element type, as burn names it.
    pub dtype: String,
    /// The shape.
    pub shape: Vec<usize>,
    /// The raw little-endian bytes.
    pub bytes: Vec<u8>,
}

/// An optimizer's state with parameter ids replaced by parameter paths, so
/// that states saved by two processes compare equal when they are.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OptimizerState {
    /// `<parameter path>.<field>` -> tensor.
    pub tensors: BTreeMap<String, StateTensor>,
    /// `<parameter path>.<field>` -> value (e.g. Adam's step count).
    pub scalars: BTreeMap<String, String>,
}

struct Parts {
    tensors: Vec<(String, Option<u64>, StateTensor)>,
    scalars: BTreeMap<String, String>,
}

fn decode(bytes: &[u8]) -> Result<Parts, RewindError> {
    let record = |e: &dyn std::fmt::Display| RewindError::Record(format!("optimizer state: {e}"));
    let reader =
        Reader::from_bytes(Bytes::from_bytes_vec(bytes.to_vec())).map_err(|e| record(&e))?;
    let scalars = reader
        .scalars()
        .iter()
        .map(|(k, v)| (k.clone(), format!("{v:?}")))
        .collect();
    let mut tensors = Vec::new();
    for tensor in reader.into_tensors().map_err(|e| record(&e))? {
        let (name, dtype, shape, param_id, data) =
            PackTensor::into_parts(tensor).map_err(|e| record(&e))?;
        let state = StateTensor {
            dtype: format!("{dtype:?}"),
            shape: shape.to_vec(),
            bytes: data.to_vec(),
        };
        tensors.push((name, param_id, state));
    }
    Ok(Parts { tensors, scalars })
}

/// `<id>.<field>` with the id replaced by its parameter's path.
fn by_path(name: &str, paths: &HashMap<String, String>) -> String {
    match name.split_once('.') {
        Some((id, field)) => match paths.get(id) {
            Some(path) => format!("{path}.{field}"),
            None => name.to_string(),
        },
        None => name.to_string(),
    }
}

/// Reads optimizer state bytes (burn's `ModuleOptimizer::into_bytes`) by
/// the paths of `model`'s parameters (the model restored from the same
/// checkpoint, which carries the ids the state was saved under).
pub fn optimizer_state_by_path<M: Module>(
    bytes: &[u8],
    model: &M,
) -> Result<OptimizerState, RewindError> {
    let parts = decode(bytes)?;
    let paths: HashMap<String, String> = float_params(model)
        .into_iter()
        .map(|p| (p.id.val().to_string(), p.path))
        .collect();
    Ok(OptimizerState {
        tensors: parts
            .tensors
            .into_iter()
            .map(|(name, _, t)| (by_path(&name, &paths), t))
            .collect(),
        scalars: parts
            .scalars
            .iter()
            .map(|(name, v)| (by_path(name, &paths), v.clone()))
            .collect(),
    })
}

/// Checks that optimizer state `bytes` belongs to `model`: every state
/// tensor and rank names a float parameter of the model by its id, with the
/// parameter's shape and rank, and a float type.
pub fn check_optimizer_state<M: Module>(bytes: &[u8], model: &M) -> Result<(), RewindError> {
    let parts = decode(bytes)?;
    let params: HashMap<u64, _> = float_params(model)
        .into_iter()
        .map(|p| (p.id.val(), p))
        .collect();
    let mismatch = |what: String| RewindError::Mismatch(format!("optimizer state {what}"));
    for (name, id, tensor) in &parts.tensors {
        let param = id
            .and_then(|id| params.get(&id))
            .ok_or_else(|| mismatch(format!("{name} belongs to no parameter of the model")))?;
        if tensor.shape != param.shape {
            return Err(mismatch(format!(
                "{name} has shape {:?}, its parameter {} has {:?}",
                tensor.shape, param.path, param.shape
            )));
        }
        if !tensor.dtype.starts_with('F') && !tensor.dtype.starts_with("BF") {
            return Err(mismatch(format!(
                "{name} holds {}, not floats",
                tensor.dtype
            )));
        }
    }
    for (name, value) in &parts.scalars {
        let Some(id) = name.strip_suffix(&format!(".{RANK_KEY}")) else {
            continue;
        };
        let param = id
            .parse::<u64>()
            .ok()
            .and_then(|id| params.get(&id))
            .ok_or_else(|| mismatch(format!("{name} belongs to no parameter of the model")))?;
        let rank = param.shape.len();
        if !value.contains(&format!("({rank})")) {
            return Err(mismatch(format!(
                "{name} is {value}, its parameter {} has rank {rank}",
                param.path
            )));
        }
    }
    Ok(())
}

/// Optimizer state `bytes` with the entries of pruned weights set to zero:
/// every state tensor of a parameter `mask` covers (momentum, Adam's
/// moments, ...) whose shape is the parameter's is multiplied by the mask.
/// `model` carries the ids the state was saved under (see
/// [`optimizer_state_by_path`]). Restoring state captured before pruning
/// then leaves nothing behind for a weight the mask removed.
pub fn mask_optimizer_state<M: Module>(
    bytes: &[u8],
    model: &M,
    mask: &crate::mask::Mask,
) -> Result<Vec<u8>, RewindError> {
    use burn::store::burn_pack::Writer;
    use burn::tensor::DType;

    let record = |e: &dyn std::fmt::Display| RewindError::Record(format!("optimizer state: {e}"));
    let paths: HashMap<u64, String> = float_params(model)
        .into_iter()
        .map(|p| (p.id.val(), p.path))
        .collect();
    let reader =
        Reader::from_bytes(Bytes::from_bytes_vec(bytes.to_vec())).map_err(|e| record(&e))?;
    let (scalars, metadata) = (reader.scalars().clone(), reader.metadata().clone());
    let mut tensors = Vec::new();
    for tensor in reader.into_tensors().map_err(|e| record(&e))? {
        let (name, dtype, shape, param_id, data) =
            PackTensor::into_parts(tensor).map_err(|e| record(&e))?;
        let layer = param_id
            .and_then(|id| paths.get(&id))
            .and_then(|path| mask.layer(path))
            .filter(|layer| layer.shape() == &shape.to_vec()[..] && dtype == DType::F32);
        let data = match layer {
            Some(layer) => Bytes::from_bytes_vec(zero_pruned_f32(&data, layer.kept())),
            None => data,
        };
        tensors.push(PackTensor::new(name, dtype, shape, param_id, data));
    }
    let mut writer = Writer::new(tensors);
    for (key, value) in &scalars {
        writer = writer.with_scalar(key, *value);
    }
    for (key, value) in &metadata {
        writer = writer.with_metadata(key, value);
    }
    Ok(writer.into_bytes().map_err(|e| record(&e))?.to_vec())
}

/// Little-endian `f32` bytes with the entries where `kept` is false set to 0.
fn zero_pruned_f32(bytes: &[u8], kept: &[bool]) -> Vec<u8> {
    bytes
        .chunks_exact(4)
        .zip(kept)
        .flat_map(|(value, &keep)| {
            if keep {
                value.try_into().unwrap()
            } else {
                [0u8; 4]
            }
        })
        .collect()
}
