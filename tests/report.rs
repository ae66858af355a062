//! Reports: the CSV format (accuracy's header unchanged, other metrics
//! round-trip), the table's metric column, and the plots: every
//! weights-remaining axis has the dense network on the left, and the y axis
//! is fitted to the data.

use std::path::Path;

use burn_lottery::report::{self, CSV_HEADER, MetricLabel, ReportError, ReportRow, Table};
use burn_lottery::stability::StabilityRow;
use burn_lottery::stability::report::{plot_barrier_vs_rewind, plot_barrier_vs_weights};

fn row(condition: &str, seed: u64, level: usize, value: f64) -> ReportRow {
    ReportRow {
        condition: condition.into(),
        seed,
        level,
        weights_remaining: 0.8f64.powi(level as i32),
        value,
        execution: None,
        execution_reason: None,
    }
}

/// Accuracy falling from 0.98 (dense) as the network is pruned, two seeds,
/// listed sparsest first so that the plot cannot rely on the input order.
fn accuracy_rows() -> Vec<ReportRow> {
    let mut rows = Vec::new();
    for level in (0..8).rev() {
        for seed in 0..2 {
            let value = 0.98 - 0.004 * (level * level) as f64 + 0.002 * seed as f64;
            rows.push(row("imp", seed, level, value));
        }
    }
    rows
}

#[test]
fn accuracy_csv_header_is_unchanged_and_round_trips() {
    let rows = accuracy_rows();
    let csv = report::to_csv(&rows, &MetricLabel::accuracy());
    assert_eq!(
        csv.lines().next().unwrap(),
        "condition,seed,level,weights_remaining,test_accuracy"
    );
    assert_eq!(
        CSV_HEADER,
        "condition,seed,level,weights_remaining,test_accuracy"
    );
    assert_eq!(report::csv_header(&MetricLabel::accuracy()), CSV_HEADER);
    assert_eq!(csv.lines().count(), rows.len() + 1);
    let (back, name) = report::from_csv(&csv).unwrap();
    assert_eq!(back, rows);
    assert_eq!(name, "accuracy");
}

#[test]
fn committed_report_csvs_parse_and_reserialize_byte_for_byte() {
    let root = crate::common::repo_root().join("docs/results");
    let mut seen = 0;
    for entry in std::fs::read_dir(&root).unwrap() {
        let path = entry.unwrap().path().join("report.csv");
        if !path.exists() {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let (rows, name) = report::from_csv(&text).unwrap();
        assert!(!rows.is_empty());
        // The classifiers report accuracy; the regression example its mse.
        let label = MetricLabel::new(&name, name == "accuracy").unwrap();
        assert_eq!(report::to_csv(&rows, &label), text, "{}", path.display());
        seen += 1;
    }
    assert!(seen > 0, "no committed report.csv under {}", root.display());
}

#[test]
fn other_metrics_round_trip_through_csv() {
    let mae = MetricLabel::new("mae", false).unwrap();
    assert_eq!((mae.name(), mae.percent()), ("mae", false));
    let rows = vec![row("imp", 3, 0, 0.125), row("imp", 3, 1, 0.25e-3)];
    let csv = report::to_csv(&rows, &mae);
    assert!(
        csv.starts_with("condition,seed,level,weights_remaining,test_mae\n"),
        "{csv}"
    );
    assert_eq!(
        report::from_csv(&csv).unwrap(),
        (rows.clone(), "mae".into())
    );

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("report.csv");
    report::write_csv(&rows, &mae, &path).unwrap();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), csv);
}

