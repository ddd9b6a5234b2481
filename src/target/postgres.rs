//! PostgreSQL target: one `INSERT ... SELECT FROM UNNEST($1::int8[], ...) ON
//! CONFLICT ... DO UPDATE ... WHERE (...) IS DISTINCT FROM (...)` per table per
//! batch, binding one array per column (no placeholder limit, one round trip);
//! `RETURNING (xmax = 0)` tells inserted rows from updated ones. The run lock is
//! a session advisory lock, released by the server if the process dies.
//!
//! First loads take a faster path: while a table that was empty when the run
//! described it has had no conflict, a batch's rows go in with `COPY ... FROM
//! STDIN` under a savepoint (nothing to update, so nothing to compare). Any
//! error of that COPY (a key that is already there, a constraint) rolls back to
//! the savepoint, the batch goes in with the upsert as usual (which bisects bad
//! records), and the table stays on the upsert for the rest of the run. Tables
//! with rewrite rules or GENERATED ALWAYS identity columns never take COPY (it
//! skips rules and writes such columns where an INSERT refuses).

use super::{
    quote_ident, quote_table, BatchTx, ColumnInfo, DbFailure, Dialect, LockOutcome, MigrateReport,
    TableInfo, Target, TargetError, UpsertCount,
};
use crate::mapping::OnConflict;
use crate::tracking::{
    now_text, CheckpointRow, ErrorFilter, ErrorRecord, Holder, NewRun, Progress, RunRow, RunStatus,
    TableCount,
};
use crate::transform::{BoundTable, ErrorRow};
use crate::value::{ColumnType, SqlValue};
use async_trait::async_trait;
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{Postgres, Row, Transaction};
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Mutex;

const DDL: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS cutover_runs (
        id BIGSERIAL PRIMARY KEY,
        mapping TEXT NOT NULL,
        mapping_checksum TEXT NOT NULL,
        status TEXT NOT NULL,
        started_at TEXT NOT NULL,
        finished_at TEXT,
        heartbeat_at TEXT,
        records_read BIGINT NOT NULL DEFAULT 0,
        records_written BIGINT NOT NULL DEFAULT 0,
        records_filtered BIGINT NOT NULL DEFAULT 0,
        records_failed BIGINT NOT NULL DEFAULT 0,
        rows_written BIGINT NOT NULL DEFAULT 0,
        rows_unchanged BIGINT NOT NULL DEFAULT 0,
        rows_inserted BIGINT,
        dry_run BOOLEAN NOT NULL DEFAULT FALSE,
        host TEXT NOT NULL,
        pid BIGINT NOT NULL,
        options TEXT NOT NULL DEFAULT '{}',
        message TEXT)",
    "CREATE INDEX IF NOT EXISTS cutover_runs_mapping ON cutover_runs (mapping, id)",
    "CREATE TABLE IF NOT EXISTS cutover_run_tables (
        run_id BIGINT NOT NULL,
        table_name TEXT NOT NULL,
        rows_written BIGINT NOT NULL DEFAULT 0,
        rows_unchanged BIGINT NOT NULL DEFAULT 0,
        rows_inserted BIGINT,
        PRIMARY KEY (run_id, table_name))",
    "CREATE TABLE IF NOT EXISTS cutover_checkpoints (
        mapping TEXT NOT NULL,
        shard BIGINT NOT NULL DEFAULT 0,
        run_id BIGINT NOT NULL,
        position TEXT,
        records_committed BIGINT NOT NULL DEFAULT 0,
        mapping_checksum TEXT NOT NULL,
        source_fingerprint TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (mapping, shard))",
    "CREATE TABLE IF NOT EXISTS cutover_errors (
        id BIGSERIAL PRIMARY KEY,
        run_id BIGINT NOT NULL,
        mapping TEXT NOT NULL,
        record_key TEXT NOT NULL,
        position TEXT,
        stage TEXT NOT NULL,
        column_name TEXT,
        message TEXT NOT NULL,
        record TEXT,
        created_at TEXT NOT NULL,
        resolved_at TEXT)",
    "CREATE INDEX IF NOT EXISTS cutover_errors_key ON cutover_errors (mapping, record_key)",
    "CREATE TABLE IF NOT EXISTS cutover_keymap (
        mapping TEXT NOT NULL,
        legacy_key TEXT NOT NULL,
        new_key TEXT NOT NULL,
        PRIMARY KEY (mapping, legacy_key))",
    "CREATE TABLE IF NOT EXISTS cutover_locks (
        mapping TEXT PRIMARY KEY,
        run_id BIGINT,
        host TEXT NOT NULL,
        pid BIGINT NOT NULL,
        acquired_at TEXT NOT NULL,
        heartbeat_at TEXT NOT NULL)",
];

pub struct PgTarget {
    pool: PgPool,
    url: String,
    /// Connections holding a mapping's advisory lock for the run.
    locks: Mutex<HashMap<String, PoolConnection<Postgres>>>,
    /// Tables that take batches by COPY: empty when last described, no COPY
    /// of theirs has failed since.
    copy_tables: CopyTables,
}

type CopyTables = Arc<std::sync::Mutex<HashSet<String>>>;

/// SQLSTATE classes that mean "try again on a fresh connection".
fn retryable_state(code: &str) -> bool {
    code.starts_with("08") // connection exception
        || code == "40001" // serialization failure
        || code == "40P01" // deadlock
        || code.starts_with("57P") // admin shutdown, crash shutdown, cannot connect now
        || code == "53300" // too many connections
        || code == "55P03" // lock not available
}

pub(crate) fn classify(e: &sqlx::Error) -> DbFailure {
    match e {
        sqlx::Error::Database(d) => {
            let code = d.code().map(|c| c.to_string()).unwrap_or_default();
            let detail = d
                .try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
                .and_then(|p| p.detail().map(|s| format!(" ({s})")))
                .unwrap_or_default();
            DbFailure {
                data: !retryable_state(&code),
                message: format!("{}{detail} [SQLSTATE {code}]", d.message()),
            }
        }
        other => super::client_failure(other),
    }
}

