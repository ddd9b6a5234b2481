//! SQL sources through sqlx (PostgreSQL, MySQL/MariaDB, SQLite): a table or a
//! query read in pages of `--batch-size` rows by keyset pagination: never
//! OFFSET, never a cursor held open, and the checkpoint is the last key
//! committed. Every column type becomes JSON without loss ([`convert`]).
//!
//! Key parameters are bound with the key column's own type (learned from the
//! server before the first page): PostgreSQL compares `uuid > text` or
//! `timestamp > text` not at all, and MySQL compares a DECIMAL with a string or
//! a float in double precision, which skips or repeats rows. A lost connection
//! is reconnected with backoff and the page is read again from the last key.

mod convert;

use super::{Decoded, Label, Payload, RawRecord, Source, SourceError};
use crate::dialect::{quote_ident, quote_table, Dialect};
use crate::mapping::{SourceKind, SourceSpec};
use crate::record::{FileInfo, Position};
use convert::PgCtx;
use serde_json::{Map, Value};
use sqlx::{Column, Executor, Statement, TypeInfo};
use std::str::FromStr;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

/// How many times a lost connection is re-established for one query.
const RECONNECTS: u32 = 5;

/// What can go wrong reading a SQL source.
#[derive(Debug, thiserror::Error)]
pub enum SqlError {
    #[error("the SQL source has no url")]
    NoUrl,
    #[error("the environment variable {0} (password_env) is not set")]
    PasswordEnv(String),
    #[error("cannot start the SQL source's runtime: {0}")]
    Runtime(String),
    #[error("the SQL source is closed")]
    Closed,
    #[error("the SQL source's reader thread panicked: {0}")]
    ThreadPanicked(String),
    #[error("cannot connect to the source {url}: {message}")]
    Connect { url: String, message: String },
    #[error("lost the connection to the source {url} and could not get it back after {attempts} attempts: {message}")]
    ConnectionLost {
        url: String,
        attempts: u32,
        message: String,
    },
    #[error("reading the source ({sql}): {message}")]
    Query { sql: String, message: String },
    #[error("column {column} ({type_name}): {message}")]
    Convert {
        column: String,
        type_name: String,
        message: String,
    },
    #[error("the key column {column} is not among the source's columns ({columns})")]
    KeyColumnMissing { column: String, columns: String },
    #[error("key column {column}: {message}")]
    KeyValue { column: String, message: String },
    #[error("the position holds {got} key values but [source] key names {expected} columns ({columns}); was the checkpoint written with another key? Run again with --restart")]
    KeyArity {
        got: usize,
        expected: usize,
        columns: String,
    },
}

/// How one key column's value is bound as a query parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum KeyType {
    /// SQLite: bound as the value's own storage class (integer, real, text).
    Dynamic,
    /// PostgreSQL: the value's text, cast to the column's type
    /// (`$1::pg_catalog.uuid`), so the server compares in that type exactly.
    PgCast(String),
    /// PostgreSQL bytea: base64 text, decoded by the server.
    PgBytes,
    // MySQL/MariaDB: the parameter carries the type.
    Int,
    Decimal,
    Float,
    Bool,
    Date,
    Time,
    DateTime,
    Timestamp,
    Text,
}

impl KeyType {
    /// A MySQL/MariaDB column type (as sqlx names it) → how its keys are bound.
    fn mysql(type_name: &str) -> KeyType {
        let t = type_name.to_ascii_uppercase();
        match t.as_str() {
            "BOOLEAN" => KeyType::Bool,
            "DECIMAL" => KeyType::Decimal,
            "FLOAT" | "DOUBLE" => KeyType::Float,
            "DATE" => KeyType::Date,
            "TIME" => KeyType::Time,
            "DATETIME" => KeyType::DateTime,
            "TIMESTAMP" => KeyType::Timestamp,
            "YEAR" | "BIT" => KeyType::Int,
            t if t.contains("INT") => KeyType::Int,
            _ => KeyType::Text,
        }
    }
}

/// A typed key parameter.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum KeyBind {
    Text(String),
    I64(i64),
    U64(u64),
    F64(f64),
    Bool(bool),
    /// Plain decimal digits (`-123.4500`), bound as DECIMAL.
    Decimal(String),
    Date(chrono::NaiveDate),
    Time(chrono::NaiveTime),
    DateTime(chrono::NaiveDateTime),
    Timestamp(chrono::DateTime<chrono::Utc>),
}

/// A decimal bound to MySQL as DECIMAL, written as its plain digits (a string
/// parameter would be compared with a DECIMAL column in double precision).
#[derive(Debug, Clone)]
struct MysqlDecimal(String);

impl sqlx::Type<sqlx::MySql> for MysqlDecimal {
    fn type_info() -> sqlx::mysql::MySqlTypeInfo {
        <bigdecimal::BigDecimal as sqlx::Type<sqlx::MySql>>::type_info()
    }
}

impl<'q> sqlx::Encode<'q, sqlx::MySql> for MysqlDecimal {
    fn encode_by_ref(
        &self,
        buf: &mut Vec<u8>,
    ) -> Result<sqlx::encode::IsNull, sqlx::error::BoxDynError> {
        <&str as sqlx::Encode<'q, sqlx::MySql>>::encode_by_ref(&self.0.as_str(), buf)
    }
}

fn is_plain_decimal(s: &str) -> bool {
    let s = s.strip_prefix('-').unwrap_or(s);
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    !int.is_empty()
        && int.bytes().all(|b| b.is_ascii_digit())
        && frac.bytes().all(|b| b.is_ascii_digit())
        && !(s.contains('.') && frac.is_empty())
}

