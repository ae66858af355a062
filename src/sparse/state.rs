//! The sparse path's optimizer state as burn's optimizer record, and back:
//! so a sparse level saves the same periodic checkpoints as a dense one,
//! resumes from them (or from a rewind point's optimizer state) on either
//! path, and leaves the caller's optimizer as a dense run would.
//!
//! burn-optim 0.22 keys a parameter's state by its `ParamId`: tensors
//! `<id>.momentum.velocity` (SGD with momentum) or `<id>.momentum.moment_1`,
//! `<id>.momentum.moment_2` and the scalar `<id>.momentum.time` (Adam), the
//! scalar `<id>.__rank` and the metadata `<id>` -> parameter path. Dense
//! tensors hold zeros at pruned entries; read back, only the kept entries
//! are used (a pruned entry's state never reaches a kept weight: every
//! optimizer the path runs is element-wise).

use std::collections::{BTreeMap, HashMap};

use burn::module::Module;
use burn::store::burn_pack::{Reader, Scalar, Tensor as PackTensor, Writer};
use burn::tensor::{Bytes, DType};

use super::SparseError;
use super::optim::{Slot, SlotState, SparseOptimizer};
use crate::params::float_params;

const RANK_KEY: &str = "__rank";
const VELOCITY: &str = "momentum.velocity";
const MOMENT_1: &str = "momentum.moment_1";
const MOMENT_2: &str = "momentum.moment_2";
const TIME: &str = "momentum.time";

/// The state tensors burn keeps per parameter for `optimizer`.
fn fields(optimizer: &SparseOptimizer) -> &'static [&'static str] {
    match *optimizer {
        SparseOptimizer::Sgd {
            momentum, nesterov, ..
        } if momentum != 0.0 || nesterov => &[VELOCITY],
        SparseOptimizer::Sgd { .. } => &[],
        SparseOptimizer::Adam { .. } => &[MOMENT_1, MOMENT_2],
    }
}

/// A slot's state vectors in the order of [`fields`], `None` before its
/// first step.
fn slot_vectors<'s>(optimizer: &SparseOptimizer, state: &'s SlotState) -> Option<Vec<&'s [f32]>> {
    match optimizer {
        SparseOptimizer::Adam { .. } if state.time > 0 => {
            Some(vec![state.first.as_slice(), state.second.as_slice()])
        }
        SparseOptimizer::Sgd { .. } if !state.first.is_empty() => Some(vec![&state.first]),
        _ => None,
    }
}

/// The ids of `model`'s parameters by path.
fn ids_by_path<M: Module>(model: &M) -> HashMap<String, u64> {
    float_params(model)
        .into_iter()
        .map(|p| (p.path, p.id.val()))
        .collect()
}

fn missing(path: &str) -> SparseError {
    SparseError::OptimizerState(format!("the model has no parameter {path}"))
}

