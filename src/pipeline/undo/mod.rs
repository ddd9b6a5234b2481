//! `cutover undo`: put a mapping's tables back as they were before a run, from
//! the undo journal ([`crate::tracking::journal`]). Runs are undone newest
//! first, one journal entry (a batch's set of one table) per transaction, each
//! entry deleted with the changes it takes back, so that an undo killed half
//! way resumes where it stopped and a second undo finds nothing left.

mod apply;

use super::{bind, RunError};
use crate::db::{ctx, Arg, Exec};
use crate::mapping::Mapping;
use crate::sink::{LockOutcome, Target};
use crate::tracking::journal::{self, Entry};
use crate::tracking::{Holder, RunStatus};
use crate::transform::BoundTable;
use crate::value::SqlValue;
use serde::Serialize;
use std::collections::{HashMap, HashSet};

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

/// Journal entries read at a time: each holds a batch's rows (their keys and
/// hashes), so a few at a time keep undo's memory flat.
pub(super) const ENTRIES_PER_READ: i64 = 4;

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
            apply::apply(target, mapping, &tables, r, opts).await
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
        let page = journal::entries(&mut *db, name, first, before, ENTRIES_PER_READ)
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
