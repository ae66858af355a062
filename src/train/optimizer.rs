//! The optimizer of a recipe: any of burn's optimizers, with the papers'
//! PyTorch-semantics presets as named values of the same type.
//!
//! [`OptimizerConfig::Burn`] holds one of burn's own optimizer configs
//! ([`BurnOptimizer`]: `SgdConfig`, `AdamConfig`, `AdamWConfig`,
//! `AdaGradConfig`, `RmsPropConfig`, `LionConfig`, `LambConfig`,
//! `AdanConfig`), with burn's semantics and defaults, gradient clipping and
//! weight decay as burn offers them. Every optimizer's state is rewound and
//! resumed through burn's own record.
//!
//! [`OptimizerConfig::Sgd`] and [`OptimizerConfig::Adam`] are the presets
//! the papers' recipes use: they follow PyTorch (SGD momentum without
//! dampening, where burn's default dampening is 0.1; weight decay as an L2
//! term added to the gradient before momentum; Adam epsilon 1e-8, burn's
//! default is 1e-5) and expand to the general form with
//! [`OptimizerConfig::to_burn`], which is also how they are built.
//!
//! ```
//! use burn::optim::AdamWConfig;
//! use burn_lottery::train::recipe::OptimizerConfig;
//!
//! let adamw = OptimizerConfig::burn(1e-3, AdamWConfig::new().with_weight_decay(1e-2));
//! adamw.validate().unwrap();
//! let json = serde_json::to_string(&adamw).unwrap();
//! assert!(json.starts_with(r#"{"kind":"burn","learning_rate":0.001,"optimizer":{"kind":"adamw""#));
//! // A field burn's config does not have (a typo) is refused by name.
//! let typo = json.replace("\"amsgrad\"", "\"amsgard\":true,\"amsgrad\"");
//! let error = serde_json::from_str::<OptimizerConfig>(&typo).unwrap_err();
//! assert!(error.to_string().contains("unknown field `amsgard`"), "{error}");
//! ```

use burn::optim::decay::WeightDecayConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{
    AdaGradConfig, AdamConfig, AdamWConfig, AdanConfig, LambConfig, LionConfig, ModuleOptimizer,
    RmsPropConfig, SgdConfig,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::recipe::RecipeError;
use super::scheduler::BurnScheduler;
use crate::imp::schema::parse_strict;

/// The optimizer and its hyperparameters (see the [module docs](self)).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum OptimizerConfig {
    /// PyTorch's SGD, optionally with momentum (no dampening).
    Sgd {
        /// Base learning rate (scaled by the schedule).
        learning_rate: f64,
        /// Momentum factor in `[0, 1)`; 0 for plain SGD.
        momentum: f64,
        /// L2 penalty added to the gradient; 0 for none.
        weight_decay: f64,
        /// Nesterov momentum (needs `momentum > 0`).
        nesterov: bool,
    },
    /// PyTorch's Adam (Kingma & Ba), weight decay as L2 added to the gradient.
    Adam {
        /// Base learning rate (scaled by the schedule).
        learning_rate: f64,
        /// Decay of the first moment, in `[0, 1)`.
        beta_1: f64,
        /// Decay of the second moment, in `[0, 1)`.
        beta_2: f64,
        /// Added to the denominator for stability (PyTorch: 1e-8).
        epsilon: f64,
        /// L2 penalty added to the gradient; 0 for none.
        weight_decay: f64,
    },
    /// One of burn's optimizers, as burn defines it, at a constant base
    /// `learning_rate` (scaled by the recipe's `schedule`) or at the rates
    /// of one of burn's schedulers: exactly one of the two.
    Burn {
        /// Base learning rate, scaled by the recipe's `schedule`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        learning_rate: Option<f64>,
        /// burn's learning-rate scheduler, giving the rate of every step
        /// (per parameter group); the recipe's `schedule` must then stay
        /// constant.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        scheduler: Option<BurnScheduler>,
        /// burn's optimizer configuration.
        optimizer: BurnOptimizer,
    },
}