#[test]
fn metric_names_must_be_csv_and_axis_safe() {
    for bad in ["", "mean error", "a,b", "mae\n", "é"] {
        assert!(
            matches!(MetricLabel::new(bad, false), Err(ReportError::Metric(_))),
            "{bad:?}"
        );
    }
    assert!(MetricLabel::new("top_5_accuracy", true).is_ok());
    // A header whose metric column is missing or unusable is a parse error
    // on line 1.
    for header in [
        "condition,seed,level,weights_remaining,test_",
        "condition,seed,level,weights_remaining,accuracy",
        "condition,seed,level,weights_remaining,test_a b",
        "condition,seed,level,weights_remaining",
        "",
    ] {
        match report::from_csv(&format!("{header}\nimp,0,0,1,0.5\n")) {
            Err(ReportError::Parse { line: 1, .. }) => {}
            other => panic!("{header:?}: {other:?}"),
        }
    }
    // Deserializing checks the name too.
    let label: MetricLabel = serde_json::from_str(r#"{"name":"mae","percent":false}"#).unwrap();
    assert_eq!(label, MetricLabel::new("mae", false).unwrap());
    assert!(serde_json::from_str::<MetricLabel>(r#"{"name":"m a e","percent":false}"#).is_err());
}

#[test]
fn table_heads_the_value_column_with_the_metric() {
    let rows = vec![
        row("imp_rewind5", 0, 0, 0.9123),
        row("imp_rewind5", 0, 1, 0.875),
    ];
    let accuracy = Table::new(&rows, MetricLabel::accuracy()).to_string();
    let lines: Vec<&str> = accuracy.lines().collect();
    assert!(lines[0].ends_with("test accuracy"), "{accuracy}");
    assert!(lines[1].ends_with("91.23%"), "{accuracy}");
    assert!(lines[2].ends_with("87.50%"), "{accuracy}");

    let mae = Table::new(&rows, MetricLabel::new("mae", false).unwrap()).to_string();
    let lines: Vec<&str> = mae.lines().collect();
    assert!(lines[0].ends_with("test mae"), "{mae}");
    assert!(lines[1].ends_with("0.9123"), "{mae}");
    // Only the weights-remaining column is a percentage.
    assert_eq!(lines[1].matches('%').count(), 1, "{mae}");
    // Columns line up: every line has the same length.
    assert!(lines.iter().all(|l| l.len() == lines[0].len()), "{mae}");
}

// ------------------------------------------------------------------ plots

/// The SVG's data points (`<circle cx cy>`), in drawing order.
fn circles(svg: &str) -> Vec<(f64, f64)> {
    svg.split("<circle ")
        .skip(1)
        .map(|tag| (attribute(tag, "cx"), attribute(tag, "cy")))
        .collect()
}

/// The numeric attribute `name` of the tag whose text (after its name)
/// starts `tag`.
fn attribute(tag: &str, name: &str) -> f64 {
    let head = format!(" {}", &tag[..tag.find('>').expect("a closed tag")]);
    let key = format!(" {name}=\"");
    let start = head
        .find(&key)
        .unwrap_or_else(|| panic!("{name} in {head}"))
        + key.len();
    let value = &head[start..];
    value[..value.find('"').unwrap()].parse().unwrap()
}

/// The plot area's top and bottom pixel rows: the extent of the longest
/// vertical `<line>` (a grid line of the x axis's mesh spans the plot area).
fn plot_area_rows(svg: &str) -> (f64, f64) {
    svg.split("<line ")
        .skip(1)
        .map(|tag| {
            let (x1, y1, x2, y2) = (
                attribute(tag, "x1"),
                attribute(tag, "y1"),
                attribute(tag, "x2"),
                attribute(tag, "y2"),
            );
            (x1, y1.min(y2), x2, y1.max(y2))
        })
        .filter(|(x1, _, x2, _)| x1 == x2)
        .max_by(|a, b| (a.3 - a.1).total_cmp(&(b.3 - b.1)))
        .map(|(_, top, _, bottom)| (top, bottom))
        .expect("a vertical grid line")
}

/// The SVG's texts: their x pixel and their content, trimmed.
fn texts(svg: &str) -> Vec<(f64, String)> {
    svg.split("<text ")
        .skip(1)
        .filter_map(|tag| {
            let (_, rest) = tag.split_once('>')?;
            let (content, _) = rest.split_once("</text>")?;
            Some((attribute(tag, "x"), content.trim().to_string()))
        })
        .collect()
}

/// The x pixel of the `<text>` whose content is exactly `label`.
fn text_x(svg: &str, label: &str) -> Option<f64> {
    texts(svg)
        .into_iter()
        .find(|(_, content)| content == label)
        .map(|(x, _)| x)
}

/// Where the lowest and the highest points lie in the plot area, as
/// fractions of its height from the bottom.
fn lowest_and_highest(svg: &str) -> (f64, f64) {
    let (top, bottom) = plot_area_rows(svg);
    let points = circles(svg);
    let lowest = points.iter().map(|p| p.1).fold(f64::NEG_INFINITY, f64::max);
    let highest = points.iter().map(|p| p.1).fold(f64::INFINITY, f64::min);
    let height = bottom - top;
    ((bottom - lowest) / height, (bottom - highest) / height)
}

/// Sorted left to right, the points must come in the order `values` lists
/// them from dense to sparse: each lower on screen (larger y) when the
/// values fall.
fn assert_dense_on_the_left(svg: &str, points_per_line: usize) {
    let mut points = circles(svg);
    assert_eq!(points.len(), points_per_line, "{svg}");
    points.sort_by(|a, b| a.0.total_cmp(&b.0));
    for pair in points.windows(2) {
        assert!(
            pair[0].0 < pair[1].0 && pair[0].1 < pair[1].1,
            "a denser point must be left of (and, its value higher, above) a sparser one: {points:?}"
        );
    }
}

/// The weights axis's tick labels: percent of weights remaining, 100 at
/// the left, decreasing to the right.
fn assert_weights_ticks(svg: &str) {
    let labels = ["100", "80", "64", "51.2", "41", "32.8", "26.2", "21"];
    let xs: Vec<f64> = labels
        .iter()
        .map(|l| text_x(svg, l).unwrap_or_else(|| panic!("tick {l} in\n{svg}")))
        .collect();
    assert!(
        xs.windows(2).all(|w| w[0] < w[1]),
        "ticks {labels:?} at {xs:?} in\n{svg}"
    );
}

#[test]
fn report_plot_has_the_dense_point_on_the_left_and_a_fitted_y_axis() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("report.svg");
    report::plot_accuracy_vs_weights(&accuracy_rows(), "tiny", &path).unwrap();
    let svg = std::fs::read_to_string(&path).unwrap();
    // One line, its points averaged over the two seeds.
    assert_dense_on_the_left(&svg, 8);
    assert_weights_ticks(&svg);
    assert!(text_x(&svg, "test accuracy (%)").is_some(), "{svg}");
    assert!(text_x(&svg, "weights remaining (%)").is_some(), "{svg}");
    let (lowest, highest) = lowest_and_highest(&svg);
    assert!(lowest > 0.0 && lowest < 0.15, "lowest point at {lowest:.3}");
    assert!(
        highest < 1.0 && highest > 0.85,
        "highest point at {highest:.3}"
    );
}

#[test]
fn metric_plot_labels_its_axis_and_fits_values_that_are_not_percentages() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mae.svg");
    // Mean absolute error, rising as the network is pruned.
    let rows: Vec<ReportRow> = (0..6)
        .map(|level| row("imp", 0, level, 0.02 + 0.001 * level as f64))
        .collect();
    let mae = MetricLabel::new("mae", false).unwrap();
    report::plot_metric_vs_weights(&rows, &mae, "regression", &path).unwrap();
    let svg = std::fs::read_to_string(&path).unwrap();
    assert!(text_x(&svg, "test mae").is_some(), "{svg}");
    assert!(text_x(&svg, "test mae (%)").is_none(), "{svg}");
    let mut points = circles(&svg);
    points.sort_by(|a, b| a.0.total_cmp(&b.0));
    // Rising values: each sparser point (to the right) is higher on screen.
    assert!(points.windows(2).all(|w| w[1].1 < w[0].1), "{points:?}");
    let (lowest, highest) = lowest_and_highest(&svg);
    assert!(lowest > 0.0 && lowest < 0.15, "lowest point at {lowest:.3}");
    assert!(
        highest < 1.0 && highest > 0.85,
        "highest point at {highest:.3}"
    );
}

#[test]
fn plot_of_equal_values_has_a_sensible_span() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("flat.svg");
    let rows: Vec<ReportRow> = (0..4).map(|level| row("imp", 0, level, 0.9)).collect();
    report::plot_accuracy_vs_weights(&rows, "flat", &path).unwrap();
    let svg = std::fs::read_to_string(&path).unwrap();
    let (lowest, highest) = lowest_and_highest(&svg);
    // All on one row, in the middle.
    assert!((lowest - 0.5).abs() < 0.01 && (highest - 0.5).abs() < 0.01);
    assert!(report::plot_accuracy_vs_weights(&[], "none", &dir.path().join("none.svg")).is_err());
}

