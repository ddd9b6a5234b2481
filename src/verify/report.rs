//! What a verify finds, as printed, recorded in `cutover_verifies` and read
//! back by `status` and `report`.

use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "UPPERCASE")]
pub enum Verdict {
    Passed,
    Warning,
    Failed,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Difference {
    pub key: String,
    pub record_key: String,
    /// Columns whose values differ (empty: the row is missing, or extra).
    pub columns: Vec<String>,
    /// An unresolved error row of the record explains it.
    pub explained: bool,
    /// A row in the target that no record produces.
    #[serde(default)]
    pub extra: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TableReport {
    pub table: String,
    /// Distinct keys produced by the records that transform cleanly.
    pub expected: u64,
    /// Rows in the target table.
    pub found: i64,
    /// Rows compared (all expected rows, or the sample).
    pub compared: u64,
    pub missing: u64,
    pub different: u64,
    /// Rows in the target beyond the expected ones (rows this mapping does not
    /// produce today: an earlier load, another writer).
    pub extra: u64,
    pub sampled: bool,
    /// First few missing, different and extra rows.
    pub examples: Vec<Difference>,
    pub verdict: Verdict,
    /// `segments` (checksums, then row by row where they differ), `rows`
    /// (every row fetched and compared) or `sample`.
    #[serde(default)]
    pub method: String,
    /// Why the table was compared row by row.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows_because: Option<String>,
    /// Segments whose checksums differed (each compared row by row).
    #[serde(default)]
    pub segments_differing: u64,
    /// Of those, segments in which no row differed: the source or the target
    /// changed during the verify, or the target keeps a value in another form.
    #[serde(default)]
    pub segments_unexplained: u64,
}

impl TableReport {
    pub fn new(table: &str, method: &str, rows_because: Option<String>) -> Self {
        TableReport {
            table: table.to_string(),
            expected: 0,
            found: 0,
            compared: 0,
            missing: 0,
            different: 0,
            extra: 0,
            sampled: method == "sample",
            examples: Vec::new(),
            verdict: Verdict::Passed,
            method: method.to_string(),
            rows_because,
            segments_differing: 0,
            segments_unexplained: 0,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CheckReport {
    pub name: String,
    pub expect: Value,
    pub got: Option<String>,
    pub verdict: Verdict,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    pub mapping: String,
    pub records_read: u64,
    /// Records that fail to transform today.
    pub records_failing: u64,
    /// Of those, records without an unresolved error row: the mapping or the
    /// source changed since the load, and the target may hold stale rows.
    pub records_failing_unexplained: u64,
    /// Unresolved error rows of the mapping.
    pub unresolved_errors: u64,
    /// Distinct records with unresolved error rows.
    pub unresolved_records: u64,
    pub tables: Vec<TableReport>,
    pub checks: Vec<CheckReport>,
    pub verdict: Verdict,
    /// Why the verify stopped before the end (`--time-limit`,
    /// `--max-differences`): what it found so far is all it says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incomplete: Option<String>,
}
