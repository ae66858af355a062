//! Exporting a found ticket (a level's mask and the rewind-point weights) to
//! safetensors, for use outside this crate (e.g. in PyTorch).

use std::collections::HashMap;
use std::path::Path;

use burn::module::Module;
use burn::tensor::Device;

use super::branch::Branch;
use super::layout::Layout;
use super::runner::{Imp, ImpError};
use crate::io::write_atomic;
use crate::mask::Mask;
use crate::params::{float_params, float_values};
use crate::rewind::RewindCheckpoint;

impl Imp {
    /// Writes the ticket of main-line `level` of the experiment under
    /// `output_root` to a safetensors file: every float tensor of the model
    /// at the rewind iteration with the level's mask applied (`f32`, keyed by
    /// its burn path, BatchNorm statistics included), and the mask itself
    /// (`u8`, keyed `mask.<path>`). Metadata records the level, the rewind
    /// iteration and the density.
    ///
    /// Tensors keep burn's layout: a `Linear` weight is `[d_in, d_out]`,
    /// the transpose of PyTorch's `nn.Linear.weight`.
    pub fn export_ticket<M, F>(
        &self,
        output_root: &Path,
        level: usize,
        device: &Device,
        init: F,
        file: &Path,
    ) -> Result<(), ImpError>
    where
        M: Module,
        F: Fn(&Device, u64) -> M,
    {
        let config = self.config();
        // Read only, without a lock: other processes may be training the
        // experiment's later levels.
        let store = super::store::ExperimentStore::open_read_only(self.directory(output_root))?;
        let mask = Mask::from_bytes(&store.read(&Layout::level(&Branch::Main, level).mask())?)?;
        let rewind = RewindCheckpoint::from_bytes(&store.read(Layout::REWIND)?)?;
        let model = rewind
            .rewind(init(device, config.seeds.init), &mask)?
            .valid();
        let tensors = ticket_tensors(&model, &mask);
        let views = tensors.iter().map(|(path, dtype, bytes, shape)| {
            let view = safetensors::tensor::TensorView::new(*dtype, shape.clone(), bytes)
                .expect("shape and byte count agree by construction");
            (path.clone(), view)
        });
        let metadata: HashMap<String, String> = [
            ("format", "burn-lottery-ticket".to_string()),
            ("level", level.to_string()),
            ("rewind_iteration", rewind.iteration().to_string()),
            ("density", mask.density().to_string()),
            (
                "layout",
                "burn: Linear weights are [d_in, d_out] (PyTorch: [out, in])".to_string(),
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let bytes = safetensors::serialize(views, Some(metadata))
            .expect("serializing in-memory tensors cannot fail");
        write_atomic(file, &bytes).map_err(|source| {
            ImpError::Config(format!("cannot write ticket {}: {source}", file.display()))
        })
    }
}

/// A named tensor as safetensors stores it.
type RawTensor = (String, safetensors::Dtype, Vec<u8>, Vec<usize>);

/// Every float tensor of `model` (`f32`, by path) and every layer of `mask`
/// (`u8`, keyed `mask.<path>`).
fn ticket_tensors<M: Module>(model: &M, mask: &Mask) -> Vec<RawTensor> {
    let shapes: HashMap<String, Vec<usize>> = float_params(model)
        .into_iter()
        .map(|p| (p.path, p.shape))
        .collect();
    let weights = float_values(model, |_| true).into_iter().map(|(path, v)| {
        let bytes = v.iter().flat_map(|x| x.to_le_bytes()).collect();
        let shape = shapes[&path].clone();
        (path, safetensors::Dtype::F32, bytes, shape)
    });
    let masks = mask.layers().map(|(path, layer)| {
        (
            format!("mask.{path}"),
            safetensors::Dtype::U8,
            layer.kept().iter().map(|&k| u8::from(k)).collect(),
            layer.shape().to_vec(),
        )
    });
    weights.chain(masks).collect()
}
