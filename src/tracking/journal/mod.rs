//! The undo journal: what each run changed, kept so that `cutover undo` can put
//! the target back exactly as it was before a run.
//!
//! - Before a batch writes a table, the rows it is about to overwrite are copied
//!   inside the database into a shadow table (`cutover_before_<table>`: the
//!   table's own columns and types, plus `cutover_journal` and `cutover_action`),
//!   so that every column comes back exactly as it was; rows the upsert left
//!   unchanged are pruned again after it.
//! - One `cutover_journal` row per table and savepoint set: the keys the set
//!   inserted, and per row written a hash of each column's value as written (in
//!   verify's normal form), so that undo can tell a row changed since by
//!   anything else (a conflict) and name its columns.
//! - Rows deleted by a pass (`deletes = "delete" | "soft"`) go to the shadow
//!   table with the action `d` (or `u` for a soft delete) before they are deleted.
//! - Key-map entries a batch added and error rows it resolved: one journal row each.
//! - `cutover_undo_runs`: per run, the checkpoint before it and whether it kept a
//!   journal; `undone_by` once an undo took it back.
//!
//! Every write here happens in the transaction of the batch (or deletion chunk)
//! it describes: committed together, or not at all.

use crate::db::{Arg, DbFailure, Exec, TargetError};
use crate::dialect::{quote_ident, quote_table, Dialect};
use crate::sink::Target;
use crate::transform::BoundTable;
use crate::value::{comparable_text, norm, SqlValue};
use std::sync::atomic::{AtomicI64, Ordering};

mod runs;
pub use runs::{all_undo_runs, start_run, undo_runs, undo_state, UndoRun};

/// A table's shadow table and the columns it copies (every column of the table).
#[derive(Debug, Clone)]
pub struct Shadow {
    /// The shadow table's name (schema-qualified like its table).
    pub name: String,
    /// Every column of the target table, unquoted, in its order.
    pub columns: Vec<String>,
}

/// The name of a table's shadow table: in the table's schema, `cutover_before_`
/// and the table's name (cut, with a hash, where the name would be too long).
pub fn shadow_name(table: &str) -> String {
    let (schema, base) = match table.rsplit_once('.') {
        Some((s, b)) => (Some(s), b),
        None => (None, table),
    };
    let mut name = format!("cutover_before_{base}");
    if name.len() > 60 {
        let h = xxhash_rust::xxh3::xxh3_64(base.as_bytes());
        let cut: String = name.chars().take(40).collect();
        name = format!("{cut}_{:016x}", h);
    }
    match schema {
        Some(s) => format!("{s}.{name}"),
        None => name,
    }
}

/// Create the shadow table of `table` where it is missing, and add columns the
/// table gained since (a migration). Runs outside a batch transaction: MySQL
/// commits any open transaction on DDL.
pub async fn ensure_shadow(target: &dyn Target, table: &str) -> Result<Shadow, TargetError> {
    let d = target.dialect();
    let name = shadow_name(table);
    let c = crate::db::ctx("creating the undo journal's shadow table");
    let info = target
        .describe_table(table)
        .await?
        .ok_or_else(|| TargetError::Db {
            context: "creating the undo journal's shadow table".into(),
            message: format!("table {table} does not exist"),
            retryable: false,
        })?;
    let (qs, qt) = (quote_table(d, &name), quote_table(d, table));
    match target.describe_table(&name).await? {
        None => {
            let sql = match d {
                Dialect::Postgres => format!(
                    "CREATE TABLE IF NOT EXISTS {qs} AS SELECT CAST(0 AS BIGINT) AS cutover_journal, CAST('' AS TEXT) AS cutover_action, t.* FROM {qt} t WITH NO DATA"
                ),
                Dialect::Sqlite => format!(
                    "CREATE TABLE IF NOT EXISTS {qs} AS SELECT CAST(0 AS INTEGER) AS cutover_journal, CAST('' AS TEXT) AS cutover_action, t.* FROM {qt} t WHERE 0"
                ),
                Dialect::Mysql => format!(
                    "CREATE TABLE IF NOT EXISTS {qs} (cutover_journal BIGINT, cutover_action VARCHAR(1), INDEX (cutover_journal)) AS SELECT 0 AS cutover_journal, '' AS cutover_action, t.* FROM {qt} t WHERE 1 = 0"
                ),
            };
            let mut db = target.exec();
            db.execute(&sql, &[]).await.map_err(&c)?;
            if d != Dialect::Mysql {
                let base = name.rsplit('.').next().unwrap_or(&name);
                let idx = quote_ident(d, &format!("{base}_j"));
                db.execute(
                    &format!("CREATE INDEX IF NOT EXISTS {idx} ON {qs} (cutover_journal)"),
                    &[],
                )
                .await
                .map_err(&c)?;
            }
        }
        Some(shadow) => {
            for col in &info.columns {
                if shadow.column(&col.name).is_none() {
                    let sql = format!(
                        "ALTER TABLE {qs} ADD COLUMN {} {}",
                        quote_ident(d, &col.name),
                        col.declared
                    );
                    target.exec().execute(&sql, &[]).await.map_err(&c)?;
                }
            }
        }
    }
    Ok(Shadow {
        name,
        columns: info.columns.iter().map(|c| c.name.clone()).collect(),
    })
}

