//! Which SQLite failures are bad data (the batch is split to find the record)
//! and which are contention (the batch is retried).

use crate::db::{DbFailure, Driver, TargetError};
use crate::dialect::Dialect;
use sqlx::error::DatabaseError;

impl Driver for sqlx::Sqlite {
    const DIALECT: Dialect = Dialect::Sqlite;

    fn database_failure(d: &dyn DatabaseError) -> DbFailure {
        let code = d.code().and_then(|c| c.parse::<i64>().ok()).unwrap_or(0);
        // SQLITE_BUSY (5) and SQLITE_LOCKED (6) are contention, not data.
        let contention = matches!(code & 0xff, 5 | 6);
        DbFailure {
            data: !contention,
            message: d.message().to_string(),
            column: None,
        }
    }
}

/// Bad data or a connection failure.
pub(super) fn classify(e: &sqlx::Error) -> DbFailure {
    <sqlx::Sqlite as Driver>::classify(e)
}

/// `map_err` with what was being done.
pub(super) fn db(context: &str) -> impl Fn(sqlx::Error) -> TargetError + '_ {
    crate::db::fail::<sqlx::Sqlite>(context)
}
