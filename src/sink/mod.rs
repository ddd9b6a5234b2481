//! SQL targets ("sinks"). Each dialect folder (`postgres/`, `mysql/`,
//! `sqlite/`) holds the same files: `introspect.rs` (tables into typed
//! columns), `upsert.rs` (the idempotent upsert and its batch transaction),
//! `lock.rs` (the server side of the run lock), `error.rs` (which failures are
//! bad data and which are retried), and `copy.rs` where the dialect has a bulk
//! path. What is the same everywhere is written once here: [`write_batch`]
//! (rows of every table + error rows + checkpoint in one transaction, bad
//! records isolated by splitting the batch under savepoints), the run lock
//! ([`lock`]), and the tracking store (`crate::tracking::store`).

mod bind;
mod fetch;
mod lock;
pub mod mysql;
pub mod postgres;
pub mod secrets;
pub mod sqlite;
mod writer;

pub use bind::{bind, BindError};
pub(crate) use fetch::fetch_rows;
use fetch::text_cells;
pub use fetch::{fetch_columns, fetch_sql, key_in};
pub use lock::{LockOutcome, ServerLock};
pub use writer::{row_key, write_batch, BatchResult};

pub use crate::db::{client_failure, DbFailure, TargetError};
use crate::db::{Connector, Exec};
pub use crate::dialect::{quote_ident, quote_table, Dialect};
use crate::tracking::Progress;
use crate::tracking::{batch, Store};
use crate::transform::BoundTable;
use crate::value::{ColumnType, SqlValue};
use async_trait::async_trait;
use sqlx::migrate::Migrator;
use std::path::Path;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct ColumnInfo {
    pub name: String,
    pub declared: String,
    pub ty: ColumnType,
    pub nullable: bool,
    pub has_default: bool,
}

#[derive(Debug, Clone)]
pub struct TableInfo {
    pub name: String,
    pub columns: Vec<ColumnInfo>,
    /// Primary key and unique constraints, each as its column list.
    pub unique_keys: Vec<Vec<String>>,
}

impl TableInfo {
    pub fn column(&self, name: &str) -> Option<&ColumnInfo> {
        self.columns.iter().find(|c| c.name == name)
    }

    /// Whether `key` (in any order) is exactly a unique constraint.
    pub fn is_unique_key(&self, key: &[String]) -> bool {
        self.unique_keys
            .iter()
            .any(|u| u.len() == key.len() && key.iter().all(|k| u.contains(k)))
    }
}

/// A report of applied migrations.
#[derive(Debug, Clone, Default)]
pub struct MigrateReport {
    pub applied: Vec<(i64, String)>,
}

/// Rows an upsert changed; `inserted` when the dialect can tell inserts apart.
#[derive(Debug, Clone, Copy, Default)]
pub struct UpsertCount {
    /// Rows inserted or updated (unchanged rows are not counted).
    pub changed: u64,
    pub inserted: Option<u64>,
}

/// One batch transaction. A dialect writes the rows; the tracking writes of
/// the batch (error rows, key map, checkpoint) and the savepoints go through
/// [`BatchTx::exec`] and are the same everywhere.
#[async_trait]
pub trait BatchTx: Send {
    /// The transaction, for the statements every dialect runs the same way.
    fn exec(&mut self) -> &mut dyn Exec;
    /// Records written under one savepoint at most. SQLite keeps the pages a
    /// savepoint touches in a sub-journal in memory: smaller sets keep it small.
    fn savepoint_records(&self) -> usize {
        usize::MAX
    }
    /// Upsert rows (values in the table's column order); returns rows changed.
    async fn upsert(
        &mut self,
        table: &BoundTable,
        rows: &[&[SqlValue]],
    ) -> Result<UpsertCount, DbFailure>;
    /// Rows of a table for the given key values inside the transaction, every
    /// mapped column as text (the stored values of secret columns).
    async fn fetch_by_keys(
        &mut self,
        table: &BoundTable,
        keys: &[Vec<SqlValue>],
    ) -> Result<Vec<Vec<Option<String>>>, DbFailure> {
        fetch_rows(self.exec(), table, keys).await
    }
    /// Add the batch's counts to the run and move the checkpoint.
    async fn save_progress(&mut self, p: &Progress) -> Result<(), DbFailure> {
        batch::save_progress(self.exec(), p).await
    }
    async fn commit(self: Box<Self>) -> Result<(), DbFailure>;
}

/// Reading a table's columns, types and keys.
#[async_trait]
pub trait Introspect: Send + Sync {
    async fn describe_table(&self, table: &str) -> Result<Option<TableInfo>, TargetError>;
}