/// The state of `slots` as burn's optimizer record bytes (what
/// `ModuleOptimizer::into_bytes` gives) for the parameters of `model`.
pub(super) fn to_record<M: Module>(
    slots: &[Slot<'_>],
    optimizer: &SparseOptimizer,
    model: &M,
) -> Result<Bytes, SparseError> {
    let ids = ids_by_path(model);
    let (mut tensors, mut scalars, mut paths) = (Vec::new(), BTreeMap::new(), BTreeMap::new());
    for slot in slots {
        let Some(vectors) = slot_vectors(optimizer, slot.state) else {
            continue;
        };
        let id = *ids.get(&slot.path).ok_or_else(|| missing(&slot.path))?;
        let len: usize = slot.shape.iter().product();
        for (field, values) in fields(optimizer).iter().zip(vectors) {
            let dense = match &slot.positions {
                Some(positions) => super::optim::scatter(positions, values, len),
                None => values.to_vec(),
            };
            let bytes: Vec<u8> = dense.iter().flat_map(|v| v.to_le_bytes()).collect();
            let name = format!("{id}.{field}");
            let shape = slot.shape.clone();
            let bytes = Bytes::from_bytes_vec(bytes);
            tensors.push(PackTensor::new(name, DType::F32, shape, Some(id), bytes));
        }
        if matches!(optimizer, SparseOptimizer::Adam { .. }) {
            let time = usize::try_from(slot.state.time).unwrap_or(0);
            scalars.insert(format!("{id}.{TIME}"), Scalar::from(time));
        }
        scalars.insert(format!("{id}.{RANK_KEY}"), Scalar::from(slot.shape.len()));
        paths.insert(id.to_string(), slot.path.clone());
    }
    let mut writer = Writer::new(tensors);
    for (key, value) in &scalars {
        writer = writer.with_scalar(key, *value);
    }
    for (key, value) in &paths {
        writer = writer.with_metadata(key, value);
    }
    writer
        .into_bytes()
        .map_err(|e| SparseError::OptimizerState(e.to_string()))
}

/// One state tensor of a record: its shape and its values.
struct StateTensor {
    shape: Vec<usize>,
    values: Vec<f32>,
}

/// A record's state tensors and scalars, by name.
type Decoded = (BTreeMap<String, StateTensor>, BTreeMap<String, Scalar>);

/// The tensors and scalars of burn's optimizer record bytes.
fn decode(bytes: &[u8]) -> Result<Decoded, SparseError> {
    let fail = |e: &dyn std::fmt::Display| SparseError::OptimizerState(e.to_string());
    let reader = Reader::from_bytes(Bytes::from_bytes_vec(bytes.to_vec())).map_err(|e| fail(&e))?;
    let scalars = reader.scalars().clone();
    let mut tensors = BTreeMap::new();
    for tensor in reader.into_tensors().map_err(|e| fail(&e))? {
        let (name, dtype, shape, _, data) = tensor.into_parts().map_err(|e| fail(&e))?;
        if dtype != DType::F32 {
            return Err(SparseError::OptimizerState(format!(
                "{name} holds {dtype:?}, not f32"
            )));
        }
        let values = data
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        let shape = shape.to_vec();
        tensors.insert(name, StateTensor { shape, values });
    }
    Ok((tensors, scalars))
}

/// Loads burn's optimizer record `bytes` (state of `model`'s parameters,
/// by id) into `slots`: the kept entries of each state tensor. A record
/// that holds state the sparse path cannot take (another optimizer's, of a
/// parameter it does not train, of another shape) is an
/// [`SparseError::OptimizerState`] naming it.
pub(super) fn load_record<M: Module>(
    bytes: &[u8],
    slots: &mut [Slot<'_>],
    optimizer: &SparseOptimizer,
    model: &M,
) -> Result<(), SparseError> {
    let ids = ids_by_path(model);
    let (mut tensors, scalars) = decode(bytes)?;
    for slot in slots.iter_mut() {
        let id = *ids.get(&slot.path).ok_or_else(|| missing(&slot.path))?;
        let mut found = Vec::new();
        for field in fields(optimizer) {
            let name = format!("{id}.{field}");
            let Some(tensor) = tensors.remove(&name) else {
                continue;
            };
            if tensor.shape != slot.shape {
                return Err(SparseError::OptimizerState(format!(
                    "{} ({name}) is {:?}, the parameter {:?}",
                    slot.path, tensor.shape, slot.shape
                )));
            }
            found.push(match &slot.positions {
                Some(positions) => positions.iter().map(|&p| tensor.values[p]).collect(),
                None => tensor.values,
            });
        }
        let time = scalars.get(&format!("{id}.{TIME}")).copied();
        *slot.state = slot_state(optimizer, found, time, &slot.path)?;
    }
    match tensors.keys().next() {
        Some(name) => Err(SparseError::OptimizerState(format!(
            "{name} has no counterpart on the sparse path"
        ))),
        None => Ok(()),
    }
}

/// A slot's state from the vectors found for [`fields`] (all or none) and
/// Adam's step count.
fn slot_state(
    optimizer: &SparseOptimizer,
    mut found: Vec<Vec<f32>>,
    time: Option<Scalar>,
    path: &str,
) -> Result<SlotState, SparseError> {
    let expected = fields(optimizer).len();
    if found.is_empty() {
        return Ok(SlotState::default());
    }
    if found.len() != expected {
        return Err(SparseError::OptimizerState(format!(
            "{path}: {} of {expected} state tensors",
            found.len()
        )));
    }
    let time = match optimizer {
        SparseOptimizer::Adam { .. } => time
            .and_then(|t| i32::try_from(t).ok())
            .filter(|&t| t > 0)
            .ok_or_else(|| SparseError::OptimizerState(format!("{path}: no Adam step count")))?,
        SparseOptimizer::Sgd { .. } => 0,
    };
    let second = if found.len() > 1 { found.pop() } else { None };
    Ok(SlotState {
        first: found.pop().unwrap_or_default(),
        second: second.unwrap_or_default(),
        time,
    })
}
