//! The one algorithm that commits a batch on every dialect: rows of every table
//! folded by key, error rows, key map, resolved errors and the checkpoint in one
//! transaction, with records the database rejects isolated by splitting the
//! batch under savepoints.

use super::{BatchTx, DbFailure, TargetError};
use crate::mapping::OnConflict;
use crate::tracking::journal;
use crate::tracking::{batch, Progress};
use crate::transform::{BoundTable, ErrorRow, Outcome, SecretCell, Stage, Transformed};
use crate::value::SqlValue;
use std::collections::HashMap;

/// What a committed batch did.
#[derive(Debug, Clone, Default)]
pub struct BatchResult {
    pub written: i64,
    pub filtered: i64,
    pub failed: i64,
    /// Of the written records, those read exactly as the pass that last wrote
    /// them read them: skipped, their rows are as that pass left them.
    pub unchanged: i64,
    /// Per table: rows changed, rows sent but unchanged, rows inserted (if known).
    pub tables: Vec<(i64, i64, Option<i64>)>,
    /// The error rows this batch recorded (read, transform and load).
    pub errors: Vec<ErrorRow>,
}

/// Fold rows with the same key, keeping first-seen order: the last one wins
/// (`update`), or the first (`ignore`, as the database would keep it).
/// `vals` gives the values of a row.
fn fold<R>(table: &BoundTable, rows: Vec<R>, vals: fn(&R) -> &[SqlValue]) -> Vec<R> {
    if table.spec.on_conflict == OnConflict::Fail || rows.len() < 2 {
        return rows;
    }
    let keep_last = table.spec.on_conflict == OnConflict::Update;
    // foldhash: a fast hasher (already in the build through hashbrown); equal
    // hashes are compared, so only speed depends on its quality.
    let seed = foldhash::fast::FixedState::default();
    let hash = |r: &[SqlValue]| {
        use std::hash::{BuildHasher, Hasher};
        let mut h = seed.build_hasher();
        for &i in &table.key_idx {
            r[i].hash_key_text(&mut h);
        }
        h.finish()
    };
    let same = |a: &[SqlValue], b: &[SqlValue]| {
        table
            .key_idx
            .iter()
            .all(|&i| a[i] == b[i] || a[i].key_text() == b[i].key_text())
    };
    const NONE: usize = usize::MAX;
    // Hash → index in `out` of the first row with that hash; rows whose hashes
    // collide are chained through `next` (no allocation per row).
    let mut first: HashMap<u64, usize> = HashMap::with_capacity(rows.len());
    let mut next: Vec<usize> = Vec::with_capacity(rows.len());
    let mut out: Vec<R> = Vec::with_capacity(rows.len());
    for r in rows {
        let h = hash(vals(&r));
        let Some(&head) = first.get(&h) else {
            first.insert(h, out.len());
            out.push(r);
            next.push(NONE);
            continue;
        };
        let mut i = head;
        loop {
            if same(vals(&out[i]), vals(&r)) {
                if keep_last {
                    out[i] = r;
                }
                break;
            }
            if next[i] == NONE {
                next[i] = out.len();
                out.push(r);
                next.push(NONE);
                break;
            }
            i = next[i];
        }
    }
    out
}

/// Write the rows of a set of records; `Err` is the failure of some statement.
async fn write_set(
    tx: &mut dyn BatchTx,
    (run_id, mapping): (i64, &str),
    tables: &[BoundTable],
    recs: &[&Transformed],
    counts: &mut [(i64, i64, Option<i64>)],
) -> Result<(), DbFailure> {
    let mut local = vec![(0i64, 0i64, Some(0i64)); tables.len()];
    for (ti, t) in tables.iter().enumerate() {
        let mut rows: Vec<(&[SqlValue], Vec<&SecretCell>)> = Vec::new();
        for r in recs {
            if let Outcome::Rows {
                rows: rr, secrets, ..
            } = &r.outcome
            {
                for (n, (i, vals)) in rr.iter().enumerate() {
                    if *i == ti {
                        let cells = secrets.iter().filter(|c| c.row == n).collect();
                        rows.push((vals.as_slice(), cells));
                    }
                }
            }
        }
        if rows.is_empty() {
            continue;
        }
        let rows = fold(t, rows, |r| r.0);
        // Secret columns keep the stored value that still opens to the clear text.
        let kept = match t.spec.on_conflict {
            OnConflict::Update => super::secrets::keep_stored(tx, t, &rows).await?,
            _ => Vec::new(),
        };
        let rows: Vec<&[SqlValue]> = rows
            .iter()
            .enumerate()
            .map(|(i, r)| kept.get(i).and_then(|k| k.as_deref()).unwrap_or(r.0))
            .collect();
        let before = match &t.journal {
            Some(sh) => Some(journal::before(tx.exec(), t, sh, run_id, &rows).await?),
            None => None,
        };
        let n = tx.upsert(t, &rows).await?;
        if let (Some(sh), Some(b)) = (&t.journal, before) {
            journal::after(tx.exec(), t, sh, mapping, b, &rows, n.changed).await?;
        }
        let changed = n.changed as i64;
        local[ti] = (
            changed,
            rows.len() as i64 - changed,
            n.inserted.map(|i| i as i64),
        );
    }
    for (c, l) in counts.iter_mut().zip(local) {
        c.0 += l.0;
        c.1 += l.1;
        c.2 = c.2.zip(l.2).map(|(a, b)| a + b);
    }
    Ok(())
}