/// Writing batches of rows.
#[async_trait]
pub trait Write: Send + Sync {
    /// The upsert statement for `rows` rows (for `plan` and for the writers).
    fn upsert_sql(&self, table: &BoundTable, rows: usize) -> String;
    async fn begin(&self) -> Result<Box<dyn BatchTx>, TargetError>;
}

/// The server-side part of a run lock, where the dialect has one.
pub trait Lock: Send + Sync {
    /// `None`: the lock row in `cutover_locks` is the whole lock (SQLite).
    fn server_lock(&self) -> Option<&ServerLock> {
        None
    }
}

/// Schema migrations on the target's pool (sqlx's `Migrator`).
#[async_trait]
pub trait Migrations: Send + Sync {
    /// Apply the migrations of a migrator (sqlx's `Migrator::run` on the pool).
    async fn run_migrator(&self, migrator: &Migrator) -> Result<(), sqlx::migrate::MigrateError>;
    /// `cutover migrate`: info, run or revert the migrations of a folder.
    async fn migrations(
        &self,
        dir: &Path,
        layout: crate::migrate::Layout,
        action: &crate::migrate::Action,
    ) -> Result<crate::migrate::Report, crate::migrate::MigrationError>;
}

/// Backups and the reads of `verify`.
#[async_trait]
pub trait Admin: Send + Sync {
    /// A consistent copy of the database in `path` (SQLite), or the command
    /// that makes one (servers).
    async fn backup(&self, path: &Path) -> Result<Option<String>, TargetError>;
}

/// A connected target database: what the pipeline and the commands hold. A
/// dialect implements the small traits above and says how to reach its pool;
/// the tracking store ([`Target::store`]) and the run lock are written once.
#[async_trait]
pub trait Target: Introspect + Write + Lock + Migrations + Admin {
    fn dialect(&self) -> Dialect;
    /// The URL as given (with its password): to open a second connection.
    fn url(&self) -> &str;
    /// The URL with its password redacted.
    fn display_url(&self) -> String {
        crate::redact_url(self.url())
    }
    /// The connection pool.
    fn pool(&self) -> &dyn Connector;
}

/// The parts of [`Target`] and [`Migrations`] that only name the dialect's
/// pool: `pool_target!(Type, Dialect::X, "SELECT version, <installed_on as
/// text>, execution_time FROM _sqlx_migrations")`.
macro_rules! pool_target {
    ($t:ty, $dialect:expr, $applied_sql:expr) => {
        #[async_trait::async_trait]
        impl $crate::sink::Target for $t {
            fn dialect(&self) -> $crate::dialect::Dialect {
                $dialect
            }

            fn url(&self) -> &str {
                &self.url
            }

            fn pool(&self) -> &dyn $crate::db::Connector {
                &self.pool
            }
        }

        #[async_trait::async_trait]
        impl $crate::sink::Migrations for $t {
            async fn run_migrator(
                &self,
                migrator: &sqlx::migrate::Migrator,
            ) -> Result<(), sqlx::migrate::MigrateError> {
                migrator.run(&self.pool).await
            }

            async fn migrations(
                &self,
                dir: &std::path::Path,
                layout: $crate::migrate::Layout,
                action: &$crate::migrate::Action,
            ) -> Result<$crate::migrate::Report, $crate::migrate::MigrationError> {
                if layout.resolve(dir) == $crate::migrate::Layout::D1 {
                    return $crate::migrate::D1Pool::run_d1(&self.pool, dir, action).await;
                }
                let mut r = $crate::migrate::execute(&self.pool, dir, action, $applied_sql).await?;
                r.layout = Some($crate::migrate::Layout::Sqlx);
                Ok(r)
            }
        }
    };
}
pub(crate) use pool_target;

