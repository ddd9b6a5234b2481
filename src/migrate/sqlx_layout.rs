//! Migrations in sqlx's layout (`VERSION_name.sql`, or reversible
//! `VERSION_name.up.sql` + `.down.sql`) and its `_sqlx_migrations` table, so a
//! project can switch between sqlx-cli and cutover. The order of checks is
//! sqlx's: lock, ensure the table, refuse a dirty state, compare checksums, then
//! apply.

use super::{Action, Entry, MigrationError, Report, State};
use sqlx::migrate::{Migrate, MigrateError, Migration, Migrator};
use std::borrow::Cow;
use std::collections::HashMap;
use std::ops::Deref;
use std::path::Path;

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

/// An error reading `what` from `_sqlx_migrations`.
fn read(what: &'static str) -> impl Fn(sqlx::Error) -> MigrationError {
    move |source| MigrationError::Read { what, source }
}

/// The same for sqlx's own reads, which wrap the database error.
fn read_migrate(what: &'static str) -> impl Fn(MigrateError) -> MigrationError {
    move |e| match e {
        MigrateError::Execute(source) => MigrationError::Read { what, source },
        other => MigrationError::Database(other.to_string()),
    }
}

/// Does this error say that `_sqlx_migrations` does not exist (and nothing else)?
/// PostgreSQL undefined_table (42P01), MySQL/MariaDB ER_NO_SUCH_TABLE (42S02), and
/// SQLite's "no such table" naming this table (a view over a missing table names
/// the missing one: that is a broken table, not an absent one).
fn is_missing_table(e: &sqlx::Error) -> bool {
    let sqlx::Error::Database(d) = e else {
        return false;
    };
    match d.code().as_deref() {
        Some("42P01" | "42S02") => true,
        _ => d
            .message()
            .eq_ignore_ascii_case("no such table: _sqlx_migrations"),
    }
}