fn db(context: &str) -> impl Fn(sqlx::Error) -> TargetError + '_ {
    move |e| classify(&e).into_target(context)
}

/// Map `format_type()` output to the loader's column type.
pub fn column_type(declared: &str, typtype: &str, enum_values: Option<Vec<String>>) -> ColumnType {
    if typtype == "e" {
        return ColumnType::Enum(enum_values.unwrap_or_default());
    }
    let d = declared.to_ascii_lowercase();
    let args: Vec<u32> = d
        .find('(')
        .and_then(|i| d[i + 1..].split(')').next())
        .map(|a| a.split(',').filter_map(|x| x.trim().parse().ok()).collect())
        .unwrap_or_default();
    let base = d.split('(').next().unwrap_or("").trim();
    match base {
        "smallint" => ColumnType::Integer { bits: 16 },
        "integer" => ColumnType::Integer { bits: 32 },
        "bigint" => ColumnType::Integer { bits: 64 },
        "numeric" => ColumnType::Decimal {
            precision: args.first().copied(),
            scale: args.get(1).copied(),
        },
        "real" | "double precision" => ColumnType::Float,
        "boolean" => ColumnType::Bool,
        "character varying" | "character" => ColumnType::Text {
            max_len: args.first().copied(),
        },
        "text" | "citext" | "name" => ColumnType::Text { max_len: None },
        "date" => ColumnType::Date,
        _ if d.starts_with("timestamp") => ColumnType::Timestamp {
            tz: d.contains("with time zone"),
        },
        _ if d.starts_with("time") => ColumnType::Time,
        "uuid" => ColumnType::Uuid,
        "json" => ColumnType::Json { binary: false },
        "jsonb" => ColumnType::Json { binary: true },
        "bytea" => ColumnType::Bytes,
        _ => ColumnType::Any,
    }
}

/// How a column's values travel: a typed array, or text cast on the server.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Wire {
    Int,
    Float,
    Bool,
    Bytes,
    Uuid,
    Text,
}

fn wire(ty: &ColumnType) -> Wire {
    match ty {
        ColumnType::Integer { .. } | ColumnType::Unsigned { .. } => Wire::Int,
        ColumnType::Float => Wire::Float,
        ColumnType::Bool => Wire::Bool,
        ColumnType::Bytes => Wire::Bytes,
        ColumnType::Uuid => Wire::Uuid,
        _ => Wire::Text,
    }
}

/// Text form of a value for PostgreSQL's input functions.
fn pg_text(v: &SqlValue) -> Option<String> {
    match v {
        SqlValue::TimestampTz(t) => Some(format!("{}+00", t.format("%Y-%m-%d %H:%M:%S%.f"))),
        other => other.to_text(),
    }
}

/// The advisory lock key of a mapping.
fn lock_key(mapping: &str) -> String {
    format!("cutover:{mapping}")
}

impl PgTarget {
    /// Check that the connection holding the mapping's server lock is alive; if
    /// it was lost (the server then released the lock), take the lock again on
    /// a fresh connection, or fail when another process has it now.
    async fn keep_lock(&self, mapping: &str) -> Result<(), TargetError> {
        let ctx = "keeping the run lock";
        let mut locks = self.locks.lock().await;
        let Some(conn) = locks.get_mut(mapping) else {
            return Ok(());
        };
        if sqlx::query("SELECT 1").execute(&mut **conn).await.is_ok() {
            return Ok(());
        }
        tracing::warn!(
            mapping,
            "the connection holding the run lock was lost; taking the lock again"
        );
        let mut fresh = self.pool.acquire().await.map_err(db(ctx))?;
        let got: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock(hashtextextended($1, 0))")
            .bind(lock_key(mapping))
            .fetch_one(&mut *fresh)
            .await
            .map_err(db(ctx))?;
        if !(got) {
            locks.remove(mapping);
            return Err(TargetError::LockLost {
                mapping: mapping.to_string(),
            });
        }
        locks.insert(mapping.to_string(), fresh);
        Ok(())
    }

    pub async fn connect(url: &str) -> Result<PgTarget, TargetError> {
        let fail = |e: sqlx::Error| TargetError::Connect {
            url: crate::redact_url(url),
            message: e.to_string(),
        };
        let opts = PgConnectOptions::from_str(url)
            .map_err(fail)?
            .application_name("cutover");
        super::probe(&opts, url).await?;
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(opts)
            .await
            .map_err(fail)?;
        Ok(PgTarget {
            pool,
            url: url.to_string(),
            locks: Mutex::new(HashMap::new()),
            copy_tables: CopyTables::default(),
        })
    }

    async fn read_holder(&self, mapping: &str) -> Result<Option<Holder>, TargetError> {
        let ctx = "reading the run lock";
        let row = sqlx::query("SELECT run_id, host, pid, acquired_at, heartbeat_at FROM cutover_locks WHERE mapping = $1")
            .bind(mapping)
            .fetch_optional(&self.pool)
            .await
            .map_err(db(ctx))?;
        row.map(|r| {
            Ok(Holder {
                run_id: r.try_get("run_id")?,
                host: r.try_get("host")?,
                pid: r.try_get("pid")?,
                acquired_at: r.try_get("acquired_at")?,
                heartbeat_at: r.try_get("heartbeat_at")?,
            })
        })
        .transpose()
        .map_err(db(ctx))
    }
}

pub struct PgTx {
    tx: Transaction<'static, Postgres>,
    copy_tables: CopyTables,
}

/// Append `s` to a COPY text-format row, escaped.
fn copy_escaped(buf: &mut Vec<u8>, s: &str) {
    for b in s.bytes() {
        match b {
            b'\\' => buf.extend_from_slice(b"\\\\"),
            b'\n' => buf.extend_from_slice(b"\\n"),
            b'\r' => buf.extend_from_slice(b"\\r"),
            b'\t' => buf.extend_from_slice(b"\\t"),
            _ => buf.push(b),
        }
    }
}

