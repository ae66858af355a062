//! Connectivity between IMP levels (Paul, Chen, Larsen, Frankle, Ganguli &
//! Dziugaite, "Unmasking the Lottery Ticket Hypothesis: What's Encoded in a
//! Winning Ticket's Mask?", ICLR 2023, arXiv 2210.03044): the error barrier
//! on the linear path between the trained network of level `L` and that of
//! level `L + 1`, for every pair of consecutive finished levels. Paul et
//! al. find consecutive IMP levels linearly connected (barrier near 0) as
//! long as the tickets match the dense network, and a barrier where
//! matching stops.
//!
//! The path and the barrier are those of the instability analysis
//! ([`interpolation_curve`], [`error_barrier`](super::error_barrier)), with
//! the analyzer's [`BarrierOptions`]. Results go to
//! [`Layout::CONNECTIVITY_CSV`] in the experiment directory; a pair already
//! there (same condition, levels, points and BatchNorm statistics) is read
//! back, not recomputed.

use burn::module::Module;
use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use super::StabilityError;
use super::analyzer::{Condition, StabilityAnalyzer};
use super::barrier::{BarrierOptions, BnStatistics, interpolation_curve};
use crate::imp::Layout;
use crate::imp::store::ExperimentStore;
use crate::mask::Mask;
use crate::report::{ReportError, csv_records};
use crate::rewind::RewindCheckpoint;
use crate::task::Task;

/// The header of [`Layout::CONNECTIVITY_CSV`].
pub const CONNECTIVITY_CSV_HEADER: &str = "condition,level_a,level_b,weights_remaining_a,weights_remaining_b,points,bn_statistics,error_barrier,endpoint_error_a,endpoint_error_b";

/// The error barrier between the trained networks of two consecutive
/// levels of a condition. Errors are the task's error-like metric on the
/// test set (fractions for classification).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConnectivityRow {
    /// Condition name (`imp_rewind500`, `random_prune`, ...).
    pub condition: String,
    /// The denser level `L` (network `a`, `alpha = 1`).
    pub level_a: usize,
    /// The next level `L + 1` (network `b`, `alpha = 0`).
    pub level_b: usize,
    /// Fraction of prunable weights level `L` keeps.
    pub weights_remaining_a: f64,
    /// Fraction of prunable weights level `L + 1` keeps.
    pub weights_remaining_b: f64,
    /// Points on the path ([`BarrierOptions::points`]).
    pub points: usize,
    /// How BatchNorm statistics were set: `interpolate`, or
    /// `recompute_<batches>_seed<seed>`.
    pub bn_statistics: String,
    /// Max error along the path minus the mean of the endpoint errors.
    pub error_barrier: f64,
    /// Error of level `L`'s network.
    pub endpoint_error_a: f64,
    /// Error of level `L + 1`'s network.
    pub endpoint_error_b: f64,
}

impl ConnectivityRow {
    /// Whether the row is the pair `(level_a, level_a + 1)` of `condition`
    /// measured with `options`.
    fn is(&self, condition: &str, level_a: usize, options: &BarrierOptions) -> bool {
        self.condition == condition
            && self.level_a == level_a
            && self.level_b == level_a + 1
            && self.points == options.points
            && self.bn_statistics == bn_key(&options.bn)
    }
}

/// The barriers of a condition along its levels, and how many were
/// computed now (the others were read back).
#[derive(Debug, Clone, PartialEq)]
pub struct LevelConnectivity {
    /// One row per pair of consecutive finished levels, in level order.
    pub rows: Vec<ConnectivityRow>,
    /// Pairs computed by this call.
    pub computed: usize,
}

/// The `bn_statistics` column of `bn`.
fn bn_key(bn: &BnStatistics) -> String {
    match bn {
        BnStatistics::Interpolate => "interpolate".into(),
        BnStatistics::Recompute { batches, seed } => format!("recompute_{batches}_seed{seed}"),
    }
}

/// The rows as CSV with [`CONNECTIVITY_CSV_HEADER`].
pub fn connectivity_csv(rows: &[ConnectivityRow]) -> String {
    let mut out = format!("{CONNECTIVITY_CSV_HEADER}\n");
    for r in rows {
        out.push_str(&format!(
            "{},{},{},{},{},{},{},{},{},{}\n",
            r.condition,
            r.level_a,
            r.level_b,
            r.weights_remaining_a,
            r.weights_remaining_b,
            r.points,
            r.bn_statistics,
            r.error_barrier,
            r.endpoint_error_a,
            r.endpoint_error_b
        ));
    }
    out
}

/// Parses [`connectivity_csv`] (floats read back exactly).
pub fn connectivity_from_csv(text: &str) -> Result<Vec<ConnectivityRow>, ReportError> {
    csv_records(text, CONNECTIVITY_CSV_HEADER)?
        .iter()
        .map(|r| {
            Ok(ConnectivityRow {
                condition: r.fields[0].to_string(),
                level_a: r.parse(1, "level_a")?,
                level_b: r.parse(2, "level_b")?,
                weights_remaining_a: r.parse(3, "weights_remaining_a")?,
                weights_remaining_b: r.parse(4, "weights_remaining_b")?,
                points: r.parse(5, "points")?,
                bn_statistics: r.fields[6].to_string(),
                error_barrier: r.parse(7, "error_barrier")?,
                endpoint_error_a: r.parse(8, "endpoint_error_a")?,
                endpoint_error_b: r.parse(9, "endpoint_error_b")?,
            })
        })
        .collect()
}

