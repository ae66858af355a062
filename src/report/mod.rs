//! Reports of IMP experiments: rows of (condition, seed, level, weights
//! remaining, test value of the reported metric), printed as a table, written
//! as CSV and plotted as the metric against weights remaining on a log axis
//! (dense on the left, as in the paper's figures).
//!
//! The metric is named by a [`MetricLabel`]: [`MetricLabel::accuracy`] for
//! the classification tasks (shown as a percentage), or any other named
//! metric (e.g. `mae` of a regression task, shown as is).

mod execution;
mod plot;
mod progress;

use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::sparse::{Execution, ExecutionPath, ExecutionReason};

pub use execution::EXECUTION_COLUMNS;
pub(crate) use plot::metric_vs_weights_svg;
pub(crate) use plot::{Chart, Series, XAxis, line_chart};
pub use plot::{plot_accuracy_vs_weights, plot_metric_vs_weights};
pub use progress::Progress;

/// The CSV columns of a report before the metric's column.
const CSV_COLUMNS: &str = "condition,seed,level,weights_remaining";

/// The CSV header of a report of [`MetricLabel::accuracy`]
/// ([`csv_header`] of it).
pub const CSV_HEADER: &str = "condition,seed,level,weights_remaining,test_accuracy";

/// The CSV header of a report of `metric`:
/// `condition,seed,level,weights_remaining,test_<name>`.
pub fn csv_header(metric: &MetricLabel) -> String {
    format!("{CSV_COLUMNS},{}", metric.column())
}

/// The metric a report holds: its name, and whether its values are
/// fractions shown as percentages.
///
/// The name is the CSV column (`test_<name>`), the table's column header and
/// the plot's y axis (`test <name>`), so it is non-empty and made of ASCII
/// letters, digits and `_` only; [`MetricLabel::new`] checks that.
///
/// ```
/// use burn_lottery::report::MetricLabel;
/// let mae = MetricLabel::new("mae", false).unwrap();
/// assert_eq!(mae.name(), "mae");
/// assert!(MetricLabel::accuracy().percent());
/// assert!(MetricLabel::new("mean error", false).is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "RawMetricLabel")]
pub struct MetricLabel {
    name: String,
    percent: bool,
}

/// A [`MetricLabel`] as deserialized, before its name is checked.
#[derive(Deserialize)]
struct RawMetricLabel {
    name: String,
    percent: bool,
}

impl TryFrom<RawMetricLabel> for MetricLabel {
    type Error = ReportError;

    fn try_from(raw: RawMetricLabel) -> Result<Self, ReportError> {
        Self::new(raw.name, raw.percent)
    }
}

impl MetricLabel {
    /// A metric named `name` (e.g. `"mae"`), whose values are fractions to
    /// show as percentages when `percent`. Fails unless the name is
    /// non-empty ASCII letters, digits and `_`.
    pub fn new(name: impl Into<String>, percent: bool) -> Result<Self, ReportError> {
        let name = name.into();
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(ReportError::Metric(format!(
                "metric name `{name}`: expected ASCII letters, digits and `_`"
            )));
        }
        Ok(Self { name, percent })
    }

    /// Test accuracy, a fraction in [0, 1] shown as a percentage.
    pub fn accuracy() -> Self {
        Self {
            name: "accuracy".into(),
            percent: true,
        }
    }

    /// The metric's name (`accuracy`, `mae`, ...).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether values are fractions shown as percentages (times 100, `%`).
    pub fn percent(&self) -> bool {
        self.percent
    }

    /// The CSV column of the metric: `test_<name>`.
    pub fn column(&self) -> String {
        format!("test_{}", self.name)
    }

    /// The plot's y axis description: `test <name>`, plus ` (%)` for a
    /// percentage.
    pub fn axis_description(&self) -> String {
        if self.percent {
            format!("test {} (%)", self.name)
        } else {
            format!("test {}", self.name)
        }
    }

    /// A value as the table shows it: `91.23%` for a percentage, `0.1234`
    /// otherwise.
    pub fn format_value(&self, value: f64) -> String {
        if self.percent {
            format!("{:.2}%", 100.0 * value)
        } else {
            format!("{value:.4}")
        }
    }
}

