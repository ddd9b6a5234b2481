//! Running one statement on a sqlx pool: binding the typed key parameters,
//! converting the rows ([`convert`](super::convert)), and telling a lost
//! connection from any other error.

use super::convert::{self, PgCtx};
use super::keys::{KeyBind, MysqlDecimal};
use super::SqlError;
use crate::source::keyset::Failure;
use serde_json::{Map, Value};
use sqlx::{Column, Executor, Statement, TypeInfo};

pub(crate) enum Pool {
    Sqlite(sqlx::SqlitePool),
    Postgres(sqlx::PgPool),
    Mysql(sqlx::MySqlPool),
}

/// Connection trouble that a new connection can cure: I/O, pool time-outs, a
/// closed pool, a connection the server closed (PostgreSQL 08xxx and 57P0x
/// admin/crash shutdown; MySQL server gone, connection killed).
pub(crate) fn is_connection_error(e: &sqlx::Error) -> bool {
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

pub(crate) fn failure(sql: &str, e: sqlx::Error) -> Failure {
    let message = crate::redact_url(&e.to_string());
    if is_connection_error(&e) {
        Failure::Lost(message)
    } else {
        Failure::Fatal(
            SqlError::Query {
                sql: sql.to_string(),
                message,
            }
            .into(),
        )
    }
}

/// What to ask the server.
pub(crate) enum Op<'a> {
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

pub(crate) enum Out {
    Rows(Vec<Map<String, Value>>),
    /// (key values, the row as JSON text) per row.
    Records(Vec<(Vec<Value>, Vec<u8>)>),
    Columns(Vec<(String, Option<u32>)>),
}

fn unbindable(b: &KeyBind, dialect: &str) -> Failure {
    Failure::Fatal(
        SqlError::KeyValue {
            column: "?".into(),
            message: format!("{b:?} cannot be bound on {dialect}"),
        }
        .into(),
    )
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
    out.map_err(Failure::from)
}

pub(crate) async fn exec(pool: &Pool, op: &Op<'_>, ctx: PgCtx) -> Result<Out, Failure> {
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

#[cfg(test)]
mod tests {
    use super::*;

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
    }
}
