//! SQL targets ("sinks"). Each dialect folder (`postgres/`, `mysql/`,
//! `sqlite/`) holds the same files: `introspect.rs` (tables into typed
//! columns), `upsert.rs` (the idempotent upsert and its batch transaction),
//! `lock.rs` (the server side of the run lock), `error.rs` (which failures are
//! bad data and which are retried), and `copy.rs` where the dialect has a bulk
//! path. What is the same everywhere is written once here: [`write_batch`]
//! (rows of every table + error rows + checkpoint in one transaction, bad
//! records isolated by splitting the batch under savepoints), the run lock
//! ([`lock`]), and the tracking store (`crate::tracking::store`).

mod lock;
pub mod mysql;
pub mod postgres;
pub mod sqlite;
mod writer;

pub use lock::{LockOutcome, ServerLock};
pub use writer::{write_batch, BatchResult};

pub use crate::db::{client_failure, DbFailure, TargetError};
use crate::db::{Exec, TxExec};
pub use crate::dialect::{quote_ident, quote_table, Dialect};
use crate::tracking::store::{self, Store};
use crate::tracking::Progress;
use crate::transform::BoundTable;
use crate::value::{ColumnType, SqlValue};
use async_trait::async_trait;
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

/// Apply a folder of sqlx migrations (several folders may share one target:
/// migrations applied from another folder are not an error).
pub async fn run_migrations<'a, A>(
    dir: &Path,
    pool: A,
    applied_sql: &str,
) -> Result<MigrateReport, TargetError>
where
    A: sqlx::Acquire<'a> + Copy,
    <A::Connection as std::ops::Deref>::Target: sqlx::migrate::Migrate,
    for<'c> &'c mut <A::Database as sqlx::Database>::Connection:
        sqlx::Executor<'c, Database = A::Database>,
    i64: for<'r> sqlx::Decode<'r, A::Database> + sqlx::Type<A::Database>,
    for<'q> <A::Database as sqlx::Database>::Arguments<'q>: sqlx::IntoArguments<'q, A::Database>,
    usize: sqlx::ColumnIndex<<A::Database as sqlx::Database>::Row>,
{
    let fail = |m: String| TargetError::Migrate {
        dir: dir.display().to_string(),
        message: m,
    };
    let mut migrator = sqlx::migrate::Migrator::new(dir)
        .await
        .map_err(|e| fail(e.to_string()))?;
    migrator.set_ignore_missing(true);
    let before: Vec<i64> = {
        let mut conn = pool.acquire().await.map_err(|e| fail(e.to_string()))?;
        sqlx::query_scalar::<_, i64>(applied_sql)
            .fetch_all(&mut *conn)
            .await
            .unwrap_or_default()
    };
    migrator.run(pool).await.map_err(|e| fail(e.to_string()))?;
    Ok(MigrateReport {
        applied: migrator
            .iter()
            .filter(|m| !m.migration_type.is_down_migration() && !before.contains(&m.version))
            .map(|m| (m.version, m.description.to_string()))
            .collect(),
    })
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
    /// Add the batch's counts to the run and move the checkpoint.
    async fn save_progress(&mut self, p: &Progress) -> Result<(), DbFailure> {
        store::save_progress(self.exec(), p).await
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

/// Migrations, backups and the reads of `verify`.
#[async_trait]
pub trait Admin: Send + Sync {
    async fn migrate(&self, dir: &Path) -> Result<MigrateReport, TargetError>;
    /// `cutover migrate`: info, run or revert the migrations of a folder.
    async fn migrations(
        &self,
        dir: &Path,
        action: &crate::migrate::Action,
    ) -> Result<crate::migrate::Report, crate::migrate::MigrationError>;
    /// A consistent copy of the database in `path` (SQLite), or the command
    /// that makes one (servers).
    async fn backup(&self, path: &Path) -> Result<Option<String>, TargetError>;
    /// Rows of a table for the given key values: every mapped column as text,
    /// in the table's column order, keys first found first.
    async fn fetch_by_keys(
        &self,
        table: &BoundTable,
        keys: &[Vec<SqlValue>],
    ) -> Result<Vec<Vec<Option<String>>>, TargetError>;
    /// The first column of the first row of a query, as text (for `[[checks]]`).
    async fn query_text(&self, sql: &str) -> Result<Option<String>, TargetError>;
}

/// A connected target database: what the pipeline and the commands hold. A
/// dialect implements the small traits above and says how to reach its pool;
/// the tracking store ([`Target::store`]) and the run lock are written once.
#[async_trait]
pub trait Target: Introspect + Write + Lock + Admin {
    fn dialect(&self) -> Dialect;
    /// The URL as given (with its password): to open a second connection.
    fn url(&self) -> &str;
    /// The URL with its password redacted.
    fn display_url(&self) -> String {
        crate::redact_url(self.url())
    }
    /// Statements on the pool.
    fn exec(&self) -> Box<dyn Exec + '_>;
    /// One connection of the pool, held by the caller.
    async fn acquire(&self) -> Result<Box<dyn Exec>, TargetError>;
    /// A transaction outside the batch writer (DDL of the tracking tables).
    async fn begin_exec(&self) -> Result<Box<dyn TxExec>, TargetError>;
    async fn close(&self);
}

impl dyn Target + '_ {
    /// The tracking tables, read and written outside a batch.
    pub fn store(&self) -> Store<'_> {
        Store::new(self.exec())
    }

    pub async fn ensure_tracking(&self) -> Result<(), TargetError> {
        let mut tx = self.begin_exec().await?;
        store::create_tables(&mut *tx).await?;
        tx.commit()
            .await
            .map_err(crate::db::ctx("creating the tracking tables"))
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

/// `SELECT <columns as text> FROM t WHERE (keys) IN ((...), ...)` with `?` or `$n`
/// placeholders; `cast` renders a column as text, `param` a placeholder.
pub fn fetch_sql(
    d: Dialect,
    table: &BoundTable,
    n: usize,
    cast: impl Fn(&str) -> String,
    param: impl Fn(usize, usize) -> String,
) -> String {
    let t = quote_table(d, &table.spec.table);
    let cols: Vec<String> = table
        .column_names()
        .map(|c| cast(&quote_ident(d, c)))
        .collect();
    let key: Vec<String> = table.spec.key.iter().map(|k| quote_ident(d, k)).collect();
    let mut tuples = Vec::with_capacity(n);
    let mut i = 0;
    for _ in 0..n {
        let ps: Vec<String> = table
            .key_idx
            .iter()
            .map(|&c| {
                i += 1;
                param(i, c)
            })
            .collect();
        tuples.push(format!("({})", ps.join(", ")));
    }
    format!(
        "SELECT {} FROM {t} WHERE ({}) IN ({})",
        cols.join(", "),
        key.join(", "),
        tuples.join(", ")
    )
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