static SEQ: AtomicI64 = AtomicI64::new(1);

/// A new journal id for a run: the run in the high 32 bits, a counter of this
/// process below (ids grow in the order batches write).
pub fn next_id(run_id: i64) -> i64 {
    (run_id << 32) | (SEQ.fetch_add(1, Ordering::Relaxed) & 0xffff_ffff)
}

/// Per column of a row as written, a 64-bit hash of its normal form (the one
/// `verify` compares), as 16 hex digits each: what undo expects to find.
pub fn row_hashes(table: &BoundTable, vals: &[SqlValue]) -> String {
    let mut out = String::with_capacity(16 * vals.len());
    for (i, v) in vals.iter().enumerate() {
        let n = norm(&table.types[i], comparable_text(v).as_deref());
        push_hex(&mut out, cell_hash(n.as_deref()));
    }
    out
}

/// The same hashes of a row read back as text (`sink::fetch_rows`).
pub fn text_hashes(table: &BoundTable, cells: &[Option<String>]) -> String {
    let mut out = String::with_capacity(16 * cells.len());
    for (i, c) in cells.iter().enumerate() {
        let n = norm(&table.types[i], c.as_deref());
        push_hex(&mut out, cell_hash(n.as_deref()));
    }
    out
}

/// Append a hash as 16 hex digits (no string per cell).
fn push_hex(out: &mut String, h: u64) {
    use std::fmt::Write;
    let _ = write!(out, "{h:016x}");
}

fn cell_hash(n: Option<&str>) -> u64 {
    match n {
        None => xxhash_rust::xxh3::xxh3_64(b"\x00null"),
        Some(s) => xxhash_rust::xxh3::xxh3_64_with_seed(s.as_bytes(), 1),
    }
}

/// The columns whose hashes differ between two hash strings.
pub fn differing_columns(table: &BoundTable, a: &str, b: &str) -> Vec<String> {
    table
        .column_names()
        .enumerate()
        .filter(|(i, _)| a.get(i * 16..i * 16 + 16) != b.get(i * 16..i * 16 + 16))
        .map(|(_, n)| n.to_string())
        .collect()
}

/// A row's key texts (the `cutover_rows` form, before JSON).
pub fn key_texts(table: &BoundTable, vals: &[SqlValue]) -> Vec<String> {
    table.key_idx.iter().map(|&i| vals[i].key_text()).collect()
}

