//! Deletions carried over: after a complete pass, the rows this mapping wrote
//! in an earlier pass that the source no longer produces are deleted (or
//! soft-deleted), for tables with `deletes = "delete" | "soft"`.
//!
//! `cutover_rows` knows every row such a table got from the mapping, with its
//! record and the pass that last wrote it. A full pass rewrites every row it
//! produces, so a row still stamped with an earlier pass is gone, unless its
//! record failed (an unresolved error row: the record still exists). A delta
//! pass reads only what changed: a row of an earlier pass is gone when its
//! record was read by this pass (an element left a `for_each` array, or its key
//! changed) or when its record's key is no longer in the source (a key-only
//! scan of the source, one column, cheap).
//!
//! Nothing is deleted before every table's count is under its `max_deletes`
//! (or `--allow-deletes N`). Each chunk of rows is deleted in one transaction
//! with its `cutover_rows` entries and the run's count, so a pass killed while
//! deleting finds the rest on the next run and deletes nothing twice. A row the
//! database refuses to delete (a foreign key still needs it) becomes an error
//! row of stage `load`; the rest commits.

use super::{bind, summary::RunSummary, RunError, RunOptions};
use crate::db::{ctx, Arg, DbFailure};
use crate::dialect::{quote_ident, quote_table, Dialect};
use crate::mapping::{DeletePolicy, Mapping, SoftValue};
use crate::record::Position;
use crate::sink::{key_in, Target};
use crate::tracking::passes::PassKind;
use crate::tracking::{digests, journal};
use crate::transform::{BoundTable, ErrorRow, Stage};
use std::collections::HashSet;
use std::hash::{BuildHasher, Hasher};
use tracing::{info, warn};

mod scan;
use scan::{all_keys, source_keys};

/// Rows deleted per transaction.
const CHUNK: usize = 500;

/// The hash of a record key in the key sets of a pass (a collision can only
/// keep a row that should go, never delete one that should stay); the one
/// `cutover_digests` keeps.
pub use crate::tracking::digests::key_hash;

/// The hash of a row of a table in a dry run's set of produced rows.
pub fn row_hash(table: &str, row_key: &str) -> u64 {
    let mut h = foldhash::fast::FixedState::default().build_hasher();
    h.write(table.as_bytes());
    h.write_u8(0);
    h.write(row_key.as_bytes());
    h.finish()
}

/// What a dry run produced: hashes of its rows and of its failed records.
#[derive(Debug, Default)]
pub struct Produced {
    pub rows: HashSet<u64>,
    pub failed: HashSet<u64>,
}

/// A dry run: the rows an earlier pass wrote that this one no longer produces
/// (its record gone, failed records aside), per table, without deleting any.
pub async fn dry_run(
    target: &dyn Target,
    mapping: &Mapping,
    summary: &RunSummary,
) -> Result<Vec<(String, u64, Vec<String>)>, RunError> {
    let Some(produced) = &summary.produced else {
        return Ok(Vec::new());
    };
    if target.describe_table("cutover_rows").await?.is_none() {
        return Ok(Vec::new());
    }
    let c = ctx("finding the rows a pass would delete");
    let mut out = Vec::new();
    for t in mapping
        .tables
        .iter()
        .filter(|t| t.deletes != DeletePolicy::Keep)
    {
        let (mut n, mut first) = (0u64, Vec::new());
        let mut after = String::new();
        loop {
            let rows = target
                .exec()
                .fetch(
                    "SELECT row_key, record_key FROM cutover_rows WHERE mapping = ? AND table_name = ? AND row_key > ? ORDER BY row_key LIMIT 5000",
                    &[Arg::Text(&mapping.name), Arg::Text(&t.table), Arg::Text(&after)],
                )
                .await
                .map_err(&c)?;
            let Some(last) = rows.last() else { break };
            after = last.text("row_key").map_err(&c)?;
            for r in &rows {
                let row_key = r.text("row_key").map_err(&c)?;
                let record_key = r.text("record_key").map_err(&c)?;
                if !produced.rows.contains(&row_hash(&t.table, &row_key))
                    && !produced.failed.contains(&key_hash(&record_key))
                {
                    n += 1;
                    if first.len() < 5 {
                        first.push(key_texts(&row_key).join(", "));
                    }
                }
            }
        }
        out.push((t.table.clone(), n, first));
    }
    Ok(out)
}

/// What the deletions of one mapping did, per table.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Deleted {
    pub mapping: String,
    /// (table, rows deleted or soft-deleted, rows the database refused).
    pub tables: Vec<(String, u64, u64)>,
}

/// A row to delete: its key texts and its record.
struct Gone {
    row_key: String,
    record_key: String,
}

