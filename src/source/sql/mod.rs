//! SQL sources through sqlx (PostgreSQL, MySQL/MariaDB, SQLite): a table or a
//! query read in pages of `--batch-size` rows by keyset pagination: never
//! OFFSET, never a cursor held open, and the checkpoint is the last key
//! committed. Every column type becomes JSON without loss ([`convert`]).
//! Paging, records and reconnecting are the [`KeysetSource`]'s; this is its
//! [`Driver`] for the three sqlx dialects.
//!
//! Key parameters are bound with the key column's own type (learned from the
//! server before the first page): PostgreSQL compares `uuid > text` or
//! `timestamp > text` not at all, and MySQL compares a DECIMAL with a string or
//! a float in double precision, which skips or repeats rows. A lost connection
//! is reconnected with backoff and the page is read again from the last key.

mod convert;
mod exec;
pub(crate) mod keys;
mod pg_binary;
pub(crate) mod query;

use super::keyset::{Driver, Failure, KeysetSource, Row};
use super::{Decoded, SourceError};
use crate::dialect::{quote_table, Dialect};
use crate::mapping::{SourceKind, SourceSpec};
use crate::runtime::{Bridge, RuntimeError};
use convert::PgCtx;
use exec::{exec, is_connection_error, Op, Out, Pool};
use keys::{key_binds, KeyBind, KeyType};
use query::{key_refs, lookup_sql, null_probe_sql, page_sql};
use serde_json::{Map, Value};
use std::str::FromStr;

/// A table or a query of a PostgreSQL, MySQL/MariaDB or SQLite database.
pub type SqlSource = KeysetSource<SqlDriver>;

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

/// The sqlx side of a [`SqlSource`].
pub struct SqlDriver {
    spec: SourceSpec,
    dialect: Dialect,
    url: String,
    /// The pool, on its own runtime.
    pool: Bridge<Pool>,
    /// How each key column is bound, learned from the server before the first
    /// keyed query.
    key_types: Option<Vec<KeyType>>,
    /// Whether the source was checked for NULL keys (PostgreSQL, once per run).
    nulls_checked: bool,
    pg: PgCtx,
}

/// A panic or a failed thread of the source's runtime.
fn runtime_error(e: RuntimeError) -> SqlError {
    match e {
        RuntimeError::Panicked(m) => SqlError::ThreadPanicked(m),
        RuntimeError::Start(m) | RuntimeError::Thread(m) => SqlError::Runtime(m),
    }
}

/// Open a SQL source (nothing is connected before the first read).
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
    let pool = Bridge::new("cutover-sql").map_err(runtime_error)?;
    let driver = SqlDriver {
        spec: spec.clone(),
        dialect,
        url,
        pool,
        key_types: None,
        nulls_checked: false,
        pg: PgCtx::default(),
    };
    Ok(KeysetSource::new(spec, driver))
}

impl SqlDriver {
    fn password(&self) -> Result<Option<String>, SqlError> {
        match &self.spec.password_env {
            None => Ok(None),
            Some(var) => std::env::var(var)
                .map(Some)
                .map_err(|_| SqlError::PasswordEnv(var.clone())),
        }
    }

    /// Connect when there is no pool. A first connection that fails on the
    /// network is a [`Failure::Lost`] too: the keyset source tells the two apart.
    fn connect_pool(&mut self) -> Result<(), Failure> {
        if self.pool.get().is_some() {
            return Ok(());
        }
        let url = self.url.clone();
        let password = self.password()?;
        let dialect = self.dialect;
        let made = self
            .pool
            .run(async move {
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
            .map_err(runtime_error)?;
        match made {
            Ok(pool) => {
                self.pool.set(Some(pool));
                Ok(())
            }
            Err(e) => {
                let message = crate::redact_url(&e.to_string());
                if is_connection_error(&e) {
                    Err(Failure::Lost(message))
                } else {
                    Err(SqlError::Connect {
                        url: self.display(),
                        message,
                    }
                    .into())
                }
            }
        }
    }

    fn fetch(&mut self, sql: &str, binds: &[KeyBind]) -> Result<Vec<Map<String, Value>>, Failure> {
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
    fn fetch_records(&mut self, sql: &str, binds: &[KeyBind]) -> Result<Vec<Row>, Failure> {
        let key = self.spec.key.clone();
        match self.run(Op::Rows {
            sql,
            binds,
            key: Some(&key),
        })? {
            Out::Records(rows) => Ok(rows
                .into_iter()
                .map(|(key, json)| Row { key, json })
                .collect()),
            _ => Err(SqlError::Closed.into()),
        }
    }

    /// Ask the server (connected by the keyset source's call).
    fn run(&mut self, op: Op) -> Result<Out, Failure> {
        let pool = self.pool.get().ok_or(SqlError::Closed)?;
        self.pool
            .run(exec(pool, &op, self.pg))
            .map_err(runtime_error)?
    }

    fn relation_sql(&self) -> String {
        let rel = match (&self.spec.table, &self.spec.query) {
            (Some(t), _) => quote_table(self.dialect, t),
            (None, Some(q)) => format!("({})", q.trim().trim_end_matches(';')),
            (None, None) => "(SELECT 1)".into(),
        };
        match &self.spec.filter {
            Some(f) => format!("(SELECT * FROM {rel} AS w WHERE {f}) AS q"),
            None => format!("{rel} AS q"),
        }
    }

    /// Learn how to bind each key column: its type as the server reports it for
    /// the relation (PostgreSQL: the catalog name to cast to).
    fn key_types(&mut self) -> Result<Vec<KeyType>, Failure> {
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
                    self.pg.money_scale = self.pg_money_scale()?;
                    out
                }
            }
        };
        tracing::debug!(source = %self.display(), ?types, "key parameter types");
        self.key_types = Some(types.clone());
        Ok(types)
    }

