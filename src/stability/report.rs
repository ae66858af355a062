//! Results of a stability sweep: rows, CSV and plots (SVG).

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::analyzer::PairResult;
use crate::report::{Chart, MetricLabel, ReportError, Series, XAxis, csv_records, line_chart};

/// The CSV header of [`StabilityRow`]s.
pub const CSV_HEADER: &str = "condition,level,weights_remaining,rewind_iteration,l2_distance,l2_normalized,angle,error_barrier,endpoint_error_a,endpoint_error_b";

/// One analyzed pair of copies. Errors and the barrier are fractions (0..1)
/// on the test set; distances are over the weights the mask keeps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StabilityRow {
    /// `imp_rewind<k>` or `random_prune`.
    pub condition: String,
    /// Pruning level (0 = dense).
    pub level: usize,
    /// Fraction of prunable weights kept.
    pub weights_remaining: f64,
    /// Rewind iteration k the copies were trained from.
    pub rewind_iteration: u64,
    /// Raw L2 distance.
    pub l2_distance: f64,
    /// L2 distance over the mean masked norm.
    pub l2_normalized: f64,
    /// Angle in radians.
    pub angle: f64,
    /// Max test error along the path minus the mean endpoint error.
    pub error_barrier: f64,
    /// Test error of copy `a`.
    pub endpoint_error_a: f64,
    /// Test error of copy `b`.
    pub endpoint_error_b: f64,
}

/// The rows as CSV with [`CSV_HEADER`].
pub fn to_csv(rows: &[StabilityRow]) -> String {
    let mut out = format!("{CSV_HEADER}\n");
    for r in rows {
        out.push_str(&format!(
            "{},{},{},{},{},{},{},{},{},{}\n",
            r.condition,
            r.level,
            r.weights_remaining,
            r.rewind_iteration,
            r.l2_distance,
            r.l2_normalized,
            r.angle,
            r.error_barrier,
            r.endpoint_error_a,
            r.endpoint_error_b
        ));
    }
    out
}

/// Parses [`to_csv`].
pub fn from_csv(text: &str) -> Result<Vec<StabilityRow>, ReportError> {
    csv_records(text, CSV_HEADER)?
        .iter()
        .map(|r| {
            Ok(StabilityRow {
                condition: r.fields[0].to_string(),
                level: r.parse(1, "level")?,
                weights_remaining: r.parse(2, "weights_remaining")?,
                rewind_iteration: r.parse(3, "rewind_iteration")?,
                l2_distance: r.parse(4, "l2_distance")?,
                l2_normalized: r.parse(5, "l2_normalized")?,
                angle: r.parse(6, "angle")?,
                error_barrier: r.parse(7, "error_barrier")?,
                endpoint_error_a: r.parse(8, "endpoint_error_a")?,
                endpoint_error_b: r.parse(9, "endpoint_error_b")?,
            })
        })
        .collect()
}

/// The error along alpha of every result, as CSV
/// (`condition,level,rewind_iteration,alpha,test_error[,train_error]`).
pub fn curves_csv(results: &[PairResult]) -> String {
    let with_train = results.iter().any(|r| r.curve.train_errors.is_some());
    let mut out = String::from("condition,level,rewind_iteration,alpha,test_error");
    if with_train {
        out.push_str(",train_error");
    }
    out.push('\n');
    for r in results {
        for (i, (alpha, error)) in r.curve.alphas.iter().zip(&r.curve.test_errors).enumerate() {
            out.push_str(&format!(
                "{},{},{},{alpha},{error}",
                r.condition, r.level, r.rewind_iteration
            ));
            if with_train {
                let train = r
                    .curve
                    .train_errors
                    .as_ref()
                    .map(|t| t[i].to_string())
                    .unwrap_or_default();
                out.push_str(&format!(",{train}"));
            }
            out.push('\n');
        }
    }
    out
}

