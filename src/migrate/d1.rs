//! Migrations in the layout of the D1 / SQLite runners (the nanotype runner,
//! Cloudflare D1 projects): `NNNN_name.sql`, optionally `NNNN_name.rollback.sql`,
//! and the applied versions in `_migrations (version INTEGER PRIMARY KEY, name
//! TEXT NOT NULL, applied_at INTEGER NOT NULL)`.
//!
//! That table is the history: versions the old runner applied are applied, and
//! cutover records the ones it applies the way the runner does (`name` is the
//! file's name part, `applied_at` milliseconds since the epoch). `_migrations`
//! has no checksum column, so cutover keeps the sha256 of each file it applies
//! (or finds applied) in a table of its own, [`D1_CHECKSUMS`], and refuses to
//! run when an applied file changed. The order of the checks is sqlx's: lock,
//! ensure the tables, compare checksums, then apply; each migration and its
//! `_migrations` row commit in one transaction.

use super::{Action, Entry, MigrationError, Report, State};
use sha2::{Digest, Sha256};
use sqlx::migrate::Migrate;
use std::collections::HashMap;
use std::path::Path;

/// The table holding the checksums of the D1 migrations (version, name, sha256).
pub const D1_CHECKSUMS: &str = "cutover_d1_checksums";

/// Whether a folder is in the D1 layout: it holds `.rollback.sql` files and no
/// sqlx `.up.sql` / `.down.sql` ones.
pub fn detect(dir: &Path) -> bool {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return false;
    };
    let names: Vec<String> = entries
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.iter().any(|n| n.ends_with(".rollback.sql"))
        && !names
            .iter()
            .any(|n| n.ends_with(".up.sql") || n.ends_with(".down.sql"))
}

/// One `NNNN_name.sql` of the folder.
#[derive(Debug, Clone)]
struct File {
    version: i64,
    name: String,
    file: String,
    sql: String,
    checksum: String,
    /// The `.rollback.sql` beside it: (file name, SQL).
    rollback: Option<(String, String)>,
}

fn source_err(dir: &Path, message: String) -> MigrationError {
    MigrationError::Source {
        dir: dir.display().to_string(),
        message,
    }
}

/// `NNNN_name` of a file name without its `.sql` / `.rollback.sql`.
fn split(stem: &str) -> Option<(i64, &str)> {
    let (v, name) = stem.split_once('_')?;
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) || name.is_empty() {
        return None;
    }
    Some((v.parse().ok()?, name))
}

/// The migrations of a folder, by version.
fn read_folder(dir: &Path) -> Result<Vec<File>, MigrationError> {
    let entries = std::fs::read_dir(dir).map_err(|e| source_err(dir, e.to_string()))?;
    let mut ups: HashMap<i64, File> = HashMap::new();
    let mut rollbacks: HashMap<i64, (String, String)> = HashMap::new();
    let mut names: Vec<String> = entries
        .flatten()
        .filter(|e| e.path().is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".sql"))
        .collect();
    names.sort();
    for n in names {
        let read = || {
            std::fs::read_to_string(dir.join(&n)).map_err(|e| source_err(dir, format!("{n}: {e}")))
        };
        let bad = || {
            source_err(
                dir,
                format!("{n} is not NNNN_name.sql or NNNN_name.rollback.sql"),
            )
        };
        if let Some(stem) = n.strip_suffix(".rollback.sql") {
            let (v, _) = split(stem).ok_or_else(bad)?;
            rollbacks.insert(v, (n.clone(), read()?));
            continue;
        }
        let stem = n.strip_suffix(".sql").unwrap_or(&n);
        let (v, name) = split(stem).ok_or_else(bad)?;
        let sql = read()?;
        let file = File {
            version: v,
            name: name.to_string(),
            file: n.clone(),
            checksum: hex::encode(Sha256::digest(sql.as_bytes())),
            sql,
            rollback: None,
        };
        if let Some(other) = ups.insert(v, file) {
            return Err(source_err(
                dir,
                format!("{} and {n} have the same version {v}", other.file),
            ));
        }
    }
    for (v, r) in rollbacks {
        match ups.get_mut(&v) {
            Some(f) => f.rollback = Some(r),
            None => {
                return Err(source_err(
                    dir,
                    format!("{} has no migration {v} beside it", r.0),
                ))
            }
        }
    }
    let mut out: Vec<File> = ups.into_values().collect();
    out.sort_by_key(|f| f.version);
    Ok(out)
}

