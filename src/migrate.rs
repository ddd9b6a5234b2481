//! Schema migrations for the target, in sqlx's layout (`VERSION_name.sql`, or
//! reversible `VERSION_name.up.sql` + `.down.sql`) and its `_sqlx_migrations`
//! table, so a project can switch between sqlx-cli and cutover. The order of
//! checks is sqlx's: lock, ensure the table, refuse a dirty state, compare
//! checksums, then apply.

use sqlx::migrate::{Migrate, MigrateError, Migration, Migrator};
use std::borrow::Cow;
use std::collections::HashMap;
use std::ops::Deref;
use std::path::Path;

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
}

fn file_name(m: &Migration) -> String {
    let suffix = if m.migration_type.is_reversible() {
        ".up.sql"
    } else {
        ".sql"
    };
    format!(
        "{}_{}{}",
        m.version,
        m.description.replace(' ', "_"),
        suffix
    )
}

fn map_err(migrator: &Migrator, e: MigrateError) -> MigrationError {
    match e {
        MigrateError::VersionMismatch(v) => MigrationError::Edited {
            file: migrator
                .iter()
                .find(|m| m.version == v)
                .map(file_name)
                .unwrap_or_else(|| v.to_string()),
        },
        MigrateError::Dirty(v) => MigrationError::Dirty { version: v },
        MigrateError::Execute(e) => MigrationError::Database(e.to_string()),
        MigrateError::ExecuteMigration(e, v) => MigrationError::Failed {
            version: v,
            message: e.to_string(),
        },
        other => MigrationError::Database(other.to_string()),
    }
}

