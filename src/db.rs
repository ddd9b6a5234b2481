//! Why this file is about 600 lines: the neutral types and the one macro that implements them for the three sqlx drivers belong together.
//! Statements run the same way on every dialect: [`Exec`] takes a statement text
//! with `?` placeholders and dialect-neutral arguments ([`Arg`]) and returns
//! rows of dialect-neutral cells ([`Cell`]). The tracking store and the lock
//! algorithm are written once over it; each sink only says how its driver
//! classifies errors ([`Driver`]). Lives apart from `sink` and `tracking` so that
//! both import it and neither imports the other.

use crate::dialect::Dialect;
use crate::value::SqlValue;
use async_trait::async_trait;
use sqlx::{Column, Row as _};
use std::sync::Arc;

/// Why a statement failed: bad data (split the batch) or the connection (retry).
#[derive(Debug, Clone)]
pub struct DbFailure {
    pub data: bool,
    pub message: String,
    /// The result column whose value could not be read, when that was the failure.
    pub column: Option<String>,
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
pub fn client_failure(e: &sqlx::Error) -> DbFailure {
    DbFailure {
        data: matches!(e, sqlx::Error::Encode(_)),
        message: e.to_string(),
        column: None,
    }
}

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

/// `map_err` helper: a failure with what was being done.
pub fn ctx(context: &'static str) -> impl Fn(DbFailure) -> TargetError {
    move |f| f.into_target(context)
}

/// A bound argument.
#[derive(Debug, Clone, Copy)]
pub enum Arg<'a> {
    Int(i64),
    OptInt(Option<i64>),
    Text(&'a str),
    OptText(Option<&'a str>),
    Bool(bool),
    /// A mapped value, bound the way the dialect's batch writer binds it.
    Value(&'a SqlValue),
}

impl From<i64> for Arg<'_> {
    fn from(v: i64) -> Self {
        Arg::Int(v)
    }
}

impl From<Option<i64>> for Arg<'_> {
    fn from(v: Option<i64>) -> Self {
        Arg::OptInt(v)
    }
}

impl<'a> From<&'a str> for Arg<'a> {
    fn from(v: &'a str) -> Self {
        Arg::Text(v)
    }
}

impl<'a> From<&'a String> for Arg<'a> {
    fn from(v: &'a String) -> Self {
        Arg::Text(v)
    }
}

impl<'a> From<Option<&'a str>> for Arg<'a> {
    fn from(v: Option<&'a str>) -> Self {
        Arg::OptText(v)
    }
}

impl From<bool> for Arg<'_> {
    fn from(v: bool) -> Self {
        Arg::Bool(v)
    }
}

/// A value read back.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Null,
    Int(i64),
    Text(String),
    Bool(bool),
    Float(f64),
}

/// A row read back: cells by column name.
#[derive(Debug, Clone)]
pub struct Row {
    names: Arc<[String]>,
    cells: Vec<Cell>,
}

/// A column that is missing or holds another type than the reader expects.
fn bad_column(name: &str, want: &str, got: Option<&Cell>) -> DbFailure {
    DbFailure {
        data: true,
        message: match got {
            None => format!("no column {name} in the result"),
            Some(c) => format!("column {name}: expected {want}, found {c:?}"),
        },
        column: Some(name.to_string()),
    }
}

impl Row {
    pub fn cell(&self, name: &str) -> Option<&Cell> {
        self.names
            .iter()
            .position(|n| n.eq_ignore_ascii_case(name))
            .and_then(|i| self.cells.get(i))
    }

    pub fn at(&self, i: usize) -> Option<&Cell> {
        self.cells.get(i)
    }

    pub fn int(&self, name: &str) -> Result<i64, DbFailure> {
        match self.cell(name) {
            Some(Cell::Int(v)) => Ok(*v),
            Some(Cell::Bool(b)) => Ok(i64::from(*b)),
            other => Err(bad_column(name, "an integer", other)),
        }
    }

