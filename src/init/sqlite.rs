//! The catalog of a SQLite database, read-only: `sqlite_master` for the tables
//! (in creation order), `pragma_table_info`, `pragma_foreign_key_list`,
//! `pragma_index_list`/`pragma_index_info`, and one scan per table for its row
//! count and the longest value of each text column (SQLite does not enforce
//! declared lengths, so `init` sizes the target by what is there).

use super::catalog::{
    parse_default, Catalog, Column, ForeignKey, Index, Key, SourceDialect, Table,
};
use super::error::InitError;
use super::types::{self, TargetType};
use crate::dialect::{quote_ident, Dialect};
use sqlx::Row;
use std::path::Path;

fn q(e: sqlx::Error) -> String {
    e.to_string()
}

/// Read the catalog of the tables named in `only` (every table when empty).
pub async fn read(path: &Path, only: &[String]) -> Result<Catalog, InitError> {
    if !path.is_file() {
        return Err(InitError::Connect {
            source_name: path.display().to_string(),
            message: "no such database file".into(),
        });
    }
    let opts = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(path)
        .read_only(true);
    let pool = sqlx::sqlite::SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(opts)
        .await
        .map_err(|e| InitError::Connect {
            source_name: path.display().to_string(),
            message: e.to_string(),
        })?;
    let result = read_tables(&pool, only).await;
    pool.close().await;
    let tables = result?;
    Ok(Catalog {
        dialect: SourceDialect::Sqlite,
        database: path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "sqlite".into()),
        tables,
    })
}