/// Append bytes as a bytea literal of COPY's text format (`\\x` and hex digits),
/// without an intermediate string.
fn copy_bytea(buf: &mut Vec<u8>, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    buf.reserve(3 + 2 * bytes.len());
    buf.extend_from_slice(b"\\\\x");
    for b in bytes {
        buf.push(HEX[usize::from(b >> 4)]);
        buf.push(HEX[usize::from(b & 0x0f)]);
    }
}

/// Rows in COPY's text format, each field exactly what the upsert would bind
/// (a value of another kind than the column's wire type is NULL there too).
pub fn copy_rows(table: &BoundTable, rows: &[&[SqlValue]]) -> Vec<u8> {
    use std::io::Write;
    let wires: Vec<Wire> = table.types.iter().map(wire).collect();
    let mut buf = Vec::with_capacity(rows.len() * 64 * wires.len().max(1));
    let mut ints = itoa::Buffer::new();
    for r in rows {
        for (i, w) in wires.iter().enumerate() {
            if i > 0 {
                buf.push(b'\t');
            }
            let v = &r[i];
            match (w, v) {
                (_, SqlValue::Null) => buf.extend_from_slice(b"\\N"),
                (Wire::Int, SqlValue::Int(n)) => buf.extend_from_slice(ints.format(*n).as_bytes()),
                (Wire::Float, SqlValue::Float(f)) => {
                    let _ = write!(buf, "{f}");
                }
                (Wire::Float, SqlValue::Int(n)) => {
                    let _ = write!(buf, "{}", *n as f64);
                }
                (Wire::Bool, SqlValue::Bool(b)) => buf.push(if *b { b't' } else { b'f' }),
                (Wire::Uuid, SqlValue::Uuid(u)) => {
                    let _ = write!(buf, "{}", u.hyphenated());
                }
                (Wire::Bytes, SqlValue::Bytes(b)) => copy_bytea(&mut buf, b),
                (Wire::Bytes, other) => match other.to_text() {
                    Some(t) => copy_bytea(&mut buf, t.as_bytes()),
                    None => buf.extend_from_slice(b"\\N"),
                },
                (Wire::Text, SqlValue::Text(t) | SqlValue::Json(t) | SqlValue::Decimal(t)) => {
                    copy_escaped(&mut buf, t)
                }
                (Wire::Text, other) => match pg_text(other) {
                    Some(t) => copy_escaped(&mut buf, &t),
                    None => buf.extend_from_slice(b"\\N"),
                },
                _ => buf.extend_from_slice(b"\\N"),
            }
        }
        buf.push(b'\n');
    }
    buf
}

impl PgTx {
    /// Rows in by COPY under a savepoint. `Ok(false)`: the COPY failed on data
    /// and was rolled back (the caller upserts instead).
    async fn try_copy(
        &mut self,
        table: &BoundTable,
        rows: &[&[SqlValue]],
    ) -> Result<bool, DbFailure> {
        let d = Dialect::Postgres;
        let cols: Vec<String> = table.column_names().map(|c| quote_ident(d, c)).collect();
        let stmt = format!(
            "COPY {} ({}) FROM STDIN",
            quote_table(d, &table.spec.table),
            cols.join(", ")
        );
        let data = copy_rows(table, rows);
        let exec = |sql: &'static str| sqlx::query(sql);
        exec("SAVEPOINT cutover_copy")
            .execute(&mut *self.tx)
            .await
            .map_err(|e| classify(&e))?;
        let copied = async {
            let mut copy = self.tx.copy_in_raw(&stmt).await?;
            if let Err(e) = copy.send(data).await {
                let _ = copy.abort("cutover: sending rows failed").await;
                return Err(e);
            }
            copy.finish().await
        }
        .await;
        match copied {
            Ok(_) => {
                exec("RELEASE SAVEPOINT cutover_copy")
                    .execute(&mut *self.tx)
                    .await
                    .map_err(|e| classify(&e))?;
                Ok(true)
            }
            Err(e) => {
                let f = classify(&e);
                if !f.data {
                    return Err(f);
                }
                tracing::info!(
                    table = %table.spec.table,
                    "COPY into {} stopped ({}); the batch and the rest of the run go in by upsert",
                    table.spec.table,
                    f.message
                );
                if let Ok(mut t) = self.copy_tables.lock() {
                    t.remove(&table.spec.table);
                }
                exec("ROLLBACK TO SAVEPOINT cutover_copy")
                    .execute(&mut *self.tx)
                    .await
                    .map_err(|e| classify(&e))?;
                exec("RELEASE SAVEPOINT cutover_copy")
                    .execute(&mut *self.tx)
                    .await
                    .map_err(|e| classify(&e))?;
                Ok(false)
            }
        }
    }
}