/// Writes `<prefix>.csv` (the rows), `<prefix>_curves.csv`,
/// `<prefix>_barrier.svg` (barrier vs weights remaining, one line per
/// condition), `<prefix>_rewind.svg` (barrier vs rewind iteration, one line
/// per level) and `<prefix>_alpha.svg` (test error along alpha) into `dir`.
pub fn write_report(
    results: &[PairResult],
    error: &MetricLabel,
    dir: &Path,
    prefix: &str,
    title: &str,
) -> Result<(), ReportError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ReportError::Io { path, source }
    };
    // Durable and atomic, as every other report: a crash leaves the old
    // file or the new one, never a torn one.
    crate::io::create_dir_all_durable(&crate::io::RealFs, dir).map_err(io(dir))?;
    let rows: Vec<StabilityRow> = results.iter().map(PairResult::row).collect();
    let csv = dir.join(format!("{prefix}.csv"));
    crate::io::write_atomic(&csv, to_csv(&rows).as_bytes()).map_err(io(&csv))?;
    let curves = dir.join(format!("{prefix}_curves.csv"));
    crate::io::write_atomic(&curves, curves_csv(results).as_bytes()).map_err(io(&curves))?;
    let barrier = dir.join(format!("{prefix}_barrier.svg"));
    plot_barrier_vs_weights(&rows, error, title, &barrier)?;
    let rewind = dir.join(format!("{prefix}_rewind.svg"));
    plot_barrier_vs_rewind(&rows, error, title, &rewind)?;
    let alpha = dir.join(format!("{prefix}_alpha.svg"));
    plot_error_along_alpha(results, error, title, &alpha)?;
    Ok(())
}

/// The scale of plotted values of `error` (100 for a percentage) and the
/// description of its barrier axis.
fn barrier_axis(error: &MetricLabel) -> (f64, String) {
    let scale = if error.percent() { 100.0 } else { 1.0 };
    let unit = if error.percent() { " (%)" } else { "" };
    (scale, format!("test {} barrier{unit}", error.name()))
}

/// Barrier of the task's error-like metric `error` (in % for a percentage)
/// against weights remaining (log axis, dense 100% on the left, sparser to
/// the right, as [`crate::report::plot_metric_vs_weights`]), one line per
/// condition (and rewind iteration). The y range includes 0.
pub fn plot_barrier_vs_weights(
    rows: &[StabilityRow],
    error: &MetricLabel,
    title: &str,
    path: &Path,
) -> Result<(), ReportError> {
    let (scale, y_desc) = barrier_axis(error);
    let mut series: Series = BTreeMap::new();
    for r in rows {
        series
            .entry(format!("{} (k={})", r.condition, r.rewind_iteration))
            .or_default()
            .push((r.weights_remaining, scale * r.error_barrier));
    }
    line_chart(
        &series,
        &Chart {
            title,
            x: XAxis::WeightsRemaining,
            y_desc: &y_desc,
            y_includes_zero: true,
        },
        path,
    )
}

/// Barrier of `error` against the rewind iteration, one line per condition
/// kind and level (`imp` or `random_prune`, level). The y range includes 0.
pub fn plot_barrier_vs_rewind(
    rows: &[StabilityRow],
    error: &MetricLabel,
    title: &str,
    path: &Path,
) -> Result<(), ReportError> {
    let (scale, y_desc) = barrier_axis(error);
    let mut series: Series = BTreeMap::new();
    for r in rows {
        // One line per condition across rewind iterations: the main line's
        // name without its iteration (`imp` for weight rewinding).
        let kind = if r.condition.starts_with("imp_rewind") {
            "imp"
        } else {
            r.condition.trim_end_matches(|c: char| c.is_ascii_digit())
        };
        series
            .entry(format!(
                "{kind} level {:02} ({:.1}%)",
                r.level,
                100.0 * r.weights_remaining
            ))
            .or_default()
            .push((r.rewind_iteration as f64, scale * r.error_barrier));
    }
    line_chart(
        &series,
        &Chart {
            title,
            x: XAxis::Linear("rewind iteration"),
            y_desc: &y_desc,
            y_includes_zero: true,
        },
        path,
    )
}

/// The task's error-like metric `error` along the linear path, one line per
/// pair, the y range fitted to the values.
pub fn plot_error_along_alpha(
    results: &[PairResult],
    error: &MetricLabel,
    title: &str,
    path: &Path,
) -> Result<(), ReportError> {
    let scale = if error.percent() { 100.0 } else { 1.0 };
    let y_desc = error.axis_description();
    let mut series: Series = BTreeMap::new();
    for r in results {
        series.insert(
            format!(
                "{} level {:02} ({:.1}%)",
                r.condition,
                r.level,
                100.0 * r.weights_remaining
            ),
            r.curve
                .alphas
                .iter()
                .zip(&r.curve.test_errors)
                .map(|(&a, &e)| (a, scale * e))
                .collect(),
        );
    }
    line_chart(
        &series,
        &Chart {
            title,
            x: XAxis::Linear("alpha (1 = copy a, 0 = copy b)"),
            y_desc: &y_desc,
            y_includes_zero: false,
        },
        path,
    )
}