/// The text a key value is bound as on PostgreSQL (then cast to the column type).
fn key_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Type one key value for its column.
pub(crate) fn key_bind(ty: &KeyType, column: &str, v: &Value) -> Result<KeyBind, SqlError> {
    let bad = |what: &str| SqlError::KeyValue {
        column: column.to_string(),
        message: format!("the key value {v} is not {what}"),
    };
    if v.is_null() {
        return Err(SqlError::KeyValue {
            column: column.to_string(),
            message: "the key value is NULL; a keyset key must be NOT NULL and unique".into(),
        });
    }
    let text = || v.as_str().map(str::to_string);
    Ok(match ty {
        KeyType::PgCast(_) | KeyType::PgBytes => KeyBind::Text(key_text(v)),
        KeyType::Dynamic => match v {
            Value::String(s) => KeyBind::Text(s.clone()),
            Value::Bool(b) => KeyBind::Bool(*b),
            Value::Number(n) => match (n.as_i64(), n.as_f64()) {
                (Some(i), _) => KeyBind::I64(i),
                (None, Some(f)) => KeyBind::F64(f),
                _ => return Err(bad("a number SQLite can hold")),
            },
            other => KeyBind::Text(other.to_string()),
        },
        KeyType::Int => match v {
            Value::Number(n) => match (n.as_i64(), n.as_u64()) {
                (Some(i), _) => KeyBind::I64(i),
                (None, Some(u)) => KeyBind::U64(u),
                _ => return Err(bad("an integer")),
            },
            Value::Bool(b) => KeyBind::I64(i64::from(*b)),
            _ => return Err(bad("an integer")),
        },
        KeyType::Decimal => {
            let s = match v {
                Value::Number(n) => n.to_string(),
                Value::String(s) => s.clone(),
                _ => return Err(bad("a decimal")),
            };
            if is_plain_decimal(&s) {
                KeyBind::Decimal(s)
            } else {
                let d = bigdecimal::BigDecimal::from_str(&s).map_err(|_| bad("a decimal"))?;
                KeyBind::Decimal(d.to_plain_string())
            }
        }
        KeyType::Float => KeyBind::F64(
            v.as_f64()
                .or_else(|| text().and_then(|s| s.parse().ok()))
                .ok_or_else(|| bad("a number"))?,
        ),
        KeyType::Bool => match v {
            Value::Bool(b) => KeyBind::Bool(*b),
            Value::Number(n) => KeyBind::Bool(n.as_i64().ok_or_else(|| bad("a boolean"))? != 0),
            _ => return Err(bad("a boolean")),
        },
        KeyType::Date => KeyBind::Date(
            text()
                .and_then(|s| chrono::NaiveDate::parse_from_str(&s, "%Y-%m-%d").ok())
                .ok_or_else(|| bad("a date (YYYY-MM-DD)"))?,
        ),
        // MySQL TIME is a duration that can pass 24 hours: what chrono cannot
        // read is bound as text, which MySQL converts to TIME.
        KeyType::Time => match text() {
            Some(s) => match chrono::NaiveTime::from_str(&s) {
                Ok(t) => KeyBind::Time(t),
                Err(_) => KeyBind::Text(s),
            },
            None => return Err(bad("a time")),
        },
        KeyType::DateTime => KeyBind::DateTime(
            text()
                .and_then(|s| {
                    chrono::NaiveDateTime::parse_from_str(&s, "%Y-%m-%dT%H:%M:%S%.f").ok()
                })
                .ok_or_else(|| bad("a date and time (YYYY-MM-DDTHH:MM:SS)"))?,
        ),
        KeyType::Timestamp => KeyBind::Timestamp(
            text()
                .and_then(|s| chrono::DateTime::parse_from_rfc3339(&s).ok())
                .map(|t| t.with_timezone(&chrono::Utc))
                .ok_or_else(|| bad("an RFC 3339 timestamp"))?,
        ),
        KeyType::Text => KeyBind::Text(key_text(v)),
    })
}

/// Type the key values of a position, checking there is one per key column.
pub(crate) fn key_binds(
    types: &[KeyType],
    columns: &[String],
    values: &[Value],
) -> Result<Vec<KeyBind>, SqlError> {
    if values.len() != columns.len() || types.len() != columns.len() {
        return Err(SqlError::KeyArity {
            got: values.len(),
            expected: columns.len(),
            columns: columns.join(", "),
        });
    }
    types
        .iter()
        .zip(columns)
        .zip(values)
        .map(|((t, c), v)| key_bind(t, c, v))
        .collect()
}

/// The `n`-th (1-based) parameter, typed for the column.
pub(crate) fn placeholder(d: Dialect, ty: &KeyType, n: usize) -> String {
    match (d, ty) {
        (Dialect::Postgres, KeyType::PgCast(t)) => format!("${n}::{t}"),
        (Dialect::Postgres, KeyType::PgBytes) => format!("decode(${n}, 'base64')"),
        (Dialect::Postgres, _) => format!("${n}"),
        _ => "?".into(),
    }
}

fn key_refs(d: Dialect, keys: &[String]) -> Vec<String> {
    keys.iter()
        .map(|k| format!("q.{}", quote_ident(d, k)))
        .collect()
}

/// A keyset page: the SQL, and for each parameter in order the index of the key
/// value it binds. PostgreSQL compares rows (`(a, b) > ($1, $2)`, which its
/// btree indexes serve); MySQL and SQLite get the expanded form
/// `a > ? OR (a = ? AND b > ?)`.
pub(crate) fn page_sql(
    d: Dialect,
    relation: &str,
    keys: &[String],
    types: &[KeyType],
    after: bool,
    limit: usize,
) -> (String, Vec<usize>) {
    let refs = key_refs(d, keys);
    let mut order = Vec::new();
    let mut sql = format!("SELECT * FROM {relation}");
    if after {
        let ty = |i: usize| types.get(i).unwrap_or(&KeyType::Text);
        if d == Dialect::Postgres {
            let params: Vec<String> = (0..keys.len())
                .map(|i| placeholder(d, ty(i), i + 1))
                .collect();
            order.extend(0..keys.len());
            if keys.len() == 1 {
                sql.push_str(&format!(" WHERE {} > {}", refs[0], params[0]));
            } else {
                sql.push_str(&format!(
                    " WHERE ({}) > ({})",
                    refs.join(", "),
                    params.join(", ")
                ));
            }
        } else {
            let mut ors = Vec::new();
            for i in 0..refs.len() {
                let mut ands = Vec::new();
                for (j, key) in refs.iter().enumerate().take(i) {
                    order.push(j);
                    ands.push(format!("{key} = {}", placeholder(d, ty(j), order.len())));
                }
                order.push(i);
                ands.push(format!(
                    "{} > {}",
                    refs[i],
                    placeholder(d, ty(i), order.len())
                ));
                ors.push(format!("({})", ands.join(" AND ")));
            }
            sql.push_str(&format!(" WHERE {}", ors.join(" OR ")));
        }
    }
    sql.push_str(&format!(" ORDER BY {} LIMIT {limit}", refs.join(", ")));
    (sql, order)
}