/// The upsert statement of a table (arrays of any length).
pub fn upsert_sql(table: &BoundTable) -> String {
    let d = Dialect::Postgres;
    let t = quote_table(d, &table.spec.table);
    let cols: Vec<String> = table.column_names().map(|c| quote_ident(d, c)).collect();
    let mut arrays = Vec::new();
    let mut select = Vec::new();
    for (i, ty) in table.types.iter().enumerate() {
        let n = i + 1;
        let (arr, cast) = match wire(ty) {
            Wire::Int => ("int8[]", None),
            Wire::Float => ("float8[]", None),
            Wire::Bool => ("bool[]", None),
            Wire::Bytes => ("bytea[]", None),
            Wire::Uuid => ("uuid[]", None),
            Wire::Text => ("text[]", table.declared.get(i).cloned()),
        };
        arrays.push(format!("${n}::{arr}"));
        select.push(match cast {
            Some(c) if !c.is_empty() && c != "text" => format!("u._{n}::{c}"),
            _ => format!("u._{n}"),
        });
    }
    let aliases: Vec<String> = (1..=cols.len()).map(|n| format!("_{n}")).collect();
    let mut sql = format!(
        "INSERT INTO {t} AS t ({}) SELECT {} FROM UNNEST({}) AS u({})",
        cols.join(", "),
        select.join(", "),
        arrays.join(", "),
        aliases.join(", ")
    );
    let key: Vec<String> = table.spec.key.iter().map(|k| quote_ident(d, k)).collect();
    let non_key: Vec<(usize, &String)> = cols
        .iter()
        .enumerate()
        .filter(|(i, _)| !table.key_idx.contains(i))
        .collect();
    match table.spec.on_conflict {
        OnConflict::Fail => {}
        OnConflict::Ignore => {
            sql.push_str(&format!(" ON CONFLICT ({}) DO NOTHING", key.join(", ")))
        }
        OnConflict::Update if non_key.is_empty() => {
            sql.push_str(&format!(" ON CONFLICT ({}) DO NOTHING", key.join(", ")))
        }
        OnConflict::Update => {
            let set: Vec<String> = non_key
                .iter()
                .map(|(_, c)| format!("{c} = EXCLUDED.{c}"))
                .collect();
            // json has no equality operator: compare its text.
            let side = |prefix: &str| -> Vec<String> {
                non_key
                    .iter()
                    .map(|(i, c)| match table.types[*i] {
                        ColumnType::Json { binary: false } => format!("{prefix}.{c}::text"),
                        _ => format!("{prefix}.{c}"),
                    })
                    .collect()
            };
            sql.push_str(&format!(
                " ON CONFLICT ({}) DO UPDATE SET {} WHERE ({}) IS DISTINCT FROM ({})",
                key.join(", "),
                set.join(", "),
                side("t").join(", "),
                side("EXCLUDED").join(", ")
            ));
        }
    }
    sql.push_str(" RETURNING (xmax = 0) AS inserted");
    sql
}

#[async_trait]
impl BatchTx for PgTx {
    async fn savepoint(&mut self) -> Result<(), DbFailure> {
        sqlx::query("SAVEPOINT cutover_batch")
            .execute(&mut *self.tx)
            .await
            .map_err(|e| classify(&e))
            .map(|_| ())
    }

    async fn rollback_savepoint(&mut self) -> Result<(), DbFailure> {
        sqlx::query("ROLLBACK TO SAVEPOINT cutover_batch")
            .execute(&mut *self.tx)
            .await
            .map_err(|e| classify(&e))?;
        self.release_savepoint().await
    }

    async fn release_savepoint(&mut self) -> Result<(), DbFailure> {
        sqlx::query("RELEASE SAVEPOINT cutover_batch")
            .execute(&mut *self.tx)
            .await
            .map_err(|e| classify(&e))
            .map(|_| ())
    }

    async fn upsert(
        &mut self,
        table: &BoundTable,
        rows: &[&[SqlValue]],
    ) -> Result<UpsertCount, DbFailure> {
        let copy = self
            .copy_tables
            .lock()
            .is_ok_and(|t| t.contains(&table.spec.table));
        if copy && !rows.is_empty() && self.try_copy(table, rows).await? {
            let n = rows.len() as u64;
            return Ok(UpsertCount {
                changed: n,
                inserted: Some(n),
            });
        }
        let sql = upsert_sql(table);
        let mut q = sqlx::query(&sql);
        for (i, ty) in table.types.iter().enumerate() {
            q = match wire(ty) {
                Wire::Int => q.bind(
                    rows.iter()
                        .map(|r| match &r[i] {
                            SqlValue::Int(v) => Some(*v),
                            _ => None,
                        })
                        .collect::<Vec<Option<i64>>>(),
                ),
                Wire::Float => q.bind(
                    rows.iter()
                        .map(|r| match &r[i] {
                            SqlValue::Float(v) => Some(*v),
                            SqlValue::Int(v) => Some(*v as f64),
                            _ => None,
                        })
                        .collect::<Vec<Option<f64>>>(),
                ),
                Wire::Bool => q.bind(
                    rows.iter()
                        .map(|r| match &r[i] {
                            SqlValue::Bool(v) => Some(*v),
                            _ => None,
                        })
                        .collect::<Vec<Option<bool>>>(),
                ),
                Wire::Bytes => q.bind(
                    rows.iter()
                        .map(|r| match &r[i] {
                            SqlValue::Bytes(v) => Some(v.clone()),
                            SqlValue::Null => None,
                            other => other.to_text().map(String::into_bytes),
                        })
                        .collect::<Vec<Option<Vec<u8>>>>(),
                ),
                Wire::Uuid => q.bind(
                    rows.iter()
                        .map(|r| match &r[i] {
                            SqlValue::Uuid(v) => Some(*v),
                            _ => None,
                        })
                        .collect::<Vec<Option<uuid::Uuid>>>(),
                ),
                Wire::Text => q.bind(
                    rows.iter()
                        .map(|r| pg_text(&r[i]))
                        .collect::<Vec<Option<String>>>(),
                ),
            };
        }
        let out = q.fetch_all(&mut *self.tx).await.map_err(|e| classify(&e))?;
        let inserted = out
            .iter()
            .filter(|r| r.try_get::<bool, _>(0).unwrap_or(false))
            .count() as u64;
        Ok(UpsertCount {
            changed: out.len() as u64,
            inserted: Some(inserted),
        })
    }

    async fn insert_errors(
        &mut self,
        run_id: i64,
        mapping: &str,
        errors: &[&ErrorRow],
    ) -> Result<(), DbFailure> {
        let now = now_text();
        let col = |f: &dyn Fn(&ErrorRow) -> Option<String>| {
            errors.iter().map(|e| f(e)).collect::<Vec<Option<String>>>()
        };
        sqlx::query(
            "INSERT INTO cutover_errors (run_id, mapping, record_key, position, stage, column_name, message, record, created_at)
             SELECT $1, $2, u.k, u.p, u.s, u.c, u.m, u.r, $3
             FROM UNNEST($4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[]) AS u(k, p, s, c, m, r)",
        )
        .bind(run_id)
        .bind(mapping)
        .bind(&now)
        .bind(col(&|e| Some(e.record_key.clone())))
        .bind(col(&|e| Some(e.position.to_json())))
        .bind(col(&|e| Some(e.stage.to_string())))
        .bind(col(&|e| e.column.clone()))
        .bind(col(&|e| Some(e.message.clone())))
        .bind(col(&|e| Some(e.record.to_string())))
        .execute(&mut *self.tx)
        .await
        .map_err(|e| classify(&e))
        .map(|_| ())
    }

