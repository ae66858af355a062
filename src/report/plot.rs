//! Line charts (SVG): a report's metric against weights remaining, and the
//! stability sweep's charts, all drawn by [`line_chart`] so that every
//! weights-remaining axis reads the same way (see [`XAxis::WeightsRemaining`])
//! and every y axis is fitted to its data the same way ([`fit_range`]).

use std::collections::BTreeMap;
use std::path::Path;

use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint};
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

use super::{MetricLabel, ReportError, ReportRow};

/// Line colors, distinguishable on white (then plotters' `Palette99`).
const PALETTE: [RGBColor; 10] = [
    RGBColor(214, 39, 40),
    RGBColor(31, 119, 180),
    RGBColor(44, 160, 44),
    RGBColor(255, 127, 14),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// The color of line `i`.
fn line_color(i: usize) -> RGBAColor {
    match PALETTE.get(i) {
        Some(color) => color.to_rgba(),
        None => Palette99::pick(i).to_rgba(),
    }
}

/// Lines to draw: the legend name of each line and its `(x, y)` points.
pub(crate) type Series = BTreeMap<String, Vec<(f64, f64)>>;

/// The x axis of a [`line_chart`].
pub(crate) enum XAxis<'a> {
    /// The fraction of weights remaining, in (0, 1]: a log axis with the
    /// dense network (100%) on the left and sparser networks to the right,
    /// each pruning level of 20% one equal step, ticks at the densities of
    /// 20%-per-level pruning labelled in percent (100, 51.2, 26.2, 13.4,
    /// 6.9, ...), as in the paper's figures.
    WeightsRemaining,
    /// A linear axis with this description.
    Linear(&'a str),
}

/// What a [`line_chart`] shows besides its lines.
pub(crate) struct Chart<'a> {
    /// The caption.
    pub(crate) title: &'a str,
    /// The x axis.
    pub(crate) x: XAxis<'a>,
    /// The y axis description.
    pub(crate) y_desc: &'a str,
    /// Whether the y range must include 0 (e.g. an error barrier, whose
    /// sign matters).
    pub(crate) y_includes_zero: bool,
}

/// At most this many ticks on a weights-remaining axis.
const MAX_WEIGHT_TICKS: usize = 10;

/// The pruning rate whose densities (0.8^level) the weights axis ticks.
const TICK_KEEP_RATE: f64 = 0.8;

/// Where a fraction of weights remaining lies on the weights axis:
/// `log10(1 / weights_remaining)`, so 0 for the dense network and growing to
/// the right as the network gets sparser. Not finite for `w <= 0`.
pub(crate) fn weights_position(weights_remaining: f64) -> f64 {
    -weights_remaining.log10()
}

/// The fraction of weights remaining at a position of the weights axis
/// (the inverse of [`weights_position`]).
fn weights_at(position: f64) -> f64 {
    10f64.powf(-position)
}

/// The ticks of the weights axis between positions `lo` and `hi`: the
/// densities `0.8^level` for every `step`-th level (counted from the dense
/// level 0, so 100% is always a tick when in range), `step` the smallest
/// that keeps at most [`MAX_WEIGHT_TICKS`] ticks.
fn weights_ticks(lo: f64, hi: f64) -> Vec<f64> {
    let level_width = weights_position(TICK_KEEP_RATE);
    let first = (lo / level_width).ceil().max(0.0) as i64;
    let last = (hi / level_width).floor() as i64;
    if last < first {
        return Vec::new();
    }
    let count = (last - first + 1) as usize;
    let step = count.div_ceil(MAX_WEIGHT_TICKS).max(1) as i64;
    (first..=last)
        .filter(|level| level % step == 0)
        .map(|level| level as f64 * level_width)
        .collect()
}

/// A percentage as a tick label: one decimal from 1% up (without a trailing
/// `.0`: `100`, `51.2`, `41`, `6.9`), two significant digits below
/// (`0.92`, `0.05`).
fn percent_label(percent: f64) -> String {
    let text = if percent >= 0.995 || percent <= 0.0 {
        format!("{percent:.1}")
    } else {
        let decimals = (1 - percent.log10().floor() as i32).max(0) as usize;
        format!("{percent:.decimals$}")
    };
    trim_zeros(text)
}

/// `text` (a decimal number) without trailing zeros after the point, nor a
/// trailing point.
fn trim_zeros(text: String) -> String {
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    }
}

/// The y range of a chart whose values are `values`: from a little below
/// the smallest to a little above the largest (6% of the span on either
/// side), including 0 when `include_zero`. All-equal values get a span of 2%
/// of their magnitude (1 when they are 0). `None` when no value is finite.
pub(crate) fn fit_range(
    values: impl IntoIterator<Item = f64>,
    include_zero: bool,
) -> Option<(f64, f64)> {
    let (mut lo, mut hi) = values
        .into_iter()
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    if lo > hi {
        return None;
    }
    if include_zero {
        lo = lo.min(0.0);
        hi = hi.max(0.0);
    }
    let middle = (lo + hi) / 2.0;
    let min_span = if middle.abs() < 1e-9 {
        1.0
    } else {
        0.02 * middle.abs()
    };
    if hi - lo < min_span {
        lo = middle - min_span / 2.0;
        hi = middle + min_span / 2.0;
    }
    let pad = 0.06 * (hi - lo);
    Some((lo - pad, hi + pad))
}

