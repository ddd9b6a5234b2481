//! MySQL-protocol target (MySQL 8, MariaDB, TiDB): multi-row `INSERT ... ON
//! DUPLICATE KEY UPDATE c = VALUES(c)` sized under the 65,535-placeholder limit,
//! strict SQL mode (a value the column cannot hold is an error, never a silent
//! truncation), UTC sessions, and `GET_LOCK` for the run lock (released by the
//! server when the process dies).

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
use sqlx::mysql::{MySql, MySqlArguments, MySqlConnectOptions, MySqlPool, MySqlPoolOptions};
use sqlx::pool::PoolConnection;
use sqlx::query::Query;
use sqlx::{Executor, Row, Transaction};
use std::collections::HashMap;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;
use tokio::sync::Mutex;

/// The protocol's placeholder limit per statement.
const MAX_BINDS: usize = 65_535;
const ROWS_PER_STATEMENT: usize = 1000;

const DDL: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS cutover_runs (
        id BIGINT AUTO_INCREMENT PRIMARY KEY,
        mapping VARCHAR(255) NOT NULL,
        mapping_checksum VARCHAR(64) NOT NULL,
        status VARCHAR(16) NOT NULL,
        started_at VARCHAR(32) NOT NULL,
        finished_at VARCHAR(32),
        heartbeat_at VARCHAR(32),
        records_read BIGINT NOT NULL DEFAULT 0,
        records_written BIGINT NOT NULL DEFAULT 0,
        records_filtered BIGINT NOT NULL DEFAULT 0,
        records_failed BIGINT NOT NULL DEFAULT 0,
        rows_written BIGINT NOT NULL DEFAULT 0,
        rows_unchanged BIGINT NOT NULL DEFAULT 0,
        rows_inserted BIGINT,
        dry_run BOOLEAN NOT NULL DEFAULT FALSE,
        host VARCHAR(255) NOT NULL,
        pid BIGINT NOT NULL,
        options TEXT NOT NULL,
        message TEXT,
        KEY cutover_runs_mapping (mapping, id)) CHARACTER SET utf8mb4",
    "CREATE TABLE IF NOT EXISTS cutover_run_tables (
        run_id BIGINT NOT NULL,
        table_name VARCHAR(255) NOT NULL,
        rows_written BIGINT NOT NULL DEFAULT 0,
        rows_unchanged BIGINT NOT NULL DEFAULT 0,
        rows_inserted BIGINT,
        seq BIGINT AUTO_INCREMENT UNIQUE,
        PRIMARY KEY (run_id, table_name)) CHARACTER SET utf8mb4",
    "CREATE TABLE IF NOT EXISTS cutover_checkpoints (
        mapping VARCHAR(255) NOT NULL,
        shard BIGINT NOT NULL DEFAULT 0,
        run_id BIGINT NOT NULL,
        position TEXT,
        records_committed BIGINT NOT NULL DEFAULT 0,
        mapping_checksum VARCHAR(64) NOT NULL,
        source_fingerprint TEXT NOT NULL,
        updated_at VARCHAR(32) NOT NULL,
        PRIMARY KEY (mapping, shard)) CHARACTER SET utf8mb4",
    "CREATE TABLE IF NOT EXISTS cutover_errors (
        id BIGINT AUTO_INCREMENT PRIMARY KEY,
        run_id BIGINT NOT NULL,
        mapping VARCHAR(255) NOT NULL,
        record_key TEXT NOT NULL,
        position TEXT,
        stage VARCHAR(16) NOT NULL,
        column_name VARCHAR(255),
        message TEXT NOT NULL,
        record MEDIUMTEXT,
        created_at VARCHAR(32) NOT NULL,
        resolved_at VARCHAR(32),
        KEY cutover_errors_key (mapping, record_key(250))) CHARACTER SET utf8mb4",
    "CREATE TABLE IF NOT EXISTS cutover_keymap (
        mapping VARCHAR(255) NOT NULL,
        legacy_key VARCHAR(500) NOT NULL,
        new_key VARCHAR(500) NOT NULL,
        PRIMARY KEY (mapping, legacy_key)) CHARACTER SET utf8mb4",
    "CREATE TABLE IF NOT EXISTS cutover_locks (
        mapping VARCHAR(255) PRIMARY KEY,
        run_id BIGINT,
        host VARCHAR(255) NOT NULL,
        pid BIGINT NOT NULL,
        acquired_at VARCHAR(32) NOT NULL,
        heartbeat_at VARCHAR(32) NOT NULL) CHARACTER SET utf8mb4",
];