/// The tables named in `only` (case-insensitively), in the order of `all`;
/// a name the source does not have is a usage error listing what it has.
pub fn select(all: Vec<String>, only: &[String], what: &str) -> Result<Vec<String>, InitError> {
    if only.is_empty() {
        return Ok(all);
    }
    let missing: Vec<&String> = only
        .iter()
        .filter(|o| !all.iter().any(|a| a.eq_ignore_ascii_case(o)))
        .collect();
    if !missing.is_empty() {
        return Err(InitError::Usage(format!(
            "{what} has no table {}; it has: {}",
            missing
                .iter()
                .map(|m| m.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            if all.is_empty() {
                "no tables".to_string()
            } else {
                all.join(", ")
            }
        )));
    }
    Ok(all
        .into_iter()
        .filter(|a| only.iter().any(|o| o.eq_ignore_ascii_case(a)))
        .collect())
}

async fn read_tables(pool: &sqlx::SqlitePool, only: &[String]) -> Result<Vec<Table>, InitError> {
    let names: Vec<String> = sqlx::query(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY rowid",
    )
    .fetch_all(pool)
    .await
    .map_err(|e| InitError::catalog("sqlite_master", q(e)))?
    .iter()
    .map(|r| r.try_get::<String, _>("name"))
    .collect::<Result<_, _>>()
    .map_err(|e| InitError::catalog("sqlite_master", q(e)))?;
    let names = select(names, only, "the SQLite database")?;
    let mut tables = Vec::new();
    for name in names {
        tables.push(read_table(pool, &name).await?);
    }
    Ok(tables)
}

async fn read_table(pool: &sqlx::SqlitePool, name: &str) -> Result<Table, InitError> {
    let what = |w: &str| format!("{w} of {name}");
    let rows = sqlx::query(
        "SELECT name, type, \"notnull\", dflt_value, pk FROM pragma_table_info(?) ORDER BY cid",
    )
    .bind(name)
    .fetch_all(pool)
    .await
    .map_err(|e| InitError::catalog(what("columns"), q(e)))?;
    let mut columns = Vec::new();
    let mut pk: Vec<(i64, String)> = Vec::new();
    for r in &rows {
        let get = |e: sqlx::Error| InitError::catalog(what("columns"), q(e));
        let cname: String = r.try_get("name").map_err(get)?;
        let declared: String = r.try_get("type").map_err(get)?;
        let notnull: i64 = r.try_get("notnull").map_err(get)?;
        let dflt: Option<String> = r.try_get("dflt_value").map_err(get)?;
        let pkn: i64 = r.try_get("pk").map_err(get)?;
        if pkn > 0 {
            pk.push((pkn, cname.clone()));
        }
        columns.push(Column {
            name: cname,
            ty: types::parse_declared(&declared),
            // A PRIMARY KEY column may hold NULL in SQLite unless declared NOT
            // NULL; the keyset reads it as a key all the same.
            nullable: notnull == 0 && pkn == 0,
            default: dflt.as_deref().and_then(parse_default),
            identity: false,
            max_len_found: None,
        });
    }
    pk.sort();
    let primary_key = (!pk.is_empty()).then(|| Key {
        name: None,
        columns: pk.into_iter().map(|(_, n)| n).collect(),
    });

    // Foreign keys: one id per constraint, `seq` orders its columns; a NULL
    // `to` means the parent's primary key.
    let fk_rows = sqlx::query(
        "SELECT id, seq, \"table\", \"from\", \"to\", on_update, on_delete FROM pragma_foreign_key_list(?) ORDER BY id, seq",
    )
    .bind(name)
    .fetch_all(pool)
    .await
    .map_err(|e| InitError::catalog(what("foreign keys"), q(e)))?;
    let mut foreign_keys: Vec<(i64, ForeignKey)> = Vec::new();
    let mut missing_to = Vec::new();
    for r in &fk_rows {
        let get = |e: sqlx::Error| InitError::catalog(what("foreign keys"), q(e));
        let id: i64 = r.try_get("id").map_err(get)?;
        let parent: String = r.try_get("table").map_err(get)?;
        let from: String = r.try_get("from").map_err(get)?;
        let to: Option<String> = r.try_get("to").map_err(get)?;
        let on_update: String = r.try_get("on_update").map_err(get)?;
        let on_delete: String = r.try_get("on_delete").map_err(get)?;
        if to.is_none() {
            missing_to.push(id);
        }
        match foreign_keys.last_mut() {
            Some((i, fk)) if *i == id => {
                fk.columns.push(from);
                fk.ref_columns.extend(to);
            }
            _ => foreign_keys.push((
                id,
                ForeignKey {
                    name: None,
                    columns: vec![from],
                    ref_schema: None,
                    ref_table: parent,
                    ref_columns: to.into_iter().collect(),
                    on_delete,
                    on_update,
                },
            )),
        }
    }
    let mut fks = Vec::new();
    // pragma_foreign_key_list numbers the last declared constraint 0.
    for (id, mut fk) in foreign_keys.into_iter().rev() {
        if missing_to.contains(&id) {
            let parent_pk =
                sqlx::query("SELECT name FROM pragma_table_info(?) WHERE pk > 0 ORDER BY pk")
                    .bind(&fk.ref_table)
                    .fetch_all(pool)
                    .await
                    .map_err(|e| InitError::catalog(what("foreign keys"), q(e)))?;
            fk.ref_columns = parent_pk
                .iter()
                .filter_map(|r| r.try_get::<String, _>("name").ok())
                .collect();
        }
        fks.push(fk);
    }

    // Indexes: `origin` pk (the primary key's own), u (a UNIQUE constraint), c (CREATE INDEX).
    let idx = sqlx::query("SELECT name, \"unique\", origin FROM pragma_index_list(?)")
        .bind(name)
        .fetch_all(pool)
        .await
        .map_err(|e| InitError::catalog(what("indexes"), q(e)))?;
    let mut uniques = Vec::new();
    let mut indexes = Vec::new();
    // pragma_index_list lists the newest index first; the source's order is the reverse.
    for r in idx.iter().rev() {
        let get = |e: sqlx::Error| InitError::catalog(what("indexes"), q(e));
        let iname: String = r.try_get("name").map_err(get)?;
        let unique: i64 = r.try_get("unique").map_err(get)?;
        let origin: String = r.try_get("origin").map_err(get)?;
        if origin == "pk" {
            continue;
        }
        let cols = sqlx::query("SELECT name FROM pragma_index_info(?) ORDER BY seqno")
            .bind(&iname)
            .fetch_all(pool)
            .await
            .map_err(|e| InitError::catalog(what("indexes"), q(e)))?;
        let cols: Vec<Option<String>> = cols
            .iter()
            .map(|c| c.try_get::<Option<String>, _>("name").ok().flatten())
            .collect();
        // An index on an expression has NULL column names: not carried over.
        let Some(cols) = cols.into_iter().collect::<Option<Vec<String>>>() else {
            continue;
        };
        let name = (!iname.starts_with("sqlite_autoindex")).then_some(iname);
        if unique != 0 {
            uniques.push(Key {
                name,
                columns: cols,
            });
        } else {
            indexes.push(Index {
                name,
                columns: cols,
                unique: false,
            });
        }
    }

    // One scan: the row count and the longest value of every text column.
    let texts: Vec<usize> = columns
        .iter()
        .enumerate()
        .filter(|(_, c)| {
            matches!(
                types::convert(SourceDialect::Sqlite, &c.ty).ty,
                TargetType::Varchar(_)
            )
        })
        .map(|(i, _)| i)
        .collect();
    let mut sql = String::from("SELECT COUNT(*)");
    for &i in &texts {
        sql.push_str(&format!(
            ", MAX(LENGTH({}))",
            quote_ident(Dialect::Sqlite, &columns[i].name)
        ));
    }
    sql.push_str(&format!(" FROM {}", quote_ident(Dialect::Sqlite, name)));
    let row = sqlx::query(&sql)
        .fetch_one(pool)
        .await
        .map_err(|e| InitError::catalog(what("the row count"), q(e)))?;
    let count: i64 = row
        .try_get(0)
        .map_err(|e| InitError::catalog(what("the row count"), q(e)))?;
    for (k, &i) in texts.iter().enumerate() {
        let longest: Option<i64> = row.try_get(k + 1).ok().flatten();
        columns[i].max_len_found = longest.and_then(|n| u64::try_from(n).ok());
    }
    Ok(Table {
        schema: None,
        name: name.to_string(),
        columns,
        primary_key,
        uniques,
        foreign_keys: fks,
        indexes,
        rows: u64::try_from(count).unwrap_or(0),
    })
}
