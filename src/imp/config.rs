//! The configuration of an IMP experiment and its directory name.

use std::hash::Hasher;

use serde::{Deserialize, Serialize};

use super::method::PruningMethod;
use super::retrain::Retrain;
use crate::mask::ParamSelector;
use crate::prune::MagnitudePrunerConfig;
use crate::sparse::SparseTraining;
use crate::train::recipe::TrainingRecipe;

/// Independent seeds for each random stream of an experiment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Seeds {
    /// Initial weights (the model's `init_seeded`).
    pub init: u64,
    /// Order of the training examples.
    pub data_order: u64,
    /// Data augmentation draws.
    pub augmentation: u64,
}

impl Seeds {
    /// All three streams from one seed (the streams stay independent: each
    /// consumer mixes in its own tag).
    pub fn all(seed: u64) -> Self {
        Self {
            init: seed,
            data_order: seed,
            augmentation: seed,
        }
    }
}

/// Which control branches to train at every pruning level (the paper's
/// comparisons for the IMP subnetworks).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Controls {
    /// Same mask, fresh weights drawn with the model's initialization and a
    /// new seed, trained from the rewind iteration.
    pub random_reinit: bool,
    /// Random mask with the level's per-layer counts, weights from the
    /// rewind point.
    pub random_prune: bool,
    /// For each seed, retrain every level's subnetwork (level 0: the dense
    /// network) from the rewind point with this data-order seed instead
    /// (the building block of stability to data order). Condition name
    /// `data_order_<seed>`. Each seed once, and not the main line's own
    /// [`Seeds::data_order`] (its networks again): [`Imp::validate`]
    /// refuses both.
    ///
    /// [`Imp::validate`]: super::Imp::validate
    pub data_orders: Vec<u64>,
}

impl Controls {
    /// The paper's two controls, random reinitialization and random pruning,
    /// when `enabled` (no extra data orders).
    pub fn random(enabled: bool) -> Self {
        Self {
            random_reinit: enabled,
            random_prune: enabled,
            data_orders: Vec::new(),
        }
    }
}

/// The first value of `values` that an earlier one equals: what a list
/// meant to name each thing once (seeds, levels, conditions) names twice.
pub(crate) fn first_repeat<T: PartialEq>(values: &[T]) -> Option<&T> {
    values
        .iter()
        .enumerate()
        .find(|(i, v)| values[..*i].contains(v))
        .map(|(_, v)| v)
}

/// Everything that determines an IMP experiment's results. Its hash names
/// the experiment directory. Defaults are the paper's CIFAR-10 ResNet-20
/// setting.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ImpConfig {
    /// Short name of the model and data (prefix of the directory name).
    pub name: String,
    /// How each level trains (the same for every level and branch).
    pub training: TrainingRecipe,
    /// How the next mask is chosen (default: global magnitude, 20% of the
    /// remaining weights per level).
    pub pruning: MagnitudePrunerConfig,
    /// Which parameters are prunable (default: conv and linear weights).
    pub selector: ParamSelector,
    /// Pruning levels after the dense level 0 (levels `0..=levels` run).
    pub levels: usize,
    /// Stop early at the first level whose density is at or below this.
    pub target_density: Option<f64>,
    /// Iteration `k` the survivors are rewound to (0 = the original lottery
    /// ticket; the paper's ResNet-20 uses 500).
    pub rewind_iteration: u64,
    /// Restore the optimizer state saved at `k` when rewinding (default
    /// false: a fresh optimizer, as the reference implementation).
    pub restore_optimizer_state: bool,
    /// Seeds of initialization, data order and augmentation.
    pub seeds: Seeds,
    /// Control branches trained at every level >= 1.
    pub controls: Controls,
    /// How the main line retrains after pruning (default: weight rewinding
    /// to `rewind_iteration`; see [`Retrain`]). Controls and level 0 are
    /// unaffected.
    #[serde(deserialize_with = "crate::imp::schema::deserialize_strict")]
    pub retrain: Retrain,
    /// Where each level's mask comes from (default: iterative magnitude
    /// pruning; see [`PruningMethod`]).
    #[serde(deserialize_with = "crate::imp::schema::deserialize_strict")]
    pub method: PruningMethod,
    /// Train sparse levels on the sparse path (default off; see
    /// [`SparseTraining`]).
    pub sparse_training: SparseTraining,
}

impl Default for ImpConfig {
    fn default() -> Self {
        Self {
            name: "resnet20_cifar10".into(),
            training: TrainingRecipe::resnet20_cifar10(),
            pruning: MagnitudePrunerConfig::default(),
            selector: ParamSelector::default(),
            levels: 10,
            target_density: None,
            rewind_iteration: 500,
            restore_optimizer_state: false,
            seeds: Seeds::default(),
            controls: Controls::default(),
            retrain: Retrain::default(),
            method: PruningMethod::default(),
            sparse_training: SparseTraining::default(),
        }
    }
}

impl ImpConfig {
    /// The paper's CIFAR-10 ResNet-20 experiment (the defaults): SGD with
    /// momentum, 62,560 iterations per level, global magnitude pruning of
    /// 20% per level, rewinding to iteration 500, 10 levels.
    pub fn resnet20_cifar10() -> Self {
        Self::default()
    }