fn key_texts(row_key: &str) -> Vec<String> {
    serde_json::from_str(row_key).unwrap_or_default()
}

/// Carry the deletions of a mapping's succeeded pass over.
pub async fn carry(
    target: &dyn Target,
    mapping: &Mapping,
    summary: &RunSummary,
    opts: &RunOptions,
) -> Result<Deleted, RunError> {
    let mut out = Deleted {
        mapping: mapping.name.clone(),
        tables: Vec::new(),
    };
    let (Some(run_id), Some(pass)) = (summary.run_id, &summary.pass) else {
        return Ok(out);
    };
    if !mapping
        .tables
        .iter()
        .any(|t| t.deletes != DeletePolicy::Keep)
    {
        return Ok(out);
    }
    let tables: Vec<BoundTable> = bind(target, mapping)
        .await?
        .into_iter()
        .filter(|t| t.spec.deletes != DeletePolicy::Keep)
        .collect();
    // The records this pass processed (transformed and wrote), resumed or not.
    let processed = {
        let mut db = target.exec();
        digests::processed(&mut *db, &mapping.name, pass.pass_id)
            .await
            .map_err(ctx("reading the records a pass processed"))?
    };
    let mut read = summary.read_keys.as_deref().cloned().unwrap_or_default();
    read.extend(processed.iter().copied());
    // The keys the source holds now, where this pass did not rewrite every row:
    // a delta pass (a key-only scan of the source), or a pass that skipped the
    // records it read unchanged (their keys; a resumed pass did not read the
    // records before its checkpoint, so it reads the source's keys again).
    let present = match (pass.kind, &summary.seen) {
        (PassKind::Delta, _) => Some(source_keys(mapping).await?),
        (PassKind::Full, None) => None,
        (PassKind::Full, Some(_)) if summary.resumed_from.is_some() => {
            Some(all_keys(mapping, summary).await?)
        }
        (PassKind::Full, Some(seen)) => {
            let mut keys: HashSet<u64> = seen.keys().collect();
            keys.extend(processed.iter().copied());
            Some(keys)
        }
    };
    let mut plans = Vec::new();
    for t in &tables {
        let gone = find(target, mapping, t, pass.pass_id, present.as_ref(), &read).await?;
        let rows = target.count_rows(&t.spec.table).await?;
        let limit = opts
            .allow_deletes
            .unwrap_or_else(|| t.spec.max_deletes.limit(rows));
        if gone.len() as u64 > limit {
            let first: Vec<String> = gone
                .iter()
                .take(5)
                .map(|g| key_texts(&g.row_key).join(", "))
                .collect();
            return Err(RunError::DeletesRefused {
                mapping: mapping.name.clone(),
                reason: format!(
                    "this pass would delete {} of the {rows} rows of table {} (first keys: {}), more than its max_deletes {}{}; nothing was deleted. If the source really lost those records, run again with --allow-deletes {}",
                    gone.len(),
                    t.spec.table,
                    first.join("; "),
                    t.spec.max_deletes,
                    opts.allow_deletes
                        .map(|n| format!(" and --allow-deletes {n}"))
                        .unwrap_or_default(),
                    gone.len()
                ),
            });
        }
        plans.push((t, gone));
    }
    for (t, gone) in plans {
        let (done, refused) = apply(target, mapping, t, run_id, &gone, &processed).await?;
        if done + refused > 0 {
            info!(target: super::LOG_TARGET, mapping = %mapping.name, table = %t.spec.table, deleted = done, refused, "deletions carried over");
        }
        out.tables.push((t.spec.table.clone(), done, refused));
    }
    Ok(out)
}

/// The rows of `table` an earlier pass wrote that this pass no longer produces.
async fn find(
    target: &dyn Target,
    mapping: &Mapping,
    table: &BoundTable,
    pass_id: i64,
    present: Option<&HashSet<u64>>,
    read: &HashSet<u64>,
) -> Result<Vec<Gone>, RunError> {
    let c = ctx("finding the rows to delete");
    let mut gone = Vec::new();
    let mut after = String::new();
    let mut db = target.exec();
    loop {
        let rows = db
            .fetch(
                "SELECT row_key, record_key FROM cutover_rows
                 WHERE mapping = ? AND table_name = ? AND pass_id <> ? AND row_key > ?
                   AND record_key NOT IN (SELECT record_key FROM cutover_errors WHERE mapping = ? AND resolved_at IS NULL)
                 ORDER BY row_key LIMIT 5000",
                &[
                    Arg::Text(&mapping.name),
                    Arg::Text(&table.spec.table),
                    Arg::Int(pass_id),
                    Arg::Text(&after),
                    Arg::Text(&mapping.name),
                ],
            )
            .await
            .map_err(&c)?;
        let Some(last) = rows.last() else { break };
        after = last.text("row_key").map_err(&c)?;
        for r in &rows {
            let record_key = r.text("record_key").map_err(&c)?;
            let h = key_hash(&record_key);
            let is_gone = match present {
                None => true,
                Some(keys) => read.contains(&h) || !keys.contains(&h),
            };
            if is_gone {
                gone.push(Gone {
                    row_key: r.text("row_key").map_err(&c)?,
                    record_key,
                });
            }
        }
    }
    Ok(gone)
}

