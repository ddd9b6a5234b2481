//! Taking planned runs back: one journal entry per transaction (rows deleted,
//! upserted back from their copy, re-inserted; the key map and error rows), then
//! the checkpoint, passes and run statuses as they stood before the first run.

use super::UndoOptions;
use super::UndoReport;
use crate::db::{ctx, Arg, DbFailure, Exec};
use crate::dialect::{quote_ident, quote_table, Dialect};
use crate::mapping::{DeletePolicy, Mapping};
use crate::pipeline::RunError;
use crate::sink::{Target, TargetError};
use crate::tracking::journal::{self, Entry, Shadow};
use crate::tracking::{CheckpointRow, NewRun, RunStatus};
use crate::transform::BoundTable;
use std::collections::HashMap;
use tracing::info;

/// Take the planned runs back, entry by entry, then put the tracking state back.
pub(super) async fn apply(
    target: &dyn Target,
    mapping: &Mapping,
    tables: &[BoundTable],
    mut report: UndoReport,
    opts: &UndoOptions,
) -> Result<UndoReport, RunError> {
    let name = &mapping.name;
    let c = ctx("undoing a run");
    let first = report.runs.iter().copied().min().unwrap_or(0);
    let options = serde_json::json!({
        "kind": "undo",
        "runs": report.runs,
        "force": opts.force,
        "resumed": report.resumed,
        "target": target.display_url(),
    });
    let undo_run = target
        .store()
        .start_run(&NewRun::here(mapping, &options))
        .await?;
    report.undo_run = Some(undo_run);
    target.heartbeat(name, undo_run).await?;
    info!(target: crate::pipeline::LOG_TARGET, mapping = %name, undo_run, runs = ?report.runs, "undoing runs");
    let result = apply_entries(target, mapping, tables, first, undo_run, &report.runs).await;
    let status = if result.is_ok() {
        RunStatus::Succeeded
    } else {
        RunStatus::Failed
    };
    let message = result
        .as_ref()
        .err()
        .map(|e| e.to_string())
        .unwrap_or_else(|| {
            format!(
                "undid run(s) {}",
                report
                    .runs
                    .iter()
                    .map(|r| r.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        });
    let _ = target
        .store()
        .finish_run(undo_run, status, Some(&message))
        .await;
    result.map_err(|e| match e {
        UndoFail::Db(f) => RunError::Target(f.into_target("undoing a run")),
        UndoFail::Target(t) => RunError::Target(t),
    })?;
    let _ = c;
    Ok(report)
}

enum UndoFail {
    Db(DbFailure),
    Target(TargetError),
}

impl From<DbFailure> for UndoFail {
    fn from(f: DbFailure) -> Self {
        UndoFail::Db(f)
    }
}

impl From<TargetError> for UndoFail {
    fn from(e: TargetError) -> Self {
        UndoFail::Target(e)
    }
}

impl std::fmt::Display for UndoFail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UndoFail::Db(d) => write!(f, "undoing a run: {}", d.message),
            UndoFail::Target(t) => write!(f, "{t}"),
        }
    }
}

