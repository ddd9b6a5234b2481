//! Which PostgreSQL failures are bad data (the batch is split to find the
//! record) and which are retried on a fresh connection (by SQLSTATE).

use crate::db::{DbFailure, Driver, TargetError};
use crate::dialect::Dialect;
use sqlx::error::DatabaseError;

/// SQLSTATE classes that mean "try again on a fresh connection".
fn retryable_state(code: &str) -> bool {
    code.starts_with("08") // connection exception
        || code == "40001" // serialization failure
        || code == "40P01" // deadlock
        || code.starts_with("57P") // admin shutdown, crash shutdown, cannot connect now
        || code == "53300" // too many connections
        || code == "55P03" // lock not available
}

impl Driver for sqlx::Postgres {
    const DIALECT: Dialect = Dialect::Postgres;

    fn database_failure(d: &dyn DatabaseError) -> DbFailure {
        let code = d.code().map(|c| c.to_string()).unwrap_or_default();
        let detail = d
            .try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
            .and_then(|p| p.detail().map(|s| format!(" ({s})")))
            .unwrap_or_default();
        DbFailure {
            data: !retryable_state(&code),
            message: format!("{}{detail} [SQLSTATE {code}]", d.message()),
            column: None,
        }
    }
}

/// Bad data or a connection failure.
pub(super) fn classify(e: &sqlx::Error) -> DbFailure {
    <sqlx::Postgres as Driver>::classify(e)
}

/// `map_err` with what was being done.
pub(super) fn db(context: &str) -> impl Fn(sqlx::Error) -> TargetError + '_ {
    crate::db::fail::<sqlx::Postgres>(context)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_states_are_retried_and_data_states_are_not() {
        assert!(retryable_state("57P01") && retryable_state("40P01") && !retryable_state("23505"));
    }
}