/// Errors of reading or writing reports.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// File I/O failed.
    #[error("report file {path}: {source}")]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// Underlying error.
        source: std::io::Error,
    },
    /// A CSV line cannot be parsed.
    #[error("report CSV line {line}: {reason}")]
    Parse {
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// A metric name is unusable (see [`MetricLabel::new`]).
    #[error("invalid report metric: {0}")]
    Metric(String),
    /// The plot could not be drawn.
    #[error("plot {path}: {reason}")]
    Plot {
        /// The output file.
        path: std::path::PathBuf,
        /// Backend message.
        reason: String,
    },
}

/// One trained network: a condition (e.g. `imp_rewind500`,
/// `random_reinit`), a seed, a pruning level and its result, the test value
/// of the report's metric (its [`MetricLabel`] is the report's, not the
/// row's), and which path trained it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReportRow {
    /// Condition name.
    pub condition: String,
    /// Experiment seed.
    pub seed: u64,
    /// Pruning level (0 = dense).
    pub level: usize,
    /// Fraction of all prunable weights kept, in [0, 1].
    pub weights_remaining: f64,
    /// The test value of the reported metric at the end of training (for
    /// [`MetricLabel::accuracy`], the test accuracy in [0, 1]).
    #[serde(alias = "test_accuracy")]
    pub value: f64,
    /// The path that trained the network (see
    /// [`Execution`]; the words of its reason are
    /// in the level's summary). `None` for the default, dense with sparse
    /// training off, as in a report written without the execution columns
    /// (and for a network whose summary predates the record).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution: Option<ExecutionPath>,
    /// Why that path (`None` as for `execution`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_reason: Option<ExecutionReason>,
}

impl ReportRow {
    /// The row recording `execution`, unless it is the default
    /// ([`Execution::is_default`]): rows read back from a report's CSV
    /// equal the rows it was written from.
    pub fn with_execution(mut self, execution: Option<&Execution>) -> Self {
        let recorded = execution.filter(|e| !e.is_default());
        self.execution = recorded.map(|e| e.path);
        self.execution_reason = recorded.map(|e| e.reason);
        self
    }
}

/// Rows as CSV with the [`csv_header`] of `metric` (for
/// [`MetricLabel::accuracy`], exactly [`CSV_HEADER`]), followed by the
/// [`EXECUTION_COLUMNS`] when a row records anything but the default (dense,
/// sparse training off): a report of the default settings keeps its format.
pub fn to_csv(rows: &[ReportRow], metric: &MetricLabel) -> String {
    let shown = execution::shown(rows);
    let mut out = csv_header(metric);
    if shown {
        out.push_str(&format!(",{EXECUTION_COLUMNS}"));
    }
    out.push('\n');
    for r in rows {
        out.push_str(&format!(
            "{},{},{},{},{}",
            r.condition, r.seed, r.level, r.weights_remaining, r.value
        ));
        if shown {
            out.push_str(&execution::fields(r));
        }
        out.push('\n');
    }
    out
}

/// Parses CSV written by [`to_csv`], of any metric: returns the rows and
/// the metric's name, read from the header's last column `test_<name>`
/// (`"accuracy"` for [`CSV_HEADER`]). Whether the metric is a percentage is
/// not in the CSV: the caller knows its metric, and can compare names.
pub fn from_csv(text: &str) -> Result<(Vec<ReportRow>, String), ReportError> {
    let first = text.lines().next().unwrap_or("").trim();
    let (first, shown) = match first.strip_suffix(&format!(",{EXECUTION_COLUMNS}")) {
        Some(rest) => (rest, true),
        None => (first, false),
    };
    let metric = first
        .strip_prefix(CSV_COLUMNS)
        .and_then(|rest| rest.strip_prefix(",test_"))
        .and_then(|name| MetricLabel::new(name, false).ok())
        .ok_or_else(|| ReportError::Parse {
            line: 1,
            reason: format!("expected header `{CSV_COLUMNS},test_<metric>`"),
        })?;
    let column = metric.column();
    let mut header = csv_header(&metric);
    if shown {
        header.push_str(&format!(",{EXECUTION_COLUMNS}"));
    }
    let rows = csv_records(text, &header)?
        .iter()
        .map(|r| {
            let (execution, execution_reason) = execution::parse(r, shown)?;
            Ok(ReportRow {
                condition: r.fields[0].to_string(),
                seed: r.parse(1, "seed")?,
                level: r.parse(2, "level")?,
                weights_remaining: r.parse(3, "weights_remaining")?,
                value: r.parse(4, &column)?,
                execution,
                execution_reason,
            })
        })
        .collect::<Result<_, ReportError>>()?;
    Ok((rows, metric.name))
}

