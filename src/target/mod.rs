//! SQL targets. Each dialect introspects tables into typed columns, builds the
//! idempotent upsert, stores the tracking tables, and opens [`BatchTx`]s;
//! [`write_batch`] is the one algorithm that commits a batch (rows of every
//! table + error rows + checkpoint in one transaction), isolating bad records by
//! splitting the batch under savepoints.

pub mod mysql;
pub mod postgres;
pub mod sqlite;

use crate::mapping::OnConflict;
use crate::tracking::{
    CheckpointRow, ErrorFilter, ErrorRecord, Holder, NewRun, Progress, RunRow, RunStatus,
    TableCount,
};
use crate::transform::{BoundTable, ErrorRow, Outcome, Stage, Transformed};
use crate::value::{ColumnType, SqlValue};
use async_trait::async_trait;
use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error("unsupported target URL '{0}': use sqlite://FILE, postgres://... or mysql://...")]
    UnsupportedUrl(String),
    #[error("cannot connect to {url}: {message}")]
    Connect { url: String, message: String },
    #[error("{context}: {message}")]
    Db {
        context: String,
        message: String,
        retryable: bool,
    },
    #[error("migrations in {dir}: {message}")]
    Migrate { dir: String, message: String },
    #[error("the connection holding the run lock of mapping {mapping} was lost and another process took the lock; this run stops (its checkpoint is clean: run again once the other run is done)")]
    LockLost { mapping: String },
}

impl TargetError {
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            TargetError::Db {
                retryable: true,
                ..
            }
        )
    }
}

/// Why a statement failed: bad data (split the batch) or the connection (retry).
#[derive(Debug, Clone)]
pub struct DbFailure {
    pub data: bool,
    pub message: String,
}

impl DbFailure {
    pub fn into_target(self, context: &str) -> TargetError {
        TargetError::Db {
            context: context.to_string(),
            message: self.message,
            retryable: !self.data,
        }
    }
}

/// A failure that is not the database's answer: a value that cannot be encoded
/// belongs to its record (split the batch to find it); anything else (I/O, TLS,
/// pool time-out, protocol) is retried on a fresh connection, and fails the run
/// once the retries are spent.
pub(crate) fn client_failure(e: &sqlx::Error) -> DbFailure {
    DbFailure {
        data: matches!(e, sqlx::Error::Encode(_)),
        message: e.to_string(),
    }
}

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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
    Mysql,
}

/// Result of taking a mapping's run lock.
#[derive(Debug)]
pub enum LockOutcome {
    Acquired {
        /// A previous holder that was found dead and replaced.
        replaced: Option<Holder>,
    },
    Held(Holder),
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

/// One batch transaction.
#[async_trait]
pub trait BatchTx: Send {
    /// Records written under one savepoint at most. SQLite keeps the pages a
    /// savepoint touches in a sub-journal in memory: smaller sets keep it small.
    fn savepoint_records(&self) -> usize {
        usize::MAX
    }
    async fn savepoint(&mut self) -> Result<(), DbFailure>;
    async fn rollback_savepoint(&mut self) -> Result<(), DbFailure>;
    async fn release_savepoint(&mut self) -> Result<(), DbFailure>;
    /// Upsert rows (values in the table's column order); returns rows changed.
    async fn upsert(
        &mut self,
        table: &BoundTable,
        rows: &[&[SqlValue]],
    ) -> Result<UpsertCount, DbFailure>;
    async fn insert_errors(
        &mut self,
        run_id: i64,
        mapping: &str,
        errors: &[&ErrorRow],
    ) -> Result<(), DbFailure>;
    /// Set `resolved_at` on the unresolved errors of these record keys.
    async fn resolve_errors(&mut self, mapping: &str, keys: &[&str]) -> Result<(), DbFailure>;
    async fn save_keymap(&mut self, mapping: &str, pairs: &[(&str, &str)])
        -> Result<(), DbFailure>;
    /// Add the batch's counts to the run and move the checkpoint.
    async fn save_progress(&mut self, p: &Progress) -> Result<(), DbFailure>;
    async fn commit(self: Box<Self>) -> Result<(), DbFailure>;
}

#[async_trait]
pub trait Target: Send + Sync {
    fn dialect(&self) -> Dialect;
    /// The URL with its password redacted.
    fn display_url(&self) -> String;
    async fn ensure_tracking(&self) -> Result<(), TargetError>;
    async fn describe_table(&self, table: &str) -> Result<Option<TableInfo>, TargetError>;
    /// The upsert statement for `rows` rows (for `plan` and for the writers).
    fn upsert_sql(&self, table: &BoundTable, rows: usize) -> String;
    async fn migrate(&self, dir: &Path) -> Result<MigrateReport, TargetError>;