/// The x range of points from `lo` to `hi` on a linear axis: 5% of the span
/// beyond either end (±1 around a single value).
fn linear_range(lo: f64, hi: f64) -> (f64, f64) {
    if hi - lo <= 0.0 {
        (lo - 1.0, hi + 1.0)
    } else {
        let pad = 0.05 * (hi - lo);
        (lo - pad, hi + pad)
    }
}

/// The x range of weights-axis positions from `lo` to `hi`: a third of a
/// 20% pruning level plus 4% of the span beyond either end.
fn weights_range(lo: f64, hi: f64) -> (f64, f64) {
    let pad = weights_position(TICK_KEEP_RATE) / 3.0 + 0.04 * (hi - lo);
    (lo - pad, hi + pad)
}

/// A linear x axis from `lo` to `hi` with grid lines and labels exactly at
/// `ticks` (plotters' own `f64` axis picks its ticks itself, and its
/// `with_key_points` wrapper cannot take a label formatter).
struct TickedAxis {
    lo: f64,
    hi: f64,
    ticks: Vec<f64>,
}

impl Ranged for TickedAxis {
    type ValueType = f64;
    type FormatOption = DefaultFormatting;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        let fraction = (value - self.lo) / (self.hi - self.lo);
        limit.0 + (fraction * f64::from(limit.1 - limit.0)).round() as i32
    }

    fn key_points<Hint: KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        if hint.weight().allow_light_points() {
            Vec::new()
        } else {
            self.ticks.clone()
        }
    }

    fn range(&self) -> std::ops::Range<f64> {
        self.lo..self.hi
    }
}

/// The legend corner with the fewest points near it (points and ranges in
/// plot coordinates), preferring upper right, then lower left.
fn legend_corner(points: &[(f64, f64)], x: (f64, f64), y: (f64, f64)) -> SeriesLabelPosition {
    let near = |right: bool, top: bool| {
        points
            .iter()
            .filter(|(px, py)| {
                let fx = (px - x.0) / (x.1 - x.0);
                let fy = (py - y.0) / (y.1 - y.0);
                (if right { fx > 0.55 } else { fx < 0.45 })
                    && (if top { fy > 0.6 } else { fy < 0.4 })
            })
            .count()
    };
    [
        (SeriesLabelPosition::UpperRight, near(true, true)),
        (SeriesLabelPosition::LowerLeft, near(false, false)),
        (SeriesLabelPosition::UpperLeft, near(false, true)),
        (SeriesLabelPosition::LowerRight, near(true, false)),
    ]
    .into_iter()
    .min_by_key(|(_, count)| *count)
    .map(|(corner, _)| corner)
    .unwrap_or(SeriesLabelPosition::UpperRight)
}

/// Draws `series` as lines with dots, one color per line, with a legend, as
/// an SVG at `path`. Each line is drawn in order of its x; points with a
/// coordinate that cannot be placed (not finite, or a weights fraction
/// `<= 0`) are left out.
pub(crate) fn line_chart(series: &Series, chart: &Chart, path: &Path) -> Result<(), ReportError> {
    let svg = line_chart_svg(series, chart, path)?;
    crate::io::write_atomic(path, svg.as_bytes()).map_err(|source| ReportError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Each line's points in plot coordinates (a weights fraction on its log
/// position), in order of x, without those that cannot be placed; lines left
/// with no point are dropped.
fn placed_lines(series: &Series, weights_axis: bool) -> Vec<(&str, Vec<(f64, f64)>)> {
    series
        .iter()
        .map(|(name, points)| {
            let mut placed: Vec<(f64, f64)> = points
                .iter()
                .map(|&(x, y)| (if weights_axis { weights_position(x) } else { x }, y))
                .filter(|(x, y)| x.is_finite() && y.is_finite())
                .collect();
            placed.sort_by(|a, b| a.0.total_cmp(&b.0));
            (name.as_str(), placed)
        })
        .filter(|(_, points)| !points.is_empty())
        .collect()
}

/// The x axis that fits `points`: its range, ticks and description.
fn x_axis<'a>(chart: &Chart<'a>, points: &[(f64, f64)]) -> (f64, f64, Vec<f64>, &'a str) {
    let (x_lo, x_hi) = points
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), p| {
            (lo.min(p.0), hi.max(p.0))
        });
    match chart.x {
        XAxis::WeightsRemaining => {
            let (x0, x1) = weights_range(x_lo, x_hi);
            (x0, x1, weights_ticks(x0, x1), "weights remaining (%)")
        }
        XAxis::Linear(desc) => {
            let (x0, x1) = linear_range(x_lo, x_hi);
            let ticks = RangedCoordf64::from(x0..x1).key_points(10);
            (x0, x1, ticks, desc)
        }
    }
}