    pub fn opt_int(&self, name: &str) -> Result<Option<i64>, DbFailure> {
        match self.cell(name) {
            Some(Cell::Null) => Ok(None),
            _ => self.int(name).map(Some),
        }
    }

    pub fn text(&self, name: &str) -> Result<String, DbFailure> {
        match self.cell(name) {
            Some(Cell::Text(s)) => Ok(s.clone()),
            other => Err(bad_column(name, "text", other)),
        }
    }

    pub fn opt_text(&self, name: &str) -> Result<Option<String>, DbFailure> {
        match self.cell(name) {
            Some(Cell::Null) => Ok(None),
            _ => self.text(name).map(Some),
        }
    }

    /// A boolean, stored as one on PostgreSQL and as 0/1 elsewhere.
    pub fn bool(&self, name: &str) -> Result<bool, DbFailure> {
        match self.cell(name) {
            Some(Cell::Bool(b)) => Ok(*b),
            Some(Cell::Int(v)) => Ok(*v != 0),
            other => Err(bad_column(name, "a boolean", other)),
        }
    }

    /// The first column as text, whatever its type (for `[[checks]]`).
    pub fn first_as_text(&self) -> Option<String> {
        match self.cells.first()? {
            Cell::Null => None,
            Cell::Int(v) => Some(v.to_string()),
            Cell::Text(s) => Some(s.clone()),
            Cell::Bool(b) => Some(b.to_string()),
            Cell::Float(f) => Some(f.to_string()),
        }
    }
}