/// The one row with the given key (`cutover retry`).
pub(crate) fn lookup_sql(d: Dialect, relation: &str, keys: &[String], types: &[KeyType]) -> String {
    let conds: Vec<String> = key_refs(d, keys)
        .iter()
        .enumerate()
        .map(|(i, k)| {
            let t = types.get(i).unwrap_or(&KeyType::Text);
            format!("{k} = {}", placeholder(d, t, i + 1))
        })
        .collect();
    format!(
        "SELECT * FROM {relation} WHERE {} LIMIT 1",
        conds.join(" AND ")
    )
}

/// PostgreSQL sorts NULLs after every value, where `WHERE key > last` never
/// reaches them: look for one before reading.
fn null_probe_sql(relation: &str, keys: &[String]) -> String {
    let d = Dialect::Postgres;
    let refs = key_refs(d, keys);
    let cols: Vec<String> = refs
        .iter()
        .zip(keys)
        .map(|(r, k)| format!("({r} IS NULL) AS {}", quote_ident(d, k)))
        .collect();
    let conds: Vec<String> = refs.iter().map(|r| format!("{r} IS NULL")).collect();
    format!(
        "SELECT {} FROM {relation} WHERE {} LIMIT 1",
        cols.join(", "),
        conds.join(" OR ")
    )
}

enum Pool {
    Sqlite(sqlx::SqlitePool),
    Postgres(sqlx::PgPool),
    Mysql(sqlx::MySqlPool),
}

/// Why a query failed: the connection (reconnect and ask again) or anything else.
enum Failure {
    Lost(String),
    Fatal(SqlError),
}

/// Connection trouble that a new connection can cure: I/O, pool time-outs, a
/// closed pool, a connection the server closed (PostgreSQL 08xxx and 57P0x
/// admin/crash shutdown; MySQL server gone, connection killed).
fn is_connection_error(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Protocol(_) => true,
        sqlx::Error::Database(d) => {
            let code = d.code().map(|c| c.to_string()).unwrap_or_default();
            let mysql = d
                .try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>()
                .map(|m| m.number());
            code.starts_with("08")
                || matches!(code.as_str(), "57P01" | "57P02" | "57P03")
                || matches!(mysql, Some(1053 | 1927 | 2006 | 2013))
        }
        _ => false,
    }
}

fn failure(sql: &str, e: sqlx::Error) -> Failure {
    let message = crate::redact_url(&e.to_string());
    if is_connection_error(&e) {
        Failure::Lost(message)
    } else {
        Failure::Fatal(SqlError::Query {
            sql: sql.to_string(),
            message,
        })
    }
}

/// What to ask the server.
enum Op<'a> {
    /// Rows, converted to JSON objects; with `key`, to the JSON text of each
    /// row and the values of those key columns (a page of records).
    Rows {
        sql: &'a str,
        binds: &'a [KeyBind],
        key: Option<&'a [String]>,
    },
    /// The result columns of a statement, without running it: (type name, oid).
    Describe { sql: &'a str },
}

enum Out {
    Rows(Vec<Map<String, Value>>),
    /// (key values, the row as JSON text) per row.
    Records(Vec<(Vec<Value>, Vec<u8>)>),
    Columns(Vec<(String, Option<u32>)>),
}

fn unbindable(b: &KeyBind, dialect: &str) -> Failure {
    Failure::Fatal(SqlError::KeyValue {
        column: "?".into(),
        message: format!("{b:?} cannot be bound on {dialect}"),
    })
}

type PgQuery<'q> = sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>;
type MyQuery<'q> = sqlx::query::Query<'q, sqlx::MySql, sqlx::mysql::MySqlArguments>;
type LiteQuery<'q> = sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments<'q>>;

fn bind_pg<'q>(q: PgQuery<'q>, b: &KeyBind) -> Result<PgQuery<'q>, Failure> {
    Ok(match b.clone() {
        KeyBind::Text(s) | KeyBind::Decimal(s) => q.bind(s),
        KeyBind::I64(v) => q.bind(v),
        KeyBind::F64(v) => q.bind(v),
        KeyBind::Bool(v) => q.bind(v),
        KeyBind::Date(v) => q.bind(v),
        KeyBind::Time(v) => q.bind(v),
        KeyBind::DateTime(v) => q.bind(v),
        KeyBind::Timestamp(v) => q.bind(v),
        KeyBind::U64(_) => return Err(unbindable(b, "PostgreSQL")),
    })
}

fn bind_mysql<'q>(q: MyQuery<'q>, b: &KeyBind) -> Result<MyQuery<'q>, Failure> {
    Ok(match b.clone() {
        KeyBind::Text(s) => q.bind(s),
        KeyBind::Decimal(s) => q.bind(MysqlDecimal(s)),
        KeyBind::I64(v) => q.bind(v),
        KeyBind::U64(v) => q.bind(v),
        KeyBind::F64(v) => q.bind(v),
        KeyBind::Bool(v) => q.bind(v),
        KeyBind::Date(v) => q.bind(v),
        KeyBind::Time(v) => q.bind(v),
        KeyBind::DateTime(v) => q.bind(v),
        KeyBind::Timestamp(v) => q.bind(v),
    })
}

fn bind_sqlite<'q>(q: LiteQuery<'q>, b: &KeyBind) -> Result<LiteQuery<'q>, Failure> {
    Ok(match b.clone() {
        KeyBind::Text(s) | KeyBind::Decimal(s) => q.bind(s),
        KeyBind::I64(v) => q.bind(v),
        KeyBind::F64(v) => q.bind(v),
        KeyBind::Bool(v) => q.bind(v),
        KeyBind::Date(v) => q.bind(v),
        KeyBind::Time(v) => q.bind(v),
        KeyBind::DateTime(v) => q.bind(v),
        KeyBind::Timestamp(v) => q.bind(v),
        KeyBind::U64(v) => q.bind(i64::try_from(v).map_err(|_| unbindable(b, "SQLite"))?),
    })
}