    async fn resolve_errors(&mut self, mapping: &str, keys: &[&str]) -> Result<(), DbFailure> {
        sqlx::query("UPDATE cutover_errors SET resolved_at = $1 WHERE mapping = $2 AND resolved_at IS NULL AND record_key = ANY($3)")
            .bind(now_text())
            .bind(mapping)
            .bind(keys.iter().map(|k| k.to_string()).collect::<Vec<String>>())
            .execute(&mut *self.tx)
            .await
            .map_err(|e| classify(&e))
            .map(|_| ())
    }

    async fn save_keymap(
        &mut self,
        mapping: &str,
        pairs: &[(&str, &str)],
    ) -> Result<(), DbFailure> {
        // Fold duplicates: ON CONFLICT cannot touch a row twice.
        let mut folded: HashMap<&str, &str> = HashMap::new();
        for (l, n) in pairs {
            folded.insert(l, n);
        }
        sqlx::query(
            "INSERT INTO cutover_keymap (mapping, legacy_key, new_key) SELECT $1, u.l, u.n FROM UNNEST($2::text[], $3::text[]) AS u(l, n)
             ON CONFLICT (mapping, legacy_key) DO UPDATE SET new_key = EXCLUDED.new_key WHERE cutover_keymap.new_key IS DISTINCT FROM EXCLUDED.new_key",
        )
        .bind(mapping)
        .bind(folded.keys().map(|k| k.to_string()).collect::<Vec<String>>())
        .bind(folded.values().map(|k| k.to_string()).collect::<Vec<String>>())
        .execute(&mut *self.tx)
        .await
        .map_err(|e| classify(&e))
        .map(|_| ())
    }

    async fn save_progress(&mut self, p: &Progress) -> Result<(), DbFailure> {
        let now = now_text();
        let rows_written: i64 = p.tables.iter().map(|t| t.1).sum();
        let rows_unchanged: i64 = p.tables.iter().map(|t| t.2).sum();
        let rows_inserted: Option<i64> = p.tables.iter().map(|t| t.3).sum();
        let e = |e: sqlx::Error| classify(&e);
        sqlx::query(
            "UPDATE cutover_runs SET records_read = records_read + $1, records_written = records_written + $2,
               records_filtered = records_filtered + $3, records_failed = records_failed + $4,
               rows_written = rows_written + $5, rows_unchanged = rows_unchanged + $6,
               rows_inserted = COALESCE(rows_inserted, 0) + $7, heartbeat_at = $8
             WHERE id = $9",
        )
        .bind(p.read)
        .bind(p.written)
        .bind(p.filtered)
        .bind(p.failed)
        .bind(rows_written)
        .bind(rows_unchanged)
        .bind(rows_inserted.unwrap_or(0))
        .bind(&now)
        .bind(p.run_id)
        .execute(&mut *self.tx)
        .await
        .map_err(e)?;
        for (t, w, u, ins) in &p.tables {
            sqlx::query(
                "INSERT INTO cutover_run_tables (run_id, table_name, rows_written, rows_unchanged, rows_inserted) VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (run_id, table_name) DO UPDATE SET rows_written = cutover_run_tables.rows_written + EXCLUDED.rows_written,
                   rows_unchanged = cutover_run_tables.rows_unchanged + EXCLUDED.rows_unchanged,
                   rows_inserted = COALESCE(cutover_run_tables.rows_inserted, 0) + COALESCE(EXCLUDED.rows_inserted, 0)",
            )
            .bind(p.run_id)
            .bind(t)
            .bind(w)
            .bind(u)
            .bind(ins)
            .execute(&mut *self.tx)
            .await
            .map_err(e)?;
        }
        if let Some(pos) = &p.position {
            sqlx::query(
                "INSERT INTO cutover_checkpoints (mapping, shard, run_id, position, records_committed, mapping_checksum, source_fingerprint, updated_at)
                 VALUES ($1, 0, $2, $3, $4, $5, $6, $7)
                 ON CONFLICT (mapping, shard) DO UPDATE SET run_id = EXCLUDED.run_id, position = EXCLUDED.position,
                   records_committed = EXCLUDED.records_committed, mapping_checksum = EXCLUDED.mapping_checksum,
                   source_fingerprint = EXCLUDED.source_fingerprint, updated_at = EXCLUDED.updated_at",
            )
            .bind(&p.mapping)
            .bind(p.run_id)
            .bind(pos.to_json())
            .bind(p.records_committed)
            .bind(&p.mapping_checksum)
            .bind(&p.source_fingerprint)
            .bind(&now)
            .execute(&mut *self.tx)
            .await
            .map_err(e)?;
        }
        sqlx::query("UPDATE cutover_locks SET heartbeat_at = $1 WHERE mapping = $2")
            .bind(&now)
            .bind(&p.mapping)
            .execute(&mut *self.tx)
            .await
            .map_err(e)?;
        Ok(())
    }

    async fn commit(self: Box<Self>) -> Result<(), DbFailure> {
        self.tx.commit().await.map_err(|e| classify(&e))
    }
}