/// Run an action. `installed_sql` selects `version, installed_on (as text),
/// execution_time` from `_sqlx_migrations` in the dialect at hand.
pub async fn execute<'a, A>(
    pool: A,
    dir: &Path,
    action: &Action,
    installed_sql: &str,
) -> Result<Report, MigrationError>
where
    A: sqlx::Acquire<'a> + Copy,
    <A::Connection as Deref>::Target: Migrate,
    for<'c> &'c mut <A::Database as sqlx::Database>::Connection:
        sqlx::Executor<'c, Database = A::Database>,
    i64: for<'r> sqlx::Decode<'r, A::Database> + sqlx::Type<A::Database>,
    String: for<'r> sqlx::Decode<'r, A::Database> + sqlx::Type<A::Database>,
    for<'q> <A::Database as sqlx::Database>::Arguments<'q>: sqlx::IntoArguments<'q, A::Database>,
    usize: sqlx::ColumnIndex<<A::Database as sqlx::Database>::Row>,
{
    let mut migrator = Migrator::new(dir)
        .await
        .map_err(|e| MigrationError::Source {
            dir: dir.display().to_string(),
            message: e.to_string(),
        })?;
    migrator.set_ignore_missing(true);
    let db = |e: MigrateError| MigrationError::Database(e.to_string());

    // State of the database.
    let (applied, dirty, installed) = {
        let mut conn = pool
            .acquire()
            .await
            .map_err(|e| MigrationError::Database(e.to_string()))?;
        let dry = matches!(
            action,
            Action::Info | Action::Run { dry_run: true, .. } | Action::Revert { dry_run: true, .. }
        );
        if !dry {
            conn.ensure_migrations_table().await.map_err(db)?;
        }
        let has_table = sqlx::query_scalar::<_, i64>("SELECT count(*) FROM _sqlx_migrations")
            .fetch_one(&mut *conn)
            .await
            .is_ok();
        if has_table {
            let applied = conn.list_applied_migrations().await.map_err(db)?;
            let dirty = conn.dirty_version().await.map_err(db)?;
            let rows: Vec<(i64, String, i64)> = sqlx::query_as(installed_sql)
                .fetch_all(&mut *conn)
                .await
                .unwrap_or_default();
            (applied, dirty, rows)
        } else {
            (Vec::new(), None, Vec::new())
        }
    };
    let applied: HashMap<i64, Cow<'static, [u8]>> = applied
        .into_iter()
        .map(|a| (a.version, a.checksum))
        .collect();
    let installed: HashMap<i64, (String, i64)> = installed
        .into_iter()
        .map(|(v, on, t)| (v, (on, t)))
        .collect();
    let ups: Vec<&Migration> = migrator
        .iter()
        .filter(|m| !m.migration_type.is_down_migration())
        .collect();
    let mut report = Report::default();
    for m in &ups {
        let state = match applied.get(&m.version) {
            _ if dirty == Some(m.version) => State::Dirty,
            Some(sum) if sum.as_ref() != m.checksum.as_ref() => State::ChecksumMismatch,
            Some(_) => State::Applied,
            None => State::Pending,
        };
        let inst = installed.get(&m.version);
        report.entries.push(Entry {
            version: m.version,
            description: m.description.to_string(),
            state,
            reversible: m.migration_type.is_reversible(),
            installed_on: inst.map(|i| i.0.clone()),
            execution_ms: inst.map(|i| i.1 as f64 / 1e6),
        });
    }
    for v in applied.keys() {
        if !ups.iter().any(|m| m.version == *v) {
            let inst = installed.get(v);
            report.entries.push(Entry {
                version: *v,
                description: String::new(),
                state: State::Missing,
                reversible: false,
                installed_on: inst.map(|i| i.0.clone()),
                execution_ms: inst.map(|i| i.1 as f64 / 1e6),
            });
        }
    }
    report.entries.sort_by_key(|e| e.version);

    match action {
        Action::Info => {}
        Action::Run { up_to, dry_run } => {
            let wanted: Vec<Migration> = migrator
                .iter()
                .filter(|m| up_to.is_none_or(|t| m.version <= t))
                .cloned()
                .collect();
            let pending: Vec<&Migration> = wanted
                .iter()
                .filter(|m| {
                    !m.migration_type.is_down_migration() && !applied.contains_key(&m.version)
                })
                .collect();
            report.applied = pending
                .iter()
                .map(|m| (m.version, m.description.to_string()))
                .collect();
            if *dry_run {
                report.dry_run = true;
                if let Some(v) = dirty {
                    return Err(MigrationError::Dirty { version: v });
                }
                if let Some(e) = report
                    .entries
                    .iter()
                    .find(|e| e.state == State::ChecksumMismatch)
                {
                    return Err(map_err(&migrator, MigrateError::VersionMismatch(e.version)));
                }
                report.sql = pending
                    .iter()
                    .map(|m| (m.version, m.sql.to_string()))
                    .collect();
            } else {
                let partial = Migrator {
                    migrations: Cow::Owned(wanted),
                    ignore_missing: true,
                    locking: migrator.locking,
                    no_tx: migrator.no_tx,
                };
                partial.run(pool).await.map_err(|e| map_err(&migrator, e))?;
            }
        }
        Action::Revert { down_to, dry_run } => {
            let latest = applied.keys().max().copied();
            let target = match (down_to, latest) {
                (Some(t), _) => *t,
                (None, Some(l)) => applied
                    .keys()
                    .filter(|v| **v < l)
                    .max()
                    .copied()
                    .unwrap_or(0),
                (None, None) => i64::MAX,
            };
            let downs: Vec<&Migration> = migrator
                .iter()
                .rev()
                .filter(|m| {
                    m.migration_type.is_down_migration()
                        && applied.contains_key(&m.version)
                        && m.version > target
                })
                .collect();
            report.reverted = downs
                .iter()
                .map(|m| (m.version, m.description.to_string()))
                .collect();
            if *dry_run {
                report.dry_run = true;
                report.sql = downs
                    .iter()
                    .map(|m| (m.version, m.sql.to_string()))
                    .collect();
            } else {
                migrator
                    .undo(pool, target)
                    .await
                    .map_err(|e| map_err(&migrator, e))?;
            }
        }
    }
    Ok(report)
}
