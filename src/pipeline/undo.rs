//! `cutover undo`: put a mapping's tables back as they were before a run, from
//! the undo journal ([`crate::tracking::journal`]). Runs are undone newest
//! first, one journal entry (a batch's set of one table) per transaction, each
//! entry deleted with the changes it takes back, so that an undo killed half
//! way resumes where it stopped and a second undo finds nothing left.

use super::{bind, RunError};
use crate::db::{ctx, Arg, DbFailure, Exec};
use crate::dialect::{quote_ident, quote_table, Dialect};
use crate::mapping::{DeletePolicy, Mapping};
use crate::sink::{LockOutcome, Target, TargetError};
use crate::tracking::journal::{self, Entry, Shadow};
use crate::tracking::{CheckpointRow, Holder, NewRun, RunStatus};
use crate::transform::BoundTable;
use crate::value::SqlValue;
use serde::Serialize;
use std::collections::{HashMap, HashSet};
use tracing::info;

#[derive(Debug, Clone, Default)]
pub struct UndoOptions {
    /// Undo this run and every later one (default: the last run that changed anything).
    pub run: Option<i64>,
    pub dry_run: bool,
    /// Restore rows changed since by something else, too.
    pub force: bool,
}

/// What an undo did (or, in a dry run, would do) to one table.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TableUndo {
    pub table: String,
    /// Rows the runs inserted, deleted again.
    pub deleted: u64,
    /// Rows the runs updated (or soft-deleted), given their values back.
    pub restored: u64,
    /// Rows the runs deleted, inserted again.
    pub reinserted: u64,
    pub example_keys: Vec<Vec<String>>,
}