impl dyn Target + '_ {
    /// Statements on the pool.
    pub fn exec(&self) -> Box<dyn Exec + '_> {
        self.pool().exec()
    }

    /// One connection of the pool, held by the caller.
    pub async fn acquire(&self) -> Result<Box<dyn Exec>, TargetError> {
        self.pool()
            .acquire()
            .await
            .map_err(crate::db::ctx("connecting"))
    }

    /// Let go of the run locks still held and close the pool.
    pub async fn close(&self) {
        if let Some(lock) = self.server_lock() {
            lock.release_all().await;
        }
        self.pool().close().await;
    }

    /// The tracking tables, read and written outside a batch.
    pub fn store(&self) -> Store<'_> {
        Store::new(self.exec())
    }

    pub async fn ensure_tracking(&self) -> Result<(), TargetError> {
        let mut tx = self
            .pool()
            .begin()
            .await
            .map_err(crate::db::ctx("creating the tracking tables"))?;
        batch::create_tables(&mut *tx).await?;
        tx.commit()
            .await
            .map_err(crate::db::ctx("creating the tracking tables"))
    }

    /// Apply a folder of sqlx migrations (several folders may share one target:
    /// migrations applied from another folder are not an error).
    pub async fn migrate(&self, dir: &Path) -> Result<MigrateReport, TargetError> {
        let fail = |m: String| TargetError::Migrate {
            dir: dir.display().to_string(),
            message: m,
        };
        let mut migrator = Migrator::new(dir).await.map_err(|e| fail(e.to_string()))?;
        migrator.set_ignore_missing(true);
        // Only a missing table means "nothing applied yet": any other failure to
        // read it is an error, not an empty list.
        let before: Vec<i64> = if self.describe_table("_sqlx_migrations").await?.is_some() {
            self.exec()
                .fetch("SELECT version FROM _sqlx_migrations WHERE success", &[])
                .await
                .and_then(|rows| rows.iter().map(|r| r.int("version")).collect())
                .map_err(|f| {
                    fail(format!(
                        "reading the migrations applied before: {}",
                        f.message
                    ))
                })?
        } else {
            Vec::new()
        };
        self.run_migrator(&migrator)
            .await
            .map_err(|e| fail(e.to_string()))?;
        Ok(MigrateReport {
            applied: migrator
                .iter()
                .filter(|m| !m.migration_type.is_down_migration() && !before.contains(&m.version))
                .map(|m| (m.version, m.description.to_string()))
                .collect(),
        })
    }

    /// The first column of the first row of a query, as text (for `[[checks]]`).
    pub async fn query_text(&self, sql: &str) -> Result<Option<String>, TargetError> {
        let row = self
            .exec()
            .fetch_one(sql, &[])
            .await
            .map_err(crate::db::ctx("running the check"))?;
        Ok(row.and_then(|r| r.first_as_text()))
    }

    /// Rows of a table for the given key values: every mapped column as text,
    /// in the table's column order (for `verify`).
    pub async fn fetch_by_keys(
        &self,
        table: &BoundTable,
        keys: &[Vec<SqlValue>],
    ) -> Result<Vec<Vec<Option<String>>>, TargetError> {
        let mut exec = self.exec();
        fetch_rows(&mut *exec, table, keys)
            .await
            .map_err(|f| fetch::read_failure(table, f))
    }

    /// A page of a SQLite table's rows in rowid order after `after`: every
    /// mapped column as text, and the last rowid read (for `verify`, which
    /// hashes an embedded target's rows as it reads them).
    pub async fn scan_rows(
        &self,
        table: &BoundTable,
        after: i64,
        limit: usize,
    ) -> Result<(Vec<Vec<Option<String>>>, Option<i64>), TargetError> {
        let d = self.dialect();
        let sql = format!(
            "SELECT {}, rowid AS cutover_rowid_ FROM {} WHERE rowid > ? ORDER BY rowid LIMIT {limit}",
            fetch_columns(d, table).join(", "),
            quote_table(d, &table.spec.table),
        );
        let rows = self
            .exec()
            .fetch(&sql, &[crate::db::Arg::Int(after)])
            .await
            .map_err(|f| fetch::read_failure(table, f))?;
        let n = table.spec.columns.len();
        let last = match rows.last().and_then(|r| r.at(n)) {
            Some(crate::db::Cell::Int(i)) => Some(*i),
            _ => None,
        };
        let texts = rows
            .iter()
            .map(|r| text_cells(r, table))
            .collect::<Result<Vec<_>, _>>()?;
        Ok((texts, last))
    }

    /// `SELECT count(*)` of a table.
    pub async fn count_rows(&self, table: &str) -> Result<i64, TargetError> {
        let c = crate::db::ctx("counting rows");
        let sql = format!(
            "SELECT count(*) AS n FROM {}",
            quote_table(self.dialect(), table)
        );
        let row = self.exec().fetch(&sql, &[]).await.map_err(&c)?;
        row.first().map_or(Ok(0), |r| r.int("n")).map_err(c)
    }
}

/// A column of a catalog query's row (`name`, `declared`, `nullable`,
/// `has_default`), typed by the dialect.
pub(crate) fn column_info(
    r: &crate::db::Row,
    ty: impl Fn(&str) -> ColumnType,
) -> Result<ColumnInfo, DbFailure> {
    let declared = r.text("declared")?;
    Ok(ColumnInfo {
        name: r.text("name")?,
        ty: ty(&declared),
        declared,
        nullable: r.bool("nullable")?,
        has_default: r.bool("has_default")?,
    })
}

