//! SQLite target (the default): WAL, one connection (SQLite has one writer and
//! its page cache stays warm), foreign keys on.

mod error;
pub(crate) mod introspect;
mod lock;
mod upsert;

pub use introspect::column_type;
pub use upsert::upsert_sql;

use crate::dialect::Dialect;
use crate::sink::{Admin, TargetError};
use async_trait::async_trait;
use error::db;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

pub struct SqliteTarget {
    pool: SqlitePool,
    url: String,
}

impl SqliteTarget {
    pub async fn connect(url: &str) -> Result<SqliteTarget, TargetError> {
        let fail = |e: sqlx::Error| TargetError::Connect {
            url: crate::redact_url(url),
            message: e.to_string(),
        };
        let opts = SqliteConnectOptions::from_str(url)
            .map_err(fail)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(30))
            .pragma("cache_size", "-32768")
            .pragma("temp_store", "memory");
        // One connection: SQLite has one writer anyway, and its page cache stays warm
        // (a pool rotating over several connections holds a cache per connection).
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .connect_with(opts)
            .await
            .map_err(fail)?;
        Ok(SqliteTarget {
            pool,
            url: url.to_string(),
        })
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }
}

crate::sink::pool_target!(
    SqliteTarget,
    Dialect::Sqlite,
    "SELECT version, CAST(installed_on AS TEXT), execution_time FROM _sqlx_migrations"
);

#[async_trait]
impl Admin for SqliteTarget {
    async fn backup(&self, path: &Path) -> Result<Option<String>, TargetError> {
        sqlx::query("VACUUM INTO ?")
            .bind(path.to_string_lossy().to_string())
            .execute(&self.pool)
            .await
            .map_err(db("writing the backup"))?;
        Ok(None)
    }
}
