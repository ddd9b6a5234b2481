//! `cutover_passes`: which kind of pass each run made (`full` or `delta`) and,
//! for a delta pass over a watermark column, the window it read. The bounds are
//! kept as the JSON the source gave for them (a number, or the column's own
//! text at its full precision), so the next pass starts exactly where this one
//! ended.

use super::Store;
use crate::db::{ctx, Arg, DbFailure, Row, TargetError};
use serde_json::Value;

/// The kind of a pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PassKind {
    /// Everything the source holds.
    Full,
    /// Only rows whose watermark lies in the window.
    Delta,
}

impl PassKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PassKind::Full => "full",
            PassKind::Delta => "delta",
        }
    }
}

impl std::fmt::Display for PassKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One run's pass.
#[derive(Debug, Clone, PartialEq)]
pub struct PassRow {
    pub run_id: i64,
    /// The run that started the pass (a resumed pass keeps it): rows written
    /// by the pass carry it in `cutover_rows`.
    pub pass_id: i64,
    pub kind: PassKind,
    /// The watermark column, when the mapping has one.
    pub watermark: Option<String>,
    /// Lower bound read (inclusive; none: from the start).
    pub low: Option<Value>,
    /// The high-water mark taken at the pass's start (inclusive upper bound).
    pub high: Option<Value>,
    /// The key of a row that held `high` (a later mark below `high` is a
    /// reset when that row is still there, a deletion when it is gone).
    pub high_key: Option<Value>,
    pub mapping_checksum: String,
}

fn json(v: &Option<Value>) -> Option<String> {
    v.as_ref().map(Value::to_string)
}

fn parse(r: &Row, col: &str) -> Result<Option<Value>, DbFailure> {
    r.opt_text(col)?
        .map(|t| {
            serde_json::from_str(&t).map_err(|e| DbFailure {
                data: true,
                message: format!("cutover_passes.{col} is not JSON ({e}): {t}"),
                column: Some(col.to_string()),
            })
        })
        .transpose()
}

fn pass_row(r: &Row) -> Result<PassRow, DbFailure> {
    Ok(PassRow {
        run_id: r.int("run_id")?,
        pass_id: r.int("pass_id")?,
        kind: match r.text("kind")?.as_str() {
            "delta" => PassKind::Delta,
            _ => PassKind::Full,
        },
        watermark: r.opt_text("watermark")?,
        low: parse(r, "low")?,
        high: parse(r, "high")?,
        high_key: parse(r, "high_key")?,
        mapping_checksum: r.text("mapping_checksum")?,
    })
}

impl Store<'_> {
    /// Record the pass a run makes (once, when it starts).
    pub async fn record_pass(&mut self, mapping: &str, p: &PassRow) -> Result<(), TargetError> {
        let (low, high, high_key) = (json(&p.low), json(&p.high), json(&p.high_key));
        self.db
            .execute(
                "INSERT INTO cutover_passes (run_id, pass_id, mapping, kind, watermark, low, high, high_key, mapping_checksum) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                &[
                    Arg::Int(p.run_id),
                    Arg::Int(p.pass_id),
                    Arg::Text(mapping),
                    Arg::Text(p.kind.as_str()),
                    Arg::OptText(p.watermark.as_deref()),
                    Arg::OptText(low.as_deref()),
                    Arg::OptText(high.as_deref()),
                    Arg::OptText(high_key.as_deref()),
                    Arg::Text(&p.mapping_checksum),
                ],
            )
            .await
            .map_err(ctx("recording the pass"))?;
        Ok(())
    }

    /// The pass of one run, if it recorded one.
    pub async fn pass_of(&mut self, run_id: i64) -> Result<Option<PassRow>, TargetError> {
        let c = ctx("reading the pass of a run");
        let row = self
            .db
            .fetch_one(
                "SELECT * FROM cutover_passes WHERE run_id = ?",
                &[Arg::Int(run_id)],
            )
            .await
            .map_err(&c)?;
        row.as_ref().map(pass_row).transpose().map_err(c)
    }

    /// The pass of the mapping's last succeeded run that recorded one.
    pub async fn last_succeeded_pass(
        &mut self,
        mapping: &str,
    ) -> Result<Option<PassRow>, TargetError> {
        let c = ctx("reading the last succeeded pass");
        let row = self
            .db
            .fetch_one(
                "SELECT p.* FROM cutover_passes p JOIN cutover_runs r ON r.id = p.run_id
                 WHERE p.mapping = ? AND r.status = 'succeeded' AND r.dry_run = ? ORDER BY p.run_id DESC LIMIT 1",
                &[Arg::Text(mapping), Arg::Bool(false)],
            )
            .await
            .map_err(&c)?;
        row.as_ref().map(pass_row).transpose().map_err(c)
    }

    /// The passes of some runs (for `status`).
    pub async fn passes(&mut self, mapping: Option<&str>) -> Result<Vec<PassRow>, TargetError> {
        let c = ctx("reading passes");
        let rows = match mapping {
            Some(m) => {
                self.db
                    .fetch(
                        "SELECT * FROM cutover_passes WHERE mapping = ? ORDER BY run_id",
                        &[Arg::Text(m)],
                    )
                    .await
            }
            None => {
                self.db
                    .fetch("SELECT * FROM cutover_passes ORDER BY run_id", &[])
                    .await
            }
        }
        .map_err(&c)?;
        rows.iter()
            .map(pass_row)
            .collect::<Result<_, _>>()
            .map_err(c)
    }
}

impl Store<'_> {
    /// Rows a run deleted (or soft-deleted), per table.
    pub async fn run_deletes(&mut self, run_id: i64) -> Result<Vec<(String, i64)>, TargetError> {
        let c = ctx("reading the rows runs deleted");
        let rows = self
            .db
            .fetch(
                "SELECT table_name, rows_deleted FROM cutover_run_deletes WHERE run_id = ? ORDER BY table_name",
                &[Arg::Int(run_id)],
            )
            .await
            .map_err(&c)?;
        rows.iter()
            .map(|r| Ok((r.text("table_name")?, r.int("rows_deleted")?)))
            .collect::<Result<_, DbFailure>>()
            .map_err(c)
    }
}
