//! `cutover_verifies`: the result of each `cutover verify` of a mapping, as the
//! command reported it (its JSON document), so that `cutover report` can show
//! the last verify of every mapping. The tracking layer keeps the document as
//! it is given; `verify` defines what is in it. Also the reads of the error
//! rows the report groups by reason.

use super::Store;
use crate::db::{ctx, Arg, DbFailure, Row, TargetError};
use serde::Serialize;

/// One verify of one mapping.
#[derive(Debug, Clone, Serialize)]
pub struct VerifyRow {
    pub id: i64,
    pub mapping: String,
    /// The mapping's latest run when the verify ran (none: no run yet).
    pub run_id: Option<i64>,
    /// PASSED, WARNING or FAILED.
    pub verdict: String,
    /// Whether rows were sampled (`--sample`) rather than all compared.
    pub sampled: bool,
    pub started_at: String,
    pub finished_at: String,
    pub duration_ms: i64,
    /// The verify's report (JSON, as `cutover verify --json` prints it).
    pub report: serde_json::Value,
}

/// A verify to record.
#[derive(Debug, Clone)]
pub struct NewVerify<'a> {
    pub mapping: &'a str,
    pub run_id: Option<i64>,
    pub verdict: &'a str,
    pub sampled: bool,
    pub started_at: &'a str,
    pub duration_ms: i64,
    pub report: &'a serde_json::Value,
}

fn verify_row(r: &Row) -> Result<VerifyRow, DbFailure> {
    let text = r.text("report")?;
    let report = serde_json::from_str(&text).map_err(|e| DbFailure {
        data: true,
        message: format!("cutover_verifies.report is not JSON ({e})"),
        column: Some("report".into()),
    })?;
    Ok(VerifyRow {
        id: r.int("id")?,
        mapping: r.text("mapping")?,
        run_id: r.opt_int("run_id")?,
        verdict: r.text("verdict")?,
        sampled: r.bool("sampled")?,
        started_at: r.text("started_at")?,
        finished_at: r.text("finished_at")?,
        duration_ms: r.int("duration_ms")?,
        report,
    })
}

impl Store<'_> {
    /// Record a finished verify; its id.
    pub async fn record_verify(&mut self, v: &NewVerify<'_>) -> Result<i64, TargetError> {
        let finished = super::now_text();
        let report = v.report.to_string();
        self.db
            .insert_id(
                "INSERT INTO cutover_verifies (mapping, run_id, verdict, sampled, started_at, finished_at, duration_ms, report) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                &[
                    Arg::Text(v.mapping),
                    Arg::OptInt(v.run_id),
                    Arg::Text(v.verdict),
                    Arg::Bool(v.sampled),
                    Arg::Text(v.started_at),
                    Arg::Text(&finished),
                    Arg::Int(v.duration_ms),
                    Arg::Text(&report),
                ],
            )
            .await
            .map_err(ctx("recording the verify"))
    }

    /// The last recorded verify of a mapping.
    pub async fn last_verify(&mut self, mapping: &str) -> Result<Option<VerifyRow>, TargetError> {
        let c = ctx("reading the last verify");
        let row = self
            .db
            .fetch_one(
                "SELECT * FROM cutover_verifies WHERE mapping = ? ORDER BY id DESC LIMIT 1",
                &[Arg::Text(mapping)],
            )
            .await
            .map_err(&c)?;
        row.as_ref().map(verify_row).transpose().map_err(c)
    }
}

/// Unresolved error rows of one message: `cutover report` groups them by reason.
#[derive(Debug, Clone, Serialize)]
pub struct ErrorMessage {
    pub stage: String,
    pub column: Option<String>,
    pub message: String,
    /// Records with such an error row (a record that failed in several runs
    /// counts once).
    pub count: i64,
    /// The smallest record key with this message (an example).
    pub example: String,
    /// The first error row with it (to keep the order errors were recorded in).
    pub first_id: i64,
}

impl Store<'_> {
    /// The unresolved error rows of a mapping, counted per (stage, column,
    /// message), in the order each message first occurred.
    pub async fn error_messages(
        &mut self,
        mapping: &str,
    ) -> Result<Vec<ErrorMessage>, TargetError> {
        let c = ctx("counting errors by message");
        let rows = self
            .db
            .fetch(
                "SELECT stage, column_name, message, count(DISTINCT record_key) AS n, MIN(record_key) AS example, MIN(id) AS first_id
                 FROM cutover_errors WHERE mapping = ? AND resolved_at IS NULL
                 GROUP BY stage, column_name, message ORDER BY MIN(id)",
                &[Arg::Text(mapping)],
            )
            .await
            .map_err(&c)?;
        rows.iter()
            .map(|r| {
                Ok(ErrorMessage {
                    stage: r.text("stage")?,
                    column: r.opt_text("column_name")?,
                    message: r.text("message")?,
                    count: r.int("n")?,
                    example: r.text("example")?,
                    first_id: r.int("first_id")?,
                })
            })
            .collect::<Result<_, DbFailure>>()
            .map_err(c)
    }

    /// Error rows of a mapping: (unresolved, resolved by a later load).
    pub async fn error_counts(&mut self, mapping: &str) -> Result<(i64, i64), TargetError> {
        let c = ctx("counting errors");
        let row = self
            .db
            .fetch_one(
                "SELECT count(*) AS n, count(resolved_at) AS resolved FROM cutover_errors WHERE mapping = ?",
                &[Arg::Text(mapping)],
            )
            .await
            .map_err(&c)?;
        match row {
            Some(r) => {
                let (n, resolved) = (r.int("n").map_err(&c)?, r.int("resolved").map_err(&c)?);
                Ok((n - resolved, resolved))
            }
            None => Ok((0, 0)),
        }
    }
}