/// `applied_at` as RFC 3339 UTC: milliseconds since the epoch (seconds when the
/// number is too small to be milliseconds, as some runners write).
fn applied_text(at: i64) -> String {
    let ms = if at.abs() < 100_000_000_000 {
        at * 1000
    } else {
        at
    };
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
        .unwrap_or_else(|| at.to_string())
}

/// The read of `_migrations`, cast to one type whatever the runner declared
/// (`INTEGER` is 32-bit on servers, `TEXT` is a BLOB to MySQL's driver).
fn applied_sql(db: &str) -> &'static str {
    match db {
        "PostgreSQL" => "SELECT CAST(version AS BIGINT), CAST(name AS TEXT), CAST(applied_at AS BIGINT) FROM _migrations ORDER BY version",
        "MySQL" => "SELECT CAST(version AS SIGNED), CAST(name AS CHAR), CAST(applied_at AS SIGNED) FROM _migrations ORDER BY version",
        _ => "SELECT version, name, applied_at FROM _migrations ORDER BY version",
    }
}

/// `?` placeholders, or `$1, $2...` on PostgreSQL.
fn params<DB: sqlx::Database>(sql: &str) -> String {
    if DB::NAME != "PostgreSQL" {
        return sql.to_string();
    }
    let mut out = String::new();
    let mut n = 0;
    for c in sql.chars() {
        if c == '?' {
            n += 1;
            out.push_str(&format!("${n}"));
        } else {
            out.push(c);
        }
    }
    out
}

fn db(e: sqlx::Error) -> MigrationError {
    MigrationError::Database(e.to_string())
}

/// Whether a read failed because the table does not exist yet.
fn missing(e: &sqlx::Error) -> bool {
    let sqlx::Error::Database(d) = e else {
        return false;
    };
    matches!(d.code().as_deref(), Some("42P01" | "42S02"))
        || d.message().starts_with("no such table: ")
}

