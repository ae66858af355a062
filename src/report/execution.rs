//! The report's record of which path trained each network: two CSV
//! columns and a table column, shown only when some row records anything
//! but the default (dense, sparse training off), so reports of the default
//! settings keep their format.

use super::{CsvRecord, ReportError, ReportRow};
use crate::sparse::{ExecutionPath, ExecutionReason};

/// The CSV columns after the metric's when shown:
/// `execution` (`dense` or `sparse`) and `execution_reason` (a code of
/// [`ExecutionReason`]); empty for a row that records neither.
pub const EXECUTION_COLUMNS: &str = "execution,execution_reason";

/// Whether `rows` show the execution columns.
pub(super) fn shown(rows: &[ReportRow]) -> bool {
    rows.iter().any(|r| {
        r.execution.is_some_and(|p| p != ExecutionPath::Dense)
            || r.execution_reason
                .is_some_and(|c| c != ExecutionReason::SparseTrainingOff)
    })
}

/// `,<execution>,<execution_reason>` of a row.
pub(super) fn fields(row: &ReportRow) -> String {
    format!(
        ",{},{}",
        row.execution.map_or("", ExecutionPath::as_str),
        row.execution_reason.map_or("", ExecutionReason::as_str)
    )
}

/// The table's `trained` cell of a row: `  sparse (below_threshold)`.
pub(super) fn cell(row: &ReportRow) -> String {
    match (row.execution, row.execution_reason) {
        (Some(path), Some(reason)) => format!("  {} ({})", path.as_str(), reason.as_str()),
        (Some(path), None) => format!("  {}", path.as_str()),
        (None, Some(reason)) => format!("  ({})", reason.as_str()),
        (None, None) => String::new(),
    }
}

/// The execution fields of a CSV record (fields 5 and 6 when `shown`).
pub(super) fn parse(
    record: &CsvRecord<'_>,
    shown: bool,
) -> Result<(Option<ExecutionPath>, Option<ExecutionReason>), ReportError> {
    if !shown {
        return Ok((None, None));
    }
    let unknown = |column: &str, value: &str| ReportError::Parse {
        line: record.line,
        reason: format!("{column} `{value}` is not known"),
    };
    let path = match record.fields[5] {
        "" => None,
        name => Some(ExecutionPath::parse(name).ok_or_else(|| unknown("execution", name))?),
    };
    let reason = match record.fields[6] {
        "" => None,
        code => {
            Some(ExecutionReason::parse(code).ok_or_else(|| unknown("execution_reason", code))?)
        }
    };
    Ok((path, reason))
}