/// A row changed since the run by something other than cutover.
#[derive(Debug, Clone, Serialize)]
pub struct Conflict {
    pub table: String,
    pub key: Vec<String>,
    /// The columns whose values differ from what the run left; empty when the
    /// row is gone, or is there again after the run deleted it (`reason`).
    pub columns: Vec<String>,
    pub reason: String,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct UndoReport {
    pub mapping: String,
    /// The run that recorded the undo (none in a dry run or when nothing was done).
    pub undo_run: Option<i64>,
    /// The runs taken back, newest first.
    pub runs: Vec<i64>,
    pub tables: Vec<TableUndo>,
    pub keymap_removed: u64,
    pub errors_unresolved: u64,
    pub conflicts: Vec<Conflict>,
    /// Conflicting rows were restored anyway (`--force`).
    pub forced: bool,
    /// This undo finished one that had stopped half way.
    pub resumed: bool,
    pub dry_run: bool,
    /// Why nothing was done, when nothing was.
    pub nothing: Option<String>,
}

/// Conflicts listed at most (all are counted).
const MAX_CONFLICTS: usize = 1000;

fn refused(mapping: &Mapping, reason: String) -> RunError {
    RunError::UndoRefused {
        mapping: mapping.name.clone(),
        reason,
    }
}

/// Undo runs of one mapping (see the module text).
pub async fn undo_mapping(
    target: &dyn Target,
    mapping: &Mapping,
    opts: &UndoOptions,
) -> Result<UndoReport, RunError> {
    target.ensure_tracking().await?;
    let tables = bind(target, mapping).await?;
    if opts.dry_run {
        return plan(target, mapping, &tables, opts).await;
    }
    let me = Holder::me(None);
    match target.try_lock(&mapping.name, &me).await? {
        LockOutcome::Held(holder) => {
            return Err(RunError::Locked {
                mapping: mapping.name.clone(),
                holder,
            })
        }
        LockOutcome::Acquired { .. } => {}
    }
    let res = plan(target, mapping, &tables, opts).await;
    let res = match res {
        Ok(r) if r.nothing.is_none() && (r.conflicts.is_empty() || opts.force || r.resumed) => {
            apply(target, mapping, &tables, r, opts).await
        }
        other => other,
    };
    if let Err(e) = target.unlock(&mapping.name).await {
        tracing::warn!(target: super::LOG_TARGET, mapping = %mapping.name, "could not release the run lock: {e}");
    }
    res
}

/// The runs to undo, what undoing them changes, and the conflicts.
async fn plan(
    target: &dyn Target,
    mapping: &Mapping,
    tables: &[BoundTable],
    opts: &UndoOptions,
) -> Result<UndoReport, RunError> {
    let name = &mapping.name;
    let c = ctx("reading the undo journal");
    let mut report = UndoReport {
        mapping: name.clone(),
        dry_run: opts.dry_run,
        forced: opts.force,
        ..Default::default()
    };
    let mut db = target.exec();
    let undo_runs = journal::undo_runs(&mut *db, name).await.map_err(&c)?;
    let runs = target.store().runs(Some(name)).await?;
    let status: HashMap<i64, RunStatus> = runs.iter().map(|r| (r.id, r.status)).collect();
    // An undo that stopped half way is finished first, without a new check.
    let unfinished: Vec<i64> = undo_runs
        .iter()
        .filter(|u| {
            u.undone_by
                .is_some_and(|by| status.get(&by) != Some(&RunStatus::Succeeded))
                && status.get(&u.run_id) != Some(&RunStatus::Undone)
        })
        .map(|u| u.run_id)
        .collect();
    let chosen: Vec<i64> = if !unfinished.is_empty() {
        report.resumed = true;
        unfinished
    } else {
        let first = match opts.run {
            Some(n) => {
                if !runs.iter().any(|r| r.id == n) {
                    return Err(refused(
                        mapping,
                        format!("it has no run {n} on this target"),
                    ));
                }
                n
            }
            None => {
                let row = db
                    .fetch_one(
                        "SELECT max(run_id) AS n FROM cutover_journal WHERE mapping = ?",
                        &[Arg::Text(name)],
                    )
                    .await
                    .map_err(&c)?;
                match row.and_then(|r| r.opt_int("n").ok().flatten()) {
                    Some(n) => n,
                    None => {
                        report.nothing = Some(format!(
                            "no run of mapping {name} has changed anything that is not undone already"
                        ));
                        return Ok(report);
                    }
                }
            }
        };
        // Every run from `first` on must have kept a journal.
        let kept: HashMap<i64, &journal::UndoRun> =
            undo_runs.iter().map(|u| (u.run_id, u)).collect();
        for r in runs.iter().filter(|r| r.id >= first && !r.dry_run) {
            if r.options.contains("\"kind\":\"undo\"") || r.status == RunStatus::Undone {
                continue;
            }
            match kept.get(&r.id) {
                None => {
                    return Err(refused(
                        mapping,
                        format!("run {} kept no undo journal (a `retry`, or a run of a cutover without undo); runs from {first} on cannot be taken back", r.id),
                    ))
                }
                Some(u) if !u.journal => {
                    return Err(refused(
                        mapping,
                        format!("run {} kept no undo journal: the mapping set `undo = false` for it", r.id),
                    ))
                }
                Some(_) => {}
            }
        }
        let chosen: Vec<i64> = undo_runs
            .iter()
            .filter(|u| u.run_id >= first && u.undone_by.is_none())
            .map(|u| u.run_id)
            .collect();
        if chosen.is_empty() {
            report.nothing = Some(match kept.get(&first).and_then(|u| u.undone_by) {
                Some(by) => {
                    format!("run {first} of mapping {name} was undone already (by run {by})")
                }
                None => format!("mapping {name} has nothing to undo from run {first} on"),
            });
            return Ok(report);
        }
        chosen
    };
    report.runs = chosen.iter().rev().copied().collect();
    let first = chosen.iter().copied().min().unwrap_or(0);
    // Walk the journal newest first: counts, and what each row should be now.
    let by_name: HashMap<&str, &BoundTable> =
        tables.iter().map(|t| (t.spec.table.as_str(), t)).collect();
    let mut counts: HashMap<String, TableUndo> = HashMap::new();
    let mut seen: HashSet<u64> = HashSet::new();
    let mut before = i64::MAX;
    loop {
        let page = journal::entries(&mut *db, name, first, before, 200)
            .await
            .map_err(&c)?;
        let Some(last) = page.last() else { break };
        before = last.id;
        for e in &page {
            match e.kind.as_str() {
                "keymap" => report.keymap_removed += json_len(&e.keys),
                "resolved" => report.errors_unresolved += json_len(&e.keys),
                _ => {
                    let Some(t) = by_name.get(e.table_name.as_str()) else {
                        return Err(refused(
                            mapping,
                            format!(
                                "run {} wrote table {}, which the mapping no longer names",
                                e.run_id, e.table_name
                            ),
                        ));
                    };
                    let tc = counts
                        .entry(e.table_name.clone())
                        .or_insert_with(|| TableUndo {
                            table: e.table_name.clone(),
                            ..Default::default()
                        });
                    count(tc, e);
                    if !report.resumed {
                        check(&mut *db, t, e, &mut seen, &mut report.conflicts).await?;
                    }
                }
            }
        }
    }
    report.tables = tables
        .iter()
        .filter_map(|t| counts.remove(&t.spec.table))
        .collect();
    Ok(report)
}

fn json_len(s: &str) -> u64 {
    serde_json::from_str::<Vec<serde_json::Value>>(s).map_or(0, |v| v.len() as u64)
}

fn count(tc: &mut TableUndo, e: &Entry) {
    let keys: Vec<serde_json::Value> = serde_json::from_str(&e.keys).unwrap_or_default();
    match e.kind.as_str() {
        "write" => {
            tc.deleted += keys.len() as u64;
            tc.restored += e.copied as u64;
        }
        "soft" => tc.restored += e.copied as u64,
        _ => tc.reinserted += e.copied as u64,
    }
    for k in keys.iter().take(3) {
        if tc.example_keys.len() >= 3 {
            break;
        }
        let texts: Vec<String> = match k {
            serde_json::Value::Array(a)
                if matches!(a.first(), Some(serde_json::Value::Array(_))) =>
            {
                serde_json::from_value(a[0].clone()).unwrap_or_default()
            }
            other => serde_json::from_value(other.clone()).unwrap_or_default(),
        };
        tc.example_keys.push(texts);
    }
}

/// A row's identity across the journal: its table and normal-form key.
fn row_id(t: &BoundTable, key: &[String]) -> (u64, String) {
    let mut full: Vec<Option<String>> = vec![None; t.spec.columns.len()];
    for (j, &i) in t.key_idx.iter().enumerate() {
        full[i] = key.get(j).cloned();
    }
    let k = t.row_key(&full);
    let h = xxhash_rust::xxh3::xxh3_64(format!("{}\u{0}{k}", t.spec.table).as_bytes());
    (h, k)
}

/// Compare the rows an entry left with what the table holds now (only the
/// newest entry of each row is compared: later runs are undone first).
async fn check(
    db: &mut dyn Exec,
    t: &BoundTable,
    e: &Entry,
    seen: &mut HashSet<u64>,
    out: &mut Vec<Conflict>,
) -> Result<(), RunError> {
    // (key texts, the hashes expected; None: the row should be absent)
    let mut expect: Vec<(Vec<String>, Option<String>)> = Vec::new();
    match e.kind.as_str() {
        "write" => {
            let after: Vec<(Vec<String>, String)> = e
                .after
                .as_deref()
                .and_then(|a| serde_json::from_str(a).ok())
                .unwrap_or_default();
            expect.extend(after.into_iter().map(|(k, h)| (k, Some(h))));
        }
        "delete" => {
            let keys: Vec<(Vec<String>, String)> =
                serde_json::from_str(&e.keys).unwrap_or_default();
            expect.extend(keys.into_iter().map(|(k, _)| (k, None)));
        }
        _ => {
            let keys: Vec<(Vec<String>, String)> =
                serde_json::from_str(&e.keys).unwrap_or_default();
            for (k, _) in keys {
                seen.insert(row_id(t, &k).0);
            }
            return Ok(());
        }
    }
    let fresh: Vec<(Vec<String>, Option<String>)> = expect
        .into_iter()
        .filter(|(k, _)| seen.insert(row_id(t, k).0))
        .collect();
    if fresh.is_empty() {
        return Ok(());
    }
    let keys: Vec<Vec<SqlValue>> = fresh
        .iter()
        .map(|(k, _)| k.iter().map(|s| SqlValue::Text(s.clone())).collect())
        .collect();
    let found = crate::sink::fetch_rows(db, t, &keys)
        .await
        .map_err(|f| f.into_target("reading the rows the run left"))?;
    let now: HashMap<String, String> = found
        .iter()
        .map(|r| (t.row_key(r), journal::text_hashes(t, r)))
        .collect();
    for (k, want) in fresh {
        let got = now.get(&row_id(t, &k).1);
        let conflict = match (&want, got) {
            (Some(_), None) => Some((Vec::new(), "the row is gone".to_string())),
            (None, Some(_)) => Some((
                Vec::new(),
                "the run deleted this row and a row with its key is there again".to_string(),
            )),
            (Some(w), Some(g)) if w != g => {
                let cols = journal::differing_columns(t, w, g);
                Some((cols, "changed since the run".to_string()))
            }
            _ => None,
        };
        if let Some((columns, reason)) = conflict {
            if out.len() < MAX_CONFLICTS {
                out.push(Conflict {
                    table: t.spec.table.clone(),
                    key: k,
                    columns,
                    reason,
                });
            }
        }
    }
    Ok(())
}

/// Take the planned runs back, entry by entry, then put the tracking state back.
async fn apply(
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
        .start_run(&NewRun {
            mapping: name.clone(),
            checksum: mapping.checksum.clone(),
            dry_run: false,
            host: crate::tracking::this_host(),
            pid: std::process::id(),
            options: options.to_string(),
        })
        .await?;
    report.undo_run = Some(undo_run);
    target.heartbeat(name, undo_run).await?;
    info!(target: super::LOG_TARGET, mapping = %name, undo_run, runs = ?report.runs, "undoing runs");
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
            journal::entries(&mut *db, name, first, i64::MAX, 100).await?
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