/// Run an action on a folder in sqlx's layout. `installed_sql` selects `version, installed_on (as text),
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
        // Only a missing table means "nothing applied yet"; any other error
        // reading it is an error, not an empty list (which would show every
        // migration as pending and let `run` apply them again).
        let has_table = match sqlx::query_scalar::<_, i64>("SELECT count(*) FROM _sqlx_migrations")
            .fetch_one(&mut *conn)
            .await
        {
            Ok(_) => true,
            Err(e) if is_missing_table(&e) => false,
            Err(e) => return Err(read("the migrations table")(e)),
        };
        if has_table {
            let applied = conn
                .list_applied_migrations()
                .await
                .map_err(read_migrate("the applied migrations"))?;
            let dirty = conn
                .dirty_version()
                .await
                .map_err(read_migrate("the dirty (failed) migration"))?;
            let rows: Vec<(i64, String, i64)> = sqlx::query_as(installed_sql)
                .fetch_all(&mut *conn)
                .await
                .map_err(read("the installation times"))?;
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

#[cfg(test)]
mod tests {
    use super::super::{Action, MigrationError, State};
    use super::execute;
    use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions};
    use std::path::Path;

    const INSTALLED: &str =
        "SELECT version, CAST(installed_on AS TEXT), execution_time FROM _sqlx_migrations";

    /// A migrations folder with one migration, and an SQLite database file.
    async fn setup(dir: &Path) -> SqlitePool {
        let sql = dir.join("sql");
        std::fs::create_dir(&sql).unwrap();
        std::fs::write(sql.join("1_first.sql"), "CREATE TABLE t (id INTEGER);").unwrap();
        let opts = SqliteConnectOptions::new()
            .filename(dir.join("db.sqlite"))
            .create_if_missing(true);
        SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(opts)
            .await
            .unwrap()
    }

    async fn sql(pool: &SqlitePool, sql: &str) {
        sqlx::raw_sql(sql).execute(pool).await.unwrap();
    }

    #[tokio::test]
    async fn applied_then_info_reads_the_table() {
        let dir = tempfile::tempdir().unwrap();
        let pool = setup(dir.path()).await;
        let src = dir.path().join("sql");
        let info = execute(&pool, &src, &Action::Info, INSTALLED)
            .await
            .unwrap();
        assert_eq!(info.entries[0].state, State::Pending);
        let run = Action::Run {
            up_to: None,
            dry_run: false,
        };
        execute(&pool, &src, &run, INSTALLED).await.unwrap();
        let info = execute(&pool, &src, &Action::Info, INSTALLED)
            .await
            .unwrap();
        assert_eq!(info.entries[0].state, State::Applied);
        assert!(info.entries[0].installed_on.is_some());
    }

    /// The installation times cannot be read (a dropped column): an error naming
    /// that read, not an `info` with blank times.
    #[tokio::test]
    async fn unreadable_installation_times_are_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let pool = setup(dir.path()).await;
        let src = dir.path().join("sql");
        let run = Action::Run {
            up_to: None,
            dry_run: false,
        };
        execute(&pool, &src, &run, INSTALLED).await.unwrap();
        sql(
            &pool,
            "ALTER TABLE _sqlx_migrations DROP COLUMN installed_on",
        )
        .await;
        let e = execute(&pool, &src, &Action::Info, INSTALLED)
            .await
            .unwrap_err();
        assert!(matches!(e, MigrationError::Read { .. }), "{e:?}");
        let msg = e.to_string();
        assert!(
            msg.starts_with("cannot read the installation times from _sqlx_migrations: "),
            "{msg}"
        );
        assert!(msg.contains("installed_on"), "{msg}");
    }

    /// `_sqlx_migrations` exists but cannot be read: an error naming the table,
    /// not every migration listed as pending (and `run` applying them again).
    #[tokio::test]
    async fn an_unreadable_migrations_table_is_not_an_empty_one() {
        let dir = tempfile::tempdir().unwrap();
        let pool = setup(dir.path()).await;
        let src = dir.path().join("sql");
        // A view over a table that is gone: it exists, and every read fails.
        sql(
            &pool,
            "CREATE TABLE gone (version BIGINT); \
             CREATE VIEW _sqlx_migrations AS SELECT * FROM gone; \
             DROP TABLE gone;",
        )
        .await;
        for action in [
            Action::Info,
            Action::Run {
                up_to: None,
                dry_run: true,
            },
            Action::Run {
                up_to: None,
                dry_run: false,
            },
            Action::Revert {
                down_to: None,
                dry_run: true,
            },
        ] {
            let e = execute(&pool, &src, &action, INSTALLED).await.unwrap_err();
            assert!(matches!(e, MigrationError::Read { .. }), "{e:?}");
            let msg = e.to_string();
            assert!(
                msg.starts_with("cannot read the migrations table from _sqlx_migrations: "),
                "{msg}"
            );
            assert!(msg.contains("no such table: main.gone"), "{msg}");
        }
        let created: i64 =
            sqlx::query_scalar("SELECT count(*) FROM sqlite_master WHERE name = 't'")
                .fetch_one(&pool)
                .await
                .unwrap();
        assert_eq!(created, 0, "the migration must not have run");
    }

    /// The read of the applied migrations fails (a wrong column type): an error
    /// naming it.
    #[tokio::test]
    async fn unreadable_applied_migrations_are_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let pool = setup(dir.path()).await;
        let src = dir.path().join("sql");
        sql(
            &pool,
            "CREATE TABLE _sqlx_migrations (version BIGINT PRIMARY KEY, description TEXT, \
             installed_on TIMESTAMP, success BOOLEAN, checksum BLOB, execution_time BIGINT); \
             INSERT INTO _sqlx_migrations VALUES ('one', 'first', '2024-01-01', 1, x'00', 5);",
        )
        .await;
        let e = execute(&pool, &src, &Action::Info, INSTALLED)
            .await
            .unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.starts_with("cannot read the applied migrations from _sqlx_migrations: "),
            "{msg}"
        );
    }
}