/// [`line_chart`] as SVG text; `path` names the plot in errors.
pub(crate) fn line_chart_svg(
    series: &Series,
    chart: &Chart,
    path: &Path,
) -> Result<String, ReportError> {
    let err = |reason: String| ReportError::Plot {
        path: path.to_path_buf(),
        reason,
    };
    let weights_axis = matches!(chart.x, XAxis::WeightsRemaining);
    let lines = placed_lines(series, weights_axis);
    let all: Vec<(f64, f64)> = lines.iter().flat_map(|(_, p)| p.iter().copied()).collect();
    let (y0, y1) = fit_range(all.iter().map(|p| p.1), chart.y_includes_zero)
        .ok_or_else(|| err("no points to plot".into()))?;
    let (x0, x1, ticks, x_desc) = x_axis(chart, &all);
    let x_label = |x: &f64| {
        if weights_axis {
            percent_label(100.0 * weights_at(*x))
        } else {
            trim_zeros(format!("{x:.3}"))
        }
    };

    let mut svg = String::new();
    let root = SVGBackend::with_string(&mut svg, (800, 520)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(e.to_string()))?;
    let mut ctx = ChartBuilder::on(&root)
        .caption(chart.title, ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(45)
        .y_label_area_size(60)
        .build_cartesian_2d(
            TickedAxis {
                lo: x0,
                hi: x1,
                ticks,
            },
            y0..y1,
        )
        .map_err(|e| err(e.to_string()))?;
    ctx.configure_mesh()
        .x_desc(x_desc)
        .y_desc(chart.y_desc)
        .x_label_formatter(&x_label)
        .draw()
        .map_err(|e| err(e.to_string()))?;
    draw_lines(&mut ctx, &lines).map_err(err)?;
    ctx.configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(legend_corner(&all, (x0, x1), (y0, y1)))
        .draw()
        .map_err(|e| err(e.to_string()))?;
    root.present().map_err(|e| err(e.to_string()))?;
    drop(ctx);
    drop(root);
    Ok(svg)
}

/// Each line with its points marked, in its own colour, named in the legend.
fn draw_lines(
    ctx: &mut ChartContext<'_, SVGBackend<'_>, Cartesian2d<TickedAxis, RangedCoordf64>>,
    lines: &[(&str, Vec<(f64, f64)>)],
) -> Result<(), String> {
    for (i, (name, points)) in lines.iter().enumerate() {
        let color = line_color(i);
        ctx.draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))
            .map_err(|e| e.to_string())?
            .label(*name)
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 18, y)], color.stroke_width(2)));
        ctx.draw_series(points.iter().map(|&p| Circle::new(p, 3, color.filled())))
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Plots the test value of `metric` against weights remaining (log axis,
/// dense 100% on the left, sparser to the right, ticks in percent of weights
/// remaining) with one line per condition, averaged over seeds, as an SVG.
/// The y axis is labelled `test <name>`, with `(%)` and values times 100
/// when the metric is a percentage, and fitted to the plotted values.
pub fn plot_metric_vs_weights(
    rows: &[ReportRow],
    metric: &MetricLabel,
    title: &str,
    path: &Path,
) -> Result<(), ReportError> {
    let svg = metric_vs_weights_svg(rows, metric, title, path)?;
    crate::io::write_atomic(path, svg.as_bytes()).map_err(|source| ReportError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// [`plot_metric_vs_weights`] as SVG text; `path` names the plot in errors.
pub(crate) fn metric_vs_weights_svg(
    rows: &[ReportRow],
    metric: &MetricLabel,
    title: &str,
    path: &Path,
) -> Result<String, ReportError> {
    // condition -> level -> (weights remaining, values)
    let mut levels: BTreeMap<&str, BTreeMap<usize, (f64, Vec<f64>)>> = BTreeMap::new();
    for r in rows {
        levels
            .entry(&r.condition)
            .or_default()
            .entry(r.level)
            .or_insert((r.weights_remaining, Vec::new()))
            .1
            .push(r.value);
    }
    let scale = if metric.percent() { 100.0 } else { 1.0 };
    let series: Series = levels
        .into_iter()
        .map(|(condition, levels)| {
            let points = levels
                .into_values()
                .map(|(w, values)| (w, scale * values.iter().sum::<f64>() / values.len() as f64))
                .collect();
            (condition.to_string(), points)
        })
        .collect();
    line_chart_svg(
        &series,
        &Chart {
            title,
            x: XAxis::WeightsRemaining,
            y_desc: &metric.axis_description(),
            y_includes_zero: false,
        },
        path,
    )
}

/// Plots test accuracy (%) against weights remaining:
/// [`plot_metric_vs_weights`] with [`MetricLabel::accuracy`].
pub fn plot_accuracy_vs_weights(
    rows: &[ReportRow],
    title: &str,
    path: &Path,
) -> Result<(), ReportError> {
    plot_metric_vs_weights(rows, &MetricLabel::accuracy(), title, path)
}