    fn pg_key_type(&mut self, key: &str, name: &str, oid: Option<u32>) -> Result<KeyType, Failure> {
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
    /// A lost connection is a failure; any other error leaves the scale unknown.
    fn pg_money_scale(&mut self) -> Result<Option<u32>, Failure> {
        let rows = match self.fetch(
            "SELECT pg_catalog.scale('1'::pg_catalog.money::pg_catalog.numeric) AS s",
            &[],
        ) {
            Ok(rows) => rows,
            Err(Failure::Lost(m)) => return Err(Failure::Lost(m)),
            Err(Failure::Fatal(_)) => return Ok(None),
        };
        Ok(rows
            .first()
            .and_then(|r| r.get("s"))
            .and_then(Value::as_u64)
            .and_then(|s| u32::try_from(s).ok()))
    }

    /// PostgreSQL: fail before reading when a key column holds a NULL (NULLs
    /// sort last there, so keyset pages would never return those rows). Key
    /// columns of a table declared NOT NULL are not looked at.
    fn check_null_keys(&mut self) -> Result<(), Failure> {
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
                }
                .into());
            }
        }
        self.nulls_checked = true;
        Ok(())
    }

    /// A row read as an object (a lookup) as a [`Row`].
    fn row(&self, row: Map<String, Value>) -> Result<Row, Failure> {
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
        Ok(Row {
            key,
            json: Decoded::json_of(row),
        })
    }
}

impl Driver for SqlDriver {
    fn display(&self) -> String {
        crate::redact_url(&self.url)
    }

    fn connect(&mut self) -> Result<(), Failure> {
        self.connect_pool()
    }

    /// Drop a broken pool (inside the runtime: its connections close there).
    fn disconnect(&mut self) {
        self.pool.set(None);
    }

    fn page(&mut self, after: Option<&[Value]>, limit: usize) -> Result<Vec<Row>, Failure> {
        let types = self.key_types()?;
        self.check_null_keys()?;
        let (sql, order) = page_sql(
            self.dialect,
            &self.relation_sql(),
            &self.spec.key,
            &types,
            after.is_some(),
            limit,
        );
        let binds = match after {
            Some(a) => {
                let typed = key_binds(&types, &self.spec.key, a)?;
                order
                    .iter()
                    .map(|&i| typed.get(i).cloned().ok_or(SqlError::Closed))
                    .collect::<Result<Vec<_>, _>>()?
            }
            None => Vec::new(),
        };
        self.fetch_records(&sql, &binds)
    }

    fn count(&mut self) -> Result<Option<u64>, Failure> {
        let sql = format!("SELECT COUNT(*) AS n FROM {}", self.relation_sql());
        let rows = self.fetch(&sql, &[])?;
        Ok(rows.first().and_then(|r| r.get("n")).and_then(|v| match v {
            Value::Number(n) => n.to_string().parse().ok(),
            Value::String(s) => s.parse().ok(),
            _ => None,
        }))
    }

    fn lookup(&mut self, key: &[Value]) -> Result<Option<Row>, Failure> {
        let types = self.key_types()?;
        let binds = key_binds(&types, &self.spec.key, key)?;
        let sql = lookup_sql(self.dialect, &self.relation_sql(), &self.spec.key, &types);
        let rows = self.fetch(&sql, &binds)?;
        rows.into_iter().next().map(|r| self.row(r)).transpose()
    }

    fn connect_error(&self, message: String) -> SourceError {
        SqlError::Connect {
            url: self.display(),
            message,
        }
        .into()
    }

    fn lost_error(&self, attempts: u32, message: String) -> SourceError {
        SqlError::ConnectionLost {
            url: self.display(),
            attempts,
            message,
        }
        .into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_on_the_source_thread_is_an_error() {
        let rt: Bridge<()> = Bridge::new("cutover-sql").unwrap();
        let r: Result<(), _> = rt.run(async { panic!("boom") }).map_err(runtime_error);
        match r {
            Err(SqlError::ThreadPanicked(m)) => assert_eq!(m, "boom"),
            other => panic!("{other:?}"),
        }
        assert_eq!(rt.run(async { 5 }).unwrap(), 5);
    }
}