    /// The original lottery-ticket protocol on Fashion-MNIST with
    /// LeNet-300-100: Adam 1.2e-3, batch 60, `iterations` per level, global
    /// magnitude pruning of 20% per level over the hidden layers and 10%
    /// (layer-wise) of the output layer `fc3`, 12 levels, rewinding to
    /// `rewind_iteration`, all seeds `seed`.
    pub fn lenet_fashion_mnist(iterations: u64, rewind_iteration: u64, seed: u64) -> Self {
        Self {
            name: "lenet_fashion_mnist".into(),
            training: TrainingRecipe::lenet_fashion_mnist().shortened(iterations),
            pruning: MagnitudePrunerConfig::new(0.2).with_layer_rate("fc3.weight", 0.1),
            levels: 12,
            rewind_iteration,
            seeds: Seeds::all(seed),
            ..Self::default()
        }
    }

    /// The condition name of the main line, e.g. `imp_rewind500` (see
    /// [`PruningMethod::condition`]).
    pub fn condition(&self) -> String {
        self.method.condition(&self.retrain, self.rewind_iteration)
    }

    /// The settings the directory name hashes: those that differ from
    /// schema 1's frozen defaults (or, for options added since, from their
    /// default), in schema 1's spelling (see [`super::schema`]). Adding an
    /// option or changing a default therefore renames no experiment.
    pub fn distinguishing_json(&self) -> serde_json::Value {
        let value = serde_json::to_value(self).expect("config serializes");
        let default = serde_json::to_value(Self::default()).expect("config serializes");
        super::schema::hashed_form(value, default)
    }

    /// The configuration as `config.json` stores it: the current schema,
    /// with its [`SCHEMA_VERSION`](super::schema::SCHEMA_VERSION).
    pub fn stored_json(&self) -> serde_json::Value {
        let mut value = serde_json::to_value(self).expect("config serializes");
        if let serde_json::Value::Object(map) = &mut value {
            map.insert(
                super::schema::SCHEMA_KEY.into(),
                super::schema::SCHEMA_VERSION.into(),
            );
        }
        value
    }

    /// Opens (or creates) this configuration's experiment directory at `root`.
    /// A stored configuration is read with today's defaults for options it
    /// does not mention, so adding an option never orphans an experiment.
    ///
    /// serde_json's default float parser may read a long decimal back one
    /// unit in the last place off, so stored floats within two units in the
    /// last place of the current ones compare equal (the directory name
    /// already hashes the exact settings).
    pub fn open_store(
        &self,
        root: &std::path::Path,
    ) -> Result<super::store::ExperimentStore, super::store::StoreError> {
        self.open_store_in(crate::io::FsHandle::default(), root)
    }

    /// [`ImpConfig::open_store`] on the file system `fs`.
    pub fn open_store_in(
        &self,
        fs: crate::io::FsHandle,
        root: &std::path::Path,
    ) -> Result<super::store::ExperimentStore, super::store::StoreError> {
        let current = self.stored_json();
        super::store::ExperimentStore::open_in(fs, root, &current, |stored| {
            // A schema this release cannot read compares unequal, and the
            // mismatch names the version.
            let Ok(migrated) = super::schema::migrate(stored.clone()) else {
                return stored;
            };
            match serde_json::from_value::<ImpConfig>(migrated.clone()) {
                Ok(parsed) => {
                    let parsed = parsed.stored_json();
                    if same_up_to_float_readback(&parsed, &current) {
                        current.clone()
                    } else {
                        parsed
                    }
                }
                Err(_) => migrated,
            }
        })
    }

    /// The experiment directory name: `<name>-<16 hex digits of a hash of
    /// the distinguishing settings>`.
    pub fn directory_name(&self) -> String {
        let canonical = super::schema::canonical_string(&self.distinguishing_json());
        let safe: String = self
            .name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let mut hasher = fnv::FnvHasher::default();
        hasher.write(canonical.as_bytes());
        format!("{safe}-{:016x}", hasher.finish())
    }
}

/// How many units in the last place a float read back from JSON may differ
/// from the value written (see [`ImpConfig::open_store`]).
const FLOAT_READBACK_ULPS: u64 = 2;

/// Whether two JSON values are equal, floats up to [`FLOAT_READBACK_ULPS`].
fn same_up_to_float_readback(a: &serde_json::Value, b: &serde_json::Value) -> bool {
    use serde_json::Value;
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(key, v)| y.get(key).is_some_and(|w| same_up_to_float_readback(v, w)))
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len()
                && x.iter()
                    .zip(y)
                    .all(|(v, w)| same_up_to_float_readback(v, w))
        }
        (Value::Number(x), Value::Number(y)) if x.is_f64() && y.is_f64() => {
            let (x, y) = (
                x.as_f64().unwrap_or(f64::NAN),
                y.as_f64().unwrap_or(f64::NAN),
            );
            x == y
                || (x.is_sign_positive() == y.is_sign_positive()
                    && x.to_bits().abs_diff(y.to_bits()) <= FLOAT_READBACK_ULPS)
        }
        _ => a == b,
    }
}