/// The value a soft delete sets, as SQL: the database's clock for `now()`,
/// else a parameter (PostgreSQL casts its text to the column's type).
fn soft_sql(d: Dialect, v: &SoftValue, declared: &str) -> String {
    match (v, d) {
        (SoftValue::Now, Dialect::Postgres) => "now()".into(),
        (SoftValue::Now, Dialect::Mysql) => "UTC_TIMESTAMP(6)".into(),
        (SoftValue::Now, Dialect::Sqlite) => "strftime('%Y-%m-%d %H:%M:%f', 'now')".into(),
        (_, Dialect::Postgres) if !declared.is_empty() => format!("?::text::{declared}"),
        _ => "?".into(),
    }
}

fn soft_args(v: &SoftValue, text: &mut String) -> Vec<Arg<'static>> {
    match v {
        SoftValue::Now => Vec::new(),
        SoftValue::Int(i) => vec![Arg::Int(*i)],
        SoftValue::Bool(b) => vec![Arg::Bool(*b)],
        SoftValue::Text(s) => {
            *text = s.clone();
            Vec::new()
        }
        SoftValue::Float(x) => {
            *text = x.to_string();
            Vec::new()
        }
    }
}

/// Delete (or soft-delete) the rows, a chunk per transaction; a chunk the
/// database refuses is retried row by row and refused rows become error rows.
async fn apply(
    target: &dyn Target,
    mapping: &Mapping,
    table: &BoundTable,
    run_id: i64,
    gone: &[Gone],
    processed: &HashSet<u64>,
) -> Result<(u64, u64), RunError> {
    // The soft-delete column's declared type (PostgreSQL binds its value as text).
    let soft_declared = match &table.spec.deletes {
        DeletePolicy::Soft { column, .. } => {
            let info = target.describe_table(&table.spec.table).await?;
            let col = info.as_ref().and_then(|i| {
                i.columns
                    .iter()
                    .find(|c| c.name.eq_ignore_ascii_case(column))
            });
            match col {
                Some(c) => c.declared.clone(),
                None => {
                    return Err(RunError::DeletesRefused {
                        mapping: mapping.name.clone(),
                        reason: format!(
                            "table {} has no column {column} for soft_delete; nothing was deleted",
                            table.spec.table
                        ),
                    })
                }
            }
        }
        _ => String::new(),
    };
    let soft_declared = soft_declared.as_str();
    let shadow = match mapping.undo {
        true => Some(journal::ensure_shadow(target, &table.spec.table).await?),
        false => None,
    };
    let shadow = shadow.as_ref();
    let (mut done, mut refused) = (0u64, 0u64);
    for chunk in gone.chunks(CHUNK) {
        match delete_chunk(
            target,
            mapping,
            table,
            soft_declared,
            run_id,
            chunk,
            shadow,
            processed,
        )
        .await
        {
            Ok(n) => done += n,
            Err(f) if f.data && chunk.len() > 1 => {
                for one in chunk {
                    match delete_chunk(
                        target,
                        mapping,
                        table,
                        soft_declared,
                        run_id,
                        std::slice::from_ref(one),
                        shadow,
                        processed,
                    )
                    .await
                    {
                        Ok(n) => done += n,
                        Err(f) if f.data => {
                            refused += 1;
                            warn!(target: super::LOG_TARGET, mapping = %mapping.name, table = %table.spec.table, key = %one.row_key, "the database refused to delete a row: {}", f.message);
                            refuse(target, mapping, table, run_id, one, &f).await?;
                        }
                        Err(f) => return Err(f.into_target("deleting rows").into()),
                    }
                }
            }
            Err(f) if f.data => {
                refused += 1;
                refuse(target, mapping, table, run_id, &chunk[0], &f).await?;
            }
            Err(f) => return Err(f.into_target("deleting rows").into()),
        }
    }
    Ok((done, refused))
}

