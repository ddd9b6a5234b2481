//! Which MySQL/MariaDB/TiDB failures are bad data (the batch is split to find
//! the record) and which are retried on a fresh connection (by error number).

use crate::db::{DbFailure, Driver, TargetError};
use crate::dialect::Dialect;
use sqlx::error::DatabaseError;

/// Server error numbers that mean "try again on a fresh connection".
fn retryable_code(code: &str) -> bool {
    matches!(
        code,
        "1213" // deadlock
            | "1205" // lock wait timeout
            | "1040" // too many connections
            | "1053" // server shutdown
            | "1927" // connection killed (MariaDB)
            | "2006" // server has gone away
            | "2013" // lost connection
            | "1317" // query interrupted
            | "8027" | "9007" // TiDB: schema changed, write conflict
            | "8022" | "8028" // TiDB: transaction retry, information schema changed
            | "9001" | "9002" | "9003" | "9004" | "9005" // TiDB: PD/TiKV time-out or busy
    )
}

impl Driver for sqlx::MySql {
    const DIALECT: Dialect = Dialect::Mysql;

    fn database_failure(d: &dyn DatabaseError) -> DbFailure {
        let code = d
            .try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>()
            .map(|m| m.number().to_string())
            .unwrap_or_default();
        DbFailure {
            data: !retryable_code(&code),
            message: format!("{} [error {code}]", d.message()),
            column: None,
        }
    }
}

/// Bad data or a connection failure.
pub(super) fn classify(e: &sqlx::Error) -> DbFailure {
    <sqlx::MySql as Driver>::classify(e)
}

/// `map_err` with what was being done.
pub(super) fn db(context: &str) -> impl Fn(sqlx::Error) -> TargetError + '_ {
    crate::db::fail::<sqlx::MySql>(context)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlocks_are_retried_and_duplicate_keys_are_not() {
        assert!(retryable_code("1213") && !retryable_code("1062"));
    }
}