impl OptimizerConfig {
    /// SGD with momentum 0.9 and weight decay 1e-4 at `learning_rate` (the
    /// CIFAR ResNet recipe).
    pub fn sgd_momentum(learning_rate: f64) -> Self {
        OptimizerConfig::Sgd {
            learning_rate,
            momentum: 0.9,
            weight_decay: 1e-4,
            nesterov: false,
        }
    }

    /// Adam with PyTorch's defaults (betas 0.9, 0.999, epsilon 1e-8, no weight
    /// decay) at `learning_rate`.
    pub fn adam(learning_rate: f64) -> Self {
        OptimizerConfig::Adam {
            learning_rate,
            beta_1: 0.9,
            beta_2: 0.999,
            epsilon: 1e-8,
            weight_decay: 0.0,
        }
    }

    /// burn's `optimizer` (any of [`BurnOptimizer`]'s configs) at base
    /// learning rate `learning_rate`.
    pub fn burn(learning_rate: f64, optimizer: impl Into<BurnOptimizer>) -> Self {
        OptimizerConfig::Burn {
            learning_rate: Some(learning_rate),
            scheduler: None,
            optimizer: optimizer.into(),
        }
    }

    /// burn's `optimizer` at the learning rates of burn's `scheduler`
    /// (e.g. a `CosineAnnealingLrSchedulerConfig`, or a
    /// `ModuleLrSchedulerConfig` with per-group rates).
    pub fn scheduled(
        optimizer: impl Into<BurnOptimizer>,
        scheduler: impl Into<BurnScheduler>,
    ) -> Self {
        OptimizerConfig::Burn {
            learning_rate: None,
            scheduler: Some(scheduler.into()),
            optimizer: optimizer.into(),
        }
    }

    /// burn's scheduler, when the rate comes from one.
    pub fn scheduler(&self) -> Option<&BurnScheduler> {
        match self {
            OptimizerConfig::Burn { scheduler, .. } => scheduler.as_ref(),
            _ => None,
        }
    }

    /// The same preset with L2 weight decay `decay` (added to the gradient,
    /// as PyTorch's SGD and Adam do). burn's optimizers set their weight
    /// decay in their own config: for them this changes nothing.
    pub fn with_weight_decay(mut self, decay: f64) -> Self {
        match &mut self {
            Self::Sgd { weight_decay, .. } | Self::Adam { weight_decay, .. } => {
                *weight_decay = decay
            }
            Self::Burn { .. } => {}
        }
        self
    }

    /// The same optimizer at a constant base learning rate `rate` (a burn
    /// optimizer's scheduler is dropped).
    pub fn with_learning_rate(mut self, rate: f64) -> Self {
        match &mut self {
            Self::Sgd { learning_rate, .. } | Self::Adam { learning_rate, .. } => {
                *learning_rate = rate
            }
            Self::Burn {
                learning_rate,
                scheduler,
                ..
            } => {
                *learning_rate = Some(rate);
                *scheduler = None;
            }
        }
        self
    }

    /// The base learning rate (`None`: a burn scheduler gives the rate).
    pub fn learning_rate(&self) -> Option<f64> {
        match self {
            OptimizerConfig::Sgd { learning_rate, .. }
            | OptimizerConfig::Adam { learning_rate, .. } => Some(*learning_rate),
            OptimizerConfig::Burn { learning_rate, .. } => *learning_rate,
        }
    }

