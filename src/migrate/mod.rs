//! `cutover migrate`: schema migrations of the target from a folder, in one of
//! two layouts ([`Layout`]): sqlx's (`VERSION_name.sql`, `.up.sql` + `.down.sql`,
//! history in `_sqlx_migrations`, [`sqlx_layout`]) or the D1 / SQLite runners'
//! (`NNNN_name.sql` + `NNNN_name.rollback.sql`, history in `_migrations`, [`d1`]).

mod d1;
mod sqlx_layout;

pub use d1::{detect, D1_CHECKSUMS};

use std::path::Path;

/// The layout of a migrations folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Layout {
    /// D1 when the folder holds `.rollback.sql` files and no `.up.sql` /
    /// `.down.sql`, else sqlx.
    Auto,
    D1,
    Sqlx,
}

impl Layout {
    /// The layout of a folder: as asked, or detected from its file names.
    pub fn resolve(self, dir: &Path) -> Layout {
        match self {
            Layout::Auto if detect(dir) => Layout::D1,
            Layout::Auto => Layout::Sqlx,
            other => other,
        }
    }
}

/// What `cutover migrate` does.
#[derive(Debug, Clone)]
pub enum Action {
    Info,
    /// Apply pending migrations up to `up_to` (all when `None`).
    Run {
        up_to: Option<i64>,
        dry_run: bool,
    },
    /// Revert down to `down_to` (only the latest applied when `None`).
    Revert {
        down_to: Option<i64>,
        dry_run: bool,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    Applied,
    Pending,
    /// Applied, but the file changed since.
    ChecksumMismatch,
    /// Applied half way (failed): needs a manual fix.
    Dirty,
    /// Applied on the database, no file for it in this folder.
    Missing,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Entry {
    pub version: i64,
    pub description: String,
    pub state: State,
    pub reversible: bool,
    pub installed_on: Option<String>,
    pub execution_ms: Option<f64>,
}

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Report {
    pub entries: Vec<Entry>,
    /// Versions applied (or, in a dry run, that would be).
    pub applied: Vec<(i64, String)>,
    pub reverted: Vec<(i64, String)>,
    /// Dry run: the SQL that would run, per migration.
    pub sql: Vec<(i64, String)>,
    pub dry_run: bool,
    /// The layout the folder was read in.
    pub layout: Option<Layout>,
}

#[derive(Debug, thiserror::Error)]
pub enum MigrationError {
    #[error("cannot read migrations from {dir}: {message}")]
    Source { dir: String, message: String },
    #[error("migration {file} was applied, but the file changed since (checksum mismatch). Restore the file as it was applied; to change the schema, add a new migration (or revert this one first if it is reversible, then run again)")]
    Edited { file: String },
    #[error("migration {version} is dirty: it failed half way on this database. Fix the schema by hand, then delete its row from _sqlx_migrations (or mark it successful) and run again")]
    Dirty { version: i64 },
    #[error("migration {version} failed: {message}")]
    Failed { version: i64, message: String },
    #[error("{0}")]
    Database(String),
    /// A D1 migration to revert has no `.rollback.sql` file (nothing was reverted).
    #[error("cannot revert migration {file}: its rollback file {rollback} is missing in {dir} (nothing was reverted)")]
    NoRollback {
        file: String,
        rollback: String,
        dir: String,
    },
    /// The state of a D1 folder's database could not be read.
    #[error("cannot read {what}: {source}")]
    ReadD1 {
        what: &'static str,
        #[source]
        source: sqlx::Error,
    },
    /// The state of the database could not be read from `_sqlx_migrations`.
    #[error("cannot read {what} from _sqlx_migrations: {source}")]
    Read {
        what: &'static str,
        #[source]
        source: sqlx::Error,
    },
}

pub use sqlx_layout::execute;

/// A pool that runs D1 folders ([`d1`]), one implementation per driver.
pub trait D1Pool {
    /// Run an action on a folder in the D1 layout, over one connection.
    fn run_d1<'a>(
        &'a self,
        dir: &'a Path,
        action: &'a Action,
    ) -> futures_util::future::BoxFuture<'a, Result<Report, MigrationError>>;
}

macro_rules! d1_pool {
    ($db:ty, $module:ident) => {
        impl D1Pool for sqlx::Pool<$db> {
            fn run_d1<'a>(
                &'a self,
                dir: &'a Path,
                action: &'a Action,
            ) -> futures_util::future::BoxFuture<'a, Result<Report, MigrationError>> {
                Box::pin(async move {
                    let mut conn = self
                        .acquire()
                        .await
                        .map_err(|e| MigrationError::Database(e.to_string()))?;
                    let mut report = d1::$module::execute(&mut conn, dir, action).await?;
                    report.layout = Some(Layout::D1);
                    Ok(report)
                })
            }
        }
    };
}

d1_pool!(sqlx::Sqlite, sqlite);
d1_pool!(sqlx::Postgres, postgres);
d1_pool!(sqlx::MySql, mysql);
