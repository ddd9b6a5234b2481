//! The tracking writes a batch makes inside its own transaction (error rows,
//! resolved errors, key map, counts and checkpoint), the savepoints the batch
//! writer splits a batch under, and the creation of the tables; written once
//! for all dialects over [`Exec`]. They return [`DbFailure`], which the batch
//! writer classifies (bad data splits the batch, a lost connection retries).

use super::store::{tuples, upsert, Set, ROWS_PER_STATEMENT};
use super::{now_text, Progress};
use crate::db::{ctx, Arg, DbFailure, Exec, TargetError};
use crate::dialect::Dialect;
use crate::transform::ErrorRow;
use std::collections::HashMap;

/// Create the tracking tables (in a transaction: concurrent first runs of
/// different mappings on PostgreSQL serialise on a transaction lock).
pub async fn create_tables(db: &mut dyn Exec) -> Result<(), TargetError> {
    let c = ctx("creating the tracking tables");
    if db.dialect() == Dialect::Postgres {
        // Where every table and index is there already, take no lock at all:
        // `CREATE INDEX IF NOT EXISTS` takes a SHARE lock on its table even
        // when the index exists, and a run starting next to a running one
        // would then deadlock with its batch transaction (which holds the
        // journal's rows and waits for `cutover_runs`).
        let names: Vec<&str> = super::ddl::statements(Dialect::Postgres)
            .iter()
            .filter_map(|s| s.split("IF NOT EXISTS ").nth(1))
            .filter_map(|rest| rest.split_whitespace().next())
            .collect();
        let check = names
            .iter()
            .map(|n| format!("to_regclass('{n}') IS NOT NULL"))
            .collect::<Vec<_>>()
            .join(" AND ");
        let row = db
            .fetch_one(&format!("SELECT ({check}) AS ok"), &[])
            .await
            .map_err(&c)?;
        if row.is_some_and(|r| r.bool("ok").unwrap_or(false)) {
            return Ok(());
        }
        db.execute(
            "SELECT pg_advisory_xact_lock(hashtext('cutover:tracking-ddl'))",
            &[],
        )
        .await
        .map_err(&c)?;
    }
    for stmt in super::ddl::statements(db.dialect()) {
        db.execute(stmt, &[]).await.map_err(&c)?;
    }
    Ok(())
}

/// The savepoint a batch writes its sets under (the same SQL everywhere).
pub async fn savepoint(db: &mut dyn Exec) -> Result<(), DbFailure> {
    db.execute("SAVEPOINT cutover_batch", &[]).await.map(drop)
}

pub async fn rollback_savepoint(db: &mut dyn Exec) -> Result<(), DbFailure> {
    db.execute("ROLLBACK TO SAVEPOINT cutover_batch", &[])
        .await?;
    release_savepoint(db).await
}

pub async fn release_savepoint(db: &mut dyn Exec) -> Result<(), DbFailure> {
    db.execute("RELEASE SAVEPOINT cutover_batch", &[])
        .await
        .map(drop)
}

pub async fn insert_errors(
    db: &mut dyn Exec,
    run_id: i64,
    mapping: &str,
    errors: &[&ErrorRow],
) -> Result<(), DbFailure> {
    let now = now_text();
    for chunk in errors.chunks(ROWS_PER_STATEMENT) {
        let sql = format!(
            "INSERT INTO cutover_errors (run_id, mapping, record_key, position, stage, column_name, message, record, created_at) VALUES {}",
            tuples(chunk.len(), 9)
        );
        let texts: Vec<[String; 3]> = chunk
            .iter()
            .map(|e| {
                [
                    e.position.to_json(),
                    e.stage.to_string(),
                    e.record.to_string(),
                ]
            })
            .collect();
        let mut args = Vec::with_capacity(chunk.len() * 9);
        for (e, t) in chunk.iter().zip(&texts) {
            args.extend([
                Arg::Int(run_id),
                Arg::Text(mapping),
                Arg::Text(&e.record_key),
                Arg::Text(&t[0]),
                Arg::Text(&t[1]),
                Arg::OptText(e.column.as_deref()),
                Arg::Text(&e.message),
                Arg::Text(&t[2]),
                Arg::Text(&now),
            ]);
        }
        db.execute(&sql, &args).await?;
    }
    Ok(())
}

