//! Which SQLite failures are bad data (the batch is split to find the record)
//! and which are contention (the batch is retried).

use crate::db::{DbFailure, TargetError};
use crate::dialect::Dialect;

pub(super) fn classify(e: &sqlx::Error) -> DbFailure {
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
        other => crate::db::client_failure(other),
    }
}

impl crate::db::Driver for sqlx::Sqlite {
    const DIALECT: Dialect = Dialect::Sqlite;
    fn classify(e: &sqlx::Error) -> DbFailure {
        classify(e)
    }
}

pub(super) fn db(context: &str) -> impl Fn(sqlx::Error) -> TargetError + '_ {
    move |e| classify(&e).into_target(context)
}
