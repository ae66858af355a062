//! Reports of IMP experiments: rows of (condition, seed, level, weights
//! remaining, test accuracy), printed as a table, written as CSV and plotted
//! as accuracy against weights remaining on a log axis (as in the paper's
//! figures).

mod plot;
mod progress;

use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};

pub use plot::plot_accuracy_vs_weights;
pub use progress::Progress;

/// The CSV header of [`ReportRow`]s.
pub const CSV_HEADER: &str = "condition,seed,level,weights_remaining,test_accuracy";

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
/// `random_reinit`), a seed, a pruning level and its result.
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
    /// Test accuracy at the end of training, in [0, 1].
    pub test_accuracy: f64,
}

/// Rows as CSV with [`CSV_HEADER`].
pub fn to_csv(rows: &[ReportRow]) -> String {
    let mut out = String::from(CSV_HEADER);
    out.push('\n');
    for r in rows {
        out.push_str(&format!(
            "{},{},{},{},{}\n",
            r.condition, r.seed, r.level, r.weights_remaining, r.test_accuracy
        ));
    }
    out
}

/// Parses CSV written by [`to_csv`].
pub fn from_csv(text: &str) -> Result<Vec<ReportRow>, ReportError> {
    csv_records(text, CSV_HEADER)?
        .iter()
        .map(|r| {
            Ok(ReportRow {
                condition: r.fields[0].to_string(),
                seed: r.parse(1, "seed")?,
                level: r.parse(2, "level")?,
                weights_remaining: r.parse(3, "weights_remaining")?,
                test_accuracy: r.parse(4, "test_accuracy")?,
            })
        })
        .collect()
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

/// Writes rows as CSV, atomically.
pub fn write_csv(rows: &[ReportRow], path: &Path) -> Result<(), ReportError> {
    crate::io::write_atomic(path, to_csv(rows).as_bytes()).map_err(|source| ReportError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// A terminal table of report rows.
pub struct Table<'a>(pub &'a [ReportRow]);

impl fmt::Display for Table<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let width = self
            .0
            .iter()
            .map(|r| r.condition.len())
            .max()
            .unwrap_or(0)
            .max("condition".len());
        writeln!(
            f,
            "{:<width$}  {:>4}  {:>5}  {:>17}  {:>13}",
            "condition", "seed", "level", "weights remaining", "test accuracy"
        )?;
        for r in self.0 {
            writeln!(
                f,
                "{:<width$}  {:>4}  {:>5}  {:>16.2}%  {:>12.2}%",
                r.condition,
                r.seed,
                r.level,
                100.0 * r.weights_remaining,
                100.0 * r.test_accuracy
            )?;
        }
        Ok(())
    }
}