/// The digests of the batch's records (see `tracking::digests`): recorded for
/// the records written, forgotten for those that failed or were filtered out
/// (they are read, and counted, as such again: a skipped record counts as
/// written), in the batch's order (the last record of a key decides).
async fn save_digests(
    tx: &mut dyn BatchTx,
    batch: &[Transformed],
    candidates: &[&Transformed],
    load_failed: &[usize],
    progress: &Progress,
) -> Result<(), DbFailure> {
    use crate::tracking::digests;
    // By address: the records the database rejected.
    let failed: std::collections::HashSet<usize> = load_failed
        .iter()
        .map(|&i| candidates[i] as *const Transformed as usize)
        .collect();
    let mut last: HashMap<u64, Option<u64>> = HashMap::new();
    for t in batch {
        let keep = match t.outcome {
            Outcome::Unchanged { .. } => continue,
            Outcome::Failed(_) | Outcome::Filtered => None,
            _ if failed.contains(&(t as *const Transformed as usize)) => None,
            _ => t.digest,
        };
        last.insert(digests::key_hash(&t.key), keep);
    }
    // Sorted: parallel writers lock the rows of `cutover_digests` in one order.
    let mut gone: Vec<u64> = last
        .iter()
        .filter(|(_, d)| d.is_none())
        .map(|(k, _)| *k)
        .collect();
    gone.sort_unstable();
    let mut keep: Vec<(u64, u64)> = last
        .iter()
        .filter_map(|(k, d)| d.map(|d| (*k, d)))
        .collect();
    keep.sort_unstable();
    digests::forget(tx.exec(), &progress.mapping, &gone).await?;
    digests::save(
        tx.exec(),
        &progress.mapping,
        progress.pass_id,
        progress.run_id,
        &keep,
    )
    .await
}

/// A row's key as kept in `cutover_rows`: the key columns' text, as JSON.
pub fn row_key(table: &BoundTable, vals: &[SqlValue]) -> String {
    let k: Vec<String> = table.key_idx.iter().map(|&i| vals[i].key_text()).collect();
    serde_json::to_string(&k).unwrap_or_default()
}

