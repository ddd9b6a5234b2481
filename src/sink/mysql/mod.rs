//! MySQL-protocol target (MySQL 8, MariaDB, TiDB): multi-row `INSERT ... ON
//! DUPLICATE KEY UPDATE c = VALUES(c)` sized under the 65,535-placeholder limit,
//! strict SQL mode (a value the column cannot hold is an error, never a silent
//! truncation), UTC sessions, and `GET_LOCK` for the run lock (released by the
//! server when the process dies).

mod error;
mod introspect;
mod lock;
mod upsert;

pub use introspect::column_type;
pub use upsert::upsert_sql;

use crate::dialect::Dialect;
use crate::sink::{Admin, ServerLock, TargetError};
use async_trait::async_trait;
use error::db;
use sqlx::mysql::{MySqlConnectOptions, MySqlPool, MySqlPoolOptions};
use sqlx::Executor;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

pub struct MySqlTarget {
    pool: MySqlPool,
    url: String,
    /// The `GET_LOCK` of each mapping, held by a connection for the run.
    lock: ServerLock,
}

impl MySqlTarget {
    pub async fn connect(url: &str) -> Result<MySqlTarget, TargetError> {
        let fail = |e: sqlx::Error| TargetError::Connect {
            url: crate::redact_url(url),
            message: e.to_string(),
        };
        let opts = MySqlConnectOptions::from_str(url)
            .map_err(fail)?
            .charset("utf8mb4")
            .timezone(Some("+00:00".to_string()));
        super::probe(&opts, url).await?;
        let database = opts.get_database().unwrap_or_default().to_string();
        let pool = MySqlPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(30))
            .after_connect(|conn, _| {
                Box::pin(async move {
                    conn.execute("SET SESSION sql_mode = CONCAT(@@sql_mode, ',STRICT_ALL_TABLES')")
                        .await?;
                    Ok(())
                })
            })
            .connect_with(opts)
            .await
            .map_err(fail)?;
        Ok(MySqlTarget {
            pool,
            url: url.to_string(),
            lock: lock::named_lock(database),
        })
    }
}

crate::sink::pool_target!(
    MySqlTarget,
    Dialect::Mysql,
    "SELECT version, CAST(installed_on AS CHAR), execution_time FROM _sqlx_migrations"
);

#[async_trait]
impl Admin for MySqlTarget {
    async fn backup(&self, path: &Path) -> Result<Option<String>, TargetError> {
        let opts = MySqlConnectOptions::from_str(&self.url).map_err(db("reading the URL"))?;
        Ok(Some(format!(
            "mysqldump --single-transaction --routines -h {} -P {} -u {} -p {} > '{}'",
            opts.get_host(),
            opts.get_port(),
            opts.get_username(),
            opts.get_database().unwrap_or(""),
            path.display()
        )))
    }
}