#[async_trait]
impl Target for PgTarget {
    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }

    fn display_url(&self) -> String {
        crate::redact_url(&self.url)
    }

    async fn ensure_tracking(&self) -> Result<(), TargetError> {
        // Concurrent first runs of different mappings race on CREATE IF NOT EXISTS:
        // serialise them with a transaction-scoped advisory lock.
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(db("creating the tracking tables"))?;
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext('cutover:tracking-ddl'))")
            .execute(&mut *tx)
            .await
            .map_err(db("creating the tracking tables"))?;
        for stmt in DDL {
            sqlx::query(stmt)
                .execute(&mut *tx)
                .await
                .map_err(db("creating the tracking tables"))?;
        }
        tx.commit()
            .await
            .map_err(db("creating the tracking tables"))
    }

    async fn describe_table(&self, table: &str) -> Result<Option<TableInfo>, TargetError> {
        let ctx = "reading the table's columns";
        let qualified = quote_table(Dialect::Postgres, table);
        let rows = sqlx::query(
            "SELECT a.attname::text AS name, format_type(a.atttypid, a.atttypmod) AS declared,
                    NOT a.attnotnull AS nullable,
                    (a.atthasdef OR a.attidentity <> '' OR a.attgenerated <> '') AS has_default,
                    t.typtype::text AS typtype,
                    CASE WHEN t.typtype = 'e' THEN
                      (SELECT array_agg(e.enumlabel::text ORDER BY e.enumsortorder) FROM pg_enum e WHERE e.enumtypid = t.oid)
                    END AS enum_values
             FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
             WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped
             ORDER BY a.attnum",
        )
        .bind(&qualified)
        .fetch_all(&self.pool)
        .await
        .map_err(db(ctx))?;
        if rows.is_empty() {
            return Ok(None);
        }
        let mut columns = Vec::new();
        for r in &rows {
            let declared: String = r.try_get("declared").map_err(db(ctx))?;
            let typtype: String = r.try_get("typtype").map_err(db(ctx))?;
            let enum_values: Option<Vec<String>> = r.try_get("enum_values").map_err(db(ctx))?;
            columns.push(ColumnInfo {
                name: r.try_get("name").map_err(db(ctx))?,
                ty: column_type(&declared, &typtype, enum_values),
                declared,
                nullable: r.try_get("nullable").map_err(db(ctx))?,
                has_default: r.try_get("has_default").map_err(db(ctx))?,
            });
        }
        let keys = sqlx::query(
            "SELECT array_agg(a.attname::text ORDER BY k.ord) AS cols
             FROM pg_index i
             CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
             JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
             WHERE i.indrelid = to_regclass($1) AND i.indisunique AND i.indpred IS NULL
             GROUP BY i.indexrelid ORDER BY i.indisprimary DESC, i.indexrelid",
        )
        .bind(&qualified)
        .fetch_all(&self.pool)
        .await
        .map_err(db(ctx))?;
        let unique_keys = keys
            .iter()
            .map(|r| r.try_get::<Vec<String>, _>("cols"))
            .collect::<Result<Vec<_>, _>>()
            .map_err(db(ctx))?;
        // An empty table takes its first batches by COPY (see the module docs),
        // unless it has rewrite rules, which COPY does not apply, or GENERATED
        // ALWAYS identity columns, which COPY writes where an INSERT refuses to.
        let empty: bool = sqlx::query_scalar(&format!(
            "SELECT NOT EXISTS (SELECT 1 FROM {qualified})
               AND NOT EXISTS (SELECT 1 FROM pg_rewrite WHERE ev_class = to_regclass($1))
               AND NOT EXISTS (SELECT 1 FROM pg_attribute
                               WHERE attrelid = to_regclass($1) AND attidentity = 'a')"
        ))
        .bind(&qualified)
        .fetch_one(&self.pool)
        .await
        .unwrap_or(false);
        if let Ok(mut t) = self.copy_tables.lock() {
            if empty {
                t.insert(table.to_string());
            } else {
                t.remove(table);
            }
        }
        Ok(Some(TableInfo {
            name: table.to_string(),
            columns,
            unique_keys,
        }))
    }

    fn upsert_sql(&self, table: &BoundTable, _rows: usize) -> String {
        upsert_sql(table)
    }

    async fn migrate(&self, dir: &Path) -> Result<MigrateReport, TargetError> {
        super::run_migrations(
            dir,
            &self.pool,
            "SELECT version FROM _sqlx_migrations WHERE success",
        )
        .await
    }

    async fn try_lock(&self, mapping: &str, me: &Holder) -> Result<LockOutcome, TargetError> {
        let ctx = "taking the run lock";
        let mut conn = self.pool.acquire().await.map_err(db(ctx))?;
        let mut got = false;
        // A holder that died a moment ago keeps its lock until the server notices
        // the closed connection: wait for that, up to 20 s.
        for _ in 0..40 {
            got = sqlx::query_scalar("SELECT pg_try_advisory_lock(hashtextextended($1, 0))")
                .bind(lock_key(mapping))
                .fetch_one(&mut *conn)
                .await
                .map_err(db(ctx))?;
            if got
                || self
                    .read_holder(mapping)
                    .await?
                    .is_none_or(|h| h.is_alive())
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        if !got {
            let holder = self.read_holder(mapping).await?.unwrap_or(Holder {
                host: "?".into(),
                pid: 0,
                run_id: None,
                acquired_at: "?".into(),
                heartbeat_at: "?".into(),
            });
            return Ok(LockOutcome::Held(holder));
        }
        let replaced = self.read_holder(mapping).await?;
        // The server lock is free, but the holder row names a live process: its
        // lock connection was lost (the server releases the lock with it) while
        // it still runs. It re-takes the lock at its next heartbeat, or stops.
        if let Some(h) = replaced
            .as_ref()
            .filter(|h| h.is_alive() && !(h.host == me.host && h.pid == me.pid))
        {
            let _ = sqlx::query("SELECT pg_advisory_unlock(hashtextextended($1, 0))")
                .bind(lock_key(mapping))
                .execute(&mut *conn)
                .await;
            return Ok(LockOutcome::Held(h.clone()));
        }
        sqlx::query(
            "INSERT INTO cutover_locks (mapping, run_id, host, pid, acquired_at, heartbeat_at) VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (mapping) DO UPDATE SET run_id = EXCLUDED.run_id, host = EXCLUDED.host, pid = EXCLUDED.pid,
               acquired_at = EXCLUDED.acquired_at, heartbeat_at = EXCLUDED.heartbeat_at",
        )
        .bind(mapping)
        .bind(me.run_id)
        .bind(&me.host)
        .bind(me.pid)
        .bind(&me.acquired_at)
        .bind(&me.heartbeat_at)
        .execute(&mut *conn)
        .await
        .map_err(db(ctx))?;
        self.locks.lock().await.insert(mapping.to_string(), conn);
        Ok(LockOutcome::Acquired { replaced })
    }

    async fn heartbeat(&self, mapping: &str, run_id: i64) -> Result<(), TargetError> {
        self.keep_lock(mapping).await?;
        let now = now_text();
        let ctx = "updating the heartbeat";
        sqlx::query("UPDATE cutover_locks SET heartbeat_at = $1, run_id = $2 WHERE mapping = $3")
            .bind(&now)
            .bind(run_id)
            .bind(mapping)
            .execute(&self.pool)
            .await
            .map_err(db(ctx))?;
        sqlx::query("UPDATE cutover_runs SET heartbeat_at = $1 WHERE id = $2")
            .bind(&now)
            .bind(run_id)
            .execute(&self.pool)
            .await
            .map_err(db(ctx))?;
        Ok(())
    }

    async fn unlock(&self, mapping: &str) -> Result<(), TargetError> {
        let ctx = "releasing the run lock";
        sqlx::query("DELETE FROM cutover_locks WHERE mapping = $1 AND host = $2 AND pid = $3")
            .bind(mapping)
            .bind(crate::tracking::this_host())
            .bind(i64::from(std::process::id()))
            .execute(&self.pool)
            .await
            .map_err(db(ctx))?;
        if let Some(mut conn) = self.locks.lock().await.remove(mapping) {
            let _ = sqlx::query("SELECT pg_advisory_unlock(hashtextextended($1, 0))")
                .bind(lock_key(mapping))
                .execute(&mut *conn)
                .await;
        }
        Ok(())
    }

    async fn start_run(&self, run: &NewRun) -> Result<i64, TargetError> {
        let now = now_text();
        sqlx::query_scalar(
            "INSERT INTO cutover_runs (mapping, mapping_checksum, status, started_at, heartbeat_at, dry_run, host, pid, options)
             VALUES ($1, $2, 'running', $3, $3, $4, $5, $6, $7) RETURNING id",
        )
        .bind(&run.mapping)
        .bind(&run.checksum)
        .bind(&now)
        .bind(run.dry_run)
        .bind(&run.host)
        .bind(i64::from(run.pid))
        .bind(&run.options)
        .fetch_one(&self.pool)
        .await
        .map_err(db("recording the run"))
    }

    async fn finish_run(
        &self,
        run_id: i64,
        status: RunStatus,
        message: Option<&str>,
    ) -> Result<(), TargetError> {
        sqlx::query("UPDATE cutover_runs SET status = $1, finished_at = $2, message = COALESCE($3, message) WHERE id = $4")
            .bind(status.as_str())
            .bind(now_text())
            .bind(message)
            .bind(run_id)
            .execute(&self.pool)
            .await
            .map_err(db("finishing the run"))
            .map(|_| ())
    }

    async fn mark_abandoned(&self, mapping: &str, message: &str) -> Result<u64, TargetError> {
        sqlx::query("UPDATE cutover_runs SET status = 'interrupted', finished_at = COALESCE(heartbeat_at, started_at), message = $1 WHERE mapping = $2 AND status = 'running'")
            .bind(message)
            .bind(mapping)
            .execute(&self.pool)
            .await
            .map_err(db("marking abandoned runs"))
            .map(|r| r.rows_affected())
    }

    async fn checkpoint_run(&self, mapping: &str) -> Result<Option<RunRow>, TargetError> {
        let r = sqlx::query(
            "SELECT r.* FROM cutover_runs r JOIN cutover_checkpoints c ON c.run_id = r.id WHERE c.mapping = $1 AND c.shard = 0",
        )
        .bind(mapping)
        .fetch_optional(&self.pool)
        .await
        .map_err(db("reading the run of the checkpoint"))?;
        r.as_ref()
            .map(super::rows::run_row)
            .transpose()
            .map_err(db("reading the run of the checkpoint"))
    }

    async fn checkpoint(&self, mapping: &str) -> Result<Option<CheckpointRow>, TargetError> {
        let r = sqlx::query("SELECT * FROM cutover_checkpoints WHERE mapping = $1 AND shard = 0")
            .bind(mapping)
            .fetch_optional(&self.pool)
            .await
            .map_err(db("reading the checkpoint"))?;
        r.as_ref()
            .map(super::rows::checkpoint_row)
            .transpose()
            .map_err(db("reading the checkpoint"))
    }

    async fn unresolved_errors(&self, mapping: &str) -> Result<i64, TargetError> {
        sqlx::query_scalar(
            "SELECT count(*) FROM cutover_errors WHERE mapping = $1 AND resolved_at IS NULL",
        )
        .bind(mapping)
        .fetch_one(&self.pool)
        .await
        .map_err(db("counting errors"))
    }

    async fn runs(&self, mapping: Option<&str>) -> Result<Vec<RunRow>, TargetError> {
        let rows = sqlx::query(
            "SELECT * FROM cutover_runs WHERE ($1::text IS NULL OR mapping = $1) ORDER BY id",
        )
        .bind(mapping)
        .fetch_all(&self.pool)
        .await
        .map_err(db("reading runs"))?;
        rows.iter()
            .map(super::rows::run_row)
            .collect::<Result<_, _>>()
            .map_err(db("reading runs"))
    }

    async fn checkpoints(&self) -> Result<Vec<CheckpointRow>, TargetError> {
        let rows = sqlx::query("SELECT * FROM cutover_checkpoints ORDER BY mapping, shard")
            .fetch_all(&self.pool)
            .await
            .map_err(db("reading checkpoints"))?;
        rows.iter()
            .map(super::rows::checkpoint_row)
            .collect::<Result<_, _>>()
            .map_err(db("reading checkpoints"))
    }

    async fn table_counts(&self, run_id: i64) -> Result<Vec<TableCount>, TargetError> {
        let rows = sqlx::query("SELECT run_id, table_name, rows_written, rows_unchanged, rows_inserted FROM cutover_run_tables WHERE run_id = $1 ORDER BY ctid")
            .bind(run_id)
            .fetch_all(&self.pool)
            .await
            .map_err(db("reading table counts"))?;
        rows.iter()
            .map(super::rows::table_count)
            .collect::<Result<_, sqlx::Error>>()
            .map_err(db("reading table counts"))
    }

    async fn errors(&self, f: &ErrorFilter) -> Result<Vec<ErrorRecord>, TargetError> {
        let rows = sqlx::query(
            "SELECT * FROM cutover_errors WHERE ($1::text IS NULL OR mapping = $1) AND ($2::int8 IS NULL OR run_id = $2)
               AND (NOT $3 OR resolved_at IS NULL) ORDER BY id LIMIT $4",
        )
        .bind(f.mapping.as_deref())
        .bind(f.run_id)
        .bind(f.unresolved_only)
        .bind(f.limit.unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await
        .map_err(db("reading errors"))?;
        rows.iter()
            .map(super::rows::error_row)
            .collect::<Result<_, sqlx::Error>>()
            .map_err(db("reading errors"))
    }

    async fn begin(&self) -> Result<Box<dyn BatchTx>, TargetError> {
        let tx = self
            .pool
            .begin()
            .await
            .map_err(db("starting a batch transaction"))?;
        Ok(Box::new(PgTx {
            tx,
            copy_tables: self.copy_tables.clone(),
        }))
    }

    async fn close(&self) {
        self.locks.lock().await.clear();
        self.pool.close().await;
    }

    async fn migrations(
        &self,
        dir: &Path,
        action: &crate::migrate::Action,
    ) -> Result<crate::migrate::Report, crate::migrate::MigrationError> {
        crate::migrate::execute(
            &self.pool,
            dir,
            action,
            "SELECT version, installed_on::text, execution_time FROM _sqlx_migrations",
        )
        .await
    }

    async fn backup(&self, path: &Path) -> Result<Option<String>, TargetError> {
        Ok(Some(format!(
            "pg_dump --format=custom --file='{}' '{}'",
            path.display(),
            crate::redact_url(&self.url)
        )))
    }

    async fn fetch_by_keys(
        &self,
        table: &BoundTable,
        keys: &[Vec<SqlValue>],
    ) -> Result<Vec<Vec<Option<String>>>, TargetError> {
        let mut out = Vec::new();
        for chunk in keys.chunks(500) {
            let sql = super::fetch_sql(
                Dialect::Postgres,
                table,
                chunk.len(),
                |c| format!("{c}::text"),
                |i, c| {
                    format!(
                        "${i}::text::{}",
                        table.declared.get(c).map_or("text", |d| if d.is_empty() {
                            "text"
                        } else {
                            d.as_str()
                        })
                    )
                },
            );
            let mut q = sqlx::query(&sql);
            for k in chunk {
                for v in k {
                    q = q.bind(pg_text(v));
                }
            }
            for r in q.fetch_all(&self.pool).await.map_err(db("reading rows"))? {
                out.push(
                    (0..table.spec.columns.len())
                        .map(|i| r.try_get::<Option<String>, _>(i).ok().flatten())
                        .collect(),
                );
            }
        }
        Ok(out)
    }

    async fn count_rows(&self, table: &str) -> Result<i64, TargetError> {
        sqlx::query_scalar(&format!(
            "SELECT count(*) FROM {}",
            quote_table(Dialect::Postgres, table)
        ))
        .fetch_one(&self.pool)
        .await
        .map_err(db("counting rows"))
    }

    async fn keymap_get(
        &self,
        mapping: &str,
        legacy: &[String],
    ) -> Result<Vec<(String, String)>, TargetError> {
        let rows = sqlx::query("SELECT legacy_key, new_key FROM cutover_keymap WHERE mapping = $1 AND legacy_key = ANY($2)")
            .bind(mapping)
            .bind(legacy)
            .fetch_all(&self.pool)
            .await
            .map_err(db("reading the key map"))?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect::<Result<_, sqlx::Error>>()
            .map_err(db("reading the key map"))
    }

    fn url(&self) -> &str {
        &self.url
    }

    async fn query_text(&self, sql: &str) -> Result<Option<String>, TargetError> {
        let row = sqlx::query(sql)
            .fetch_optional(&self.pool)
            .await
            .map_err(db("running the check"))?;
        Ok(row.and_then(|r| {
            r.try_get::<Option<String>, _>(0)
                .ok()
                .flatten()
                .or_else(|| {
                    r.try_get::<Option<i64>, _>(0)
                        .ok()
                        .flatten()
                        .map(|v| v.to_string())
                })
                .or_else(|| {
                    r.try_get::<Option<i32>, _>(0)
                        .ok()
                        .flatten()
                        .map(|v| v.to_string())
                })
                .or_else(|| {
                    r.try_get::<Option<bigdecimal::BigDecimal>, _>(0)
                        .ok()
                        .flatten()
                        .map(|v| v.to_string())
                })
                .or_else(|| {
                    r.try_get::<Option<f64>, _>(0)
                        .ok()
                        .flatten()
                        .map(|v| v.to_string())
                })
                .or_else(|| {
                    r.try_get::<Option<bool>, _>(0)
                        .ok()
                        .flatten()
                        .map(|v| v.to_string())
                })
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declared_types() {
        assert_eq!(
            column_type("integer", "b", None),
            ColumnType::Integer { bits: 32 }
        );
        assert_eq!(
            column_type("numeric(10,2)", "b", None),
            ColumnType::Decimal {
                precision: Some(10),
                scale: Some(2)
            }
        );
        assert_eq!(
            column_type("character varying(64)", "b", None),
            ColumnType::Text { max_len: Some(64) }
        );
        assert_eq!(
            column_type("timestamp with time zone", "b", None),
            ColumnType::Timestamp { tz: true }
        );
        assert_eq!(
            column_type("time without time zone", "b", None),
            ColumnType::Time
        );
        assert_eq!(
            column_type("jsonb", "b", None),
            ColumnType::Json { binary: true }
        );
        assert_eq!(
            column_type("mood", "e", Some(vec!["sad".into()])),
            ColumnType::Enum(vec!["sad".into()])
        );
        assert!(retryable_state("57P01") && retryable_state("40P01") && !retryable_state("23505"));
    }
}