async fn apply_entries(
    target: &dyn Target,
    mapping: &Mapping,
    tables: &[BoundTable],
    first: i64,
    undo_run: i64,
    runs: &[i64],
) -> Result<(), UndoFail> {
    let name = &mapping.name;
    let d = target.dialect();
    let list = runs
        .iter()
        .map(|r| r.to_string())
        .collect::<Vec<_>>()
        .join(", ");
    target
        .exec()
        .execute(
            &format!("UPDATE cutover_undo_runs SET undone_by = ? WHERE mapping = ? AND run_id IN ({list})"),
            &[Arg::Int(undo_run), Arg::Text(name)],
        )
        .await?;
    let mut shadows: HashMap<String, Shadow> = HashMap::new();
    for t in tables {
        if target
            .describe_table(&journal::shadow_name(&t.spec.table))
            .await?
            .is_some()
        {
            shadows.insert(
                t.spec.table.clone(),
                journal::ensure_shadow(target, &t.spec.table).await?,
            );
        }
    }
    let by_name: HashMap<&str, &BoundTable> =
        tables.iter().map(|t| (t.spec.table.as_str(), t)).collect();
    let mut beat = std::time::Instant::now();
    loop {
        let page = {
            let mut db = target.exec();
            journal::entries(&mut *db, name, first, i64::MAX, super::ENTRIES_PER_READ).await?
        };
        if page.is_empty() {
            break;
        }
        for e in &page {
            let mut tx = target.pool().begin().await?;
            if let Some(t) = by_name.get(e.table_name.as_str()) {
                undo_entry(&mut *tx, mapping, t, shadows.get(&e.table_name), e).await?;
            } else {
                undo_tracking(&mut *tx, name, e).await?;
            }
            tx.execute(
                "DELETE FROM cutover_journal WHERE id = ?",
                &[Arg::Int(e.id)],
            )
            .await?;
            tx.commit().await?;
            if beat.elapsed().as_secs() >= 5 {
                target.heartbeat(name, undo_run).await?;
                beat = std::time::Instant::now();
            }
        }
    }
    // The tracking state as it stood before the first run undone.
    let snapshot = {
        let mut db = target.exec();
        journal::undo_runs(&mut *db, name)
            .await?
            .into_iter()
            .find(|u| u.run_id == first)
            .and_then(|u| u.checkpoint)
    };
    let mut tx = target.pool().begin().await?;
    tx.execute(
        "DELETE FROM cutover_checkpoints WHERE mapping = ? AND shard = 0",
        &[Arg::Text(name)],
    )
    .await?;
    if let Some(cp) = snapshot.and_then(|s| serde_json::from_str::<CheckpointRow>(&s).ok()) {
        tx.execute(
            "INSERT INTO cutover_checkpoints (mapping, shard, run_id, position, records_committed, mapping_checksum, source_fingerprint, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            &[
                Arg::Text(&cp.mapping),
                Arg::Int(cp.shard),
                Arg::Int(cp.run_id),
                Arg::OptText(cp.position.as_deref()),
                Arg::Int(cp.records_committed),
                Arg::Text(&cp.mapping_checksum),
                Arg::Text(&cp.source_fingerprint),
                Arg::Text(&cp.updated_at),
            ],
        )
        .await?;
    }
    for sql in [
        format!("DELETE FROM cutover_passes WHERE run_id IN ({list})"),
        format!("DELETE FROM cutover_errors WHERE mapping = ? AND run_id IN ({list})"),
        // The records those runs wrote are processed again by the next pass.
        format!("DELETE FROM cutover_digests WHERE mapping = ? AND run_id IN ({list})"),
    ] {
        let args: &[Arg] = if sql.contains("mapping") {
            &[Arg::Text(name)]
        } else {
            &[]
        };
        tx.execute(&sql, args).await?;
    }
    let msg = format!("undone by run {undo_run}");
    tx.execute(
        &format!("UPDATE cutover_runs SET status = 'undone', message = ? WHERE id IN ({list})"),
        &[Arg::Text(&msg)],
    )
    .await?;
    tx.commit().await?;
    let _ = d;
    Ok(())
}

/// Key texts bound as text (PostgreSQL casts them to the column's type).
fn key_args(keys: &[Vec<String>]) -> Vec<Arg<'_>> {
    keys.iter().flatten().map(|s| Arg::Text(s)).collect()
}