/// Set `resolved_at` on the unresolved errors of these record keys.
pub async fn resolve_errors(
    db: &mut dyn Exec,
    mapping: &str,
    keys: &[&str],
) -> Result<(), DbFailure> {
    let now = now_text();
    for chunk in keys.chunks(ROWS_PER_STATEMENT) {
        let sql = format!(
            "UPDATE cutover_errors SET resolved_at = ? WHERE mapping = ? AND resolved_at IS NULL AND record_key IN ({})",
            vec!["?"; chunk.len()].join(", ")
        );
        let mut args = vec![Arg::Text(&now), Arg::Text(mapping)];
        args.extend(chunk.iter().map(|k| Arg::Text(k)));
        db.execute(&sql, &args).await?;
    }
    Ok(())
}

/// The rows a batch wrote into tables whose deleted records are carried over
/// (`deletes = "delete" | "soft"`): (table, row key, record key), stamped with
/// the pass, so that a later complete pass finds the rows it no longer produces.
pub async fn save_rows(
    db: &mut dyn Exec,
    mapping: &str,
    pass_id: i64,
    rows: &[(&str, String, &str)],
) -> Result<(), DbFailure> {
    let mut at: HashMap<(&str, &str), usize> = HashMap::with_capacity(rows.len());
    let mut folded: Vec<(&str, &str, &str)> = Vec::with_capacity(rows.len());
    for (t, k, r) in rows {
        match at.get(&(*t, k.as_str())) {
            Some(&i) => folded[i].2 = r,
            None => {
                at.insert((t, k.as_str()), folded.len());
                folded.push((t, k.as_str(), r));
            }
        }
    }
    let tail = upsert(
        db.dialect(),
        "cutover_rows",
        &["mapping", "table_name", "row_key"],
        &[("record_key", Set::Replace), ("pass_id", Set::Replace)],
    );
    for chunk in folded.chunks(ROWS_PER_STATEMENT) {
        let sql = format!(
            "INSERT INTO cutover_rows (mapping, table_name, row_key, record_key, pass_id) VALUES {} {tail}",
            tuples(chunk.len(), 5)
        );
        let mut args = Vec::with_capacity(chunk.len() * 5);
        for (t, k, r) in chunk {
            args.extend([
                Arg::Text(mapping),
                Arg::Text(t),
                Arg::Text(k),
                Arg::Text(r),
                Arg::Int(pass_id),
            ]);
        }
        db.execute(&sql, &args).await?;
    }
    Ok(())
}

/// Record (legacy key, new key) pairs; the last pair of a legacy key wins.
pub async fn save_keymap(
    db: &mut dyn Exec,
    mapping: &str,
    pairs: &[(&str, &str)],
) -> Result<(), DbFailure> {
    // Fold duplicates, keeping first-seen order: an upsert cannot touch a row
    // twice in one statement on PostgreSQL.
    let mut at: HashMap<&str, usize> = HashMap::with_capacity(pairs.len());
    let mut folded: Vec<(&str, &str)> = Vec::with_capacity(pairs.len());
    for &(l, n) in pairs {
        match at.get(l) {
            Some(&i) => folded[i].1 = n,
            None => {
                at.insert(l, folded.len());
                folded.push((l, n));
            }
        }
    }
    let d = db.dialect();
    let mut tail = upsert(
        d,
        "cutover_keymap",
        &["mapping", "legacy_key"],
        &[("new_key", Set::Replace)],
    );
    if d != Dialect::Mysql {
        // Leave rows that already hold the key alone (no dead row versions).
        tail.push_str(" WHERE cutover_keymap.new_key <> excluded.new_key");
    }
    for chunk in folded.chunks(ROWS_PER_STATEMENT) {
        let sql = format!(
            "INSERT INTO cutover_keymap (mapping, legacy_key, new_key) VALUES {} {tail}",
            tuples(chunk.len(), 3)
        );
        let mut args = Vec::with_capacity(chunk.len() * 3);
        for (l, n) in chunk {
            args.extend([Arg::Text(mapping), Arg::Text(l), Arg::Text(n)]);
        }
        db.execute(&sql, &args).await?;
    }
    Ok(())
}