pub struct MySqlTarget {
    pool: MySqlPool,
    url: String,
    locks: Mutex<HashMap<String, PoolConnection<MySql>>>,
}

/// Server error numbers that mean "try again on a fresh connection".
fn retryable_code(code: &str) -> bool {
    matches!(
        code,
        "1213" // deadlock
            | "1205" // lock wait timeout
            | "1040" // too many connections
            | "1053" // server shutdown
            | "1927" // connection killed (MariaDB)
            | "2006" // server has gone away
            | "2013" // lost connection
            | "1317" // query interrupted
            | "8027" | "9007" // TiDB: schema changed, write conflict
            | "8022" | "8028" // TiDB: transaction retry, information schema changed
            | "9001" | "9002" | "9003" | "9004" | "9005" // TiDB: PD/TiKV time-out or busy
    )
}

pub(crate) fn classify(e: &sqlx::Error) -> DbFailure {
    match e {
        sqlx::Error::Database(d) => {
            let code = d
                .try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>()
                .map(|m| m.number().to_string())
                .unwrap_or_default();
            DbFailure {
                data: !retryable_code(&code),
                message: format!("{} [error {code}]", d.message()),
            }
        }
        other => super::client_failure(other),
    }
}

fn db(context: &str) -> impl Fn(sqlx::Error) -> TargetError + '_ {
    move |e| classify(&e).into_target(context)
}

/// Map `information_schema.columns.column_type` to the loader's column type.
pub fn column_type(declared: &str) -> ColumnType {
    let d = declared.to_ascii_lowercase();
    let base = d.split(['(', ' ']).next().unwrap_or("");
    let args: Vec<u32> = d
        .find('(')
        .and_then(|i| d[i + 1..].split(')').next())
        .map(|a| a.split(',').filter_map(|x| x.trim().parse().ok()).collect())
        .unwrap_or_default();
    let unsigned = d.contains("unsigned");
    match base {
        "tinyint" if args.first() == Some(&1) => ColumnType::Bool,
        "bool" | "boolean" => ColumnType::Bool,
        "tinyint" | "smallint" | "mediumint" | "int" | "integer" | "bigint" => {
            let bits = match base {
                "tinyint" => 8,
                "smallint" => 16,
                "mediumint" => 24,
                "bigint" => 64,
                _ => 32,
            };
            if unsigned {
                ColumnType::Unsigned { bits }
            } else {
                ColumnType::Integer { bits }
            }
        }
        "decimal" | "numeric" => ColumnType::Decimal {
            precision: args.first().copied(),
            scale: args.get(1).copied(),
        },
        "float" | "double" | "real" => ColumnType::Float,
        "char" | "varchar" => ColumnType::Text {
            max_len: args.first().copied(),
        },
        "tinytext" => ColumnType::Text { max_len: Some(255) },
        "text" | "mediumtext" | "longtext" => ColumnType::Text { max_len: None },
        "date" => ColumnType::Date,
        "datetime" | "timestamp" => ColumnType::Timestamp { tz: false },
        "time" => ColumnType::Time,
        "json" => ColumnType::Json { binary: false },
        "binary" | "varbinary" | "blob" | "tinyblob" | "mediumblob" | "longblob" => {
            ColumnType::Bytes
        }
        "enum" => {
            let inner = d
                .find('(')
                .and_then(|i| declared.get(i + 1..declared.len().saturating_sub(1)));
            let values = inner
                .map(|s| {
                    s.split(',')
                        .map(|v| v.trim().trim_matches('\'').replace("''", "'"))
                        .collect()
                })
                .unwrap_or_default();
            ColumnType::Enum(values)
        }
        _ => ColumnType::Any,
    }
}