async fn undo_entry(
    db: &mut dyn Exec,
    mapping: &Mapping,
    t: &BoundTable,
    shadow: Option<&Shadow>,
    e: &Entry,
) -> Result<(), UndoFail> {
    let d = db.dialect();
    let qt = quote_table(d, &t.spec.table);
    let ledger = t.spec.deletes != DeletePolicy::Keep;
    match e.kind.as_str() {
        "write" => {
            let keys: Vec<Vec<String>> = serde_json::from_str(&e.keys).unwrap_or_default();
            for chunk in keys.chunks(500) {
                let sql = format!(
                    "DELETE FROM {qt} WHERE {}",
                    crate::sink::key_in(d, t, chunk.len())
                );
                db.execute(&sql, &key_args(chunk)).await?;
                if ledger {
                    let row_keys: Vec<String> = chunk
                        .iter()
                        .map(|k| serde_json::to_string(k).unwrap_or_default())
                        .collect();
                    let sql = format!(
                        "DELETE FROM cutover_rows WHERE mapping = ? AND table_name = ? AND row_key IN ({})",
                        vec!["?"; chunk.len()].join(", ")
                    );
                    let mut args = vec![Arg::Text(&mapping.name), Arg::Text(&t.spec.table)];
                    args.extend(row_keys.iter().map(|k| Arg::Text(k)));
                    db.execute(&sql, &args).await?;
                }
            }
        }
        _ => {
            // delete / soft: the ledger gets its rows back (as of an older pass).
            let keys: Vec<(Vec<String>, String)> =
                serde_json::from_str(&e.keys).unwrap_or_default();
            let rows: Vec<(&str, String, &str)> = keys
                .iter()
                .map(|(k, r)| {
                    (
                        t.spec.table.as_str(),
                        serde_json::to_string(k).unwrap_or_default(),
                        r.as_str(),
                    )
                })
                .collect();
            if ledger && !rows.is_empty() {
                crate::tracking::batch::save_rows(db, &mapping.name, 0, &rows).await?;
            }
        }
    }
    if e.copied > 0 {
        let Some(sh) = shadow else {
            return Err(UndoFail::Target(TargetError::Db {
                context: "undoing a run".into(),
                message: format!(
                    "the undo journal's table {} is missing: the rows run {} changed in table {} cannot be given back",
                    journal::shadow_name(&t.spec.table),
                    e.run_id,
                    t.spec.table
                ),
                retryable: false,
            }));
        };
        db.execute(&restore_sql(d, t, sh), &[Arg::Int(e.id)])
            .await?;
        db.execute(
            &format!(
                "DELETE FROM {} WHERE cutover_journal = ?",
                quote_table(d, &sh.name)
            ),
            &[Arg::Int(e.id)],
        )
        .await?;
    }
    Ok(())
}

/// Upsert the copies of one journal entry back into their table, every column.
fn restore_sql(d: Dialect, t: &BoundTable, sh: &Shadow) -> String {
    let cols: Vec<String> = sh.columns.iter().map(|c| quote_ident(d, c)).collect();
    let non_key: Vec<&String> = sh
        .columns
        .iter()
        .filter(|c| !t.spec.key.iter().any(|k| k.eq_ignore_ascii_case(c)))
        .collect();
    let key: Vec<String> = t.spec.key.iter().map(|k| quote_ident(d, k)).collect();
    let upsert = match d {
        Dialect::Mysql if non_key.is_empty() => {
            let k = &key[0];
            format!(" ON DUPLICATE KEY UPDATE {k} = VALUES({k})")
        }
        Dialect::Mysql => format!(
            " ON DUPLICATE KEY UPDATE {}",
            non_key
                .iter()
                .map(|c| {
                    let q = quote_ident(d, c);
                    format!("{q} = VALUES({q})")
                })
                .collect::<Vec<_>>()
                .join(", ")
        ),
        _ if non_key.is_empty() => format!(" ON CONFLICT ({}) DO NOTHING", key.join(", ")),
        _ => format!(
            " ON CONFLICT ({}) DO UPDATE SET {}",
            key.join(", "),
            non_key
                .iter()
                .map(|c| {
                    let q = quote_ident(d, c);
                    format!("{q} = excluded.{q}")
                })
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    format!(
        "INSERT INTO {} ({}) SELECT {} FROM {} WHERE cutover_journal = ?{upsert}",
        quote_table(d, &t.spec.table),
        cols.join(", "),
        cols.join(", "),
        quote_table(d, &sh.name)
    )
}

/// Key-map entries removed again, resolved errors unresolved again.
async fn undo_tracking(db: &mut dyn Exec, mapping: &str, e: &Entry) -> Result<(), UndoFail> {
    match e.kind.as_str() {
        "keymap" => {
            let keys: Vec<String> = serde_json::from_str(&e.keys).unwrap_or_default();
            for chunk in keys.chunks(500) {
                let sql = format!(
                    "DELETE FROM cutover_keymap WHERE mapping = ? AND legacy_key IN ({})",
                    vec!["?"; chunk.len()].join(", ")
                );
                let mut args = vec![Arg::Text(mapping)];
                args.extend(chunk.iter().map(|k| Arg::Text(k)));
                db.execute(&sql, &args).await?;
            }
        }
        "resolved" => {
            let ids: Vec<i64> = serde_json::from_str(&e.keys).unwrap_or_default();
            for chunk in ids.chunks(500) {
                let list = chunk
                    .iter()
                    .map(|i| i.to_string())
                    .collect::<Vec<_>>()
                    .join(", ");
                db.execute(
                    &format!("UPDATE cutover_errors SET resolved_at = NULL WHERE id IN ({list})"),
                    &[],
                )
                .await?;
            }
        }
        _ => {}
    }
    Ok(())
}
