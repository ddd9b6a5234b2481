//! The catalog of a MySQL/MariaDB database, from `information_schema`: tables
//! by name, columns with their `COLUMN_TYPE` (enum labels, `unsigned`,
//! `tinyint(1)`), defaults and `auto_increment`, the primary key, unique and
//! plain indexes (`STATISTICS`), foreign keys with their rules, and each
//! table's row count. The schema is the URL's database unless `--schema` names
//! another.

use super::catalog::{
    parse_default, Catalog, Column, Default, ForeignKey, Index, Key, SourceDialect, Table,
};
use super::error::InitError;
use super::generate::SqlTarget;
use super::sqlite::select;
use super::types;
use crate::dialect::{quote_ident, Dialect};
use sqlx::mysql::{MySqlConnectOptions, MySqlPool, MySqlPoolOptions};
use sqlx::Row;
use std::str::FromStr;

pub async fn read(
    target: &SqlTarget,
    schema: Option<&str>,
    only: &[String],
) -> Result<Catalog, InitError> {
    let mut o = MySqlConnectOptions::from_str(&target.connect)
        .map_err(|e| InitError::Usage(format!("the MySQL URL: {e}")))?;
    if let Some(p) = &target.password {
        o = o.password(p);
    }
    let pool = MySqlPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(std::time::Duration::from_secs(10))
        .connect_with(o)
        .await
        .map_err(|e| InitError::Connect {
            source_name: target.display.clone(),
            message: e.to_string(),
        })?;
    let r = read_database(&pool, schema, only).await;
    pool.close().await;
    r
}

fn err(what: &str) -> impl Fn(sqlx::Error) -> InitError + '_ {
    move |e| InitError::catalog(what, e)
}

/// Labels of `enum('a','b''c')` / `set(...)`.
pub fn labels(column_type: &str) -> Vec<String> {
    let Some(open) = column_type.find('(') else {
        return Vec::new();
    };
    let inner = column_type[open + 1..].trim_end_matches(')');
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = inner.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('\'', false) => quoted = true,
            ('\'', true) if chars.peek() == Some(&'\'') => {
                cur.push('\'');
                chars.next();
            }
            ('\'', true) => {
                quoted = false;
                out.push(std::mem::take(&mut cur));
            }
            (c, true) => cur.push(c),
            _ => {}
        }
    }
    out
}

async fn read_database(
    pool: &MySqlPool,
    schema: Option<&str>,
    only: &[String],
) -> Result<Catalog, InitError> {
    let current: Option<String> = sqlx::query_scalar("SELECT DATABASE()")
        .fetch_one(pool)
        .await
        .map_err(err("DATABASE()"))?;
    let Some(db) = schema.map(str::to_string).or(current) else {
        return Err(InitError::Usage(
            "the MySQL URL names no database (mysql://user@host/DATABASE), and --schema names none"
                .into(),
        ));
    };
    let dbs: Vec<String> = sqlx::query_scalar(
        "SELECT CONVERT(SCHEMA_NAME USING utf8mb4) FROM information_schema.SCHEMATA ORDER BY SCHEMA_NAME",
    )
    .fetch_all(pool)
    .await
    .map_err(err("SCHEMATA"))?;
    if !dbs.contains(&db) {
        return Err(InitError::Usage(format!(
            "the MySQL server has no database {db}; it has: {}",
            dbs.join(", ")
        )));
    }
    let names: Vec<String> = sqlx::query_scalar(
        "SELECT CONVERT(TABLE_NAME USING utf8mb4) FROM information_schema.TABLES \
         WHERE TABLE_SCHEMA = ? AND TABLE_TYPE = 'BASE TABLE' ORDER BY TABLE_NAME",
    )
    .bind(&db)
    .fetch_all(pool)
    .await
    .map_err(err("TABLES"))?;
    let names = select(names, only, &format!("the MySQL database {db}"))?;
    let mut tables = Vec::new();
    for n in names {
        tables.push(read_table(pool, &db, &n).await?);
    }
    Ok(Catalog {
        dialect: SourceDialect::Mysql,
        database: db,
        tables,
    })
}