fn stability_row(condition: &str, level: usize, error_barrier: f64) -> StabilityRow {
    StabilityRow {
        condition: condition.into(),
        level,
        weights_remaining: 0.8f64.powi(level as i32),
        rewind_iteration: 500,
        l2_distance: 1.0,
        l2_normalized: 0.1,
        angle: 0.5,
        error_barrier,
        endpoint_error_a: 0.1,
        endpoint_error_b: 0.1,
    }
}

#[test]
fn barrier_plot_reads_like_the_report_plot() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("barrier.svg");
    // A barrier that falls as the network is pruned (the dense network is
    // unstable, the sparse ticket stable), listed sparsest first.
    let rows: Vec<StabilityRow> = (0..8)
        .rev()
        .map(|level| {
            stability_row(
                "imp_rewind500",
                level,
                0.30 - 0.005 * (level * level) as f64,
            )
        })
        .collect();
    plot_barrier_vs_weights(&rows, &error_label(), "tiny", &path).unwrap();
    let svg = std::fs::read_to_string(&path).unwrap();
    assert_dense_on_the_left(&svg, 8);
    assert_weights_ticks(&svg);
    assert!(text_x(&svg, "weights remaining (%)").is_some(), "{svg}");
    // Barriers well above 0 still show 0 (the y range includes it), but not
    // a third of the plot below it.
    let (lowest, highest) = lowest_and_highest(&svg);
    assert!(
        highest > 0.85 && highest < 1.0,
        "highest point at {highest:.3}"
    );
    assert!(lowest > 0.0 && lowest < 0.9, "lowest point at {lowest:.3}");
    let zero_tick = text_x(&svg, "0").or_else(|| text_x(&svg, "0.0"));
    assert!(zero_tick.is_some(), "a 0 tick on the y axis\n{svg}");
}

