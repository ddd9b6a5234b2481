//! SQLite target (the default): WAL, multi-row `INSERT ... ON CONFLICT DO UPDATE
//! ... WHERE` changed, prepared and cached, sized under the bind limit.

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
use sqlx::query::Query;
use sqlx::sqlite::{
    SqliteArguments, SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteSynchronous,
};
use sqlx::{Row, Sqlite, Transaction};
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

/// SQLite's bind limit (SQLITE_MAX_VARIABLE_NUMBER) since 3.32.
const MAX_BINDS: usize = 32_766;
/// Rows per statement: large enough to amortise the call, small enough to keep
/// the prepared statement cache effective.
const ROWS_PER_STATEMENT: usize = 1000;

const DDL: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS cutover_runs (
        id INTEGER PRIMARY KEY,
        mapping TEXT NOT NULL,
        mapping_checksum TEXT NOT NULL,
        status TEXT NOT NULL,
        started_at TEXT NOT NULL,
        finished_at TEXT,
        heartbeat_at TEXT,
        records_read INTEGER NOT NULL DEFAULT 0,
        records_written INTEGER NOT NULL DEFAULT 0,
        records_filtered INTEGER NOT NULL DEFAULT 0,
        records_failed INTEGER NOT NULL DEFAULT 0,
        rows_written INTEGER NOT NULL DEFAULT 0,
        rows_unchanged INTEGER NOT NULL DEFAULT 0,
        rows_inserted INTEGER,
        dry_run INTEGER NOT NULL DEFAULT 0,
        host TEXT NOT NULL,
        pid INTEGER NOT NULL,
        options TEXT NOT NULL DEFAULT '{}',
        message TEXT)",
    "CREATE INDEX IF NOT EXISTS cutover_runs_mapping ON cutover_runs (mapping, id)",
    "CREATE TABLE IF NOT EXISTS cutover_run_tables (
        run_id INTEGER NOT NULL,
        table_name TEXT NOT NULL,
        rows_written INTEGER NOT NULL DEFAULT 0,
        rows_unchanged INTEGER NOT NULL DEFAULT 0,
        rows_inserted INTEGER,
        PRIMARY KEY (run_id, table_name))",
    "CREATE TABLE IF NOT EXISTS cutover_checkpoints (
        mapping TEXT NOT NULL,
        shard INTEGER NOT NULL DEFAULT 0,
        run_id INTEGER NOT NULL,
        position TEXT,
        records_committed INTEGER NOT NULL DEFAULT 0,
        mapping_checksum TEXT NOT NULL,
        source_fingerprint TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (mapping, shard))",
    "CREATE TABLE IF NOT EXISTS cutover_errors (
        id INTEGER PRIMARY KEY,
        run_id INTEGER NOT NULL,
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
        run_id INTEGER,
        host TEXT NOT NULL,
        pid INTEGER NOT NULL,
        acquired_at TEXT NOT NULL,
        heartbeat_at TEXT NOT NULL)",
];

pub struct SqliteTarget {
    pool: SqlitePool,
    url: String,
}

fn classify(e: &sqlx::Error) -> DbFailure {
    match e {
        sqlx::Error::Database(d) => {
            let code = d.code().and_then(|c| c.parse::<i64>().ok()).unwrap_or(0);
            // SQLITE_BUSY (5) and SQLITE_LOCKED (6) are contention, not data.
            let contention = matches!(code & 0xff, 5 | 6);
            DbFailure {
                data: !contention,
                message: d.message().to_string(),
            }
        }
        other => super::client_failure(other),
    }
}

fn db(context: &str) -> impl Fn(sqlx::Error) -> TargetError + '_ {
    move |e| classify(&e).into_target(context)
}