async fn read_table(pool: &MySqlPool, db: &str, name: &str) -> Result<Table, InitError> {
    let what = format!("columns of {name}");
    let rows = sqlx::query(
        "SELECT CONVERT(COLUMN_NAME USING utf8mb4) AS name, CONVERT(COLUMN_TYPE USING utf8mb4) AS ty, \
           CONVERT(IS_NULLABLE USING utf8mb4) AS nullable, CONVERT(COLUMN_DEFAULT USING utf8mb4) AS dflt, \
           CONVERT(EXTRA USING utf8mb4) AS extra \
         FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION",
    )
    .bind(db)
    .bind(name)
    .fetch_all(pool)
    .await
    .map_err(err(&what))?;
    let mut columns = Vec::new();
    for r in &rows {
        let e = err(&what);
        let cname: String = r.try_get("name").map_err(&e)?;
        let declared: String = r.try_get("ty").map_err(&e)?;
        let nullable: String = r.try_get("nullable").map_err(&e)?;
        let dflt: Option<String> = r.try_get("dflt").map_err(&e)?;
        let extra: String = r.try_get("extra").map_err(&e)?;
        let mut ty = types::parse_declared(&declared);
        if matches!(ty.name.as_str(), "enum" | "set") {
            ty.labels = labels(&declared);
        }
        // MariaDB quotes string defaults; MySQL 8 does not (and says
        // DEFAULT_GENERATED for expressions).
        let default = dflt.as_deref().and_then(parse_default).map(|d| match d {
            Default::Other(x) if !x.contains('(') && !extra.contains("DEFAULT_GENERATED") => {
                Default::Text(x)
            }
            d => d,
        });
        columns.push(Column {
            name: cname,
            ty,
            nullable: nullable == "YES",
            default,
            identity: extra.contains("auto_increment"),
            max_len_found: None,
        });
    }

    let what = format!("indexes of {name}");
    let rows = sqlx::query(
        "SELECT CONVERT(INDEX_NAME USING utf8mb4) AS name, NON_UNIQUE AS non_unique, \
           CONVERT(COLUMN_NAME USING utf8mb4) AS col \
         FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? \
         ORDER BY INDEX_NAME = 'PRIMARY' DESC, INDEX_NAME, SEQ_IN_INDEX",
    )
    .bind(db)
    .bind(name)
    .fetch_all(pool)
    .await
    .map_err(err(&what))?;
    let mut groups: Vec<(String, bool, Vec<Option<String>>)> = Vec::new();
    for r in &rows {
        let e = err(&what);
        let iname: String = r.try_get("name").map_err(&e)?;
        let non_unique: i64 = r.try_get("non_unique").map_err(&e)?;
        let col: Option<String> = r.try_get("col").map_err(&e)?;
        match groups.last_mut() {
            Some((n, _, cols)) if *n == iname => cols.push(col),
            _ => groups.push((iname, non_unique == 0, vec![col])),
        }
    }
    let mut primary_key = None;
    let mut uniques = Vec::new();
    let mut indexes = Vec::new();
    for (iname, unique, cols) in groups {
        // A functional index (MySQL 8) has no column name: not carried over.
        let Some(cols) = cols.into_iter().collect::<Option<Vec<String>>>() else {
            continue;
        };
        if iname == "PRIMARY" {
            primary_key = Some(Key {
                name: None,
                columns: cols,
            });
        } else if unique {
            uniques.push(Key {
                name: Some(iname),
                columns: cols,
            });
        } else {
            indexes.push(Index {
                name: Some(iname),
                columns: cols,
                unique: false,
            });
        }
    }

    let what = format!("foreign keys of {name}");
    let rows = sqlx::query(
        "SELECT CONVERT(k.CONSTRAINT_NAME USING utf8mb4) AS name, CONVERT(k.COLUMN_NAME USING utf8mb4) AS col, \
           CONVERT(k.REFERENCED_TABLE_SCHEMA USING utf8mb4) AS ref_schema, \
           CONVERT(k.REFERENCED_TABLE_NAME USING utf8mb4) AS ref_table, \
           CONVERT(k.REFERENCED_COLUMN_NAME USING utf8mb4) AS ref_col, \
           CONVERT(r.UPDATE_RULE USING utf8mb4) AS on_update, CONVERT(r.DELETE_RULE USING utf8mb4) AS on_delete \
         FROM information_schema.KEY_COLUMN_USAGE k \
         JOIN information_schema.REFERENTIAL_CONSTRAINTS r \
           ON r.CONSTRAINT_SCHEMA = k.CONSTRAINT_SCHEMA AND r.CONSTRAINT_NAME = k.CONSTRAINT_NAME \
          AND r.TABLE_NAME = k.TABLE_NAME \
         WHERE k.TABLE_SCHEMA = ? AND k.TABLE_NAME = ? AND k.REFERENCED_TABLE_NAME IS NOT NULL \
         ORDER BY k.CONSTRAINT_NAME, k.ORDINAL_POSITION",
    )
    .bind(db)
    .bind(name)
    .fetch_all(pool)
    .await
    .map_err(err(&what))?;
    let mut foreign_keys: Vec<ForeignKey> = Vec::new();
    for r in &rows {
        let e = err(&what);
        let fname: String = r.try_get("name").map_err(&e)?;
        let col: String = r.try_get("col").map_err(&e)?;
        let ref_col: String = r.try_get("ref_col").map_err(&e)?;
        match foreign_keys.last_mut() {
            Some(fk) if fk.name.as_deref() == Some(fname.as_str()) => {
                fk.columns.push(col);
                fk.ref_columns.push(ref_col);
            }
            _ => {
                let ref_schema: String = r.try_get("ref_schema").map_err(&e)?;
                foreign_keys.push(ForeignKey {
                    name: Some(fname),
                    columns: vec![col],
                    ref_schema: (ref_schema != db).then_some(ref_schema),
                    ref_table: r.try_get("ref_table").map_err(&e)?,
                    ref_columns: vec![ref_col],
                    on_delete: r.try_get("on_delete").map_err(&e)?,
                    on_update: r.try_get("on_update").map_err(&e)?,
                });
            }
        }
    }
    // The index MySQL makes for a foreign key by itself is carried over as an index.
    let count_sql = format!(
        "SELECT COUNT(*) FROM {}.{}",
        quote_ident(Dialect::Mysql, db),
        quote_ident(Dialect::Mysql, name)
    );
    let rows: i64 = sqlx::query_scalar(&count_sql)
        .fetch_one(pool)
        .await
        .map_err(err(&format!("the row count of {name}")))?;
    Ok(Table {
        // The mappings read the table from the URL's database.
        schema: None,
        name: name.to_string(),
        columns,
        primary_key,
        uniques,
        foreign_keys,
        indexes,
        rows: u64::try_from(rows).unwrap_or(0),
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn enum_labels() {
        assert_eq!(
            super::labels("enum('draft','it''s','a,b')"),
            vec!["draft", "it's", "a,b"]
        );
    }
}