/// Write one batch into an open transaction: rows of all tables, error rows, key
/// map, resolved errors and progress (the checkpoint), so that committing the
/// transaction commits all of it. Records the database rejects are isolated by
/// splitting the batch under savepoints and become `load` errors.
pub async fn write_batch(
    tx: &mut dyn BatchTx,
    tables: &[BoundTable],
    load_error: &(dyn Fn(&Transformed, &str) -> (String, serde_json::Value) + Sync),
    batch: &[Transformed],
    progress: &mut Progress,
    resolve: bool,
) -> Result<BatchResult, TargetError> {
    let ctx = |f: DbFailure| f.into_target("writing a batch");
    let journaled = tables.iter().any(|t| t.journal.is_some());
    let mut res = BatchResult {
        tables: vec![(0, 0, Some(0)); tables.len()],
        ..Default::default()
    };
    let candidates: Vec<&Transformed> = batch
        .iter()
        .filter(|t| matches!(t.outcome, Outcome::Rows { .. }))
        .collect();
    let mut load_failed: Vec<usize> = Vec::new();
    // Work list of [start, end) ranges over candidates, processed in order
    // (pushed in reverse: the list is popped from the end).
    let set = tx.savepoint_records().max(1);
    let mut work: Vec<(usize, usize)> = (0..candidates.len())
        .step_by(set)
        .map(|a| (a, (a + set).min(candidates.len())))
        .rev()
        .collect();
    while let Some((a, b)) = work.pop() {
        if a >= b {
            continue;
        }
        batch::savepoint(tx.exec()).await.map_err(ctx)?;
        let mut counts = vec![(0, 0, Some(0)); tables.len()];
        match write_set(
            tx,
            (progress.run_id, &progress.mapping),
            tables,
            &candidates[a..b],
            &mut counts,
        )
        .await
        {
            Ok(()) => {
                batch::release_savepoint(tx.exec()).await.map_err(ctx)?;
                for (t, c) in res.tables.iter_mut().zip(counts) {
                    t.0 += c.0;
                    t.1 += c.1;
                    t.2 = t.2.zip(c.2).map(|(a, b)| a + b);
                }
            }
            Err(f) if f.data => {
                batch::rollback_savepoint(tx.exec()).await.map_err(ctx)?;
                if b - a == 1 {
                    load_failed.push(a);
                    let t = candidates[a];
                    let (message, record) = load_error(t, &f.message);
                    res.errors.push(ErrorRow {
                        record_key: t.key.clone(),
                        position: t.position.clone(),
                        stage: Stage::Load,
                        column: None,
                        message,
                        record,
                    });
                } else {
                    let mid = a + (b - a) / 2;
                    // Pushed in reverse so the first half is written first.
                    work.push((mid, b));
                    work.push((a, mid));
                }
            }
            Err(f) => return Err(ctx(f)),
        }
    }
    // Read and transform errors of the batch, in order, before load errors.
    let mut errors: Vec<ErrorRow> = batch
        .iter()
        .filter_map(|t| match &t.outcome {
            Outcome::Failed(e) => Some((**e).clone()),
            _ => None,
        })
        .collect();
    errors.append(&mut res.errors);
    res.errors = errors;
    res.filtered = batch
        .iter()
        .filter(|t| matches!(t.outcome, Outcome::Filtered))
        .count() as i64;
    res.failed = res.errors.len() as i64;
    res.written = batch.len() as i64 - res.filtered - res.failed;

    if !res.errors.is_empty() {
        let refs: Vec<&ErrorRow> = res.errors.iter().collect();
        batch::insert_errors(tx.exec(), progress.run_id, &progress.mapping, &refs)
            .await
            .map_err(ctx)?;
    }
    let loaded: Vec<&Transformed> = candidates
        .iter()
        .enumerate()
        .filter(|(i, _)| !load_failed.contains(i))
        .map(|(_, t)| *t)
        .collect();
    if resolve {
        // A record that failed to decode was named by its label (`FILE:line N`);
        // once it decodes it has its own key, so both names resolve its errors.
        let labels: Vec<String> = loaded
            .iter()
            .filter_map(|t| t.label().filter(|l| *l != t.key))
            .collect();
        let mut keys: Vec<&str> = loaded.iter().map(|t| t.key.as_str()).collect();
        keys.extend(labels.iter().map(String::as_str));
        keys.extend(
            batch
                .iter()
                .filter(|t| matches!(t.outcome, Outcome::Filtered))
                .map(|t| t.key.as_str()),
        );
        if !keys.is_empty() {
            if journaled {
                let ids = journal::unresolved_ids(tx.exec(), &progress.mapping, &keys)
                    .await
                    .map_err(ctx)?;
                if !ids.is_empty() {
                    journal::save_list(
                        tx.exec(),
                        &progress.mapping,
                        progress.run_id,
                        "resolved",
                        ids.into(),
                    )
                    .await
                    .map_err(ctx)?;
                }
            }
            batch::resolve_errors(tx.exec(), &progress.mapping, &keys)
                .await
                .map_err(ctx)?;
        }
    }
    let mut written_rows: Vec<(&str, String, &str)> = Vec::new();
    for t in &loaded {
        if let Outcome::Rows { rows, .. } = &t.outcome {
            for (ti, vals) in rows {
                let table = &tables[*ti];
                if table.spec.deletes != crate::mapping::DeletePolicy::Keep {
                    written_rows.push((table.spec.table.as_str(), row_key(table, vals), &t.key));
                }
            }
        }
    }
    if !written_rows.is_empty() {
        batch::save_rows(
            tx.exec(),
            &progress.mapping,
            progress.pass_id,
            &written_rows,
        )
        .await
        .map_err(ctx)?;
    }
    if batch.iter().any(|t| t.digest.is_some()) {
        save_digests(tx, batch, &candidates, &load_failed, progress)
            .await
            .map_err(ctx)?;
    }
    res.unchanged = batch
        .iter()
        .filter(|t| matches!(t.outcome, Outcome::Unchanged { .. }))
        .count() as i64;
    let pairs: Vec<(&str, &str)> = loaded
        .iter()
        .filter_map(|t| match &t.outcome {
            Outcome::Rows {
                keymap: Some((l, n)),
                ..
            } => Some((l.as_str(), n.as_str())),
            _ => None,
        })
        .collect();
    if !pairs.is_empty() && journaled {
        let legacy: Vec<&str> = pairs.iter().map(|p| p.0).collect();
        let added = journal::new_keymap_keys(tx.exec(), &progress.mapping, &legacy)
            .await
            .map_err(ctx)?;
        if !added.is_empty() {
            journal::save_list(
                tx.exec(),
                &progress.mapping,
                progress.run_id,
                "keymap",
                added.into(),
            )
            .await
            .map_err(ctx)?;
        }
    }
    if !pairs.is_empty() {
        batch::save_keymap(tx.exec(), &progress.mapping, &pairs)
            .await
            .map_err(ctx)?;
    }
    progress.read = batch.len() as i64;
    progress.written = res.written;
    progress.filtered = res.filtered;
    progress.failed = res.failed;
    progress.tables = tables
        .iter()
        .zip(&res.tables)
        .map(|(t, (w, u, i))| (t.spec.table.clone(), *w, *u, *i))
        .collect();
    tx.save_progress(progress).await.map_err(ctx)?;
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mapping::Mapping;
    use crate::value::ColumnType;
    use std::path::Path;

    fn table(on_conflict: &str) -> BoundTable {
        let text = format!(
            "name = \"t\"\n[source]\nkind = \"kv\"\npath = \"x.jsonl\"\n[[tables]]\ntable = \"t\"\nkey = [\"a\", \"b\"]\non_conflict = \"{on_conflict}\"\ncolumns.a = \"value.a\"\ncolumns.b = \"value.b\"\ncolumns.n = \"value.n\"\n"
        );
        let m = Mapping::from_str(Path::new("t.toml"), &text).unwrap();
        let spec = m.tables[0].clone();
        BoundTable {
            key_idx: spec.key_indexes(),
            journal: None,
            types: vec![ColumnType::Any; 3],
            declared: vec![String::new(); 3],
            nullable: vec![true; 3],
            spec,
        }
    }

    fn row(a: SqlValue, b: i64, n: i64) -> Vec<SqlValue> {
        vec![a, SqlValue::Int(b), SqlValue::Int(n)]
    }

    #[test]
    fn fold_keeps_the_last_row_of_a_key_for_update_and_the_first_for_ignore() {
        let rows = [
            row(SqlValue::Text("x".into()), 1, 1),
            row(SqlValue::Text("y".into()), 1, 2),
            // Same key as the first: 'x' and 1.
            row(SqlValue::Text("x".into()), 1, 3),
            // A key that only looks alike: ('x', 2).
            row(SqlValue::Text("x".into()), 2, 4),
            // An untyped column: 1 and '1' are one key.
            row(SqlValue::Int(1), 1, 5),
            row(SqlValue::Text("1".into()), 1, 6),
        ];
        let refs: Vec<&[SqlValue]> = rows.iter().map(Vec::as_slice).collect();
        let n = |out: Vec<&[SqlValue]>| -> Vec<i64> {
            out.iter()
                .map(|r| match r[2] {
                    SqlValue::Int(i) => i,
                    _ => -1,
                })
                .collect()
        };
        fn f<'a>(t: &str, rows: Vec<&'a [SqlValue]>) -> Vec<&'a [SqlValue]> {
            fold(&table(t), rows, |r| r)
        }
        assert_eq!(n(f("update", refs.clone())), vec![3, 2, 4, 6]);
        assert_eq!(n(f("ignore", refs.clone())), vec![1, 2, 4, 5]);
        // `fail` keeps every row: the database reports the conflict.
        assert_eq!(n(f("fail", refs)), vec![1, 2, 3, 4, 5, 6]);
    }
}