    /// The general form: the base learning rate and burn's config that
    /// builds this optimizer.
    pub fn to_burn(&self) -> (Option<f64>, BurnOptimizer) {
        let (learning_rate, optimizer) = match *self {
            OptimizerConfig::Sgd {
                learning_rate,
                momentum,
                weight_decay,
                nesterov,
            } => (
                learning_rate,
                BurnOptimizer::Sgd(
                    SgdConfig::new()
                        .with_momentum((momentum != 0.0 || nesterov).then(|| {
                            MomentumConfig::new()
                                .with_momentum(momentum)
                                .with_dampening(0.0)
                                .with_nesterov(nesterov)
                        }))
                        .with_weight_decay(weight_decay_config(weight_decay)),
                ),
            ),
            OptimizerConfig::Adam {
                learning_rate,
                beta_1,
                beta_2,
                epsilon,
                weight_decay,
            } => (
                learning_rate,
                BurnOptimizer::Adam(
                    AdamConfig::new()
                        .with_beta_1(beta_1 as f32)
                        .with_beta_2(beta_2 as f32)
                        .with_epsilon(epsilon as f32)
                        .with_weight_decay(weight_decay_config(weight_decay)),
                ),
            ),
            OptimizerConfig::Burn {
                learning_rate,
                ref optimizer,
                ..
            } => return (learning_rate, optimizer.clone()),
        };
        (Some(learning_rate), optimizer)
    }

    /// Checks every hyperparameter's range (the learning rate, when the
    /// optimizer has one).
    pub fn validate(&self) -> Result<(), RecipeError> {
        if let Some(lr) = self.learning_rate()
            && !(lr.is_finite() && lr > 0.0)
        {
            return Err(RecipeError::InvalidLearningRate(lr));
        }
        match *self {
            OptimizerConfig::Sgd {
                momentum,
                weight_decay,
                nesterov,
                ..
            } => {
                check_unit("momentum", momentum)?;
                check_weight_decay(weight_decay)?;
                if nesterov && momentum == 0.0 {
                    return Err(RecipeError::NesterovWithoutMomentum);
                }
            }
            OptimizerConfig::Adam {
                beta_1,
                beta_2,
                epsilon,
                weight_decay,
                ..
            } => {
                check_unit("beta_1", beta_1)?;
                check_unit("beta_2", beta_2)?;
                check_positive("epsilon", epsilon)?;
                check_weight_decay(weight_decay)?;
            }
            OptimizerConfig::Burn {
                learning_rate,
                ref scheduler,
                ref optimizer,
            } => {
                match (learning_rate, scheduler) {
                    (Some(_), Some(_)) | (None, None) => {
                        return Err(RecipeError::LearningRateSource);
                    }
                    (None, Some(scheduler)) => scheduler.validate()?,
                    (Some(_), None) => {}
                }
                optimizer.validate()?
            }
        }
        Ok(())
    }

    /// Builds burn's optimizer (the learning rate is passed to each step;
    /// see [`TrainingRecipe::learning_rates`](super::recipe::TrainingRecipe::learning_rates)).
    pub fn init(&self) -> ModuleOptimizer {
        self.to_burn().1.init()
    }
}

/// One of burn's optimizer configurations, tagged by `kind` (`sgd`,
/// `adam`, `adamw`, `adagrad`, `rmsprop`, `lion`, `lamb`, `adan`) next to
/// the config's own fields. Reading one refuses fields burn's config does
/// not have.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", try_from = "Value")]
pub enum BurnOptimizer {
    /// burn's SGD (`SgdConfig`: momentum with burn's dampening default 0.1).
    Sgd(SgdConfig),
    /// burn's Adam (`AdamConfig`).
    Adam(AdamConfig),
    /// burn's AdamW (`AdamWConfig`: decoupled weight decay).
    AdamW(AdamWConfig),
    /// burn's AdaGrad (`AdaGradConfig`).
    AdaGrad(AdaGradConfig),
    /// burn's RMSProp (`RmsPropConfig`).
    RmsProp(RmsPropConfig),
    /// burn's Lion (`LionConfig`).
    Lion(LionConfig),
    /// burn's LAMB (`LambConfig`).
    Lamb(LambConfig),
    /// burn's Adan (`AdanConfig`).
    Adan(AdanConfig),
}