/// A described table: its columns and, from rows of (`idx`, `col`), its keys.
pub(crate) fn table_info(
    name: &str,
    columns: Vec<ColumnInfo>,
    key_rows: &[crate::db::Row],
) -> Result<Option<TableInfo>, DbFailure> {
    Ok(Some(TableInfo {
        name: name.to_string(),
        columns,
        unique_keys: unique_keys(key_rows)?,
    }))
}

/// Unique keys from rows of (`idx`, `col`) ordered by index, then by the
/// column's place in it.
fn unique_keys(rows: &[crate::db::Row]) -> Result<Vec<Vec<String>>, DbFailure> {
    let mut keys: Vec<(String, Vec<String>)> = Vec::new();
    for r in rows {
        let (idx, col) = (r.text("idx")?, r.text("col")?);
        match keys.last_mut() {
            Some((i, cols)) if *i == idx => cols.push(col),
            _ => keys.push((idx, vec![col])),
        }
    }
    Ok(keys.into_iter().map(|(_, c)| c).collect())
}

/// The `ON CONFLICT (key) …` clause of PostgreSQL and SQLite for the table's
/// `on_conflict`: nothing (fail), `DO NOTHING`, or `DO UPDATE SET` of the
/// non-key columns `WHERE differs(non-key columns)`, so that an unchanged row
/// is not written. `cols` are the quoted column names in the table's order.
pub(crate) fn on_conflict(
    d: Dialect,
    table: &BoundTable,
    cols: &[String],
    differs: impl Fn(&[(usize, &String)]) -> String,
) -> String {
    let key: Vec<String> = table.spec.key.iter().map(|k| quote_ident(d, k)).collect();
    let non_key: Vec<(usize, &String)> = cols
        .iter()
        .enumerate()
        .filter(|(i, _)| !table.key_idx.contains(i))
        .collect();
    match table.spec.on_conflict {
        crate::mapping::OnConflict::Fail => String::new(),
        crate::mapping::OnConflict::Ignore => {
            format!(" ON CONFLICT ({}) DO NOTHING", key.join(", "))
        }
        crate::mapping::OnConflict::Update if non_key.is_empty() => {
            format!(" ON CONFLICT ({}) DO NOTHING", key.join(", "))
        }
        crate::mapping::OnConflict::Update => {
            let set: Vec<String> = non_key
                .iter()
                .map(|(_, c)| format!("{c} = excluded.{c}"))
                .collect();
            format!(
                " ON CONFLICT ({}) DO UPDATE SET {} WHERE {}",
                key.join(", "),
                set.join(", "),
                differs(&non_key)
            )
        }
    }
}

/// Open one connection outside the pool before making the pool: a wrong host
/// or port then fails at once with its cause ("Connection refused"), where the
/// pool would retry for its whole acquire time-out and report only "pool timed out".
pub(crate) async fn probe<O>(opts: &O, url: &str) -> Result<(), TargetError>
where
    O: sqlx::ConnectOptions,
    O::Connection: Sized,
{
    let limit = Duration::from_secs(30);
    let fail = |message: String| TargetError::Connect {
        url: crate::redact_url(url),
        message,
    };
    match tokio::time::timeout(limit, opts.connect()).await {
        Err(_) => Err(fail(format!("no answer within {} s", limit.as_secs()))),
        Ok(Err(e)) => Err(fail(e.to_string())),
        Ok(Ok(conn)) => {
            let _ = sqlx::Connection::close(conn).await;
            Ok(())
        }
    }
}

/// Connect to the target named by a URL.
pub async fn connect(url: &str) -> Result<Box<dyn Target>, TargetError> {
    let lower = url.to_ascii_lowercase();
    if lower.starts_with("sqlite:") {
        return Ok(Box::new(sqlite::SqliteTarget::connect(url).await?));
    }
    if lower.starts_with("postgres:") || lower.starts_with("postgresql:") {
        return Ok(Box::new(postgres::PgTarget::connect(url).await?));
    }
    if lower.starts_with("mysql:") || lower.starts_with("mariadb:") {
        let url = if lower.starts_with("mariadb:") {
            format!("mysql:{}", &url["mariadb:".len()..])
        } else {
            url.to_string()
        };
        return Ok(Box::new(mysql::MySqlTarget::connect(&url).await?));
    }
    Err(TargetError::UnsupportedUrl(crate::redact_url(url)))
}