fn quoted_cols(d: Dialect, cols: &[String]) -> String {
    cols.iter()
        .map(|c| quote_ident(d, c))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Copy the rows of `table` with these keys into its shadow table under journal
/// id `id` with `action` (`u` updated, `d` deleted); returns the rows copied.
pub async fn copy_before(
    db: &mut dyn Exec,
    table: &BoundTable,
    shadow: &Shadow,
    id: i64,
    action: &str,
    keys: &[Vec<Arg<'_>>],
) -> Result<u64, DbFailure> {
    let d = db.dialect();
    let cols = quoted_cols(d, &shadow.columns);
    let per = (30_000 / table.key_idx.len().max(1)).clamp(1, 500);
    let mut n = 0;
    for chunk in keys.chunks(per) {
        let sql = format!(
            "INSERT INTO {} (cutover_journal, cutover_action, {cols}) SELECT ?, ?, {cols} FROM {} WHERE {}",
            quote_table(d, &shadow.name),
            quote_table(d, &table.spec.table),
            crate::sink::key_in(d, table, chunk.len())
        );
        let mut args = vec![Arg::Int(id), Arg::Text(action)];
        for k in chunk {
            args.extend(k.iter().cloned());
        }
        n += db.execute(&sql, &args).await?;
    }
    Ok(n)
}

/// The keys (normal form, [`BoundTable::row_key`]) of the rows copied under `id`.
pub async fn copied_keys(
    db: &mut dyn Exec,
    table: &BoundTable,
    shadow: &Shadow,
    id: i64,
) -> Result<std::collections::HashSet<String>, DbFailure> {
    let d = db.dialect();
    let cast = |c: String| match d {
        Dialect::Postgres => format!("{c}::text"),
        Dialect::Mysql => format!("CAST({c} AS CHAR)"),
        Dialect::Sqlite => format!("CAST({c} AS TEXT)"),
    };
    let cols: Vec<String> = table
        .spec
        .key
        .iter()
        .map(|k| cast(quote_ident(d, k)))
        .collect();
    let sql = format!(
        "SELECT {} FROM {} WHERE cutover_journal = ?",
        cols.join(", "),
        quote_table(d, &shadow.name)
    );
    let rows = db.fetch(&sql, &[Arg::Int(id)]).await?;
    let ncols = table.spec.columns.len();
    let mut out = std::collections::HashSet::with_capacity(rows.len());
    for r in &rows {
        let mut full: Vec<Option<String>> = vec![None; ncols];
        for (j, &i) in table.key_idx.iter().enumerate() {
            full[i] = r.at(j).and_then(cell_text);
        }
        out.insert(table.row_key(&full));
    }
    Ok(out)
}

fn cell_text(c: &crate::db::Cell) -> Option<String> {
    match c {
        crate::db::Cell::Null => None,
        crate::db::Cell::Text(s) => Some(s.clone()),
        crate::db::Cell::Int(i) => Some(i.to_string()),
        crate::db::Cell::Float(f) => Some(f.to_string()),
        crate::db::Cell::Bool(b) => Some(b.to_string()),
    }
}

/// The null-safe equality of two columns in each dialect.
fn same(d: Dialect, a: &str, b: &str) -> String {
    match d {
        Dialect::Postgres => format!("{a}::text IS NOT DISTINCT FROM {b}::text"),
        Dialect::Mysql => format!("{a} <=> {b}"),
        Dialect::Sqlite => format!("{a} IS {b}"),
    }
}

/// Drop the copies under `id` of rows the upsert left as they were (every
/// mapped column equal): nothing to restore there. Returns the copies dropped.
pub async fn prune_unchanged(
    db: &mut dyn Exec,
    table: &BoundTable,
    shadow: &Shadow,
    id: i64,
) -> Result<u64, DbFailure> {
    let d = db.dialect();
    let s = quote_table(d, &shadow.name);
    let t = quote_table(d, &table.spec.table);
    // Keys by `=` (never NULL; the table's key index finds the row), the other
    // columns null-safe.
    let conds: Vec<String> = table
        .column_names()
        .enumerate()
        .map(|(i, c)| {
            let q = quote_ident(d, c);
            let (a, b) = (format!("{t}.{q}"), format!("{s}.{q}"));
            if table.key_idx.contains(&i) {
                format!("{a} = {b}")
            } else {
                same(d, &a, &b)
            }
        })
        .collect();
    let sql = format!(
        "DELETE FROM {s} WHERE cutover_journal = ? AND EXISTS (SELECT 1 FROM {t} WHERE {})",
        conds.join(" AND ")
    );
    db.execute(&sql, &[Arg::Int(id)]).await
}

/// One entry of `cutover_journal`.
#[derive(Debug, Clone)]
pub struct Entry {
    pub id: i64,
    pub run_id: i64,
    pub table_name: String,
    /// `write`, `delete`, `soft`, `keymap` or `resolved`.
    pub kind: String,
    /// Rows copied into the shadow table under this id.
    pub copied: i64,
    /// JSON: the keys inserted (write), deleted (delete/soft: with the record
    /// key), the legacy keys added (keymap), the error ids resolved (resolved).
    pub keys: String,
    /// JSON: `[[key texts], hashes]` of every row written (write).
    pub after: Option<String>,
}

pub async fn save_entry(db: &mut dyn Exec, mapping: &str, e: &Entry) -> Result<(), DbFailure> {
    db.execute(
        "INSERT INTO cutover_journal (id, run_id, mapping, table_name, kind, copied, row_keys, after_hashes) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        &[
            Arg::Int(e.id),
            Arg::Int(e.run_id),
            Arg::Text(mapping),
            Arg::Text(&e.table_name),
            Arg::Text(&e.kind),
            Arg::Int(e.copied),
            Arg::Text(&e.keys),
            Arg::OptText(e.after.as_deref()),
        ],
    )
    .await
    .map(drop)
}

fn entry(r: &crate::db::Row) -> Result<Entry, DbFailure> {
    Ok(Entry {
        id: r.int("id")?,
        run_id: r.int("run_id")?,
        table_name: r.text("table_name")?,
        kind: r.text("kind")?,
        copied: r.int("copied")?,
        keys: r.text("row_keys")?,
        after: r.opt_text("after_hashes")?,
    })
}

/// The journal entries of these runs, newest first, `limit` at a time below
/// `before`. The ids are found first (the index answers that, without reading
/// the entries' large columns to sort them), then their rows by key.
pub async fn entries(
    db: &mut dyn Exec,
    mapping: &str,
    first_run: i64,
    before: i64,
    limit: i64,
) -> Result<Vec<Entry>, DbFailure> {
    let ids = db
        .fetch(
            &format!("SELECT id FROM cutover_journal WHERE mapping = ? AND run_id >= ? AND id < ? ORDER BY id DESC LIMIT {limit}"),
            &[Arg::Text(mapping), Arg::Int(first_run), Arg::Int(before)],
        )
        .await?
        .iter()
        .map(|r| r.int("id"))
        .collect::<Result<Vec<i64>, _>>()?;
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let list = ids
        .iter()
        .map(i64::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    let rows = db
        .fetch(
            &format!("SELECT id, run_id, table_name, kind, copied, row_keys, after_hashes FROM cutover_journal WHERE id IN ({list}) ORDER BY id DESC"),
            &[],
        )
        .await?;
    rows.iter().map(entry).collect()
}

/// Keys of the key map among `legacy` that are not recorded yet.
pub async fn new_keymap_keys(
    db: &mut dyn Exec,
    mapping: &str,
    legacy: &[&str],
) -> Result<Vec<String>, DbFailure> {
    let mut known = std::collections::HashSet::new();
    for chunk in legacy.chunks(500) {
        let sql = format!(
            "SELECT legacy_key FROM cutover_keymap WHERE mapping = ? AND legacy_key IN ({})",
            vec!["?"; chunk.len()].join(", ")
        );
        let mut args = vec![Arg::Text(mapping)];
        args.extend(chunk.iter().map(|k| Arg::Text(k)));
        for r in db.fetch(&sql, &args).await? {
            known.insert(r.text("legacy_key")?);
        }
    }
    let mut out: Vec<String> = legacy
        .iter()
        .filter(|k| !known.contains(**k))
        .map(|k| k.to_string())
        .collect();
    out.dedup();
    Ok(out)
}

/// Ids of the unresolved error rows of these record keys (about to be resolved).
pub async fn unresolved_ids(
    db: &mut dyn Exec,
    mapping: &str,
    keys: &[&str],
) -> Result<Vec<i64>, DbFailure> {
    let mut out = Vec::new();
    for chunk in keys.chunks(500) {
        let sql = format!(
            "SELECT id FROM cutover_errors WHERE mapping = ? AND resolved_at IS NULL AND record_key IN ({})",
            vec!["?"; chunk.len()].join(", ")
        );
        let mut args = vec![Arg::Text(mapping)];
        args.extend(chunk.iter().map(|k| Arg::Text(k)));
        for r in db.fetch(&sql, &args).await? {
            out.push(r.int("id")?);
        }
    }
    Ok(out)
}

/// What [`before`] found: the journal id and the rows the set inserts.
pub struct Before {
    id: i64,
    copied: u64,
    /// Indexes (in the rows written) of the rows that did not exist.
    inserted: Vec<usize>,
}

/// The normal-form key of a row about to be written.
fn written_key(table: &BoundTable, vals: &[SqlValue]) -> String {
    let texts: Vec<Option<String>> = vals.iter().map(comparable_text).collect();
    table.row_key(&texts)
}

/// Before a set's upsert of `table`: copy the rows it will overwrite into the
/// shadow table, and find which rows are new.
pub async fn before(
    db: &mut dyn Exec,
    table: &BoundTable,
    shadow: &Shadow,
    run_id: i64,
    rows: &[&[SqlValue]],
) -> Result<Before, DbFailure> {
    let id = next_id(run_id);
    let keys: Vec<Vec<Arg>> = rows
        .iter()
        .map(|r| table.key_idx.iter().map(|&i| Arg::Value(&r[i])).collect())
        .collect();
    let copied = copy_before(db, table, shadow, id, "u", &keys).await?;
    let inserted: Vec<usize> = if copied == 0 {
        (0..rows.len()).collect()
    } else if copied as usize >= rows.len() {
        Vec::new()
    } else {
        let found = copied_keys(db, table, shadow, id).await?;
        (0..rows.len())
            .filter(|&i| !found.contains(&written_key(table, rows[i])))
            .collect()
    };
    Ok(Before {
        id,
        copied,
        inserted,
    })
}

/// After the upsert: drop the copies of rows it left unchanged and record the
/// set's journal entry (keys inserted, hashes of the rows it left).
pub async fn after(
    db: &mut dyn Exec,
    table: &BoundTable,
    shadow: &Shadow,
    mapping: &str,
    b: Before,
    rows: &[&[SqlValue]],
    changed: u64,
) -> Result<(), DbFailure> {
    let updated = changed.saturating_sub(b.inserted.len() as u64);
    let mut copied = b.copied;
    if copied > updated {
        copied -= prune_unchanged(db, table, shadow, b.id).await?;
    }
    // The rows undo will touch: those inserted and those it restores.
    let restored: Option<std::collections::HashSet<String>> = if copied == 0 {
        Some(Default::default())
    } else if copied == b.copied {
        None
    } else {
        Some(copied_keys(db, table, shadow, b.id).await?)
    };
    let is_new: std::collections::HashSet<usize> = b.inserted.iter().copied().collect();
    let mut after = Vec::new();
    for (i, r) in rows.iter().enumerate() {
        let keep = is_new.contains(&i)
            || match &restored {
                None => true,
                Some(set) => set.contains(&written_key(table, r)),
            };
        if keep {
            after.push(serde_json::json!([
                key_texts(table, r),
                row_hashes(table, r)
            ]));
        }
    }
    if after.is_empty() {
        return Ok(());
    }
    let inserted: Vec<Vec<String>> = b
        .inserted
        .iter()
        .map(|&i| key_texts(table, rows[i]))
        .collect();
    save_entry(
        db,
        mapping,
        &Entry {
            id: b.id,
            run_id: b.id >> 32,
            table_name: table.spec.table.clone(),
            kind: "write".into(),
            copied: copied as i64,
            keys: serde_json::to_string(&inserted).unwrap_or_default(),
            after: Some(serde_json::Value::Array(after).to_string()),
        },
    )
    .await
}

/// A journal entry of a batch's tracking changes: key-map entries added
/// (`keymap`) or error rows resolved (`resolved`).
pub async fn save_list(
    db: &mut dyn Exec,
    mapping: &str,
    run_id: i64,
    kind: &str,
    list: serde_json::Value,
) -> Result<(), DbFailure> {
    save_entry(
        db,
        mapping,
        &Entry {
            id: next_id(run_id),
            run_id,
            table_name: String::new(),
            kind: kind.into(),
            copied: 0,
            keys: list.to_string(),
            after: None,
        },
    )
    .await
}