async fn refuse(
    target: &dyn Target,
    mapping: &Mapping,
    table: &BoundTable,
    run_id: i64,
    g: &Gone,
    f: &DbFailure,
) -> Result<(), RunError> {
    let err = ErrorRow {
        record_key: g.record_key.clone(),
        position: Position::default(),
        stage: Stage::Load,
        column: None,
        message: format!(
            "deleting row ({}) of table {} (its record is gone from the source): {}",
            key_texts(&g.row_key).join(", "),
            table.spec.table,
            f.message
        ),
        record: serde_json::json!({ "table": table.spec.table, "key": key_texts(&g.row_key) }),
    };
    let mut tx = target.begin().await?;
    crate::tracking::batch::insert_errors(tx.exec(), run_id, &mapping.name, &[&err])
        .await
        .map_err(ctx("recording a refused deletion"))?;
    tx.commit()
        .await
        .map_err(ctx("recording a refused deletion"))?;
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn delete_chunk(
    target: &dyn Target,
    mapping: &Mapping,
    table: &BoundTable,
    soft_declared: &str,
    run_id: i64,
    chunk: &[Gone],
    shadow: Option<&journal::Shadow>,
    processed: &HashSet<u64>,
) -> Result<u64, DbFailure> {
    let d = target.dialect();
    let keys: Vec<Vec<String>> = chunk.iter().map(|g| key_texts(&g.row_key)).collect();
    let t = quote_table(d, &table.spec.table);
    let mut text = String::new();
    let (sql, fixed): (String, Vec<Arg>) = match &table.spec.deletes {
        DeletePolicy::Soft { column, value } => (
            format!(
                "UPDATE {t} SET {} = {} WHERE {}",
                quote_ident(d, column),
                soft_sql(d, value, soft_declared),
                key_in(d, table, chunk.len())
            ),
            soft_args(value, &mut text),
        ),
        _ => (
            format!("DELETE FROM {t} WHERE {}", key_in(d, table, chunk.len())),
            Vec::new(),
        ),
    };
    let mut args: Vec<Arg> = fixed;
    if matches!(
        &table.spec.deletes,
        DeletePolicy::Soft {
            value: SoftValue::Text(_) | SoftValue::Float(_),
            ..
        }
    ) {
        args.push(Arg::Text(&text));
    }
    let mut tx = target.begin().await.map_err(|e| DbFailure {
        data: false,
        message: e.to_string(),
        column: None,
    })?;
    for k in &keys {
        args.extend(k.iter().map(|s| Arg::Text(s)));
    }
    if let Some(sh) = shadow {
        // The undo journal: the rows as they are, before they go.
        let soft = matches!(&table.spec.deletes, DeletePolicy::Soft { .. });
        let id = journal::next_id(run_id);
        let key_args: Vec<Vec<Arg>> = keys
            .iter()
            .map(|k| k.iter().map(|s| Arg::Text(s)).collect())
            .collect();
        let copied = journal::copy_before(
            tx.exec(),
            table,
            sh,
            id,
            if soft { "u" } else { "d" },
            &key_args,
        )
        .await?;
        let list: Vec<serde_json::Value> = chunk
            .iter()
            .zip(&keys)
            .map(|(g, k)| serde_json::json!([k, g.record_key]))
            .collect();
        journal::save_entry(
            tx.exec(),
            &mapping.name,
            &journal::Entry {
                id,
                run_id,
                table_name: table.spec.table.clone(),
                kind: if soft { "soft" } else { "delete" }.into(),
                copied: copied as i64,
                keys: serde_json::Value::Array(list).to_string(),
                after: None,
            },
        )
        .await?;
    }
    let n = tx.exec().execute(&sql, &args).await?;
    let ledger = format!(
        "DELETE FROM cutover_rows WHERE mapping = ? AND table_name = ? AND row_key IN ({})",
        vec!["?"; chunk.len()].join(", ")
    );
    let mut largs = vec![Arg::Text(&mapping.name), Arg::Text(&table.spec.table)];
    largs.extend(chunk.iter().map(|g| Arg::Text(&g.row_key)));
    tx.exec().execute(&ledger, &largs).await?;
    // A record whose rows go is processed again when it comes back (a record
    // this pass processed lost only rows it no longer produces: its digest stays).
    let mut records: Vec<u64> = chunk
        .iter()
        .map(|g| key_hash(&g.record_key))
        .filter(|h| !processed.contains(h))
        .collect();
    records.sort_unstable();
    records.dedup();
    digests::forget(tx.exec(), &mapping.name, &records).await?;
    crate::tracking::batch::count_deletes(tx.exec(), run_id, &table.spec.table, n as i64).await?;
    tx.commit().await?;
    Ok(n)
}