    async fn try_lock(&self, mapping: &str, me: &Holder) -> Result<LockOutcome, TargetError>;
    async fn heartbeat(&self, mapping: &str, run_id: i64) -> Result<(), TargetError>;
    async fn unlock(&self, mapping: &str) -> Result<(), TargetError>;

    async fn start_run(&self, run: &NewRun) -> Result<i64, TargetError>;
    async fn finish_run(
        &self,
        run_id: i64,
        status: RunStatus,
        message: Option<&str>,
    ) -> Result<(), TargetError>;
    /// Mark `running` runs of a mapping whose process is gone as interrupted.
    async fn mark_abandoned(&self, mapping: &str, message: &str) -> Result<u64, TargetError>;
    /// The run that wrote the mapping's checkpoint: a run resumes when that run
    /// did not succeed. (Retry runs never move the checkpoint, so they never
    /// decide a resume; a pass that failed before its first commit leaves the
    /// previous checkpoint and its run in place.)
    async fn checkpoint_run(&self, mapping: &str) -> Result<Option<RunRow>, TargetError>;
    async fn checkpoint(&self, mapping: &str) -> Result<Option<CheckpointRow>, TargetError>;
    async fn unresolved_errors(&self, mapping: &str) -> Result<i64, TargetError>;
    async fn runs(&self, mapping: Option<&str>) -> Result<Vec<RunRow>, TargetError>;
    async fn checkpoints(&self) -> Result<Vec<CheckpointRow>, TargetError>;
    async fn table_counts(&self, run_id: i64) -> Result<Vec<TableCount>, TargetError>;
    async fn errors(&self, filter: &ErrorFilter) -> Result<Vec<ErrorRecord>, TargetError>;
    async fn begin(&self) -> Result<Box<dyn BatchTx>, TargetError>;
    async fn close(&self);

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
    /// `SELECT count(*)` of a table.
    async fn count_rows(&self, table: &str) -> Result<i64, TargetError>;
    /// The first column of the first row of a query, as text (for `[[checks]]`).
    async fn query_text(&self, sql: &str) -> Result<Option<String>, TargetError>;
    /// New keys recorded in `cutover_keymap` by `mapping` for these legacy keys.
    async fn keymap_get(
        &self,
        mapping: &str,
        legacy: &[String],
    ) -> Result<Vec<(String, String)>, TargetError>;
    /// The URL as given (with its password): to open a second connection.
    fn url(&self) -> &str;
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

/// Tracking rows read with any sqlx driver: the columns are the same in every dialect.
pub(crate) mod rows {
    use crate::tracking::{CheckpointRow, ErrorRecord, RunRow, TableCount};
    use sqlx::{ColumnIndex, Decode, Row, Type};

    /// What a driver's row must decode for the tracking tables.
    pub trait TrackingRow<'r>: Row {
        fn col<T: Decode<'r, Self::Database> + Type<Self::Database>>(
            &'r self,
            c: &'r str,
        ) -> Result<T, sqlx::Error>;
    }