/// Map a declared SQLite type to the loader's column type.
pub fn column_type(declared: &str) -> ColumnType {
    let d = declared.to_ascii_uppercase();
    let args: Vec<u32> = d
        .find('(')
        .and_then(|i| d[i + 1..].split(')').next())
        .map(|a| a.split(',').filter_map(|x| x.trim().parse().ok()).collect())
        .unwrap_or_default();
    if d.contains("BOOL") {
        ColumnType::Bool
    } else if d.contains("DATETIME") || d.contains("TIMESTAMP") {
        ColumnType::Timestamp {
            tz: d.contains("TZ") || d.contains("WITH TIME ZONE"),
        }
    } else if d.starts_with("DATE") {
        ColumnType::Date
    } else if d.starts_with("TIME") {
        ColumnType::Time
    } else if d.contains("UUID") {
        ColumnType::Uuid
    } else if d.contains("JSON") {
        ColumnType::Json { binary: false }
    } else if d.contains("INT") {
        ColumnType::Integer {
            bits: if d.contains("SMALLINT") || d.contains("TINYINT") {
                16
            } else {
                64
            },
        }
    } else if d.contains("CHAR") || d.contains("CLOB") || d.contains("TEXT") {
        ColumnType::Text {
            max_len: args.first().copied(),
        }
    } else if d.contains("BLOB") {
        ColumnType::Bytes
    } else if d.contains("REAL") || d.contains("FLOA") || d.contains("DOUB") {
        ColumnType::Float
    } else if d.contains("DEC") || d.contains("NUMERIC") || d.contains("MONEY") {
        ColumnType::Decimal {
            precision: args.first().copied(),
            scale: args.get(1).copied(),
        }
    } else {
        ColumnType::Any
    }
}

fn bind<'q>(
    q: Query<'q, Sqlite, SqliteArguments<'q>>,
    v: &'q SqlValue,
) -> Query<'q, Sqlite, SqliteArguments<'q>> {
    match v {
        SqlValue::Null => q.bind(None::<i64>),
        SqlValue::Int(i) => q.bind(*i),
        SqlValue::Float(f) => q.bind(*f),
        SqlValue::Bool(b) => q.bind(i64::from(*b)),
        SqlValue::Text(s) | SqlValue::Json(s) | SqlValue::Decimal(s) => q.bind(s.as_str()),
        SqlValue::Bytes(b) => q.bind(b.as_slice()),
        other => q.bind(other.to_text()),
    }
}

impl SqliteTarget {
    pub async fn connect(url: &str) -> Result<SqliteTarget, TargetError> {
        let fail = |e: sqlx::Error| TargetError::Connect {
            url: crate::redact_url(url),
            message: e.to_string(),
        };
        let opts = SqliteConnectOptions::from_str(url)
            .map_err(fail)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(30))
            .pragma("cache_size", "-32768")
            .pragma("temp_store", "memory");
        // One connection: SQLite has one writer anyway, and its page cache stays warm
        // (a pool rotating over several connections holds a cache per connection).
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .connect_with(opts)
            .await
            .map_err(fail)?;
        Ok(SqliteTarget {
            pool,
            url: url.to_string(),
        })
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    async fn read_holder(&self, mapping: &str) -> Result<Option<Holder>, TargetError> {
        let row = sqlx::query("SELECT run_id, host, pid, acquired_at, heartbeat_at FROM cutover_locks WHERE mapping = ?")
            .bind(mapping)
            .fetch_optional(&self.pool)
            .await
            .map_err(db("reading the run lock"))?;
        Ok(match row {
            None => None,
            Some(r) => Some(Holder {
                run_id: r.try_get("run_id").map_err(db("reading the run lock"))?,
                host: r.try_get("host").map_err(db("reading the run lock"))?,
                pid: r.try_get("pid").map_err(db("reading the run lock"))?,
                acquired_at: r
                    .try_get("acquired_at")
                    .map_err(db("reading the run lock"))?,
                heartbeat_at: r
                    .try_get("heartbeat_at")
                    .map_err(db("reading the run lock"))?,
            }),
        })
    }
}

pub struct SqliteTx {
    tx: Transaction<'static, Sqlite>,
    /// Progress of the batches written since the transaction began, saved once
    /// when it commits: several batches share a transaction on SQLite, and each
    /// tracking write would otherwise touch (and journal) the same pages again.
    pending: Option<Progress>,
}

