//! `cutover report`: the rehearsal report. What the tracking tables on a target
//! say about its mappings ([`gather`]): each mapping's last full pass and the
//! runs after it, rows per table, the progress samples of every run, the
//! unresolved failures grouped by reason and the last recorded verify; with a
//! [`forecast`] of the real cutover from the measured rates, and a [`compare`]
//! with a second target. [`html`] renders it as one self-contained page; the
//! same [`Report`] serialises as the JSON document.

mod chart;
pub mod compare;
pub mod forecast;
pub mod format;
mod gather;
pub mod html;

pub use compare::{compare, Comparison, Difference};
pub use forecast::{forecast, Forecast, ForecastRow, Scale};
pub use gather::gather;

use crate::tracking::samples::Sample;
use crate::tracking::RunStatus;
use serde::Serialize;

/// Why a report could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error(transparent)]
    Target(#[from] crate::sink::TargetError),
    #[error("counting the source of mapping {mapping}: {source}")]
    Source {
        mapping: String,
        source: crate::source::SourceError,
    },
    #[error("--scale: {0}")]
    Scale(String),
}

/// The whole report of one target.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The target, its password hidden.
    pub target: String,
    pub generated_at: String,
    /// The cutover version that wrote the report.
    pub version: String,
    /// Mappings in the order their reported passes started.
    pub mappings: Vec<MappingReport>,
    pub totals: Totals,
    pub forecast: Option<Forecast>,
    pub compare: Option<Comparison>,
}

/// Sums over the mappings' reported passes.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Totals {
    /// Run time of the passes, one after another.
    pub seconds: f64,
    pub records_read: i64,
    pub records_written: i64,
    pub records_filtered: i64,
    pub records_failed: i64,
    pub rows_written: i64,
    pub rows_unchanged: i64,
    pub rows_deleted: i64,
    pub errors_unresolved: i64,
}

/// One mapping: its last full pass (the figures), every run since it started,
/// its failures and its last verify.
#[derive(Debug, Clone, Serialize)]
pub struct MappingReport {
    pub mapping: String,
    /// The run that started the reported pass (none: the mapping has no runs).
    pub pass_id: Option<i64>,
    /// Status of the pass's last run.
    pub status: Option<RunStatus>,
    /// Run time of the pass (the sum of its runs when it was resumed).
    pub seconds: f64,
    pub records_read: i64,
    pub records_written: i64,
    pub records_filtered: i64,
    pub records_failed: i64,
    pub rows_written: i64,
    pub rows_unchanged: i64,
    /// Rows inserted, where the target tells inserts from updates.
    pub rows_inserted: Option<i64>,
    pub rows_deleted: i64,
    /// Records read per second over the pass's run time.
    pub records_per_second: Option<f64>,
    /// Rows per table in the pass.
    pub tables: Vec<TableRows>,
    /// The pass's runs and every run after them.
    pub runs: Vec<RunReport>,
    pub errors_unresolved: i64,
    /// Error rows a later load resolved.
    pub errors_resolved: i64,
    /// Unresolved failures by reason, largest first.
    pub failures: Vec<FailureGroup>,
    /// The last recorded `cutover verify` (none: not recorded).
    pub verify: Option<VerifySummary>,
}

/// Rows of one table in a pass.
#[derive(Debug, Clone, Serialize)]
pub struct TableRows {
    pub table: String,
    pub rows_written: i64,
    pub rows_inserted: Option<i64>,
    pub rows_updated: Option<i64>,
    pub rows_unchanged: i64,
    pub rows_deleted: i64,
}

/// One run.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    pub id: i64,
    /// `full`, `delta`, `retry` or `undo`.
    pub kind: String,
    /// Part of the reported pass (else a later delta pass, retry or rerun).
    pub in_pass: bool,
    pub status: RunStatus,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub seconds: Option<f64>,
    pub records_read: i64,
    pub records_written: i64,
    pub records_filtered: i64,
    pub records_failed: i64,
    pub rows_written: i64,
    pub rows_unchanged: i64,
    pub records_per_second: Option<f64>,
    pub batch_size: Option<i64>,
    pub workers: Option<i64>,
    pub resumed_from_run: Option<i64>,
    pub message: Option<String>,
    /// Progress over the run's time (at most one a second).
    pub samples: Vec<Sample>,
}

impl RunReport {
    /// Records per second between consecutive samples (the first from the
    /// start): one point per sample, at the sample's time in seconds.
    pub fn throughput(&self) -> Vec<(f64, f64)> {
        let mut out = Vec::with_capacity(self.samples.len());
        let (mut t0, mut r0) = (0i64, 0i64);
        for s in &self.samples {
            let dt = (s.elapsed_ms - t0) as f64 / 1000.0;
            let rate = if dt > 0.0 {
                (s.records_read - r0) as f64 / dt
            } else {
                0.0
            };
            out.push((s.elapsed_ms as f64 / 1000.0, rate.max(0.0)));
            (t0, r0) = (s.elapsed_ms, s.records_read);
        }
        out
    }
}

/// Unresolved failures of one reason.
#[derive(Debug, Clone, Serialize)]
pub struct FailureGroup {
    pub stage: String,
    pub column: Option<String>,
    /// The message, without the value it quotes (`<value> is not an integer`).
    pub reason: String,
    /// Records that fail this way (each once, however many runs it failed in).
    pub count: i64,
    /// A few record keys that fail this way.
    pub examples: Vec<String>,
    /// The `cutover errors` command that lists them all.
    pub command: String,
}

impl FailureGroup {
    /// What identifies the reason across targets.
    pub fn id(&self) -> String {
        format!(
            "{}: {}{}",
            self.stage,
            self.column
                .as_deref()
                .map(|c| format!("{c}: "))
                .unwrap_or_default(),
            self.reason
        )
    }
}

/// The last recorded verify of a mapping.
#[derive(Debug, Clone, Serialize)]
pub struct VerifySummary {
    pub verdict: crate::verify::Verdict,
    pub finished_at: String,
    pub duration_ms: i64,
    pub sampled: bool,
    /// The mapping's last run when the verify ran.
    pub run_id: Option<i64>,
    /// A run of the mapping came after the verify: its result may be out of date.
    pub outdated: bool,
    pub records_read: u64,
    pub records_failing: u64,
    pub unresolved_errors: u64,
    pub tables: Vec<crate::verify::TableReport>,
    pub checks: Vec<crate::verify::CheckReport>,
}