/// Something statements run on: a pool, a held connection, a transaction.
#[async_trait]
pub trait Exec: Send {
    fn dialect(&self) -> Dialect;
    /// Run a statement; the number of rows it affected.
    async fn execute(&mut self, sql: &str, args: &[Arg<'_>]) -> Result<u64, DbFailure>;
    /// Run a query; its rows.
    async fn fetch(&mut self, sql: &str, args: &[Arg<'_>]) -> Result<Vec<Row>, DbFailure>;
    /// Run an `INSERT` into a table with an `id` key; the id given to the row.
    async fn insert_id(&mut self, sql: &str, args: &[Arg<'_>]) -> Result<i64, DbFailure>;
}

#[async_trait]
impl<E: Exec + ?Sized> Exec for &mut E {
    fn dialect(&self) -> Dialect {
        (**self).dialect()
    }
    async fn execute(&mut self, sql: &str, args: &[Arg<'_>]) -> Result<u64, DbFailure> {
        (**self).execute(sql, args).await
    }
    async fn fetch(&mut self, sql: &str, args: &[Arg<'_>]) -> Result<Vec<Row>, DbFailure> {
        (**self).fetch(sql, args).await
    }
    async fn insert_id(&mut self, sql: &str, args: &[Arg<'_>]) -> Result<i64, DbFailure> {
        (**self).insert_id(sql, args).await
    }
}

/// A dialect's connection pool, seen through the neutral interface.
#[async_trait]
pub trait Connector: Send + Sync {
    /// Statements on the pool.
    fn exec(&self) -> Box<dyn Exec + '_>;
    /// One connection of the pool, held by the caller.
    async fn acquire(&self) -> Result<Box<dyn Exec>, DbFailure>;
    /// A transaction outside the batch writer.
    async fn begin(&self) -> Result<Box<dyn TxExec>, DbFailure>;
    async fn close(&self);
}

/// `map_err` for a sqlx error of driver `DB`: classified, with what was done.
pub fn fail<DB: Driver>(context: &str) -> impl Fn(sqlx::Error) -> TargetError + '_ {
    move |e| DB::classify(&e).into_target(context)
}

/// A transaction opened outside the batch writer.
#[async_trait]
pub trait TxExec: Exec {
    async fn commit(self: Box<Self>) -> Result<(), DbFailure>;
}

impl dyn Exec + '_ {
    /// The first row of a query, if any.
    pub async fn fetch_one(
        &mut self,
        sql: &str,
        args: &[Arg<'_>],
    ) -> Result<Option<Row>, DbFailure> {
        Ok(self.fetch(sql, args).await?.into_iter().next())
    }
}

/// `?` placeholders numbered (`$1`, `$2`...) for PostgreSQL; unchanged elsewhere.
/// Statement texts given to [`Exec`] hold no `?` inside literals.
pub fn numbered(d: Dialect, sql: &str) -> std::borrow::Cow<'_, str> {
    if d != Dialect::Postgres || !sql.contains('?') {
        return std::borrow::Cow::Borrowed(sql);
    }
    let mut out = String::with_capacity(sql.len() + 16);
    let mut n = 0;
    for c in sql.chars() {
        if c == '?' {
            n += 1;
            out.push('$');
            out.push_str(&n.to_string());
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

/// What a sqlx driver tells the [`Exec`] implementations.
pub trait Driver: sqlx::Database {
    const DIALECT: Dialect;
    /// What the database's own answer means: bad data, or try again.
    fn database_failure(d: &dyn sqlx::error::DatabaseError) -> DbFailure;

    /// Bad data or a connection failure.
    fn classify(e: &sqlx::Error) -> DbFailure {
        match e {
            sqlx::Error::Database(d) => Self::database_failure(d.as_ref()),
            other => client_failure(other),
        }
    }
}

/// The [`Exec`] implementations of one sqlx driver: on its pool (each statement
/// may take another connection), on a held connection, and in a transaction.
/// A macro rather than generic code: sqlx's bounds for "binds these types and
/// decodes those" do not carry over from a generic impl to its callers.
macro_rules! exec_for {
    ($db:ty, $value:path $(, $decimal:ty)?) => {
        const _: () = {
            type Q<'q> = sqlx::query::Query<'q, $db, <$db as sqlx::Database>::Arguments<'q>>;

            fn bind_all<'q>(mut q: Q<'q>, args: &[Arg<'q>]) -> Q<'q> {
                for a in args {
                    q = match *a {
                        Arg::Int(v) => q.bind(v),
                        Arg::OptInt(v) => q.bind(v),
                        Arg::Text(v) => q.bind(v),
                        Arg::OptText(v) => q.bind(v),
                        Arg::Bool(v) => q.bind(v),
                        Arg::Value(v) => $value(q, v),
                    };
                }
                q
            }

            fn cells(rows: Vec<<$db as sqlx::Database>::Row>) -> Result<Vec<Row>, DbFailure> {
                let Some(first) = rows.first() else {
                    return Ok(Vec::new());
                };
                let names: Arc<[String]> = first
                    .columns()
                    .iter()
                    .map(|c| c.name().to_string())
                    .collect();
                rows.iter()
                    .map(|r| {
                        let cells = (0..names.len())
                            .map(|i| {
                                if let Ok(v) = r.try_get::<Option<i64>, _>(i) {
                                    return Ok(v.map_or(Cell::Null, Cell::Int));
                                }
                                if let Ok(v) = r.try_get::<Option<i32>, _>(i) {
                                    return Ok(v.map_or(Cell::Null, |v| Cell::Int(i64::from(v))));
                                }
                                if let Ok(v) = r.try_get::<Option<String>, _>(i) {
                                    return Ok(v.map_or(Cell::Null, Cell::Text));
                                }
                                if let Ok(v) = r.try_get::<Option<bool>, _>(i) {
                                    return Ok(v.map_or(Cell::Null, Cell::Bool));
                                }
                                $(
                                    // Exact decimals keep their digits, as text.
                                    if let Ok(v) = r.try_get::<Option<$decimal>, _>(i) {
                                        return Ok(v.map_or(Cell::Null, |d| Cell::Text(d.to_string())));
                                    }
                                )?
                                r.try_get::<Option<f64>, _>(i)
                                    .map(|v| v.map_or(Cell::Null, Cell::Float))
                                    .map_err(|e| DbFailure {
                                        column: Some(names[i].clone()),
                                        ..<$db as Driver>::classify(&e)
                                    })
                            })
                            .collect::<Result<Vec<Cell>, DbFailure>>()?;
                        Ok(Row {
                            names: names.clone(),
                            cells,
                        })
                    })
                    .collect()
            }

            async fn execute_on<'c>(
                e: impl sqlx::Executor<'c, Database = $db>,
                sql: &str,
                args: &[Arg<'_>],
            ) -> Result<u64, DbFailure> {
                let sql = numbered(<$db as Driver>::DIALECT, sql);
                e.execute(bind_all(sqlx::query(&sql), args))
                    .await
                    .map(|r| r.rows_affected())
                    .map_err(|e| <$db as Driver>::classify(&e))
            }

            async fn fetch_on<'c>(
                e: impl sqlx::Executor<'c, Database = $db>,
                sql: &str,
                args: &[Arg<'_>],
            ) -> Result<Vec<Row>, DbFailure> {
                let sql = numbered(<$db as Driver>::DIALECT, sql);
                let rows = e
                    .fetch_all(bind_all(sqlx::query(&sql), args))
                    .await
                    .map_err(|e| <$db as Driver>::classify(&e))?;
                cells(rows)
            }

            /// The id of the row an `INSERT` wrote, on one connection:
            /// `RETURNING id`, or MySQL's `LAST_INSERT_ID()` of the same session.
            async fn insert_id_on(
                conn: &mut <$db as sqlx::Database>::Connection,
                sql: &str,
                args: &[Arg<'_>],
            ) -> Result<i64, DbFailure> {
                let rows = if <$db as Driver>::DIALECT == Dialect::Mysql {
                    execute_on(&mut *conn, sql, args).await?;
                    fetch_on(
                        &mut *conn,
                        "SELECT CAST(LAST_INSERT_ID() AS SIGNED) AS id",
                        &[],
                    )
                    .await?
                } else {
                    fetch_on(&mut *conn, &format!("{sql} RETURNING id"), args).await?
                };
                rows.first()
                    .ok_or_else(|| DbFailure {
                        data: false,
                        message: "the database returned no id for the inserted row".into(),
                        column: None,
                    })?
                    .int("id")
            }

            #[async_trait]
            impl Exec for sqlx::Pool<$db> {
                fn dialect(&self) -> Dialect {
                    <$db as Driver>::DIALECT
                }
                async fn execute(&mut self, sql: &str, args: &[Arg<'_>]) -> Result<u64, DbFailure> {
                    execute_on(&*self, sql, args).await
                }
                async fn fetch(
                    &mut self,
                    sql: &str,
                    args: &[Arg<'_>],
                ) -> Result<Vec<Row>, DbFailure> {
                    fetch_on(&*self, sql, args).await
                }
                async fn insert_id(
                    &mut self,
                    sql: &str,
                    args: &[Arg<'_>],
                ) -> Result<i64, DbFailure> {
                    let mut conn = self
                        .acquire()
                        .await
                        .map_err(|e| <$db as Driver>::classify(&e))?;
                    insert_id_on(&mut conn, sql, args).await
                }
            }

            #[async_trait]
            impl Exec for sqlx::pool::PoolConnection<$db> {
                fn dialect(&self) -> Dialect {
                    <$db as Driver>::DIALECT
                }
                async fn execute(&mut self, sql: &str, args: &[Arg<'_>]) -> Result<u64, DbFailure> {
                    execute_on(&mut **self, sql, args).await
                }
                async fn fetch(
                    &mut self,
                    sql: &str,
                    args: &[Arg<'_>],
                ) -> Result<Vec<Row>, DbFailure> {
                    fetch_on(&mut **self, sql, args).await
                }
                async fn insert_id(
                    &mut self,
                    sql: &str,
                    args: &[Arg<'_>],
                ) -> Result<i64, DbFailure> {
                    insert_id_on(&mut **self, sql, args).await
                }
            }

            #[async_trait]
            impl Exec for sqlx::Transaction<'static, $db> {
                fn dialect(&self) -> Dialect {
                    <$db as Driver>::DIALECT
                }
                async fn execute(&mut self, sql: &str, args: &[Arg<'_>]) -> Result<u64, DbFailure> {
                    execute_on(&mut **self, sql, args).await
                }
                async fn fetch(
                    &mut self,
                    sql: &str,
                    args: &[Arg<'_>],
                ) -> Result<Vec<Row>, DbFailure> {
                    fetch_on(&mut **self, sql, args).await
                }
                async fn insert_id(
                    &mut self,
                    sql: &str,
                    args: &[Arg<'_>],
                ) -> Result<i64, DbFailure> {
                    insert_id_on(&mut **self, sql, args).await
                }
            }

            #[async_trait]
            impl Connector for sqlx::Pool<$db> {
                fn exec(&self) -> Box<dyn Exec + '_> {
                    Box::new(self.clone())
                }
                async fn acquire(&self) -> Result<Box<dyn Exec>, DbFailure> {
                    let conn = sqlx::Pool::acquire(self)
                        .await
                        .map_err(|e| <$db as Driver>::classify(&e))?;
                    Ok(Box::new(conn))
                }
                async fn begin(&self) -> Result<Box<dyn TxExec>, DbFailure> {
                    let tx = sqlx::Pool::begin(self)
                        .await
                        .map_err(|e| <$db as Driver>::classify(&e))?;
                    Ok(Box::new(tx))
                }
                async fn close(&self) {
                    sqlx::Pool::close(self).await;
                }
            }

            #[async_trait]
            impl TxExec for sqlx::Transaction<'static, $db> {
                async fn commit(self: Box<Self>) -> Result<(), DbFailure> {
                    sqlx::Transaction::commit(*self)
                        .await
                        .map_err(|e| <$db as Driver>::classify(&e))
                }
            }
        };
    };
}

exec_for!(sqlx::Postgres, bind_postgres, bigdecimal::BigDecimal);
exec_for!(sqlx::MySql, bind_mysql, bigdecimal::BigDecimal);
exec_for!(sqlx::Sqlite, bind_sqlite);

/// A mapped value as PostgreSQL reads it in text form (statements cast it:
/// `?::text::numeric(10,2)`); an instant in UTC says so.
pub fn pg_text(v: &SqlValue) -> Option<String> {
    match v {
        SqlValue::TimestampTz(t) => Some(format!("{}+00", t.format("%Y-%m-%d %H:%M:%S%.f"))),
        other => other.to_text(),
    }
}

type Query<'q, DB> = sqlx::query::Query<'q, DB, <DB as sqlx::Database>::Arguments<'q>>;

fn bind_postgres<'q>(q: Query<'q, sqlx::Postgres>, v: &'q SqlValue) -> Query<'q, sqlx::Postgres> {
    q.bind(pg_text(v))
}

/// A mapped value bound for MySQL: numbers, booleans and bytes as themselves,
/// decimals and JSON as their text, dates and times as their text.
pub fn bind_mysql<'q>(q: Query<'q, sqlx::MySql>, v: &'q SqlValue) -> Query<'q, sqlx::MySql> {
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

/// A mapped value bound for SQLite: booleans as 0/1, the rest as for MySQL.
pub fn bind_sqlite<'q>(q: Query<'q, sqlx::Sqlite>, v: &'q SqlValue) -> Query<'q, sqlx::Sqlite> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_for_postgres_only() {
        assert_eq!(
            numbered(Dialect::Postgres, "a = ? AND b IN (?, ?)"),
            "a = $1 AND b IN ($2, $3)"
        );
        assert_eq!(numbered(Dialect::Mysql, "a = ?"), "a = ?");
        assert_eq!(numbered(Dialect::Sqlite, "a = ?"), "a = ?");
    }
}