fn bind<'q>(
    q: Query<'q, MySql, MySqlArguments>,
    v: &'q SqlValue,
) -> Query<'q, MySql, MySqlArguments> {
    match v {
        SqlValue::Null => q.bind(None::<String>),
        SqlValue::Int(i) => q.bind(*i),
        SqlValue::Float(f) => q.bind(*f),
        SqlValue::Bool(b) => q.bind(*b),
        SqlValue::Text(s) | SqlValue::Json(s) | SqlValue::Decimal(s) => q.bind(s.as_str()),
        SqlValue::Bytes(b) => q.bind(b.as_slice()),
        other => q.bind(other.to_text()),
    }
}

/// GET_LOCK names are limited to 64 characters.
fn lock_name(mapping: &str) -> String {
    let name = format!("cutover:{mapping}");
    if name.len() <= 64 {
        name
    } else {
        use sha2::{Digest, Sha256};
        format!(
            "cutover:{}",
            &hex::encode(Sha256::digest(mapping.as_bytes()))[..48]
        )
    }
}

/// The upsert statement of a table for `n` rows.
pub fn upsert_sql(table: &BoundTable, n: usize) -> String {
    let d = Dialect::Mysql;
    let t = quote_table(d, &table.spec.table);
    let cols: Vec<String> = table.column_names().map(|c| quote_ident(d, c)).collect();
    let one = format!("({})", vec!["?"; cols.len()].join(","));
    let mut sql = format!(
        "INSERT INTO {t} ({}) VALUES {}",
        cols.join(", "),
        vec![one.as_str(); n].join(",")
    );
    let non_key: Vec<&String> = cols
        .iter()
        .enumerate()
        .filter(|(i, _)| !table.key_idx.contains(i))
        .map(|(_, c)| c)
        .collect();
    match table.spec.on_conflict {
        OnConflict::Fail => {}
        OnConflict::Update if !non_key.is_empty() => {
            let set: Vec<String> = non_key
                .iter()
                .map(|c| format!("{c} = VALUES({c})"))
                .collect();
            sql.push_str(&format!(" ON DUPLICATE KEY UPDATE {}", set.join(", ")));
        }
        // A no-op update keeps the existing row (INSERT IGNORE would also hide
        // truncation and other data errors).
        _ => {
            let k = quote_ident(d, &table.spec.key[0]);
            sql.push_str(&format!(" ON DUPLICATE KEY UPDATE {k} = {k}"));
        }
    }
    sql
}

/// `SELECT COUNT(*)` of the rows whose keys already exist (to tell inserts from
/// updates and unchanged rows: the affected-rows count alone cannot).
fn existing_sql(table: &BoundTable, n: usize) -> String {
    let d = Dialect::Mysql;
    let t = quote_table(d, &table.spec.table);
    let key: Vec<String> = table.spec.key.iter().map(|k| quote_ident(d, k)).collect();
    let one = if key.len() == 1 {
        "?".to_string()
    } else {
        format!("({})", vec!["?"; key.len()].join(","))
    };
    let lhs = if key.len() == 1 {
        key[0].clone()
    } else {
        format!("({})", key.join(", "))
    };
    format!(
        "SELECT COUNT(*) FROM {t} WHERE {lhs} IN ({})",
        vec![one.as_str(); n].join(",")
    )
}

