//! Comparing the stored results of two experiment directories bit for bit,
//! optimizer state included.
//!
//! Checkpoint files differ between processes (burn stores each parameter's
//! random `ParamId`, and keys optimizer state by it), so a checkpoint is
//! compared by its iteration, the bits of every tensor of the model by path,
//! its optimizer state by parameter path and the mask it holds, if any; a summary without its
//! wall-clock time; the manifest without the hashes of those files.

use std::collections::BTreeMap;

use burn::module::Module;
use burn_lottery::optim_state::{OptimizerState, optimizer_state_by_path};
use burn_lottery::params::float_values;
use burn_lottery::rewind::RewindCheckpoint;

/// Files of an experiment directory: relative path -> bytes.
pub type Files = BTreeMap<String, Vec<u8>>;

/// A stored file in a form two processes agree on.
#[derive(Debug, PartialEq)]
pub enum Stored {
    /// Compared byte for byte.
    Bytes(Vec<u8>),
    /// JSON without run-specific values.
    Json(serde_json::Value),
    /// A checkpoint's contents.
    Checkpoint {
        iteration: u64,
        model: BTreeMap<String, Vec<u32>>,
        optimizer: Option<OptimizerState>,
        /// The mask in force, for a run whose mask changes.
        mask: Option<Vec<u8>>,
    },
}

/// What `bytes`, stored as `relative`, holds (see the module docs).
pub fn stored_value<M: Module>(
    relative: &str,
    bytes: &[u8],
    template: &dyn Fn() -> M,
) -> Result<Stored, String> {
    let fail = |e: &dyn std::fmt::Display| format!("{relative}: {e}");
    let name = relative.rsplit('/').next().unwrap_or(relative);
    if name.ends_with(".ckpt") {
        let checkpoint = RewindCheckpoint::from_bytes(bytes).map_err(|e| fail(&e))?;
        let model = checkpoint.restore(template()).map_err(|e| fail(&e))?;
        let optimizer = checkpoint
            .optimizer_bytes()
            .map(|o| optimizer_state_by_path(o, &model))
            .transpose()
            .map_err(|e| fail(&e))?;
        let values = float_values(&model, |_| true)
            .into_iter()
            .map(|(path, v)| (path, v.into_iter().map(f32::to_bits).collect()))
            .collect();
        return Ok(Stored::Checkpoint {
            iteration: checkpoint.iteration(),
            model: values,
            optimizer,
            mask: checkpoint.mask().map(|m| m.to_bytes()),
        });
    }
    let json = |bytes: &[u8]| serde_json::from_slice::<serde_json::Value>(bytes);
    match name {
        "summary.json" => {
            let mut value = json(bytes).map_err(|e| fail(&e))?;
            value
                .as_object_mut()
                .and_then(|o| o.remove("wall_seconds"))
                .ok_or_else(|| fail(&"no wall_seconds"))?;
            Ok(Stored::Json(value))
        }
        "manifest.json" => {
            let mut value = json(bytes).map_err(|e| fail(&e))?;
            let files = value["files"]
                .as_object_mut()
                .ok_or_else(|| fail(&"no files"))?;
            for (file, record) in files.iter_mut() {
                if file.ends_with("summary.json") || file.ends_with(".ckpt") {
                    *record = serde_json::Value::Null;
                }
            }
            Ok(Stored::Json(value))
        }
        _ => Ok(Stored::Bytes(bytes.to_vec())),
    }
}

/// The files the manifest of `files` records, and the manifest itself.
pub fn recorded(files: &Files) -> Result<Files, String> {
    let manifest = files
        .get("manifest.json")
        .ok_or("the experiment has no manifest.json")?;
    let value: serde_json::Value =
        serde_json::from_slice(manifest).map_err(|e| format!("manifest.json: {e}"))?;
    let mut out = Files::new();
    for name in value["files"].as_object().ok_or("no files")?.keys() {
        let bytes = files
            .get(name)
            .ok_or_else(|| format!("{name} is recorded but missing"))?;
        out.insert(name.clone(), bytes.clone());
    }
    out.insert("manifest.json".into(), manifest.clone());
    Ok(out)
}

/// Compares every file of `a` and `b`; returns how many were compared, or
/// the files that differ.
pub fn compare_files<M: Module>(
    a: &Files,
    b: &Files,
    template: &dyn Fn() -> M,
) -> Result<usize, String> {
    let names = |f: &Files| f.keys().cloned().collect::<Vec<_>>();
    if names(a) != names(b) {
        let only_a: Vec<_> = a.keys().filter(|k| !b.contains_key(*k)).collect();
        let only_b: Vec<_> = b.keys().filter(|k| !a.contains_key(*k)).collect();
        return Err(format!(
            "different files: only in the first {only_a:?}, only in the second {only_b:?}"
        ));
    }
    let mut differing = Vec::new();
    for (name, x) in a {
        if stored_value(name, x, template)? != stored_value(name, &b[name], template)? {
            differing.push(name.clone());
        }
    }
    if differing.is_empty() {
        Ok(a.len())
    } else {
        Err(format!("files differ: {}", differing.join(", ")))
    }
}

/// Every file under `dir` on disk (relative path -> bytes).
pub fn files_on_disk(dir: &std::path::Path) -> Files {
    super::snapshot(dir).into_iter().collect()
}