/// Convert fetched rows, each dropped once converted: to objects, or with `key`
/// to each row's JSON text and key values.
fn convert_rows<R: sqlx::Row>(
    rows: Vec<R>,
    key: Option<&[String]>,
    conv: impl Fn(&R, usize) -> Result<Value, SqlError>,
) -> Result<Out, Failure> {
    let out = match key {
        None => rows
            .into_iter()
            .map(|r| convert::row_map(&r, &conv))
            .collect::<Result<Vec<_>, _>>()
            .map(Out::Rows),
        Some(key) => rows
            .into_iter()
            .map(|r| convert::row_json(&r, key, &conv))
            .collect::<Result<Vec<_>, _>>()
            .map(Out::Records),
    };
    out.map_err(Failure::Fatal)
}

async fn exec(pool: &Pool, op: &Op<'_>, ctx: PgCtx) -> Result<Out, Failure> {
    match op {
        Op::Rows { sql, binds, key } => match pool {
            Pool::Sqlite(p) => {
                let mut q = sqlx::query(sql);
                for b in binds.iter() {
                    q = bind_sqlite(q, b)?;
                }
                let rows = q.fetch_all(p).await.map_err(|e| failure(sql, e))?;
                convert_rows(rows, *key, convert::sqlite_value)
            }
            Pool::Postgres(p) => {
                let mut q = sqlx::query(sql);
                for b in binds.iter() {
                    q = bind_pg(q, b)?;
                }
                let rows = q.fetch_all(p).await.map_err(|e| failure(sql, e))?;
                convert_rows(rows, *key, |r, i| convert::pg_value(r, i, &ctx))
            }
            Pool::Mysql(p) => {
                let mut q = sqlx::query(sql);
                for b in binds.iter() {
                    q = bind_mysql(q, b)?;
                }
                let rows = q.fetch_all(p).await.map_err(|e| failure(sql, e))?;
                convert_rows(rows, *key, convert::mysql_value)
            }
        },
        Op::Describe { sql } => {
            let cols = match pool {
                Pool::Postgres(p) => p
                    .prepare(sql)
                    .await
                    .map_err(|e| failure(sql, e))?
                    .columns()
                    .iter()
                    .map(|c| {
                        let t = c.type_info();
                        (t.name().to_string(), t.oid().map(|o| o.0))
                    })
                    .collect(),
                Pool::Mysql(p) => p
                    .prepare(sql)
                    .await
                    .map_err(|e| failure(sql, e))?
                    .columns()
                    .iter()
                    .map(|c| (c.type_info().name().to_string(), None))
                    .collect(),
                Pool::Sqlite(p) => p
                    .prepare(sql)
                    .await
                    .map_err(|e| failure(sql, e))?
                    .columns()
                    .iter()
                    .map(|c| (c.type_info().name().to_string(), None))
                    .collect(),
            };
            Ok(Out::Columns(cols))
        }
    }
}

pub struct SqlSource {
    spec: SourceSpec,
    dialect: Dialect,
    url: String,
    /// Its own runtime (dropped with `shutdown_background`: sources are dropped
    /// inside async commands too).
    rt: Option<tokio::runtime::Runtime>,
    pool: Option<Pool>,
    /// A connection was made once: from then on a lost one is re-established.
    connected_once: bool,
    /// How each key column is bound, learned from the server before the first
    /// keyed query.
    key_types: Option<Vec<KeyType>>,
    /// Whether the source was checked for NULL keys (PostgreSQL, once per run).
    nulls_checked: bool,
    pg: PgCtx,
    /// Key of the last record read (the keyset cursor).
    keyset: super::Keyset,
    counter: Arc<AtomicU64>,
    file: Arc<FileInfo>,
}

fn panic_text(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".into())
}

/// Run a future on the source's own runtime from any context (the reader thread,
/// or an async command such as `retry`): on a fresh thread, so it never nests
/// inside another runtime. A panic there comes back as an error.
fn on_rt<T: Send>(
    rt: &tokio::runtime::Runtime,
    f: impl std::future::Future<Output = T> + Send,
) -> Result<T, SqlError> {
    std::thread::scope(|s| {
        let handle = std::thread::Builder::new()
            .name("cutover-sql".into())
            .spawn_scoped(s, move || rt.block_on(f))
            .map_err(|e| SqlError::Runtime(e.to_string()))?;
        handle
            .join()
            .map_err(|p| SqlError::ThreadPanicked(panic_text(p.as_ref())))
    })
}

/// The wait before reconnect attempt `n` (1-based): 250 ms, 500 ms, 1 s, 2 s, 4 s.
fn backoff(n: u32) -> Duration {
    Duration::from_millis(250 << n.saturating_sub(1).min(6))
}