/// One data line of a report CSV.
pub(crate) struct CsvRecord<'a> {
    /// 1-based line number in the file.
    line: usize,
    /// The comma-separated fields, as many as the header has.
    pub(crate) fields: Vec<&'a str>,
}

impl CsvRecord<'_> {
    /// Field `index` parsed; an error names the line and the column.
    pub(crate) fn parse<T>(&self, index: usize, column: &str) -> Result<T, ReportError>
    where
        T: std::str::FromStr,
        T::Err: fmt::Display,
    {
        let value = self.fields[index];
        value.parse().map_err(|e| ReportError::Parse {
            line: self.line,
            reason: format!("{column} `{value}`: {e}"),
        })
    }
}

/// The non-empty data lines of a CSV whose first line must be `header`,
/// each with exactly as many fields as the header.
pub(crate) fn csv_records<'a>(
    text: &'a str,
    header: &str,
) -> Result<Vec<CsvRecord<'a>>, ReportError> {
    let mut lines = text.lines().enumerate();
    match lines.next() {
        Some((_, first)) if first.trim() == header => {}
        _ => {
            return Err(ReportError::Parse {
                line: 1,
                reason: format!("expected header `{header}`"),
            });
        }
    }
    let columns = header.split(',').count();
    lines
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, line)| {
            let fields: Vec<&str> = line.split(',').collect();
            if fields.len() != columns {
                return Err(ReportError::Parse {
                    line: i + 1,
                    reason: format!("{} fields, expected {columns}", fields.len()),
                });
            }
            Ok(CsvRecord {
                line: i + 1,
                fields,
            })
        })
        .collect()
}

/// Writes rows as CSV of `metric` ([`to_csv`]), atomically.
pub fn write_csv(rows: &[ReportRow], metric: &MetricLabel, path: &Path) -> Result<(), ReportError> {
    crate::io::write_atomic(path, to_csv(rows, metric).as_bytes()).map_err(|source| {
        ReportError::Io {
            path: path.to_path_buf(),
            source,
        }
    })
}

/// A terminal table of report rows, the metric's column headed `test <name>`
/// (values as [`MetricLabel::format_value`] shows them).
///
/// ```
/// use burn_lottery::report::{MetricLabel, ReportRow, Table};
/// let rows = [ReportRow {
///     condition: "imp".into(),
///     seed: 0,
///     level: 1,
///     weights_remaining: 0.8,
///     value: 0.125,
///     execution: None,
///     execution_reason: None,
/// }];
/// let table = Table::new(&rows, MetricLabel::new("mae", false).unwrap()).to_string();
/// assert!(table.contains("test mae") && table.contains("0.1250"));
/// ```
pub struct Table<'a> {
    /// The rows.
    pub rows: &'a [ReportRow],
    /// The metric of their values.
    pub metric: MetricLabel,
}

impl<'a> Table<'a> {
    /// A table of `rows`, whose values are of `metric`.
    pub fn new(rows: &'a [ReportRow], metric: MetricLabel) -> Self {
        Self { rows, metric }
    }
}

impl fmt::Display for Table<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let width = self
            .rows
            .iter()
            .map(|r| r.condition.len())
            .max()
            .unwrap_or(0)
            .max("condition".len());
        let header = format!("test {}", self.metric.name());
        let values: Vec<String> = self
            .rows
            .iter()
            .map(|r| self.metric.format_value(r.value))
            .collect();
        let value_width = values
            .iter()
            .map(String::len)
            .fold(header.len(), usize::max);
        let shown = execution::shown(self.rows);
        write!(
            f,
            "{:<width$}  {:>4}  {:>5}  {:>17}  {header:>value_width$}",
            "condition", "seed", "level", "weights remaining"
        )?;
        writeln!(f, "{}", if shown { "  trained" } else { "" })?;
        for (r, value) in self.rows.iter().zip(&values) {
            write!(
                f,
                "{:<width$}  {:>4}  {:>5}  {:>16.2}%  {value:>value_width$}",
                r.condition,
                r.seed,
                r.level,
                100.0 * r.weights_remaining,
            )?;
            let trained = if shown {
                execution::cell(r)
            } else {
                String::new()
            };
            writeln!(f, "{trained}")?;
        }
        Ok(())
    }
}