    impl<'r, R> TrackingRow<'r> for R
    where
        R: Row,
        &'r str: ColumnIndex<R>,
    {
        fn col<T: Decode<'r, Self::Database> + Type<Self::Database>>(
            &'r self,
            c: &'r str,
        ) -> Result<T, sqlx::Error> {
            self.try_get(c)
        }
    }

    pub trait Decodes<'r, DB: sqlx::Database>: Decode<'r, DB> + Type<DB> {}
    impl<'r, DB: sqlx::Database, T: Decode<'r, DB> + Type<DB>> Decodes<'r, DB> for T {}

    pub fn run_row<'r, R>(r: &'r R) -> Result<RunRow, sqlx::Error>
    where
        R: TrackingRow<'r>,
        i64: Decodes<'r, R::Database>,
        bool: Decodes<'r, R::Database>,
        String: Decodes<'r, R::Database>,
        Option<i64>: Decodes<'r, R::Database>,
        Option<String>: Decodes<'r, R::Database>,
    {
        Ok(RunRow {
            id: r.col("id")?,
            mapping: r.col("mapping")?,
            mapping_checksum: r.col("mapping_checksum")?,
            status: r.col("status")?,
            started_at: r.col("started_at")?,
            finished_at: r.col("finished_at")?,
            heartbeat_at: r.col("heartbeat_at")?,
            records_read: r.col("records_read")?,
            records_written: r.col("records_written")?,
            records_filtered: r.col("records_filtered")?,
            records_failed: r.col("records_failed")?,
            rows_written: r.col("rows_written")?,
            rows_unchanged: r.col("rows_unchanged")?,
            rows_inserted: r.col("rows_inserted")?,
            dry_run: r.col("dry_run")?,
            host: r.col("host")?,
            pid: r.col("pid")?,
            options: r.col("options")?,
            message: r.col("message")?,
        })
    }

    pub fn checkpoint_row<'r, R>(r: &'r R) -> Result<CheckpointRow, sqlx::Error>
    where
        R: TrackingRow<'r>,
        i64: Decodes<'r, R::Database>,
        String: Decodes<'r, R::Database>,
        Option<String>: Decodes<'r, R::Database>,
    {
        Ok(CheckpointRow {
            mapping: r.col("mapping")?,
            shard: r.col("shard")?,
            run_id: r.col("run_id")?,
            position: r.col("position")?,
            records_committed: r.col("records_committed")?,
            mapping_checksum: r.col("mapping_checksum")?,
            source_fingerprint: r.col("source_fingerprint")?,
            updated_at: r.col("updated_at")?,
        })
    }

    pub fn error_row<'r, R>(r: &'r R) -> Result<ErrorRecord, sqlx::Error>
    where
        R: TrackingRow<'r>,
        i64: Decodes<'r, R::Database>,
        String: Decodes<'r, R::Database>,
        Option<String>: Decodes<'r, R::Database>,
    {
        Ok(ErrorRecord {
            id: r.col("id")?,
            run_id: r.col("run_id")?,
            mapping: r.col("mapping")?,
            record_key: r.col("record_key")?,
            position: r.col("position")?,
            stage: r.col("stage")?,
            column_name: r.col("column_name")?,
            message: r.col("message")?,
            record: r.col("record")?,
            created_at: r.col("created_at")?,
            resolved_at: r.col("resolved_at")?,
        })
    }

    pub fn table_count<'r, R>(r: &'r R) -> Result<TableCount, sqlx::Error>
    where
        R: TrackingRow<'r>,
        i64: Decodes<'r, R::Database>,
        String: Decodes<'r, R::Database>,
        Option<i64>: Decodes<'r, R::Database>,
    {
        Ok(TableCount {
            run_id: r.col("run_id")?,
            table_name: r.col("table_name")?,
            rows_written: r.col("rows_written")?,
            rows_unchanged: r.col("rows_unchanged")?,
            rows_inserted: r.col("rows_inserted")?,
        })
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

/// Quote an identifier for a dialect (`"x"` or `` `x` ``), doubling the quote.
pub fn quote_ident(d: Dialect, name: &str) -> String {
    let q = if d == Dialect::Mysql { '`' } else { '"' };
    let mut out = String::with_capacity(name.len() + 2);
    out.push(q);
    for c in name.chars() {
        if c == q {
            out.push(q);
        }
        out.push(c);
    }
    out.push(q);
    out
}

/// Quote a possibly schema-qualified table name (`schema.table`).
pub fn quote_table(d: Dialect, name: &str) -> String {
    name.split('.')
        .map(|p| quote_ident(d, p))
        .collect::<Vec<_>>()
        .join(".")
}

/// What a committed batch did.
#[derive(Debug, Clone, Default)]
pub struct BatchResult {
    pub written: i64,
    pub filtered: i64,
    pub failed: i64,
    /// Per table: rows changed, rows sent but unchanged, rows inserted (if known).
    pub tables: Vec<(i64, i64, Option<i64>)>,
    /// The error rows this batch recorded (read, transform and load).
    pub errors: Vec<ErrorRow>,
}

/// Fold rows with the same key, keeping first-seen order: the last one wins
/// (`update`), or the first (`ignore`, as the database would keep it).
fn fold<'a>(table: &BoundTable, rows: Vec<&'a [SqlValue]>) -> Vec<&'a [SqlValue]> {
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
    let mut out: Vec<&[SqlValue]> = Vec::with_capacity(rows.len());
    for r in rows {
        let h = hash(r);
        let Some(&head) = first.get(&h) else {
            first.insert(h, out.len());
            out.push(r);
            next.push(NONE);
            continue;
        };
        let mut i = head;
        loop {
            if same(out[i], r) {
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
    tables: &[BoundTable],
    recs: &[&Transformed],
    counts: &mut [(i64, i64, Option<i64>)],
) -> Result<(), DbFailure> {
    let mut local = vec![(0i64, 0i64, Some(0i64)); tables.len()];
    for (ti, t) in tables.iter().enumerate() {
        let mut rows: Vec<&[SqlValue]> = Vec::new();
        for r in recs {
            if let Outcome::Rows { rows: rr, .. } = &r.outcome {
                for (i, vals) in rr {
                    if *i == ti {
                        rows.push(vals.as_slice());
                    }
                }
            }
        }
        if rows.is_empty() {
            continue;
        }
        let rows = fold(t, rows);
        let n = tx.upsert(t, &rows).await?;
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

/// Write one batch into an open transaction: rows of all tables, error rows, key
/// map, resolved errors and progress (the checkpoint), so that committing the
/// transaction commits all of it. Records the database rejects are isolated by
/// splitting the batch under savepoints and become `load` errors.
pub async fn write_batch(
    tx: &mut dyn BatchTx,
    tables: &[BoundTable],
    original_json: &(dyn Fn(Option<&crate::source::RawRecord>) -> serde_json::Value + Sync),
    batch: &[Transformed],
    progress: &mut Progress,
    resolve: bool,
) -> Result<BatchResult, TargetError> {
    let ctx = |f: DbFailure| f.into_target("writing a batch");
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
        tx.savepoint().await.map_err(ctx)?;
        let mut counts = vec![(0, 0, Some(0)); tables.len()];
        match write_set(tx, tables, &candidates[a..b], &mut counts).await {
            Ok(()) => {
                tx.release_savepoint().await.map_err(ctx)?;
                for (t, c) in res.tables.iter_mut().zip(counts) {
                    t.0 += c.0;
                    t.1 += c.1;
                    t.2 = t.2.zip(c.2).map(|(a, b)| a + b);
                }
            }
            Err(f) if f.data => {
                tx.rollback_savepoint().await.map_err(ctx)?;
                if b - a == 1 {
                    load_failed.push(a);
                    let t = candidates[a];
                    let record = match &t.outcome {
                        Outcome::Rows { original, .. } => original_json(original.as_deref()),
                        _ => serde_json::Value::Null,
                    };
                    res.errors.push(ErrorRow {
                        record_key: t.key.clone(),
                        position: t.position.clone(),
                        stage: Stage::Load,
                        column: None,
                        message: f.message,
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
        tx.insert_errors(progress.run_id, &progress.mapping, &refs)
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
            .filter_map(|t| match &t.outcome {
                Outcome::Rows {
                    original: Some(raw),
                    ..
                } => Some(raw.label()).filter(|l| *l != t.key),
                _ => None,
            })
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
            tx.resolve_errors(&progress.mapping, &keys)
                .await
                .map_err(ctx)?;
        }
    }
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
    if !pairs.is_empty() {
        tx.save_keymap(&progress.mapping, &pairs)
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
    use std::path::Path;

    fn table(on_conflict: &str) -> BoundTable {
        let text = format!(
            "name = \"t\"\n[source]\nkind = \"kv\"\npath = \"x.jsonl\"\n[[tables]]\ntable = \"t\"\nkey = [\"a\", \"b\"]\non_conflict = \"{on_conflict}\"\ncolumns.a = \"value.a\"\ncolumns.b = \"value.b\"\ncolumns.n = \"value.n\"\n"
        );
        let m = Mapping::from_str(Path::new("t.toml"), &text).unwrap();
        let spec = m.tables[0].clone();
        BoundTable {
            key_idx: spec.key_indexes(),
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
        assert_eq!(n(fold(&table("update"), refs.clone())), vec![3, 2, 4, 6]);
        assert_eq!(n(fold(&table("ignore"), refs.clone())), vec![1, 2, 4, 5]);
        // `fail` keeps every row: the database reports the conflict.
        assert_eq!(n(fold(&table("fail"), refs)), vec![1, 2, 3, 4, 5, 6]);
    }
}