/// `From<burn's config>` for each variant, and the kind names.
macro_rules! burn_optimizers {
    ($($variant:ident($config:ident) = $kind:literal),* $(,)?) => {
        $(impl From<$config> for BurnOptimizer {
            fn from(config: $config) -> Self {
                BurnOptimizer::$variant(config)
            }
        })*

        impl BurnOptimizer {
            /// Builds burn's optimizer.
            pub fn init(&self) -> ModuleOptimizer {
                match self {
                    $(BurnOptimizer::$variant(config) => config.init(),)*
                }
            }

            /// The `kind` tag, e.g. `adamw`.
            pub fn kind(&self) -> &'static str {
                match self {
                    $(BurnOptimizer::$variant(_) => $kind,)*
                }
            }
        }

        impl TryFrom<Value> for BurnOptimizer {
            type Error = String;

            fn try_from(mut value: Value) -> Result<Self, String> {
                let kind = value
                    .as_object_mut()
                    .and_then(|map| map.remove("kind"))
                    .ok_or("a burn optimizer needs its `kind`")?;
                match kind.as_str() {
                    $(Some($kind) => parse_strict(value, $kind).map(BurnOptimizer::$variant),)*
                    _ => Err(format!(
                        "unknown burn optimizer kind {kind}, expected one of: {}",
                        [$($kind),*].join(", ")
                    )),
                }
            }
        }
    };
}

burn_optimizers!(
    Sgd(SgdConfig) = "sgd",
    Adam(AdamConfig) = "adam",
    AdamW(AdamWConfig) = "adamw",
    AdaGrad(AdaGradConfig) = "adagrad",
    RmsProp(RmsPropConfig) = "rmsprop",
    Lion(LionConfig) = "lion",
    Lamb(LambConfig) = "lamb",
    Adan(AdanConfig) = "adan",
);

impl PartialEq for BurnOptimizer {
    /// Equal when they serialize alike (burn's configs have no `PartialEq`).
    fn eq(&self, other: &Self) -> bool {
        serde_json::to_value(self).ok() == serde_json::to_value(other).ok()
    }
}

impl BurnOptimizer {
    /// Checks the ranges every optimizer shares by name: betas, momentum
    /// and `alpha` in `[0, 1)`, epsilon above 0, weight decay at least 0.
    pub fn validate(&self) -> Result<(), RecipeError> {
        let value = serde_json::to_value(self).expect("burn configs serialize");
        check_named_ranges(&value)
    }
}

/// Walks a serialized optimizer config and checks the fields it knows by
/// name (see [`BurnOptimizer::validate`]).
fn check_named_ranges(value: &Value) -> Result<(), RecipeError> {
    let Value::Object(map) = value else {
        return Ok(());
    };
    for (key, v) in map {
        if let Some(x) = v.as_f64() {
            if let Some(unit) = UNIT_FIELDS.iter().find(|name| **name == key) {
                check_unit(unit, x)?;
            } else if key == "epsilon" {
                check_positive("epsilon", x)?;
            } else if key == "weight_decay" || key == "penalty" {
                check_weight_decay(x)?;
            }
        }
        check_named_ranges(v)?;
    }
    Ok(())
}

/// Fields that every optimizer keeps in `[0, 1)`.
const UNIT_FIELDS: &[&str] = &["beta_1", "beta_2", "beta_3", "momentum", "alpha"];

fn weight_decay_config(weight_decay: f64) -> Option<WeightDecayConfig> {
    (weight_decay != 0.0).then(|| WeightDecayConfig::new(weight_decay as f32))
}

fn check_unit(name: &'static str, value: f64) -> Result<(), RecipeError> {
    if value.is_finite() && (0.0..1.0).contains(&value) {
        Ok(())
    } else {
        Err(RecipeError::InvalidHyperparameter { name, value })
    }
}

fn check_positive(name: &'static str, value: f64) -> Result<(), RecipeError> {
    if value.is_finite() && value > 0.0 {
        Ok(())
    } else {
        Err(RecipeError::InvalidHyperparameter { name, value })
    }
}

fn check_weight_decay(value: f64) -> Result<(), RecipeError> {
    if value.is_finite() && value >= 0.0 {
        Ok(())
    } else {
        Err(RecipeError::InvalidHyperparameter {
            name: "weight_decay",
            value,
        })
    }
}