impl<M, T, F> StabilityAnalyzer<'_, T, F>
where
    M: Module,
    T: Task<M>,
    F: Fn(&Device, u64) -> M,
{
    /// The error barrier between the trained networks of every pair of
    /// consecutive finished levels `(L, L + 1)` of `condition` (level 0:
    /// the dense network), with the analyzer's [`BarrierOptions`] (see the
    /// [module docs](self)). Pairs stored in [`Layout::CONNECTIVITY_CSV`]
    /// are read back; new ones are computed and added to it.
    pub fn level_connectivity(
        &self,
        condition: Condition,
    ) -> Result<LevelConnectivity, StabilityError> {
        let store = self.store()?;
        let mut stored = match store.contains(Layout::CONNECTIVITY_CSV) {
            true => connectivity_csv_of(&store)?,
            false => Vec::new(),
        };
        let name = condition.name(self.config());
        let finished = (0..=self.config().levels)
            .take_while(|&level| store.contains(&level_files(condition, level).summary()))
            .count();
        let options = self.options();
        let mut rows = Vec::new();
        let mut computed = 0;
        for level in 0..finished.saturating_sub(1) {
            let row = match stored.iter().find(|r| r.is(&name, level, options)) {
                Some(row) => row.clone(),
                None => {
                    computed += 1;
                    let row = self.pair_in(&store, condition, (level, level + 1))?;
                    stored.push(row.clone());
                    row
                }
            };
            rows.push(row);
        }
        if computed > 0 {
            let fs = self.imp().options().file_system.clone();
            let mut writable = self.config().open_store_in(fs, &self.directory())?;
            writable.write(
                Layout::CONNECTIVITY_CSV,
                connectivity_csv(&stored).as_bytes(),
            )?;
        }
        Ok(LevelConnectivity { rows, computed })
    }

    /// The barrier between the trained networks of any two finished levels
    /// `level_a` and `level_b` of `condition` (not stored; a level with
    /// itself gives 0).
    pub fn level_pair(
        &self,
        condition: Condition,
        level_a: usize,
        level_b: usize,
    ) -> Result<ConnectivityRow, StabilityError> {
        let store = self.store()?;
        for level in [level_a, level_b] {
            let files = level_files(condition, level);
            if !store.contains(&files.summary()) {
                return Err(StabilityError::Config(format!(
                    "{}/{} is not finished: run the IMP experiment first",
                    store.root().display(),
                    files.dir()
                )));
            }
        }
        self.pair_in(&store, condition, (level_a, level_b))
    }

    /// The barrier between the trained networks of two levels, read from
    /// `store`.
    fn pair_in(
        &self,
        store: &ExperimentStore,
        condition: Condition,
        (level_a, level_b): (usize, usize),
    ) -> Result<ConnectivityRow, StabilityError> {
        let seed = self.config().seeds.init;
        let template = |device: &Device| (self.init())(device, seed);
        let trained = |level: usize| -> Result<(M, f64), StabilityError> {
            let files = level_files(condition, level);
            let checkpoint = RewindCheckpoint::from_bytes(&store.read(&files.final_checkpoint())?)?;
            let mask = Mask::from_bytes(&store.read(&files.mask())?)?;
            Ok((checkpoint.restore(template(self.device()))?, mask.density()))
        };
        let (a, density_a) = trained(level_a)?;
        let (b, density_b) = trained(level_b)?;
        let options = self.options();
        let curve = interpolation_curve(&a, &b, template, self.task(), options, self.device())?;
        Ok(ConnectivityRow {
            condition: condition.name(self.config()),
            level_a,
            level_b,
            weights_remaining_a: density_a,
            weights_remaining_b: density_b,
            points: options.points,
            bn_statistics: bn_key(&options.bn),
            error_barrier: curve.barrier(),
            endpoint_error_a: curve.endpoint_error_a(),
            endpoint_error_b: curve.endpoint_error_b(),
        })
    }
}

/// The files of `condition`'s network at `level` (level 0: the main line's).
fn level_files(condition: Condition, level: usize) -> crate::imp::LevelFiles {
    Layout::level(&condition.at_level(level).branch(), level)
}

/// The rows stored in the experiment's connectivity CSV.
fn connectivity_csv_of(store: &ExperimentStore) -> Result<Vec<ConnectivityRow>, StabilityError> {
    let bytes = store.read(Layout::CONNECTIVITY_CSV)?;
    let text = String::from_utf8(bytes)
        .map_err(|e| StabilityError::Config(format!("{}: {e}", Layout::CONNECTIVITY_CSV)))?;
    Ok(connectivity_from_csv(&text)?)
}
