//! `cutover_undo_runs`: per run, the checkpoint before it, whether it kept a
//! journal, and the undo that took it back; and what `status` says of it.

use crate::db::{Arg, DbFailure, Exec};

/// A run's row of `cutover_undo_runs`.
#[derive(Debug, Clone)]
pub struct UndoRun {
    pub run_id: i64,
    pub journal: bool,
    /// The checkpoint row before the run, as JSON (`null`: there was none).
    pub checkpoint: Option<String>,
    pub undone_by: Option<i64>,
}

/// Record at a run's start what undo needs to put its checkpoint back.
pub async fn start_run(
    db: &mut dyn Exec,
    mapping: &str,
    run_id: i64,
    journal: bool,
    checkpoint: Option<&str>,
) -> Result<(), DbFailure> {
    db.execute(
        "INSERT INTO cutover_undo_runs (run_id, mapping, journal, checkpoint) VALUES (?, ?, ?, ?)",
        &[
            Arg::Int(run_id),
            Arg::Text(mapping),
            Arg::Bool(journal),
            Arg::OptText(checkpoint),
        ],
    )
    .await
    .map(drop)
}

pub async fn undo_runs(db: &mut dyn Exec, mapping: &str) -> Result<Vec<UndoRun>, DbFailure> {
    let rows = db
        .fetch(
            "SELECT run_id, journal, checkpoint, undone_by FROM cutover_undo_runs WHERE mapping = ? ORDER BY run_id",
            &[Arg::Text(mapping)],
        )
        .await?;
    rows.iter()
        .map(|r| {
            Ok(UndoRun {
                run_id: r.int("run_id")?,
                journal: r.bool("journal")?,
                checkpoint: r.opt_text("checkpoint")?,
                undone_by: r.opt_int("undone_by")?,
            })
        })
        .collect()
}

/// Every run's row of `cutover_undo_runs` (for `status`), by run.
pub async fn all_undo_runs(
    db: &mut dyn Exec,
) -> Result<std::collections::HashMap<i64, UndoRun>, DbFailure> {
    let rows = db
        .fetch(
            "SELECT run_id, journal, checkpoint, undone_by FROM cutover_undo_runs",
            &[],
        )
        .await?;
    rows.iter()
        .map(|r| {
            Ok((
                r.int("run_id")?,
                UndoRun {
                    run_id: r.int("run_id")?,
                    journal: r.bool("journal")?,
                    checkpoint: None,
                    undone_by: r.opt_int("undone_by")?,
                },
            ))
        })
        .collect()
}

/// What `status` says of a run and undo: `undo` for an undo run, `yes` while
/// `cutover undo` can take it back, `undone by N`, or why not.
pub fn undo_state(run: &crate::tracking::RunRow, u: Option<&UndoRun>) -> &'static str {
    if run.options.contains("\"kind\":\"undo\"") {
        return "is an undo";
    }
    if run.dry_run {
        return "-";
    }
    match u {
        _ if run.status == crate::tracking::RunStatus::Undone => "undone",
        Some(u) if u.undone_by.is_some() => "being undone",
        Some(u) if u.journal => "yes",
        Some(_) => "no (undo = false)",
        None => "no (no journal)",
    }
}