/// Add a batch's progress to what the open transaction already holds.
fn merge_progress(acc: &mut Progress, p: &Progress) {
    acc.read += p.read;
    acc.written += p.written;
    acc.filtered += p.filtered;
    acc.failed += p.failed;
    for (t, w, u, i) in &p.tables {
        match acc.tables.iter_mut().find(|a| &a.0 == t) {
            Some(a) => {
                a.1 += w;
                a.2 += u;
                a.3 = match (a.3, i) {
                    (Some(x), Some(y)) => Some(x + y),
                    (x, None) => x,
                    (None, y) => *y,
                };
            }
            None => acc.tables.push((t.clone(), *w, *u, *i)),
        }
    }
    if p.position.is_some() {
        acc.position = p.position.clone();
        acc.records_committed = p.records_committed;
    }
}

/// Records per savepoint on SQLite: its sub-journal holds a copy of every page
/// a savepoint touches, in memory (about 4 KiB per record with random keys).
const SAVEPOINT_RECORDS: usize = 1000;

#[async_trait]
impl BatchTx for SqliteTx {
    fn savepoint_records(&self) -> usize {
        SAVEPOINT_RECORDS
    }

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
        let mut changed = 0;
        let mut full_sql: Option<String> = None;
        for chunk in rows.chunks(per) {
            let sql = if chunk.len() == per {
                full_sql
                    .get_or_insert_with(|| upsert_sql(table, per))
                    .clone()
            } else {
                upsert_sql(table, chunk.len())
            };
            let mut q = sqlx::query(&sql);
            for row in chunk {
                for v in row.iter() {
                    q = bind(q, v);
                }
            }
            let r = q.execute(&mut *self.tx).await.map_err(|e| classify(&e))?;
            changed += r.rows_affected();
        }
        Ok(UpsertCount {
            changed,
            inserted: None,
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
        for chunk in keys.chunks(500) {
            let marks = vec!["?"; chunk.len()].join(",");
            let sql = format!(
                "UPDATE cutover_errors SET resolved_at = ? WHERE mapping = ? AND resolved_at IS NULL AND record_key IN ({marks})"
            );
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
        for chunk in pairs.chunks(500) {
            let marks = vec!["(?, ?, ?)"; chunk.len()].join(",");
            let sql = format!(
                "INSERT INTO cutover_keymap (mapping, legacy_key, new_key) VALUES {marks}
                 ON CONFLICT (mapping, legacy_key) DO UPDATE SET new_key = excluded.new_key
                 WHERE cutover_keymap.new_key IS NOT excluded.new_key"
            );
            let mut q = sqlx::query(&sql);
            for (l, n) in chunk {
                q = q.bind(mapping).bind(*l).bind(*n);
            }
            q.execute(&mut *self.tx).await.map_err(|e| classify(&e))?;
        }
        Ok(())
    }

    async fn save_progress(&mut self, p: &Progress) -> Result<(), DbFailure> {
        match &mut self.pending {
            Some(acc) => merge_progress(acc, p),
            None => self.pending = Some(p.clone()),
        }
        Ok(())
    }

    async fn commit(mut self: Box<Self>) -> Result<(), DbFailure> {
        if let Some(p) = self.pending.take() {
            self.write_progress(&p).await?;
        }
        self.tx.commit().await.map_err(|e| classify(&e))
    }
}

impl SqliteTx {
    async fn write_progress(&mut self, p: &Progress) -> Result<(), DbFailure> {
        let now = now_text();
        let rows_written: i64 = p.tables.iter().map(|t| t.1).sum();
        let rows_unchanged: i64 = p.tables.iter().map(|t| t.2).sum();
        sqlx::query(
            "UPDATE cutover_runs SET records_read = records_read + ?, records_written = records_written + ?,
               records_filtered = records_filtered + ?, records_failed = records_failed + ?,
               rows_written = rows_written + ?, rows_unchanged = rows_unchanged + ?, heartbeat_at = ?
             WHERE id = ?",
        )
        .bind(p.read)
        .bind(p.written)
        .bind(p.filtered)
        .bind(p.failed)
        .bind(rows_written)
        .bind(rows_unchanged)
        .bind(&now)
        .bind(p.run_id)
        .execute(&mut *self.tx)
        .await
        .map_err(|e| classify(&e))?;
        for (t, w, u, _) in &p.tables {
            sqlx::query(
                "INSERT INTO cutover_run_tables (run_id, table_name, rows_written, rows_unchanged) VALUES (?, ?, ?, ?)
                 ON CONFLICT (run_id, table_name) DO UPDATE SET rows_written = rows_written + excluded.rows_written,
                   rows_unchanged = rows_unchanged + excluded.rows_unchanged",
            )
            .bind(p.run_id)
            .bind(t)
            .bind(w)
            .bind(u)
            .execute(&mut *self.tx)
            .await
            .map_err(|e| classify(&e))?;
        }
        if let Some(pos) = &p.position {
            sqlx::query(
                "INSERT INTO cutover_checkpoints (mapping, shard, run_id, position, records_committed, mapping_checksum, source_fingerprint, updated_at)
                 VALUES (?, 0, ?, ?, ?, ?, ?, ?)
                 ON CONFLICT (mapping, shard) DO UPDATE SET run_id = excluded.run_id, position = excluded.position,
                   records_committed = excluded.records_committed, mapping_checksum = excluded.mapping_checksum,
                   source_fingerprint = excluded.source_fingerprint, updated_at = excluded.updated_at",
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
            .map_err(|e| classify(&e))?;
        }
        sqlx::query("UPDATE cutover_locks SET heartbeat_at = ? WHERE mapping = ?")
            .bind(&now)
            .bind(&p.mapping)
            .execute(&mut *self.tx)
            .await
            .map_err(|e| classify(&e))?;
        Ok(())
    }
}

/// The upsert statement of a table for `n` rows.
pub fn upsert_sql(table: &BoundTable, n: usize) -> String {
    let d = Dialect::Sqlite;
    let t = quote_table(d, &table.spec.table);
    let cols: Vec<String> = table.column_names().map(|c| quote_ident(d, c)).collect();
    let one = format!("({})", vec!["?"; cols.len()].join(","));
    let mut sql = format!(
        "INSERT INTO {t} ({}) VALUES {}",
        cols.join(", "),
        vec![one.as_str(); n].join(",")
    );
    let key: Vec<String> = table.spec.key.iter().map(|k| quote_ident(d, k)).collect();
    let non_key: Vec<&String> = cols
        .iter()
        .enumerate()
        .filter(|(i, _)| !table.key_idx.contains(i))
        .map(|(_, c)| c)
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
                .map(|c| format!("{c} = excluded.{c}"))
                .collect();
            let differs: Vec<String> = non_key
                .iter()
                .map(|c| format!("{t}.{c} IS NOT excluded.{c}"))
                .collect();
            sql.push_str(&format!(
                " ON CONFLICT ({}) DO UPDATE SET {} WHERE {}",
                key.join(", "),
                set.join(", "),
                differs.join(" OR ")
            ));
        }
    }
    sql
}

#[async_trait]
impl Target for SqliteTarget {
    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
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
        let rows =
            sqlx::query("SELECT name, type, \"notnull\", dflt_value, pk FROM pragma_table_info(?)")
                .bind(table)
                .fetch_all(&self.pool)
                .await
                .map_err(db(ctx))?;
        if rows.is_empty() {
            return Ok(None);
        }
        let mut columns = Vec::new();
        let mut pk: Vec<(i64, String)> = Vec::new();
        for r in &rows {
            let name: String = r.try_get("name").map_err(db(ctx))?;
            let declared: String = r.try_get("type").map_err(db(ctx))?;
            let notnull: i64 = r.try_get("notnull").map_err(db(ctx))?;
            let dflt: Option<String> = r.try_get("dflt_value").map_err(db(ctx))?;
            let pkn: i64 = r.try_get("pk").map_err(db(ctx))?;
            if pkn > 0 {
                pk.push((pkn, name.clone()));
            }
            columns.push(ColumnInfo {
                ty: column_type(&declared),
                name,
                declared,
                nullable: notnull == 0,
                has_default: dflt.is_some(),
            });
        }
        pk.sort();
        let mut unique_keys = Vec::new();
        if !pk.is_empty() {
            unique_keys.push(pk.into_iter().map(|(_, n)| n).collect());
        }
        let idx = sqlx::query("SELECT name, \"unique\" FROM pragma_index_list(?)")
            .bind(table)
            .fetch_all(&self.pool)
            .await
            .map_err(db(ctx))?;
        for r in idx {
            let unique: i64 = r.try_get("unique").map_err(db(ctx))?;
            if unique == 0 {
                continue;
            }
            let name: String = r.try_get("name").map_err(db(ctx))?;
            let cols = sqlx::query("SELECT name FROM pragma_index_info(?) ORDER BY seqno")
                .bind(&name)
                .fetch_all(&self.pool)
                .await
                .map_err(db(ctx))?;
            let cols: Vec<String> = cols
                .iter()
                .filter_map(|c| c.try_get::<Option<String>, _>("name").ok().flatten())
                .collect();
            unique_keys.push(cols);
        }
        Ok(Some(TableInfo {
            name: table.to_string(),
            columns,
            unique_keys,
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
        for _ in 0..10 {
            let mut replaced = None;
            if let Some(h) = self.read_holder(mapping).await? {
                if h.is_alive() && !(h.host == me.host && h.pid == me.pid) {
                    return Ok(LockOutcome::Held(h));
                }
                sqlx::query("DELETE FROM cutover_locks WHERE mapping = ? AND host = ? AND pid = ? AND acquired_at = ?")
                    .bind(mapping)
                    .bind(&h.host)
                    .bind(h.pid)
                    .bind(&h.acquired_at)
                    .execute(&self.pool)
                    .await
                    .map_err(db(ctx))?;
                replaced = Some(h);
            }
            let r = sqlx::query("INSERT INTO cutover_locks (mapping, run_id, host, pid, acquired_at, heartbeat_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (mapping) DO NOTHING")
                .bind(mapping)
                .bind(me.run_id)
                .bind(&me.host)
                .bind(me.pid)
                .bind(&me.acquired_at)
                .bind(&me.heartbeat_at)
                .execute(&self.pool)
                .await
                .map_err(db(ctx))?;
            if r.rows_affected() == 1 {
                return Ok(LockOutcome::Acquired { replaced });
            }
        }
        match self.read_holder(mapping).await? {
            Some(h) => Ok(LockOutcome::Held(h)),
            None => Err(TargetError::Db {
                context: ctx.into(),
                message: "the lock changed hands repeatedly; try again".into(),
                retryable: true,
            }),
        }
    }

    async fn heartbeat(&self, mapping: &str, run_id: i64) -> Result<(), TargetError> {
        let now = now_text();
        sqlx::query(
            "UPDATE cutover_locks SET heartbeat_at = ?, run_id = ? WHERE mapping = ? AND pid = ?",
        )
        .bind(&now)
        .bind(run_id)
        .bind(mapping)
        .bind(i64::from(std::process::id()))
        .execute(&self.pool)
        .await
        .map_err(db("updating the heartbeat"))?;
        sqlx::query("UPDATE cutover_runs SET heartbeat_at = ? WHERE id = ?")
            .bind(&now)
            .bind(run_id)
            .execute(&self.pool)
            .await
            .map_err(db("updating the heartbeat"))?;
        Ok(())
    }

    async fn unlock(&self, mapping: &str) -> Result<(), TargetError> {
        sqlx::query("DELETE FROM cutover_locks WHERE mapping = ? AND host = ? AND pid = ?")
            .bind(mapping)
            .bind(crate::tracking::this_host())
            .bind(i64::from(std::process::id()))
            .execute(&self.pool)
            .await
            .map_err(db("releasing the run lock"))?;
        Ok(())
    }

    async fn start_run(&self, run: &NewRun) -> Result<i64, TargetError> {
        let now = now_text();
        let r = sqlx::query(
            "INSERT INTO cutover_runs (mapping, mapping_checksum, status, started_at, heartbeat_at, dry_run, host, pid, options)
             VALUES (?, ?, 'running', ?, ?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(&run.mapping)
        .bind(&run.checksum)
        .bind(&now)
        .bind(&now)
        .bind(i64::from(run.dry_run))
        .bind(&run.host)
        .bind(i64::from(run.pid))
        .bind(&run.options)
        .fetch_one(&self.pool)
        .await
        .map_err(db("recording the run"))?;
        r.try_get("id").map_err(db("recording the run"))
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
            .map_err(db("finishing the run"))?;
        Ok(())
    }

    async fn mark_abandoned(&self, mapping: &str, message: &str) -> Result<u64, TargetError> {
        let r = sqlx::query("UPDATE cutover_runs SET status = 'interrupted', finished_at = COALESCE(heartbeat_at, started_at), message = ? WHERE mapping = ? AND status = 'running'")
            .bind(message)
            .bind(mapping)
            .execute(&self.pool)
            .await
            .map_err(db("marking abandoned runs"))?;
        Ok(r.rows_affected())
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
        let r = sqlx::query(
            "SELECT count(*) AS n FROM cutover_errors WHERE mapping = ? AND resolved_at IS NULL",
        )
        .bind(mapping)
        .fetch_one(&self.pool)
        .await
        .map_err(db("counting errors"))?;
        r.try_get("n").map_err(db("counting errors"))
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
        let rows = sqlx::query("SELECT run_id, table_name, rows_written, rows_unchanged, rows_inserted FROM cutover_run_tables WHERE run_id = ? ORDER BY rowid")
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
        .bind(f.limit.unwrap_or(-1))
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
        Ok(Box::new(SqliteTx { tx, pending: None }))
    }

    async fn close(&self) {
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
            "SELECT version, CAST(installed_on AS TEXT), execution_time FROM _sqlx_migrations",
        )
        .await
    }

    async fn backup(&self, path: &Path) -> Result<Option<String>, TargetError> {
        sqlx::query("VACUUM INTO ?")
            .bind(path.to_string_lossy().to_string())
            .execute(&self.pool)
            .await
            .map_err(db("writing the backup"))?;
        Ok(None)
    }

    async fn fetch_by_keys(
        &self,
        table: &BoundTable,
        keys: &[Vec<SqlValue>],
    ) -> Result<Vec<Vec<Option<String>>>, TargetError> {
        let mut out = Vec::new();
        let per = (MAX_BINDS / table.key_idx.len().max(1)).min(500);
        for chunk in keys.chunks(per) {
            let sql = super::fetch_sql(
                Dialect::Sqlite,
                table,
                chunk.len(),
                |c| format!("CAST({c} AS TEXT)"),
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
            "SELECT count(*) FROM {}",
            quote_table(Dialect::Sqlite, table)
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
        assert_eq!(column_type("INTEGER"), ColumnType::Integer { bits: 64 });
        assert_eq!(
            column_type("varchar(64)"),
            ColumnType::Text { max_len: Some(64) }
        );
        assert_eq!(
            column_type("NUMERIC(10,2)"),
            ColumnType::Decimal {
                precision: Some(10),
                scale: Some(2)
            }
        );
        assert_eq!(
            column_type("TIMESTAMP"),
            ColumnType::Timestamp { tz: false }
        );
        assert_eq!(column_type("DATE"), ColumnType::Date);
        assert_eq!(column_type("BOOLEAN"), ColumnType::Bool);
        assert_eq!(column_type(""), ColumnType::Any);
        assert_eq!(column_type("DOUBLE PRECISION"), ColumnType::Float);
    }
}
