//! Accuracy against weights remaining, one line per condition (SVG).

use std::collections::BTreeMap;
use std::path::Path;

use plotters::prelude::*;

use super::{ReportError, ReportRow};

/// Line colors, distinguishable on white.
const PALETTE: [RGBColor; 6] = [
    RGBColor(214, 39, 40),
    RGBColor(31, 119, 180),
    RGBColor(44, 160, 44),
    RGBColor(255, 127, 14),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

/// Plots test accuracy (%) against weights remaining (%, log axis, dense on
/// the left) with one line per condition, averaged over seeds, as an SVG.
pub fn plot_accuracy_vs_weights(
    rows: &[ReportRow],
    title: &str,
    path: &Path,
) -> Result<(), ReportError> {
    let err = |reason: String| ReportError::Plot {
        path: path.to_path_buf(),
        reason,
    };
    // condition -> level -> (weights remaining, accuracies)
    let mut series: BTreeMap<&str, BTreeMap<usize, (f64, Vec<f64>)>> = BTreeMap::new();
    for r in rows {
        series
            .entry(&r.condition)
            .or_default()
            .entry(r.level)
            .or_insert((r.weights_remaining, Vec::new()))
            .1
            .push(r.test_accuracy);
    }
    // x is log10(100% / weights remaining): dense at 0 on the left, each
    // halving of the weights one equal step to the right (a log axis,
    // reversed, as in the paper's figures).
    let position = |weights_percent: f64| (100.0 / weights_percent.max(1e-6)).log10();
    let points = |levels: &BTreeMap<usize, (f64, Vec<f64>)>| -> Vec<(f64, f64)> {
        levels
            .values()
            .map(|(w, accs)| {
                (
                    position(100.0 * w),
                    100.0 * accs.iter().sum::<f64>() / accs.len() as f64,
                )
            })
            .collect()
    };
    let all: Vec<(f64, f64)> = series.values().flat_map(points).collect();
    if all.is_empty() {
        return Err(err("no rows to plot".into()));
    }
    let x_max = all.iter().map(|p| p.0).fold(0.0, f64::max) * 1.05 + 0.05;
    let y_min = all.iter().map(|p| p.1).fold(f64::INFINITY, f64::min);
    let y_max = all.iter().map(|p| p.1).fold(f64::NEG_INFINITY, f64::max);
    let pad = ((y_max - y_min) * 0.1).max(0.5);
    // One tick per level of 20% pruning (every other one past 14 levels).
    let levels = (x_max / (1.0f64 / 0.8).log10()).ceil() as i32;
    let step = if levels > 14 { 2 } else { 1 };
    let ticks: Vec<f64> = (0..=levels)
        .step_by(step)
        .map(|l| position(100.0 * 0.8f64.powi(l)))
        .filter(|&x| x <= x_max)
        .collect();

    let root = SVGBackend::new(path, (800, 520)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(e.to_string()))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(45)
        .y_label_area_size(60)
        .build_cartesian_2d(-0.05..x_max, (y_min - 4.0 * pad)..(y_max + pad))
        .map_err(|e| err(e.to_string()))?;
    chart
        .configure_mesh()
        .x_desc("weights remaining (%)")
        .y_desc("test accuracy (%)")
        .x_labels(0)
        .disable_x_mesh()
        .draw()
        .map_err(|e| err(e.to_string()))?;
    // Ticks at the densities of 20%-per-level pruning, drawn by hand (the
    // axis holds log10 positions, not percentages).
    let (y_lo, y_hi) = (y_min - 4.0 * pad, y_max + pad);
    for &x in &ticks {
        chart
            .draw_series(LineSeries::new([(x, y_lo), (x, y_hi)], BLACK.mix(0.15)))
            .map_err(|e| err(e.to_string()))?;
        let w = 100.0 / 10f64.powf(x);
        let label = if w >= 10.0 {
            format!("{w:.0}")
        } else if w >= 1.0 {
            format!("{w:.1}")
        } else {
            format!("{w:.2}")
        };
        let (px, py) = chart.backend_coord(&(x, y_lo));
        root.draw(&Text::new(
            label,
            (px - 10, py + 6),
            ("sans-serif", 12).into_font(),
        ))
        .map_err(|e| err(e.to_string()))?;
    }
    for (i, (condition, levels)) in series.iter().enumerate() {
        let color = PALETTE[i % PALETTE.len()].to_rgba();
        let pts = points(levels);
        chart
            .draw_series(LineSeries::new(pts.clone(), color.stroke_width(2)))
            .map_err(|e| err(e.to_string()))?
            .label(*condition)
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 18, y)], color.stroke_width(2)));
        chart
            .draw_series(pts.into_iter().map(|p| Circle::new(p, 3, color.filled())))
            .map_err(|e| err(e.to_string()))?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::LowerLeft)
        .draw()
        .map_err(|e| err(e.to_string()))?;
    root.present().map_err(|e| err(e.to_string()))?;
    Ok(())
}