impl SqlSource {
    pub fn open(spec: &SourceSpec) -> Result<SqlSource, SourceError> {
        let dialect = match spec.kind {
            SourceKind::Sqlite => Dialect::Sqlite,
            SourceKind::Postgres => Dialect::Postgres,
            SourceKind::Mysql => Dialect::Mysql,
            other => {
                return Err(SourceError::Unsupported(
                    crate::mapping::kind_name(other).into(),
                ))
            }
        };
        let mut url = spec.url.clone().ok_or(SqlError::NoUrl)?;
        if dialect == Dialect::Sqlite {
            // A relative database path resolves against the mapping's folder.
            let path = url
                .trim_start_matches("sqlite://")
                .trim_start_matches("sqlite:");
            let (file, query) = path
                .split_once('?')
                .map_or((path, None), |(f, q)| (f, Some(q)));
            let p = std::path::Path::new(file);
            let full = if p.is_absolute() {
                p.to_path_buf()
            } else {
                spec.dir.join(p)
            };
            if !full.exists() {
                return Err(SourceError::Io {
                    path: full,
                    source: std::io::Error::new(
                        std::io::ErrorKind::NotFound,
                        "database file not found",
                    ),
                });
            }
            url = format!(
                "sqlite://{}{}",
                full.display(),
                query.map(|q| format!("?{q}")).unwrap_or_default()
            );
        }
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| SqlError::Runtime(e.to_string()))?;
        Ok(SqlSource {
            spec: spec.clone(),
            dialect,
            url,
            rt: Some(rt),
            pool: None,
            connected_once: false,
            key_types: None,
            nulls_checked: false,
            pg: PgCtx::default(),
            keyset: super::Keyset::default(),
            counter: Arc::new(AtomicU64::new(0)),
            file: Arc::new(FileInfo::default()),
        })
    }

    fn display_url(&self) -> String {
        crate::redact_url(&self.url)
    }

    fn password(&self) -> Result<Option<String>, SqlError> {
        match &self.spec.password_env {
            None => Ok(None),
            Some(var) => std::env::var(var)
                .map(Some)
                .map_err(|_| SqlError::PasswordEnv(var.clone())),
        }
    }

    fn connect(&mut self) -> Result<(), Failure> {
        if self.pool.is_some() {
            return Ok(());
        }
        let url = self.url.clone();
        let password = self.password().map_err(Failure::Fatal)?;
        let dialect = self.dialect;
        let rt = self.rt.as_ref().ok_or(Failure::Fatal(SqlError::Closed))?;
        let made = on_rt(rt, async move {
            Ok::<_, sqlx::Error>(match dialect {
                Dialect::Sqlite => {
                    let o = sqlx::sqlite::SqliteConnectOptions::from_str(&url)?.read_only(true);
                    Pool::Sqlite(
                        sqlx::sqlite::SqlitePoolOptions::new()
                            .max_connections(1)
                            .connect_with(o)
                            .await?,
                    )
                }
                Dialect::Postgres => {
                    let mut o = sqlx::postgres::PgConnectOptions::from_str(&url)?
                        .application_name("cutover-source");
                    if let Some(p) = &password {
                        o = o.password(p);
                    }
                    Pool::Postgres(
                        sqlx::postgres::PgPoolOptions::new()
                            .max_connections(1)
                            .connect_with(o)
                            .await?,
                    )
                }
                Dialect::Mysql => {
                    let mut o = sqlx::mysql::MySqlConnectOptions::from_str(&url)?;
                    if let Some(p) = &password {
                        o = o.password(p);
                    }
                    Pool::Mysql(
                        sqlx::mysql::MySqlPoolOptions::new()
                            .max_connections(1)
                            .connect_with(o)
                            .await?,
                    )
                }
            })
        })
        .map_err(Failure::Fatal)?;
        match made {
            Ok(pool) => {
                self.pool = Some(pool);
                self.connected_once = true;
                Ok(())
            }
            Err(e) => {
                let message = crate::redact_url(&e.to_string());
                if is_connection_error(&e) {
                    Err(Failure::Lost(message))
                } else {
                    Err(Failure::Fatal(SqlError::Connect {
                        url: self.display_url(),
                        message,
                    }))
                }
            }
        }
    }

    /// Drop a broken pool (inside the runtime: its connections close there).
    fn drop_pool(&mut self) {
        if let Some(rt) = &self.rt {
            let _inside = rt.enter();
            self.pool = None;
        }
    }

    /// Ask the server; on a lost connection reconnect with backoff (up to
    /// [`RECONNECTS`] times) and ask again. A page is read whole or not at all,
    /// so asking again from the same last key loses and repeats nothing.
    fn run(&mut self, op: Op) -> Result<Out, SourceError> {
        let mut attempt = 0;
        loop {
            let res = match self.connect() {
                Ok(()) => {
                    let rt = self.rt.as_ref().ok_or(SqlError::Closed)?;
                    let pool = self.pool.as_ref().ok_or(SqlError::Closed)?;
                    on_rt(rt, exec(pool, &op, self.pg))?
                }
                Err(e) => Err(e),
            };
            match res {
                Ok(out) => {
                    if attempt > 0 {
                        tracing::info!(source = %self.display_url(), attempts = attempt, "reconnected to the source");
                    }
                    return Ok(out);
                }
                Err(Failure::Lost(message)) if !self.connected_once => {
                    return Err(SqlError::Connect {
                        url: self.display_url(),
                        message,
                    }
                    .into())
                }
                Err(Failure::Lost(message)) if attempt < RECONNECTS => {
                    attempt += 1;
                    let wait = backoff(attempt);
                    tracing::warn!(
                        source = %self.display_url(),
                        attempt,
                        wait_ms = wait.as_millis() as u64,
                        error = %message,
                        "lost the connection to the source; reconnecting to read the page again from the last key"
                    );
                    self.drop_pool();
                    std::thread::sleep(wait);
                }
                Err(Failure::Lost(message)) => {
                    self.drop_pool();
                    return Err(SqlError::ConnectionLost {
                        url: self.display_url(),
                        attempts: attempt,
                        message,
                    }
                    .into());
                }
                Err(Failure::Fatal(e)) => return Err(e.into()),
            }
        }
    }

    fn fetch(
        &mut self,
        sql: &str,
        binds: &[KeyBind],
    ) -> Result<Vec<Map<String, Value>>, SourceError> {
        match self.run(Op::Rows {
            sql,
            binds,
            key: None,
        })? {
            Out::Rows(rows) => Ok(rows),
            _ => Err(SqlError::Closed.into()),
        }
    }

    /// A page of records: each row's key values and its JSON text.
    fn fetch_records(
        &mut self,
        sql: &str,
        binds: &[KeyBind],
    ) -> Result<Vec<RawRecord>, SourceError> {
        let key = self.spec.key.clone();
        match self.run(Op::Rows {
            sql,
            binds,
            key: Some(&key),
        })? {
            Out::Records(rows) => Ok(rows
                .into_iter()
                .map(|(k, json)| self.raw_record(k, json))
                .collect()),
            _ => Err(SqlError::Closed.into()),
        }
    }

    fn relation_sql(&self) -> String {
        match (&self.spec.table, &self.spec.query) {
            (Some(t), _) => format!("{} AS q", quote_table(self.dialect, t)),
            (None, Some(q)) => format!("({}) AS q", q.trim().trim_end_matches(';')),
            (None, None) => "(SELECT 1) AS q".into(),
        }
    }

    /// Learn how to bind each key column: its type as the server reports it for
    /// the relation (PostgreSQL: the catalog name to cast to).
    fn key_types(&mut self) -> Result<Vec<KeyType>, SourceError> {
        if let Some(t) = &self.key_types {
            return Ok(t.clone());
        }
        let keys = self.spec.key.clone();
        let types = match self.dialect {
            Dialect::Sqlite => vec![KeyType::Dynamic; keys.len()],
            Dialect::Mysql | Dialect::Postgres => {
                let sql = format!(
                    "SELECT {} FROM {}",
                    key_refs(self.dialect, &keys).join(", "),
                    self.relation_sql()
                );
                let cols = match self.run(Op::Describe { sql: &sql })? {
                    Out::Columns(c) => c,
                    _ => Vec::new(),
                };
                if cols.len() != keys.len() {
                    return Err(SqlError::KeyArity {
                        got: cols.len(),
                        expected: keys.len(),
                        columns: keys.join(", "),
                    }
                    .into());
                }
                if self.dialect == Dialect::Mysql {
                    cols.iter().map(|(name, _)| KeyType::mysql(name)).collect()
                } else {
                    let mut out = Vec::new();
                    for ((name, oid), key) in cols.iter().zip(&keys) {
                        out.push(self.pg_key_type(key, name, *oid)?);
                    }
                    self.pg.money_scale = self.pg_money_scale();
                    out
                }
            }
        };
        tracing::debug!(source = %self.display_url(), ?types, "key parameter types");
        self.key_types = Some(types.clone());
        Ok(types)
    }

    fn pg_key_type(
        &mut self,
        key: &str,
        name: &str,
        oid: Option<u32>,
    ) -> Result<KeyType, SourceError> {
        let Some(oid) = oid else {
            return Err(SqlError::KeyValue {
                column: key.into(),
                message: format!("PostgreSQL did not report the oid of its type {name}"),
            }
            .into());
        };
        if oid == 17 {
            return Ok(KeyType::PgBytes);
        }
        let sql = "SELECT quote_ident(n.nspname) || '.' || quote_ident(t.typname) AS name \
                   FROM pg_catalog.pg_type t JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace \
                   WHERE t.oid = $1::pg_catalog.oid";
        let rows = self.fetch(sql, &[KeyBind::Text(oid.to_string())])?;
        match rows
            .first()
            .and_then(|r| r.get("name"))
            .and_then(Value::as_str)
        {
            Some(t) => Ok(KeyType::PgCast(t.to_string())),
            None => Err(SqlError::KeyValue {
                column: key.into(),
                message: format!("the type {name} (oid {oid}) is not in pg_type"),
            }
            .into()),
        }
    }

    /// The decimal places of `money` in this session (lc_monetary), if the
    /// server can tell.
    fn pg_money_scale(&mut self) -> Option<u32> {
        let rows = self
            .fetch(
                "SELECT pg_catalog.scale('1'::pg_catalog.money::pg_catalog.numeric) AS s",
                &[],
            )
            .ok()?;
        rows.first()?
            .get("s")?
            .as_u64()
            .and_then(|s| u32::try_from(s).ok())
    }

    /// PostgreSQL: fail before reading when a key column holds a NULL (NULLs
    /// sort last there, so keyset pages would never return those rows). Key
    /// columns of a table declared NOT NULL are not looked at.
    fn check_null_keys(&mut self) -> Result<(), SourceError> {
        if self.nulls_checked || self.dialect != Dialect::Postgres {
            return Ok(());
        }
        let mut nullable = self.spec.key.clone();
        if let Some(table) = self.spec.table.clone() {
            let rows = self.fetch(
                "SELECT a.attname::text AS name FROM pg_catalog.pg_attribute a \
                 WHERE a.attrelid = $1::pg_catalog.regclass AND a.attnum > 0 \
                 AND NOT a.attisdropped AND a.attnotnull",
                &[KeyBind::Text(quote_table(Dialect::Postgres, &table))],
            )?;
            let not_null: Vec<&str> = rows
                .iter()
                .filter_map(|r| r.get("name").and_then(Value::as_str))
                .collect();
            nullable.retain(|k| !not_null.contains(&k.as_str()));
        }
        if !nullable.is_empty() {
            let rows = self.fetch(&null_probe_sql(&self.relation_sql(), &nullable), &[])?;
            if let Some(row) = rows.first() {
                let column = nullable
                    .iter()
                    .find(|k| row.get(k.as_str()) == Some(&Value::Bool(true)))
                    .cloned()
                    .unwrap_or_else(|| nullable.join(", "));
                return Err(SourceError::NullKey {
                    columns: self.spec.key.join(", "),
                    column,
                    place: "in at least one row of the source".into(),
                });
            }
        }
        self.nulls_checked = true;
        Ok(())
    }

    fn record(&self, row: Map<String, Value>) -> Result<RawRecord, SourceError> {
        let mut key = Vec::with_capacity(self.spec.key.len());
        for k in &self.spec.key {
            match row.get(k) {
                Some(v) => key.push(v.clone()),
                None => {
                    return Err(SqlError::KeyColumnMissing {
                        column: k.clone(),
                        columns: row.keys().cloned().collect::<Vec<_>>().join(", "),
                    }
                    .into())
                }
            }
        }
        Ok(self.raw_record(key, Decoded::json_of(row)))
    }

    /// A record of its key values and its row as JSON text.
    fn raw_record(&self, key: Vec<Value>, json: Vec<u8>) -> RawRecord {
        let text = key
            .iter()
            .map(super::key_text)
            .collect::<Vec<_>>()
            .join(", ");
        let key_value = if key.len() == 1 {
            key[0].clone()
        } else {
            Value::Array(key.clone())
        };
        let pos = Position {
            file: 0,
            offset: 0,
            line: 0,
            key: Some(key),
        };
        RawRecord {
            position: pos.clone(),
            next: pos,
            file: self.file.clone(),
            label: Label::Key,
            payload: Payload::Decoded(Box::new(Decoded::new(text, key_value, json))),
        }
    }
}

