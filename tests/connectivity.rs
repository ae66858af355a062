//! Connectivity between IMP levels (Paul et al., arXiv 2210.03044): the
//! error barrier between the trained networks of consecutive levels, one
//! stored row per pair, read back instead of recomputed.

use burn_lottery::imp::{Imp, ImpReport, Layout, Silent};
use burn_lottery::stability::{
    BarrierOptions, CONNECTIVITY_CSV_HEADER, Condition, StabilityAnalyzer, StabilityError,
    connectivity_from_csv,
};

use crate::common::{data, init, ndarray, tiny_imp_config};

fn options(points: usize) -> BarrierOptions {
    BarrierOptions {
        points,
        ..BarrierOptions::default()
    }
}

fn assert_close(actual: f64, expected: f64) {
    assert!((actual - expected).abs() < 1e-12, "{actual} vs {expected}");
}

/// Runs the tiny two-level IMP experiment under `out`.
fn run(name: &str, out: &std::path::Path) -> (Imp, ImpReport) {
    let imp = Imp::new(tiny_imp_config(name, 2));
    let report = imp
        .run(out, &ndarray(), &data(), init, &mut Silent)
        .unwrap();
    (imp, report)
}

#[test]
fn one_row_per_consecutive_pair_is_stored_and_read_back_not_recomputed() {
    let out = tempfile::tempdir().unwrap();
    let (imp, report) = run("connectivity", out.path());
    let data = data();
    let analyzer = StabilityAnalyzer::new(imp.clone(), out.path(), &data, init, &ndarray())
        .with_options(options(3));
    let first = analyzer.level_connectivity(Condition::Imp).unwrap();
    assert_eq!(first.computed, 2);
    let pairs: Vec<(usize, usize)> = first.rows.iter().map(|r| (r.level_a, r.level_b)).collect();
    assert_eq!(pairs, [(0, 1), (1, 2)]);
    for row in &first.rows {
        let (a, b) = (
            &report.summaries[row.level_a],
            &report.summaries[row.level_b],
        );
        assert_eq!(row.condition, "imp_rewind5");
        assert_eq!(
            (row.weights_remaining_a, row.weights_remaining_b),
            (a.weights_remaining, b.weights_remaining)
        );
        // The endpoints are the levels' own trained networks (a summary's
        // decimals may read back from JSON one unit in the last place off).
        assert_close(row.endpoint_error_a, a.metric("error").unwrap());
        assert_close(row.endpoint_error_b, b.metric("error").unwrap());
        assert!(row.error_barrier >= 0.0 && row.error_barrier.is_finite());
        assert_eq!((row.points, row.bn_statistics.as_str()), (3, "interpolate"));
    }
    let path = imp.directory(out.path()).join(Layout::CONNECTIVITY_CSV);
    let stored = std::fs::read_to_string(&path).unwrap();
    assert!(stored.starts_with(CONNECTIVITY_CSV_HEADER));
    assert_eq!(connectivity_from_csv(&stored).unwrap(), first.rows);

    // Again: every pair is read back, the file is untouched.
    let again = analyzer.level_connectivity(Condition::Imp).unwrap();
    assert_eq!(again.computed, 0);
    assert_eq!(again.rows, first.rows);
    assert_eq!(std::fs::read_to_string(&path).unwrap(), stored);

    // Other options are other rows: both sets stay in the file.
    let five = StabilityAnalyzer::new(imp.clone(), out.path(), &data, init, &ndarray())
        .with_options(options(5));
    let other = five.level_connectivity(Condition::Imp).unwrap();
    assert_eq!(other.computed, 2);
    let all = connectivity_from_csv(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(all.len(), 4);
    assert_eq!(&all[..2], &first.rows[..]);
    assert_eq!(&all[2..], &other.rows[..]);
}

#[test]
fn the_barrier_of_a_level_with_itself_is_zero() {
    let out = tempfile::tempdir().unwrap();
    let (imp, report) = run("connectivity_self", out.path());
    let data = data();
    let analyzer = StabilityAnalyzer::new(imp.clone(), out.path(), &data, init, &ndarray())
        .with_options(options(4));
    for level in 0..=2 {
        let row = analyzer.level_pair(Condition::Imp, level, level).unwrap();
        assert_eq!(row.error_barrier, 0.0, "level {level}");
        assert_eq!(row.endpoint_error_a, row.endpoint_error_b);
        assert_close(
            row.endpoint_error_a,
            report.summaries[level].metric("error").unwrap(),
        );
    }
    // `level_pair` of consecutive levels is what the stored row holds.
    let stored = analyzer.level_connectivity(Condition::Imp).unwrap();
    assert_eq!(
        analyzer.level_pair(Condition::Imp, 1, 2).unwrap(),
        stored.rows[1]
    );
    // Nothing is stored by `level_pair`, and a level not trained is refused.
    assert!(matches!(
        analyzer.level_pair(Condition::Imp, 2, 3),
        Err(StabilityError::Config(_))
    ));
}