/// Add a batch's counts to its run and tables, move the checkpoint, save the
/// progress samples and touch the lock row's heartbeat, all in the batch's
/// transaction.
pub async fn save_progress(db: &mut dyn Exec, p: &Progress) -> Result<(), DbFailure> {
    let d = db.dialect();
    let now = now_text();
    let rows_written: i64 = p.tables.iter().map(|t| t.1).sum();
    let rows_unchanged: i64 = p.tables.iter().map(|t| t.2).sum();
    // Known only where every table tells inserts from updates.
    let rows_inserted: Option<i64> = p.tables.iter().map(|t| t.3).sum();
    db.execute(
        "UPDATE cutover_runs SET records_read = records_read + ?, records_written = records_written + ?,
           records_filtered = records_filtered + ?, records_failed = records_failed + ?,
           rows_written = rows_written + ?, rows_unchanged = rows_unchanged + ?,
           rows_inserted = CASE WHEN ? IS NULL THEN rows_inserted ELSE COALESCE(rows_inserted, 0) + ? END,
           heartbeat_at = ?
         WHERE id = ?",
        &[
            Arg::Int(p.read),
            Arg::Int(p.written),
            Arg::Int(p.filtered),
            Arg::Int(p.failed),
            Arg::Int(rows_written),
            Arg::Int(rows_unchanged),
            Arg::OptInt(rows_inserted),
            Arg::OptInt(rows_inserted),
            Arg::Text(&now),
            Arg::Int(p.run_id),
        ],
    )
    .await?;
    let tables_tail = upsert(
        d,
        "cutover_run_tables",
        &["run_id", "table_name"],
        &[
            ("rows_written", Set::Add),
            ("rows_unchanged", Set::Add),
            ("rows_inserted", Set::AddKnown),
        ],
    );
    let tables_sql = format!(
        "INSERT INTO cutover_run_tables (run_id, table_name, rows_written, rows_unchanged, rows_inserted) VALUES (?, ?, ?, ?, ?) {tables_tail}"
    );
    for (t, w, u, ins) in &p.tables {
        db.execute(
            &tables_sql,
            &[
                Arg::Int(p.run_id),
                Arg::Text(t),
                Arg::Int(*w),
                Arg::Int(*u),
                Arg::OptInt(*ins),
            ],
        )
        .await?;
    }
    if let Some(pos) = &p.position {
        let tail = upsert(
            d,
            "cutover_checkpoints",
            &["mapping", "shard"],
            &[
                ("run_id", Set::Replace),
                ("position", Set::Replace),
                ("records_committed", Set::Replace),
                ("mapping_checksum", Set::Replace),
                ("source_fingerprint", Set::Replace),
                ("updated_at", Set::Replace),
            ],
        );
        let sql = format!(
            "INSERT INTO cutover_checkpoints (mapping, shard, run_id, position, records_committed, mapping_checksum, source_fingerprint, updated_at)
             VALUES (?, 0, ?, ?, ?, ?, ?, ?) {tail}"
        );
        let pos = pos.to_json();
        db.execute(
            &sql,
            &[
                Arg::Text(&p.mapping),
                Arg::Int(p.run_id),
                Arg::Text(&pos),
                Arg::Int(p.records_committed),
                Arg::Text(&p.mapping_checksum),
                Arg::Text(&p.source_fingerprint),
                Arg::Text(&now),
            ],
        )
        .await?;
    }
    if !p.samples.is_empty() {
        super::samples::save_samples(db, p.run_id, &p.samples).await?;
    }
    db.execute(
        "UPDATE cutover_locks SET heartbeat_at = ? WHERE mapping = ?",
        &[Arg::Text(&now), Arg::Text(&p.mapping)],
    )
    .await?;
    Ok(())
}

/// Count rows a run deleted from a table (in the transaction that deletes them).
pub async fn count_deletes(
    db: &mut dyn Exec,
    run_id: i64,
    table: &str,
    n: i64,
) -> Result<(), DbFailure> {
    let tail = upsert(
        db.dialect(),
        "cutover_run_deletes",
        &["run_id", "table_name"],
        &[("rows_deleted", Set::Add)],
    );
    db.execute(
        &format!("INSERT INTO cutover_run_deletes (run_id, table_name, rows_deleted) VALUES (?, ?, ?) {tail}"),
        &[Arg::Int(run_id), Arg::Text(table), Arg::Int(n)],
    )
    .await?;
    Ok(())
}