impl Drop for SqlSource {
    fn drop(&mut self) {
        if let Some(rt) = self.rt.take() {
            {
                let _inside = rt.enter();
                self.pool = None;
            }
            rt.shutdown_background();
        }
    }
}

impl Source for SqlSource {
    fn seek(&mut self, pos: &Position) -> Result<(), SourceError> {
        self.keyset.last = pos.key.clone();
        Ok(())
    }

    fn next_batch(&mut self, max: usize) -> Result<Vec<RawRecord>, SourceError> {
        if self.keyset.done {
            return Ok(Vec::new());
        }
        let max = max.max(1);
        let types = self.key_types()?;
        self.check_null_keys()?;
        let after = self.keyset.last.clone();
        let (sql, order) = page_sql(
            self.dialect,
            &self.relation_sql(),
            &self.spec.key,
            &types,
            after.is_some(),
            max + 1,
        );
        let binds = match &after {
            Some(a) => {
                let typed = key_binds(&types, &self.spec.key, a)?;
                order
                    .iter()
                    .map(|&i| typed.get(i).cloned().ok_or(SqlError::Closed))
                    .collect::<Result<Vec<_>, _>>()?
            }
            None => Vec::new(),
        };
        let page = self.fetch_records(&sql, &binds)?;
        self.keyset
            .advance(&self.spec.key, page, max, &self.counter)
    }

