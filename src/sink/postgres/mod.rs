//! PostgreSQL target: one `INSERT ... SELECT FROM UNNEST($1::int8[], ...) ON
//! CONFLICT ... DO UPDATE ... WHERE (...) IS DISTINCT FROM (...)` per table per
//! batch, binding one array per column (no placeholder limit, one round trip);
//! `RETURNING (xmax = 0)` tells inserted rows from updated ones. The run lock is
//! a session advisory lock, released by the server if the process dies.
//!
//! First loads take a faster path: while a table that was empty when the run
//! described it has had no conflict, a batch's rows go in with `COPY ... FROM
//! STDIN` under a savepoint (nothing to update, so nothing to compare). Any
//! error of that COPY (a key that is already there, a constraint) rolls back to
//! the savepoint, the batch goes in with the upsert as usual (which bisects bad
//! records), and the table stays on the upsert for the rest of the run. Tables
//! with rewrite rules or GENERATED ALWAYS identity columns never take COPY (it
//! skips rules and writes such columns where an INSERT refuses).

mod copy;
mod error;
mod introspect;
mod lock;
mod upsert;

pub use copy::copy_rows;
pub use introspect::column_type;
pub use upsert::upsert_sql;

use crate::dialect::Dialect;
use crate::sink::{Admin, ServerLock, TargetError};
use async_trait::async_trait;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use std::collections::HashSet;
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

pub struct PgTarget {
    pool: PgPool,
    url: String,
    /// The advisory lock of each mapping, held by a connection for the run.
    lock: ServerLock,
    /// Tables that take batches by COPY: empty when last described, no COPY
    /// of theirs has failed since.
    copy_tables: CopyTables,
}

type CopyTables = Arc<std::sync::Mutex<HashSet<String>>>;

impl PgTarget {
    pub async fn connect(url: &str) -> Result<PgTarget, TargetError> {
        let fail = |e: sqlx::Error| TargetError::Connect {
            url: crate::redact_url(url),
            message: e.to_string(),
        };
        let opts = PgConnectOptions::from_str(url)
            .map_err(fail)?
            .application_name("cutover");
        super::probe(&opts, url).await?;
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(opts)
            .await
            .map_err(fail)?;
        Ok(PgTarget {
            pool,
            url: url.to_string(),
            lock: lock::advisory_lock(),
            copy_tables: CopyTables::default(),
        })
    }
}

crate::sink::pool_target!(
    PgTarget,
    Dialect::Postgres,
    "SELECT version, installed_on::text, execution_time FROM _sqlx_migrations"
);

#[async_trait]
impl Admin for PgTarget {
    async fn backup(&self, path: &Path) -> Result<Option<String>, TargetError> {
        Ok(Some(format!(
            "pg_dump --format=custom --file='{}' '{}'",
            path.display(),
            crate::redact_url(&self.url)
        )))
    }
}