impl MySqlTarget {
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
        let got: Option<i64> = sqlx::query_scalar("SELECT GET_LOCK(?, 0)")
            .bind(lock_name(mapping))
            .fetch_one(&mut *fresh)
            .await
            .map_err(db(ctx))?;
        if got != Some(1) {
            locks.remove(mapping);
            return Err(TargetError::LockLost {
                mapping: mapping.to_string(),
            });
        }
        locks.insert(mapping.to_string(), fresh);
        Ok(())
    }

    pub async fn connect(url: &str) -> Result<MySqlTarget, TargetError> {
        let fail = |e: sqlx::Error| TargetError::Connect {
            url: crate::redact_url(url),
            message: e.to_string(),
        };
        let opts = MySqlConnectOptions::from_str(url)
            .map_err(fail)?
            .charset("utf8mb4")
            .timezone(Some("+00:00".to_string()));
        super::probe(&opts, url).await?;
        let pool = MySqlPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(30))
            .after_connect(|conn, _| {
                Box::pin(async move {
                    conn.execute("SET SESSION sql_mode = CONCAT(@@sql_mode, ',STRICT_ALL_TABLES')")
                        .await?;
                    Ok(())
                })
            })
            .connect_with(opts)
            .await
            .map_err(fail)?;
        Ok(MySqlTarget {
            pool,
            url: url.to_string(),
            locks: Mutex::new(HashMap::new()),
        })
    }

    async fn read_holder(&self, mapping: &str) -> Result<Option<Holder>, TargetError> {
        let ctx = "reading the run lock";
        let row = sqlx::query("SELECT run_id, host, pid, acquired_at, heartbeat_at FROM cutover_locks WHERE mapping = ?")
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

pub struct MySqlTx {
    tx: Transaction<'static, MySql>,
}

#[async_trait]
impl BatchTx for MySqlTx {
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
        let ncols = table.spec.columns.len().max(1);
        let per = ROWS_PER_STATEMENT.min(MAX_BINDS / ncols).max(1);
        let (mut inserted, mut updated) = (0u64, 0u64);
        for chunk in rows.chunks(per) {
            let n = chunk.len() as u64;
            let existing = if table.spec.on_conflict == OnConflict::Fail {
                0
            } else {
                let sql = existing_sql(table, chunk.len());
                let mut q = sqlx::query_scalar::<_, i64>(&sql);
                for row in chunk {
                    for &k in &table.key_idx {
                        q = match &row[k] {
                            SqlValue::Int(i) => q.bind(*i),
                            other => q.bind(other.to_text()),
                        };
                    }
                }
                q.fetch_one(&mut *self.tx).await.map_err(|e| classify(&e))? as u64
            };
            let sql = upsert_sql(table, chunk.len());
            let mut q = sqlx::query(&sql);
            for row in chunk {
                for v in row.iter() {
                    q = bind(q, v);
                }
            }
            let affected = q
                .execute(&mut *self.tx)
                .await
                .map_err(|e| classify(&e))?
                .rows_affected();
            // With CLIENT_FOUND_ROWS: 1 per insert, 2 per update, 1 per unchanged row.
            let ins = n.saturating_sub(existing);
            inserted += ins;
            updated += affected.saturating_sub(n).min(existing);
        }
        Ok(UpsertCount {
            changed: inserted + updated,
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
        for e in errors {
            sqlx::query(
                "INSERT INTO cutover_errors (run_id, mapping, record_key, position, stage, column_name, message, record, created_at)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(run_id)
            .bind(mapping)
            .bind(&e.record_key)
            .bind(e.position.to_json())
            .bind(e.stage.to_string())
            .bind(e.column.as_deref())
            .bind(&e.message)
            .bind(e.record.to_string())
            .bind(&now)
            .execute(&mut *self.tx)
            .await
            .map_err(|e| classify(&e))?;
        }
        Ok(())
    }

    async fn resolve_errors(&mut self, mapping: &str, keys: &[&str]) -> Result<(), DbFailure> {
        let now = now_text();
        for chunk in keys.chunks(1000) {
            let marks = vec!["?"; chunk.len()].join(",");
            let sql = format!("UPDATE cutover_errors SET resolved_at = ? WHERE mapping = ? AND resolved_at IS NULL AND record_key IN ({marks})");
            let mut q = sqlx::query(&sql).bind(&now).bind(mapping);
            for k in chunk {
                q = q.bind(*k);
            }
            q.execute(&mut *self.tx).await.map_err(|e| classify(&e))?;
        }
        Ok(())
    }

    async fn save_keymap(
        &mut self,
        mapping: &str,
        pairs: &[(&str, &str)],
    ) -> Result<(), DbFailure> {
        for chunk in pairs.chunks(1000) {
            let marks = vec!["(?, ?, ?)"; chunk.len()].join(",");
            let sql = format!("INSERT INTO cutover_keymap (mapping, legacy_key, new_key) VALUES {marks} ON DUPLICATE KEY UPDATE new_key = VALUES(new_key)");
            let mut q = sqlx::query(&sql);
            for (l, n) in chunk {
                q = q.bind(mapping).bind(*l).bind(*n);
            }
            q.execute(&mut *self.tx).await.map_err(|e| classify(&e))?;
        }
        Ok(())
    }

    async fn save_progress(&mut self, p: &Progress) -> Result<(), DbFailure> {
        let now = now_text();
        let rows_written: i64 = p.tables.iter().map(|t| t.1).sum();
        let rows_unchanged: i64 = p.tables.iter().map(|t| t.2).sum();
        let rows_inserted: i64 = p.tables.iter().filter_map(|t| t.3).sum();
        let e = |e: sqlx::Error| classify(&e);
        sqlx::query(
            "UPDATE cutover_runs SET records_read = records_read + ?, records_written = records_written + ?,
               records_filtered = records_filtered + ?, records_failed = records_failed + ?,
               rows_written = rows_written + ?, rows_unchanged = rows_unchanged + ?,
               rows_inserted = COALESCE(rows_inserted, 0) + ?, heartbeat_at = ?
             WHERE id = ?",
        )
        .bind(p.read)
        .bind(p.written)
        .bind(p.filtered)
        .bind(p.failed)
        .bind(rows_written)
        .bind(rows_unchanged)
        .bind(rows_inserted)
        .bind(&now)
        .bind(p.run_id)
        .execute(&mut *self.tx)
        .await
        .map_err(e)?;
        for (t, w, u, ins) in &p.tables {
            sqlx::query(
                "INSERT INTO cutover_run_tables (run_id, table_name, rows_written, rows_unchanged, rows_inserted) VALUES (?, ?, ?, ?, ?)
                 ON DUPLICATE KEY UPDATE rows_written = rows_written + VALUES(rows_written),
                   rows_unchanged = rows_unchanged + VALUES(rows_unchanged),
                   rows_inserted = COALESCE(rows_inserted, 0) + COALESCE(VALUES(rows_inserted), 0)",
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
                 VALUES (?, 0, ?, ?, ?, ?, ?, ?)
                 ON DUPLICATE KEY UPDATE run_id = VALUES(run_id), position = VALUES(position),
                   records_committed = VALUES(records_committed), mapping_checksum = VALUES(mapping_checksum),
                   source_fingerprint = VALUES(source_fingerprint), updated_at = VALUES(updated_at)",
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
        sqlx::query("UPDATE cutover_locks SET heartbeat_at = ? WHERE mapping = ?")
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
impl Target for MySqlTarget {
    fn dialect(&self) -> Dialect {
        Dialect::Mysql
    }

    fn display_url(&self) -> String {
        crate::redact_url(&self.url)
    }

    async fn ensure_tracking(&self) -> Result<(), TargetError> {
        for stmt in DDL {
            sqlx::query(stmt)
                .execute(&self.pool)
                .await
                .map_err(db("creating the tracking tables"))?;
        }
        Ok(())
    }

    async fn describe_table(&self, table: &str) -> Result<Option<TableInfo>, TargetError> {
        let ctx = "reading the table's columns";
        let (schema, name) = match table.split_once('.') {
            Some((s, t)) => (Some(s), t),
            None => (None, table),
        };
        let rows = sqlx::query(
            "SELECT CAST(column_name AS CHAR) AS name, CAST(column_type AS CHAR) AS declared,
                    is_nullable = 'YES' AS nullable,
                    (column_default IS NOT NULL OR extra LIKE '%auto_increment%' OR extra LIKE '%GENERATED%') AS has_default
             FROM information_schema.columns
             WHERE table_schema = COALESCE(?, DATABASE()) AND table_name = ?
             ORDER BY ordinal_position",
        )
        .bind(schema)
        .bind(name)
        .fetch_all(&self.pool)
        .await
        .map_err(db(ctx))?;
        if rows.is_empty() {
            return Ok(None);
        }
        let mut columns = Vec::new();
        for r in &rows {
            let declared: String = r.try_get("declared").map_err(db(ctx))?;
            let nullable: i64 = r.try_get("nullable").map_err(db(ctx))?;
            let has_default: i64 = r.try_get("has_default").map_err(db(ctx))?;
            columns.push(ColumnInfo {
                name: r.try_get("name").map_err(db(ctx))?,
                ty: column_type(&declared),
                declared,
                nullable: nullable != 0,
                has_default: has_default != 0,
            });
        }
        // MariaDB's JSON is LONGTEXT with a CHECK (json_valid(`col`)); MySQL
        // reports `json` itself (and has no TABLE_NAME here: the query fails).
        let checks: Vec<String> = sqlx::query_scalar(
            "SELECT CAST(check_clause AS CHAR) FROM information_schema.check_constraints
             WHERE constraint_schema = COALESCE(?, DATABASE()) AND table_name = ?",
        )
        .bind(schema)
        .bind(name)
        .fetch_all(&self.pool)
        .await
        .unwrap_or_default();
        for c in columns.iter_mut() {
            let valid = format!("json_valid({})", quote_ident(Dialect::Mysql, &c.name));
            if matches!(c.ty, ColumnType::Text { max_len: None })
                && checks
                    .iter()
                    .any(|k| k.to_ascii_lowercase().contains(&valid.to_ascii_lowercase()))
            {
                c.ty = ColumnType::Json { binary: false };
            }
        }
        let keys = sqlx::query(
            "SELECT CAST(index_name AS CHAR) AS idx, CAST(column_name AS CHAR) AS col
             FROM information_schema.statistics
             WHERE table_schema = COALESCE(?, DATABASE()) AND table_name = ? AND non_unique = 0
             ORDER BY index_name = 'PRIMARY' DESC, index_name, seq_in_index",
        )
        .bind(schema)
        .bind(name)
        .fetch_all(&self.pool)
        .await
        .map_err(db(ctx))?;
        let mut unique_keys: Vec<(String, Vec<String>)> = Vec::new();
        for r in keys {
            let idx: String = r.try_get("idx").map_err(db(ctx))?;
            let col: String = r.try_get("col").map_err(db(ctx))?;
            match unique_keys.last_mut() {
                Some((i, cols)) if *i == idx => cols.push(col),
                _ => unique_keys.push((idx, vec![col])),
            }
        }
        Ok(Some(TableInfo {
            name: table.to_string(),
            columns,
            unique_keys: unique_keys.into_iter().map(|(_, c)| c).collect(),
        }))
    }

    fn upsert_sql(&self, table: &BoundTable, rows: usize) -> String {
        upsert_sql(table, rows)
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
        let mut got: Option<i64> = None;
        // A holder that died a moment ago keeps its lock until the server notices
        // the closed connection: wait for that, up to 20 s.
        for _ in 0..40 {
            got = sqlx::query_scalar("SELECT GET_LOCK(?, 0)")
                .bind(lock_name(mapping))
                .fetch_one(&mut *conn)
                .await
                .map_err(db(ctx))?;
            if got == Some(1)
                || self
                    .read_holder(mapping)
                    .await?
                    .is_none_or(|h| h.is_alive())
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        if got != Some(1) {
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
            let _ = sqlx::query("SELECT RELEASE_LOCK(?)")
                .bind(lock_name(mapping))
                .execute(&mut *conn)
                .await;
            return Ok(LockOutcome::Held(h.clone()));
        }
        sqlx::query(
            "INSERT INTO cutover_locks (mapping, run_id, host, pid, acquired_at, heartbeat_at) VALUES (?, ?, ?, ?, ?, ?)
             ON DUPLICATE KEY UPDATE run_id = VALUES(run_id), host = VALUES(host), pid = VALUES(pid),
               acquired_at = VALUES(acquired_at), heartbeat_at = VALUES(heartbeat_at)",
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
        sqlx::query("UPDATE cutover_locks SET heartbeat_at = ?, run_id = ? WHERE mapping = ?")
            .bind(&now)
            .bind(run_id)
            .bind(mapping)
            .execute(&self.pool)
            .await
            .map_err(db(ctx))?;
        sqlx::query("UPDATE cutover_runs SET heartbeat_at = ? WHERE id = ?")
            .bind(&now)
            .bind(run_id)
            .execute(&self.pool)
            .await
            .map_err(db(ctx))?;
        Ok(())
    }

    async fn unlock(&self, mapping: &str) -> Result<(), TargetError> {
        let ctx = "releasing the run lock";
        sqlx::query("DELETE FROM cutover_locks WHERE mapping = ? AND host = ? AND pid = ?")
            .bind(mapping)
            .bind(crate::tracking::this_host())
            .bind(i64::from(std::process::id()))
            .execute(&self.pool)
            .await
            .map_err(db(ctx))?;
        if let Some(mut conn) = self.locks.lock().await.remove(mapping) {
            let _ = sqlx::query("SELECT RELEASE_LOCK(?)")
                .bind(lock_name(mapping))
                .execute(&mut *conn)
                .await;
        }
        Ok(())
    }

    async fn start_run(&self, run: &NewRun) -> Result<i64, TargetError> {
        let now = now_text();
        let r = sqlx::query(
            "INSERT INTO cutover_runs (mapping, mapping_checksum, status, started_at, heartbeat_at, dry_run, host, pid, options)
             VALUES (?, ?, 'running', ?, ?, ?, ?, ?, ?)",
        )
        .bind(&run.mapping)
        .bind(&run.checksum)
        .bind(&now)
        .bind(&now)
        .bind(run.dry_run)
        .bind(&run.host)
        .bind(i64::from(run.pid))
        .bind(&run.options)
        .execute(&self.pool)
        .await
        .map_err(db("recording the run"))?;
        Ok(r.last_insert_id() as i64)
    }

    async fn finish_run(
        &self,
        run_id: i64,
        status: RunStatus,
        message: Option<&str>,
    ) -> Result<(), TargetError> {
        sqlx::query("UPDATE cutover_runs SET status = ?, finished_at = ?, message = COALESCE(?, message) WHERE id = ?")
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
        sqlx::query("UPDATE cutover_runs SET status = 'interrupted', finished_at = COALESCE(heartbeat_at, started_at), message = ? WHERE mapping = ? AND status = 'running'")
            .bind(message)
            .bind(mapping)
            .execute(&self.pool)
            .await
            .map_err(db("marking abandoned runs"))
            .map(|r| r.rows_affected())
    }

    async fn checkpoint_run(&self, mapping: &str) -> Result<Option<RunRow>, TargetError> {
        let r = sqlx::query(
            "SELECT r.* FROM cutover_runs r JOIN cutover_checkpoints c ON c.run_id = r.id WHERE c.mapping = ? AND c.shard = 0",
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
        let r = sqlx::query("SELECT * FROM cutover_checkpoints WHERE mapping = ? AND shard = 0")
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
            "SELECT COUNT(*) FROM cutover_errors WHERE mapping = ? AND resolved_at IS NULL",
        )
        .bind(mapping)
        .fetch_one(&self.pool)
        .await
        .map_err(db("counting errors"))
    }

    async fn runs(&self, mapping: Option<&str>) -> Result<Vec<RunRow>, TargetError> {
        let rows =
            sqlx::query("SELECT * FROM cutover_runs WHERE (? IS NULL OR mapping = ?) ORDER BY id")
                .bind(mapping)
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
        let rows = sqlx::query("SELECT run_id, table_name, rows_written, rows_unchanged, rows_inserted FROM cutover_run_tables WHERE run_id = ? ORDER BY seq")
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
            "SELECT * FROM cutover_errors WHERE (? IS NULL OR mapping = ?) AND (? IS NULL OR run_id = ?)
               AND (? = 0 OR resolved_at IS NULL) ORDER BY id LIMIT ?",
        )
        .bind(f.mapping.as_deref())
        .bind(f.mapping.as_deref())
        .bind(f.run_id)
        .bind(f.run_id)
        .bind(i64::from(f.unresolved_only))
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
        Ok(Box::new(MySqlTx { tx }))
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
            "SELECT version, CAST(installed_on AS CHAR), execution_time FROM _sqlx_migrations",
        )
        .await
    }

    async fn backup(&self, path: &Path) -> Result<Option<String>, TargetError> {
        let opts = MySqlConnectOptions::from_str(&self.url).map_err(db("reading the URL"))?;
        Ok(Some(format!(
            "mysqldump --single-transaction --routines -h {} -P {} -u {} -p {} > '{}'",
            opts.get_host(),
            opts.get_port(),
            opts.get_username(),
            opts.get_database().unwrap_or(""),
            path.display()
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
                Dialect::Mysql,
                table,
                chunk.len(),
                |c| format!("CAST({c} AS CHAR)"),
                |_, _| "?".into(),
            );
            let mut q = sqlx::query(&sql);
            for k in chunk {
                for v in k {
                    q = bind(q, v);
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
            "SELECT COUNT(*) FROM {}",
            quote_table(Dialect::Mysql, table)
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
        let mut out = Vec::new();
        for chunk in legacy.chunks(500) {
            let sql = format!(
                "SELECT legacy_key, new_key FROM cutover_keymap WHERE mapping = ? AND legacy_key IN ({})",
                vec!["?"; chunk.len()].join(",")
            );
            let mut q = sqlx::query(&sql).bind(mapping);
            for k in chunk {
                q = q.bind(k);
            }
            for r in q
                .fetch_all(&self.pool)
                .await
                .map_err(db("reading the key map"))?
            {
                out.push((
                    r.try_get(0).map_err(db("reading the key map"))?,
                    r.try_get(1).map_err(db("reading the key map"))?,
                ));
            }
        }
        Ok(out)
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
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declared_types() {
        assert_eq!(column_type("int(11)"), ColumnType::Integer { bits: 32 });
        assert_eq!(
            column_type("int(10) unsigned"),
            ColumnType::Unsigned { bits: 32 }
        );
        assert_eq!(column_type("tinyint(4)"), ColumnType::Integer { bits: 8 });
        assert_eq!(
            column_type("mediumint(8) unsigned"),
            ColumnType::Unsigned { bits: 24 }
        );
        assert_eq!(
            column_type("bigint(20) unsigned"),
            ColumnType::Unsigned { bits: 64 }
        );
        assert_eq!(column_type("tinyint(1)"), ColumnType::Bool);
        assert_eq!(
            column_type("varchar(64)"),
            ColumnType::Text { max_len: Some(64) }
        );
        assert_eq!(
            column_type("decimal(12,2)"),
            ColumnType::Decimal {
                precision: Some(12),
                scale: Some(2)
            }
        );
        assert_eq!(
            column_type("enum('Draft','It''s')"),
            ColumnType::Enum(vec!["Draft".into(), "It's".into()])
        );
        assert_eq!(
            column_type("datetime(3)"),
            ColumnType::Timestamp { tz: false }
        );
        assert!(retryable_code("1213") && !retryable_code("1062"));
        assert!(lock_name(&"x".repeat(100)).len() <= 64);
    }
}