/// The D1 runner for one database driver (written once; instantiated per
/// dialect, since the generic form trips the `Send` checks of async traits).
macro_rules! d1_runner {
    ($module:ident, $db:ty) => {
        pub mod $module {
            use super::*;
            type Db = $db;
            type Conn = <$db as sqlx::Database>::Connection;

        /// Run an action on a D1 folder over one connection.
        pub async fn execute(
            conn: &mut Conn,
            dir: &Path,
            action: &Action,
        ) -> Result<Report, MigrationError>
        {
            let files = read_folder(dir)?;
            let dry = !matches!(
                action,
                Action::Run { dry_run: false, .. } | Action::Revert { dry_run: false, .. }
            );
            if !dry {
                conn.lock().await.map_err(|e| MigrationError::Database(e.to_string()))?;
            }
            let result = locked(conn, dir, &files, action, dry).await;
            if !dry {
                let unlocked = conn.unlock().await;
                if result.is_ok() {
                    unlocked.map_err(|e| MigrationError::Database(e.to_string()))?;
                }
            }
            result
        }

        async fn locked(
            conn: &mut Conn,
            dir: &Path,
            files: &[File],
            action: &Action,
            dry: bool,
        ) -> Result<Report, MigrationError>
        {
            let big = if <Db as sqlx::Database>::NAME == "SQLite" {
                "INTEGER"
            } else {
                "BIGINT"
            };
            if !dry {
                // The runner's own table, as it creates it; and ours beside it.
                let ddl = [
                    format!("CREATE TABLE IF NOT EXISTS _migrations (version {big} PRIMARY KEY, name TEXT NOT NULL, applied_at {big} NOT NULL)"),
                    format!("CREATE TABLE IF NOT EXISTS {D1_CHECKSUMS} (version {big} PRIMARY KEY, name VARCHAR(255) NOT NULL, checksum VARCHAR(64) NOT NULL)"),
                ];
                for d in ddl {
                    sqlx::query(&d).execute(&mut *conn).await.map_err(db)?;
                }
            }
            let applied: Vec<(i64, String, i64)> =
                match sqlx::query_as(applied_sql(<Db as sqlx::Database>::NAME))
                    .fetch_all(&mut *conn)
                    .await
                {
                    Ok(r) => r,
                    Err(e) if dry && missing(&e) => Vec::new(),
                    Err(source) => {
                        return Err(MigrationError::ReadD1 {
                            what: "the applied migrations from _migrations",
                            source,
                        })
                    }
                };
            let sums: HashMap<i64, String> = match sqlx::query_as::<_, (i64, String)>(&format!(
                "SELECT version, CAST(checksum AS {}) FROM {D1_CHECKSUMS}",
                if <Db as sqlx::Database>::NAME == "MySQL" { "CHAR" } else { "TEXT" }
            ))
            .fetch_all(&mut *conn)
            .await
            {
                Ok(r) => r.into_iter().collect(),
                Err(e) if missing(&e) => HashMap::new(),
                Err(source) => {
                    return Err(MigrationError::ReadD1 {
                        what: "the migration checksums",
                        source,
                    })
                }
            };
            let applied_at: HashMap<i64, (String, i64)> =
                applied.iter().map(|(v, n, a)| (*v, (n.clone(), *a))).collect();
            let mut report = Report::default();
            for f in files {
                let state = match (applied_at.get(&f.version), sums.get(&f.version)) {
                    (None, _) => State::Pending,
                    (Some(_), Some(sum)) if *sum != f.checksum => State::ChecksumMismatch,
                    (Some(_), _) => State::Applied,
                };
                report.entries.push(Entry {
                    version: f.version,
                    description: f.name.clone(),
                    state,
                    reversible: f.rollback.is_some(),
                    installed_on: applied_at.get(&f.version).map(|(_, a)| applied_text(*a)),
                    execution_ms: None,
                });
            }
            for (v, n, a) in &applied {
                if !files.iter().any(|f| f.version == *v) {
                    report.entries.push(Entry {
                        version: *v,
                        description: n.clone(),
                        state: State::Missing,
                        reversible: false,
                        installed_on: Some(applied_text(*a)),
                        execution_ms: None,
                    });
                }
            }
            report.entries.sort_by_key(|e| e.version);
            report.dry_run = dry && !matches!(action, Action::Info);
            // The first applied file that changed (computed now, not in a
            // closure held across the awaits below: that trips the Send check).
            let edited: Option<String> = report
                .entries
                .iter()
                .find(|e| e.state == State::ChecksumMismatch)
                .and_then(|e| files.iter().find(|f| f.version == e.version))
                .map(|f| f.file.clone());
            match action {
                Action::Info => {}
                Action::Run { up_to, .. } => {
                    if let Some(file) = edited {
                        return Err(MigrationError::Edited { file });
                    }
                    let pending: Vec<File> = files
                        .iter()
                        .filter(|f| !applied_at.contains_key(&f.version))
                        .filter(|f| up_to.is_none_or(|t| f.version <= t))
                        .cloned()
                        .collect();
                    report.applied = pending
                        .iter()
                        .map(|f| (f.version, f.name.clone()))
                        .collect();
                    if dry {
                        report.sql = pending.iter().map(|f| (f.version, f.sql.clone())).collect();
                        return Ok(report);
                    }
                    // Files the old runner applied: their checksum from now on.
                    // (Owned values in the loops: a borrowed iterator held across an
                    // await trips the compiler's Send check of the async trait.)
                    let adopt: Vec<File> = files
                        .iter()
                        .filter(|f| applied_at.contains_key(&f.version) && !sums.contains_key(&f.version))
                        .cloned()
                        .collect();
                    for f in adopt {
                        save_checksum(&mut *conn, &f).await.map_err(db)?;
                    }
                    for f in pending {
                        apply(conn, &f).await.map_err(|e| MigrationError::Failed {
                            version: f.version,
                            message: format!("{}: {e}", f.file),
                        })?;
                    }
                }
                Action::Revert { down_to, .. } => {
                    let latest = applied.iter().map(|a| a.0).max();
                    let target = match (down_to, latest) {
                        (Some(t), _) => *t,
                        (None, Some(l)) => applied
                            .iter()
                            .map(|a| a.0)
                            .filter(|v| *v < l)
                            .max()
                            .unwrap_or(0),
                        (None, None) => i64::MAX,
                    };
                    let mut todo: Vec<(i64, File, (String, String))> = Vec::new();
                    for (v, name, _) in applied.iter().rev().filter(|a| a.0 > target) {
                        let Some(f) = files.iter().find(|f| f.version == *v) else {
                            return Err(MigrationError::NoRollback {
                                file: format!("{v:04}_{name}.sql"),
                                rollback: format!("{v:04}_{name}.rollback.sql"),
                                dir: dir.display().to_string(),
                            });
                        };
                        let Some(r) = &f.rollback else {
                            return Err(MigrationError::NoRollback {
                                file: f.file.clone(),
                                rollback: f.file.replace(".sql", ".rollback.sql"),
                                dir: dir.display().to_string(),
                            });
                        };
                        todo.push((*v, f.clone(), r.clone()));
                    }
                    if let Some(file) = edited {
                        if todo.iter().any(|(_, f, _)| f.file == file) {
                            return Err(MigrationError::Edited { file });
                        }
                    }
                    report.reverted = todo.iter().map(|(v, f, _)| (*v, f.name.clone())).collect();
                    if dry {
                        report.sql = todo.iter().map(|(v, _, r)| (*v, r.1.clone())).collect();
                        return Ok(report);
                    }
                    for (v, _, (file, sql)) in todo {
                        revert(conn, v, &sql)
                            .await
                            .map_err(|e| MigrationError::Failed {
                                version: v,
                                message: format!("{file}: {e}"),
                            })?;
                    }
                }
            }
            Ok(report)
        }

        async fn save_checksum(conn: &mut Conn, f: &File) -> Result<(), sqlx::Error>
        {
            let delete = params::<Db>(&format!("DELETE FROM {D1_CHECKSUMS} WHERE version = ?"));
            sqlx::query(&delete)
                .bind(f.version)
                .execute(&mut *conn)
                .await?;
            let insert = params::<Db>(&format!(
                "INSERT INTO {D1_CHECKSUMS} (version, name, checksum) VALUES (?, ?, ?)"
            ));
            sqlx::query(&insert)
                .bind(f.version)
                .bind(f.name.clone())
                .bind(f.checksum.clone())
                .execute(&mut *conn)
                .await?;
            Ok(())
        }

        /// Apply one migration and record it, in one transaction.
        async fn apply(conn: &mut Conn, f: &File) -> Result<(), sqlx::Error>
        {
            let mut tx = sqlx::Connection::begin(&mut *conn).await?;
            // Executor::execute (a boxed Send future), not RawSql::execute (an
            // async fn whose future the compiler cannot prove Send here).
            sqlx::Executor::execute(&mut *tx, sqlx::raw_sql(&f.sql)).await?;
            let now = chrono::Utc::now().timestamp_millis();
            let insert = params::<Db>("INSERT INTO _migrations (version, name, applied_at) VALUES (?, ?, ?)");
            sqlx::query(&insert)
                .bind(f.version)
                .bind(f.name.clone())
                .bind(now)
                .execute(&mut *tx)
                .await?;
            save_checksum(&mut tx, f).await?;
            tx.commit().await
        }

        /// Revert one migration through its rollback file and forget it, in one transaction.
        async fn revert(conn: &mut Conn, version: i64, sql: &str) -> Result<(), sqlx::Error>
        {
            let mut tx = sqlx::Connection::begin(&mut *conn).await?;
            sqlx::Executor::execute(&mut *tx, sqlx::raw_sql(sql)).await?;
            for table in ["_migrations", D1_CHECKSUMS] {
                let delete = params::<Db>(&format!("DELETE FROM {table} WHERE version = ?"));
                sqlx::query(&delete)
                    .bind(version)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await
        }
        }
    };
}

d1_runner!(sqlite, sqlx::Sqlite);
d1_runner!(postgres, sqlx::Postgres);
d1_runner!(mysql, sqlx::MySql);

#[cfg(test)]
mod tests {
    use super::{applied_text, detect, read_folder};

    #[test]
    fn the_layout_is_told_by_the_file_names() {
        let d = tempfile::tempdir().unwrap();
        let w = |n: &str| std::fs::write(d.path().join(n), "SELECT 1;").unwrap();
        w("0001_init.sql");
        assert!(!detect(d.path()), "no rollback file: sqlx's layout");
        w("0001_init.rollback.sql");
        assert!(detect(d.path()));
        let files = read_folder(d.path()).unwrap();
        assert_eq!(files.len(), 1);
        assert_eq!((files[0].version, files[0].name.as_str()), (1, "init"));
        assert_eq!(
            files[0].rollback.as_ref().unwrap().0,
            "0001_init.rollback.sql"
        );
        w("0002_more.down.sql");
        assert!(!detect(d.path()), "a sqlx .down.sql: sqlx's layout");
        std::fs::remove_file(d.path().join("0002_more.down.sql")).unwrap();
        w("0005_gone.rollback.sql");
        let e = read_folder(d.path()).unwrap_err().to_string();
        assert!(
            e.contains("0005_gone.rollback.sql has no migration 5 beside it"),
            "{e}"
        );
        std::fs::remove_file(d.path().join("0005_gone.rollback.sql")).unwrap();
        w("init.sql");
        let e = read_folder(d.path()).unwrap_err().to_string();
        assert!(e.contains("init.sql is not NNNN_name.sql"), "{e}");
    }

    #[test]
    fn applied_at_in_milliseconds_or_seconds() {
        assert_eq!(applied_text(1_700_000_000_000), "2023-11-14T22:13:20.000Z");
        assert_eq!(applied_text(1_700_000_000), "2023-11-14T22:13:20.000Z");
    }
}