    fn total_bytes(&self) -> Option<u64> {
        None
    }

    fn bytes_counter(&self) -> Arc<AtomicU64> {
        self.counter.clone()
    }

    fn fingerprint(&self) -> String {
        format!(
            "{} {} {} key ({})",
            crate::mapping::kind_name(self.spec.kind),
            crate::redact_url(&self.url),
            self.spec
                .table
                .clone()
                .or_else(|| self.spec.query.clone())
                .unwrap_or_default(),
            self.spec.key.join(", ")
        )
    }

    fn describe(&self) -> String {
        format!(
            "{} {} ({}), keyset on ({})",
            crate::mapping::kind_name(self.spec.kind),
            crate::redact_url(&self.url),
            self.spec.table.clone().unwrap_or_else(|| "query".into()),
            self.spec.key.join(", ")
        )
    }

    fn read_at(&mut self, pos: &Position) -> Result<Option<RawRecord>, SourceError> {
        let Some(key) = &pos.key else { return Ok(None) };
        let types = self.key_types()?;
        let binds = key_binds(&types, &self.spec.key, key)?;
        let sql = lookup_sql(self.dialect, &self.relation_sql(), &self.spec.key, &types);
        let rows = self.fetch(&sql, &binds)?;
        rows.into_iter().next().map(|r| self.record(r)).transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn keys(n: usize) -> Vec<String> {
        ["a", "b", "c"][..n].iter().map(|s| s.to_string()).collect()
    }

    fn pg_types(n: usize) -> Vec<KeyType> {
        ["pg_catalog.uuid", "pg_catalog.text", "pg_catalog.int4"][..n]
            .iter()
            .map(|t| KeyType::PgCast(t.to_string()))
            .collect()
    }

    #[test]
    fn first_page_has_no_condition() {
        for d in [Dialect::Sqlite, Dialect::Postgres, Dialect::Mysql] {
            let (sql, order) = page_sql(d, "t AS q", &keys(2), &[], false, 11);
            assert!(order.is_empty());
            let q = if d == Dialect::Mysql { '`' } else { '"' };
            assert_eq!(
                sql,
                format!("SELECT * FROM t AS q ORDER BY q.{q}a{q}, q.{q}b{q} LIMIT 11")
            );
        }
    }

    #[test]
    fn postgres_pages_compare_rows_with_typed_parameters() {
        let page = |n| page_sql(Dialect::Postgres, "t AS q", &keys(n), &pg_types(n), true, 4);
        assert_eq!(
            page(1),
            (
                "SELECT * FROM t AS q WHERE q.\"a\" > $1::pg_catalog.uuid ORDER BY q.\"a\" LIMIT 4"
                    .to_string(),
                vec![0]
            )
        );
        assert_eq!(
            page(2),
            (
                "SELECT * FROM t AS q WHERE (q.\"a\", q.\"b\") > ($1::pg_catalog.uuid, $2::pg_catalog.text) ORDER BY q.\"a\", q.\"b\" LIMIT 4"
                    .to_string(),
                vec![0, 1]
            )
        );
        assert_eq!(
            page(3),
            (
                "SELECT * FROM t AS q WHERE (q.\"a\", q.\"b\", q.\"c\") > ($1::pg_catalog.uuid, $2::pg_catalog.text, $3::pg_catalog.int4) ORDER BY q.\"a\", q.\"b\", q.\"c\" LIMIT 4"
                    .to_string(),
                vec![0, 1, 2]
            )
        );
        let (sql, _) = page_sql(
            Dialect::Postgres,
            "t AS q",
            &keys(1),
            &[KeyType::PgBytes],
            true,
            2,
        );
        assert!(sql.contains("q.\"a\" > decode($1, 'base64')"), "{sql}");
    }

    #[test]
    fn mysql_and_sqlite_pages_expand_the_comparison() {
        for (d, q) in [(Dialect::Mysql, '`'), (Dialect::Sqlite, '"')] {
            let t = vec![KeyType::Text; 3];
            let (a, b, c) = (
                format!("q.{q}a{q}"),
                format!("q.{q}b{q}"),
                format!("q.{q}c{q}"),
            );
            let (sql, order) = page_sql(d, "t AS q", &keys(1), &t[..1], true, 4);
            assert_eq!(
                sql,
                format!("SELECT * FROM t AS q WHERE ({a} > ?) ORDER BY {a} LIMIT 4")
            );
            assert_eq!(order, vec![0]);
            let (sql, order) = page_sql(d, "t AS q", &keys(2), &t[..2], true, 4);
            assert_eq!(
                sql,
                format!("SELECT * FROM t AS q WHERE ({a} > ?) OR ({a} = ? AND {b} > ?) ORDER BY {a}, {b} LIMIT 4")
            );
            assert_eq!(order, vec![0, 0, 1]);
            let (sql, order) = page_sql(d, "t AS q", &keys(3), &t, true, 4);
            assert_eq!(
                sql,
                format!("SELECT * FROM t AS q WHERE ({a} > ?) OR ({a} = ? AND {b} > ?) OR ({a} = ? AND {b} = ? AND {c} > ?) ORDER BY {a}, {b}, {c} LIMIT 4")
            );
            assert_eq!(order, vec![0, 0, 1, 0, 1, 2]);
        }
    }

    #[test]
    fn lookups_and_null_probes() {
        assert_eq!(
            lookup_sql(Dialect::Postgres, "t AS q", &keys(2), &pg_types(2)),
            "SELECT * FROM t AS q WHERE q.\"a\" = $1::pg_catalog.uuid AND q.\"b\" = $2::pg_catalog.text LIMIT 1"
        );
        assert_eq!(
            lookup_sql(
                Dialect::Mysql,
                "t AS q",
                &keys(2),
                &[KeyType::Int, KeyType::Text]
            ),
            "SELECT * FROM t AS q WHERE q.`a` = ? AND q.`b` = ? LIMIT 1"
        );
        assert_eq!(
            null_probe_sql("t AS q", &keys(2)),
            "SELECT (q.\"a\" IS NULL) AS \"a\", (q.\"b\" IS NULL) AS \"b\" FROM t AS q WHERE q.\"a\" IS NULL OR q.\"b\" IS NULL LIMIT 1"
        );
    }

    #[test]
    fn postgres_binds_the_exact_text_of_every_key() {
        let t = KeyType::PgCast("pg_catalog.numeric".into());
        let big: Value = serde_json::from_str("12345678901234567890.123456789012345678").unwrap();
        assert_eq!(
            key_bind(&t, "k", &big).unwrap(),
            KeyBind::Text("12345678901234567890.123456789012345678".into())
        );
        assert_eq!(
            key_bind(&t, "k", &json!("2024-01-01T10:00:00.000001")).unwrap(),
            KeyBind::Text("2024-01-01T10:00:00.000001".into())
        );
        assert_eq!(
            key_bind(&t, "k", &json!(true)).unwrap(),
            KeyBind::Text("true".into())
        );
        assert_eq!(
            placeholder(
                Dialect::Postgres,
                &KeyType::PgCast("public.\"Mood\"".into()),
                2
            ),
            "$2::public.\"Mood\""
        );
    }

    #[test]
    fn mysql_binds_carry_the_column_type() {
        let big: Value = serde_json::from_str("12345678901234567890.123456789012345678").unwrap();
        assert_eq!(
            key_bind(&KeyType::Decimal, "k", &big).unwrap(),
            KeyBind::Decimal("12345678901234567890.123456789012345678".into())
        );
        // Never through f64: the neighbour one digit away stays distinct.
        let next: Value = serde_json::from_str("12345678901234567890.123456789012345679").unwrap();
        assert_ne!(
            key_bind(&KeyType::Decimal, "k", &big).unwrap(),
            key_bind(&KeyType::Decimal, "k", &next).unwrap()
        );
        assert_eq!(
            key_bind(&KeyType::Int, "k", &json!(u64::MAX)).unwrap(),
            KeyBind::U64(u64::MAX)
        );
        assert_eq!(
            key_bind(&KeyType::Int, "k", &json!(-3)).unwrap(),
            KeyBind::I64(-3)
        );
        assert_eq!(
            key_bind(
                &KeyType::DateTime,
                "k",
                &json!("2024-02-29T23:59:59.999999")
            )
            .unwrap(),
            KeyBind::DateTime(
                chrono::NaiveDate::from_ymd_opt(2024, 2, 29)
                    .unwrap()
                    .and_hms_micro_opt(23, 59, 59, 999_999)
                    .unwrap()
            )
        );
        assert!(matches!(
            key_bind(&KeyType::Timestamp, "k", &json!("2024-01-01T00:00:00Z")).unwrap(),
            KeyBind::Timestamp(_)
        ));
        assert_eq!(
            key_bind(&KeyType::Time, "k", &json!("838:59:59")).unwrap(),
            KeyBind::Text("838:59:59".into())
        );
        assert_eq!(KeyType::mysql("BIGINT UNSIGNED"), KeyType::Int);
        assert_eq!(KeyType::mysql("VARBINARY"), KeyType::Text);
        assert_eq!(KeyType::mysql("DECIMAL"), KeyType::Decimal);
        assert_eq!(placeholder(Dialect::Mysql, &KeyType::Decimal, 3), "?");
    }

    #[test]
    fn sqlite_binds_the_storage_class() {
        assert_eq!(
            key_bind(&KeyType::Dynamic, "k", &json!(7)).unwrap(),
            KeyBind::I64(7)
        );
        assert_eq!(
            key_bind(&KeyType::Dynamic, "k", &json!(0.1)).unwrap(),
            KeyBind::F64(0.1)
        );
        assert_eq!(
            key_bind(&KeyType::Dynamic, "k", &json!("Ä")).unwrap(),
            KeyBind::Text("Ä".into())
        );
    }

    #[test]
    fn bad_key_values_are_errors_naming_the_column() {
        let e = key_bind(&KeyType::Int, "OrgId", &Value::Null).unwrap_err();
        assert!(
            e.to_string()
                .contains("key column OrgId: the key value is NULL"),
            "{e}"
        );
        let e = key_bind(&KeyType::Date, "Day", &json!("yesterday")).unwrap_err();
        assert!(e.to_string().contains("key column Day"), "{e}");
        let e = key_bind(&KeyType::Decimal, "Amount", &json!("1,5")).unwrap_err();
        assert!(e.to_string().contains("is not a decimal"), "{e}");
    }

    #[test]
    fn a_position_with_the_wrong_number_of_keys_is_an_error() {
        let e = key_binds(&[KeyType::Int, KeyType::Int], &keys(2), &[json!(1)]).unwrap_err();
        assert!(
            matches!(
                e,
                SqlError::KeyArity {
                    got: 1,
                    expected: 2,
                    ..
                }
            ),
            "{e}"
        );
        assert!(key_binds(&[KeyType::Int], &keys(1), &[json!(1), json!(2)]).is_err());
    }

    #[test]
    fn a_panic_on_the_source_thread_is_an_error() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let r: Result<(), _> = on_rt(&rt, async { panic!("boom") });
        match r {
            Err(SqlError::ThreadPanicked(m)) => assert_eq!(m, "boom"),
            other => panic!("{other:?}"),
        }
        assert_eq!(on_rt(&rt, async { 5 }).unwrap(), 5);
    }

    #[test]
    fn only_connection_trouble_reconnects() {
        let io = sqlx::Error::Io(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "reset",
        ));
        assert!(is_connection_error(&io));
        assert!(is_connection_error(&sqlx::Error::PoolTimedOut));
        assert!(is_connection_error(&sqlx::Error::PoolClosed));
        assert!(!is_connection_error(&sqlx::Error::RowNotFound));
        assert!(!is_connection_error(&sqlx::Error::ColumnNotFound(
            "x".into()
        )));
        assert_eq!(backoff(1), Duration::from_millis(250));
        assert_eq!(backoff(5), Duration::from_secs(4));
    }

    #[test]
    fn plain_decimals() {
        assert!(is_plain_decimal("-12.50"));
        assert!(is_plain_decimal("7"));
        assert!(!is_plain_decimal("1e5"));
        assert!(!is_plain_decimal("1."));
        assert!(!is_plain_decimal(""));
    }
}
