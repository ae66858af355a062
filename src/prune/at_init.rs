//! Pruning at initialization (Frankle, Dziugaite, Roy & Carbin, "Pruning
//! Neural Networks at Initialization: Why Are We Missing the Mark?", arXiv
//! 2009.08576): score the weights before training, keep the best to a
//! target count, train from there.
//!
//! The stages are separate, as in jaxpruner: a criterion scores
//! ([`snip_scores`](super::snip_scores), [`grasp_scores`](super::grasp_scores),
//! [`synflow_scores`](super::synflow_scores), magnitude, random), a
//! [`DensityRule`] spreads the count over layers, [`keep_top`] keeps the
//! best, and the runner's masked training enforces the mask.

use burn::module::Module;
use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use super::density::DensityRule;
use super::grasp::grasp_scores;
use super::random::random_scores;
use super::select::keep_top;
use super::snip::snip_scores;
use super::synflow::synflow_mask;
use super::{PruneError, Scores};
use crate::mask::Mask;
use crate::params::float_values;
use crate::task::{DataOrder, Task};

/// A criterion that scores weights at initialization.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InitCriterion {
    /// SNIP: `|g * w|` on a few batches.
    Snip,
    /// GraSP: `-w * H g` on a few batches, highest removed.
    Grasp,
    /// SynFlow: data-free, iterative.
    Synflow,
    /// `|w|` at initialization.
    Magnitude,
    /// Uniformly random.
    Random,
}

/// Configuration of pruning at initialization. Defaults: SNIP, global
/// ranking, 10 batches of the experiment's data order (its first 10),
/// SynFlow's 100 rounds, GraSP's finite-difference step 1e-3.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AtInitConfig {
    /// The scoring criterion.
    pub criterion: InitCriterion,
    /// How the kept count is spread over layers (default global, as the
    /// criteria's own papers rank).
    pub density_rule: DensityRule,
    /// Batches the gradient of SNIP and GraSP averages over: iterations
    /// `0..batches` of the experiment's data order.
    pub batches: u64,
    /// SynFlow's rounds.
    pub synflow_rounds: usize,
    /// GraSP's finite-difference step, relative to the weights' norm (see
    /// [`grasp_scores`](super::grasp_scores)).
    pub finite_difference_step: f64,
}

impl Default for AtInitConfig {
    fn default() -> Self {
        Self {
            criterion: InitCriterion::Snip,
            density_rule: DensityRule::Global,
            batches: 10,
            synflow_rounds: 100,
            finite_difference_step: 1e-3,
        }
    }
}

impl AtInitConfig {
    /// `criterion` with the other defaults.
    pub fn new(criterion: InitCriterion) -> Self {
        Self {
            criterion,
            ..Self::default()
        }
    }

    /// Sets the density rule.
    pub fn with_density_rule(mut self, rule: DensityRule) -> Self {
        self.density_rule = rule;
        self
    }

    /// The condition name: `snip`, `grasp`, `synflow`, `magnitude_init`,
    /// `random_init`, with `_uniform` or `_erk` for those density rules.
    pub fn name(&self) -> String {
        let criterion = match self.criterion {
            InitCriterion::Snip => "snip",
            InitCriterion::Grasp => "grasp",
            InitCriterion::Synflow => "synflow",
            InitCriterion::Magnitude => "magnitude_init",
            InitCriterion::Random => "random_init",
        };
        match self.density_rule {
            DensityRule::Global => criterion.to_string(),
            DensityRule::Uniform => format!("{criterion}_uniform"),
            DensityRule::Erk => format!("{criterion}_erk"),
        }
    }

    /// Checks every setting.
    pub fn validate(&self) -> Result<(), PruneError> {
        let step = self.finite_difference_step;
        if self.batches == 0 {
            return Err(PruneError::InvalidAtInit("batches must be > 0".into()));
        }
        if self.synflow_rounds == 0 {
            return Err(PruneError::InvalidAtInit(
                "synflow_rounds must be > 0".into(),
            ));
        }
        if !(step.is_finite() && step > 0.0) {
            return Err(PruneError::InvalidAtInit(format!(
                "finite_difference_step must be finite and > 0, got {step}"
            )));
        }
        Ok(())
    }

    /// The mask keeping `kept` of the weights of `dense`, chosen by the
    /// criterion at the weights of `model` (on the autodiff `device`); SNIP
    /// and GraSP score on the batches of `order`, the random criterion
    /// draws with `seed`.
    #[allow(clippy::too_many_arguments)]
    pub fn prune<M: Module, T: Task<M>>(
        &self,
        model: &M,
        dense: &Mask,
        kept: usize,
        task: &T,
        order: &DataOrder,
        seed: u64,
        device: &Device,
    ) -> Result<Mask, PruneError> {
        self.validate()?;
        dense.validate(model, None)?;
        let batches = 0..self.batches;
        let scores: Scores = match self.criterion {
            InitCriterion::Synflow => {
                let objective = |m: &M| task.synflow_objective(m, device);
                return synflow_mask(
                    model,
                    dense,
                    kept,
                    self.density_rule,
                    self.synflow_rounds,
                    &objective,
                );
            }
            InitCriterion::Snip => snip_scores(model, dense, task, order, batches, device)?,
            InitCriterion::Grasp => {
                let step = self.finite_difference_step;
                let mut scores = grasp_scores(model, dense, task, order, batches, step, device)?;
                // Lower GraSP scores are kept: rank by their negation.
                scores.values_mut().flatten().for_each(|s| *s = -*s);
                scores
            }
            InitCriterion::Magnitude => {
                let mut weights = float_values(model, |path| dense.contains(path));
                weights.values_mut().flatten().for_each(|w| *w = w.abs());
                weights
            }
            InitCriterion::Random => random_scores(dense, seed),
        };
        keep_top(&scores, dense, &self.density_rule.allocate(dense, kept)?)
    }
}