#[test]
fn barrier_plots_fit_the_y_axis_from_zero() {
    let dir = tempfile::tempdir().unwrap();
    // Barriers from 0 to 4%: 0 lies near the bottom, not a third up.
    let rows: Vec<StabilityRow> = (0..5)
        .map(|level| stability_row("imp_rewind500", level, 0.01 * level as f64))
        .collect();
    type Plot = fn(&[StabilityRow], &MetricLabel, &str, &Path) -> Result<(), ReportError>;
    let plots: [(&str, Plot); 2] = [
        ("weights", plot_barrier_vs_weights),
        ("rewind", plot_barrier_vs_rewind),
    ];
    for (name, plot) in plots {
        let path = dir.path().join(format!("{name}.svg"));
        plot(&rows, &error_label(), "tiny", &path).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        let (lowest, highest) = lowest_and_highest(&svg);
        assert!(
            lowest > 0.0 && lowest < 0.15,
            "{name}: lowest at {lowest:.3}"
        );
        assert!(
            highest < 1.0 && highest > 0.85,
            "{name}: highest at {highest:.3}"
        );
    }
}

/// The classification error, plotted in percent.
fn error_label() -> MetricLabel {
    MetricLabel::new("error", true).unwrap()
}

#[test]
fn barrier_plots_label_the_task_error_metric() {
    let dir = tempfile::tempdir().unwrap();
    let rows: Vec<StabilityRow> = (0..3)
        .map(|level| stability_row("imp_rewind0", level, 0.02 * level as f64))
        .collect();
    let path = dir.path().join("mse.svg");
    let mse = MetricLabel::new("mse", false).unwrap();
    plot_barrier_vs_weights(&rows, &mse, "tiny", &path).unwrap();
    let svg = std::fs::read_to_string(&path).unwrap();
    assert!(svg.contains("test mse barrier"), "{svg}");
    assert!(!svg.contains("barrier (%)"), "{svg}");
    plot_barrier_vs_weights(&rows, &error_label(), "tiny", &path).unwrap();
    let svg = std::fs::read_to_string(&path).unwrap();
    assert!(svg.contains("test error barrier (%)"), "{svg}");
}
