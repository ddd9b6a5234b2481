//! The catalog of a PostgreSQL schema, from `pg_catalog`: tables in creation
//! (oid) order, columns with `format_type` (domains as their base type, enums
//! with their labels, arrays marked), defaults, identity and serial columns,
//! primary keys, unique constraints and unique indexes, foreign keys with their
//! actions, plain indexes (not those on expressions or with a predicate), and
//! each table's row count.

use super::catalog::{
    parse_default, Catalog, Column, ForeignKey, Index, Key, SourceDialect, Table,
};
use super::error::InitError;
use super::generate::SqlTarget;
use super::sqlite::select;
use super::types;
use crate::dialect::{quote_table, Dialect};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::Row;
use std::str::FromStr;

/// Connect, read, close.
pub async fn read(
    target: &SqlTarget,
    schema: Option<&str>,
    only: &[String],
) -> Result<Catalog, InitError> {
    let unreachable = |e: sqlx::Error| InitError::Connect {
        source_name: target.display.clone(),
        message: e.to_string(),
    };
    let mut o = PgConnectOptions::from_str(&target.connect)
        .map_err(|e| InitError::Usage(format!("the PostgreSQL URL: {e}")))?
        .application_name("cutover-init");
    if let Some(p) = &target.password {
        o = o.password(p);
    }
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(std::time::Duration::from_secs(10))
        .connect_with(o)
        .await
        .map_err(unreachable)?;
    let r = read_schema(&pool, schema.unwrap_or("public"), only).await;
    pool.close().await;
    r
}

fn err(what: &str) -> impl Fn(sqlx::Error) -> InitError + '_ {
    move |e| InitError::catalog(what, e)
}

/// `a` NO ACTION, `r` RESTRICT, `c` CASCADE, `n` SET NULL, `d` SET DEFAULT.
fn action(code: &str) -> String {
    match code {
        "r" => "RESTRICT",
        "c" => "CASCADE",
        "n" => "SET NULL",
        "d" => "SET DEFAULT",
        _ => "NO ACTION",
    }
    .to_string()
}

async fn read_schema(pool: &PgPool, schema: &str, only: &[String]) -> Result<Catalog, InitError> {
    let database: String = sqlx::query_scalar("SELECT current_database()::text")
        .fetch_one(pool)
        .await
        .map_err(err("current_database"))?;
    let schemas: Vec<String> = sqlx::query_scalar(
        "SELECT nspname::text FROM pg_namespace WHERE nspname NOT LIKE 'pg\\_%' AND nspname <> 'information_schema' ORDER BY nspname",
    )
    .fetch_all(pool)
    .await
    .map_err(err("pg_namespace"))?;
    if !schemas.iter().any(|s| s == schema) {
        return Err(InitError::Usage(format!(
            "the PostgreSQL database {database} has no schema {schema}; it has: {}",
            schemas.join(", ")
        )));
    }
    let rows = sqlx::query(
        "SELECT c.oid::int8 AS oid, c.relname::text AS name FROM pg_class c \
         JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') AND NOT c.relispartition ORDER BY c.oid",
    )
    .bind(schema)
    .fetch_all(pool)
    .await
    .map_err(err("pg_class"))?;
    let mut all = Vec::new();
    for r in &rows {
        let oid: i64 = r.try_get("oid").map_err(err("pg_class"))?;
        let name: String = r.try_get("name").map_err(err("pg_class"))?;
        all.push((oid, name));
    }
    let wanted = select(
        all.iter().map(|(_, n)| n.clone()).collect(),
        only,
        &format!("the PostgreSQL schema {schema}"),
    )?;
    let mut tables = Vec::new();
    for (oid, name) in all.into_iter().filter(|(_, n)| wanted.contains(n)) {
        tables.push(read_table(pool, schema, oid, &name).await?);
    }
    Ok(Catalog {
        dialect: SourceDialect::Postgres,
        database,
        tables,
    })
}

async fn read_table(pool: &PgPool, schema: &str, oid: i64, name: &str) -> Result<Table, InitError> {
    let what = format!("columns of {schema}.{name}");
    let cols = sqlx::query(
        "SELECT a.attname::text AS name, \
           format_type(CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE a.atttypid END, \
                       CASE WHEN t.typtype = 'd' THEN t.typtypmod ELSE a.atttypmod END) AS declared, \
           COALESCE(et.oid, t.oid)::int8 AS type_oid, \
           COALESCE(et.typtype, t.typtype)::text AS typtype, \
           a.attnotnull AS notnull, pg_get_expr(d.adbin, d.adrelid) AS dflt, \
           a.attidentity::text AS ident \
         FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid \
         LEFT JOIN pg_type et ON et.oid = t.typelem AND t.typcategory = 'A' \
         LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum \
         WHERE a.attrelid = $1::int8::oid AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
    )
    .bind(oid)
    .fetch_all(pool)
    .await
    .map_err(err(&what))?;
    let mut columns = Vec::new();
    for r in &cols {
        let e = err(&what);
        let cname: String = r.try_get("name").map_err(&e)?;
        let declared: String = r.try_get("declared").map_err(&e)?;
        let type_oid: i64 = r.try_get("type_oid").map_err(&e)?;
        let typtype: String = r.try_get("typtype").map_err(&e)?;
        let notnull: bool = r.try_get("notnull").map_err(&e)?;
        let dflt: Option<String> = r.try_get("dflt").map_err(&e)?;
        let ident: String = r.try_get("ident").map_err(&e)?;
        let (base, array) = match declared.strip_suffix("[]") {
            Some(b) => (b.to_string(), true),
            None => (declared.clone(), false),
        };
        let mut ty = types::parse_declared(&base);
        ty.declared = declared.clone();
        ty.array = array;
        if typtype == "e" {
            ty.labels = sqlx::query_scalar(
                "SELECT enumlabel::text FROM pg_enum WHERE enumtypid = $1::int8::oid ORDER BY enumsortorder",
            )
            .bind(type_oid)
            .fetch_all(pool)
            .await
            .map_err(&e)?;
        }
        let serial = dflt.as_deref().is_some_and(|d| d.starts_with("nextval("));
        columns.push(Column {
            name: cname,
            ty,
            nullable: !notnull,
            default: if serial {
                None
            } else {
                dflt.as_deref().and_then(parse_default)
            },
            identity: serial || !ident.is_empty(),
            max_len_found: None,
        });
    }

    let what = format!("constraints of {schema}.{name}");
    let cons = sqlx::query(
        "SELECT c.conname::text AS name, c.contype::text AS kind, \
           ARRAY(SELECT a.attname::text FROM unnest(c.conkey) WITH ORDINALITY k(n, o) \
                 JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.n ORDER BY k.o) AS cols, \
           (SELECT relname::text FROM pg_class WHERE oid = c.confrelid) AS ref_table, \
           (SELECT n.nspname::text FROM pg_class r JOIN pg_namespace n ON n.oid = r.relnamespace WHERE r.oid = c.confrelid) AS ref_schema, \
           ARRAY(SELECT a.attname::text FROM unnest(c.confkey) WITH ORDINALITY k(n, o) \
                 JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.n ORDER BY k.o) AS ref_cols, \
           c.confupdtype::text AS on_update, c.confdeltype::text AS on_delete \
         FROM pg_constraint c WHERE c.conrelid = $1::int8::oid AND c.contype IN ('p', 'u', 'f') ORDER BY c.oid",
    )
    .bind(oid)
    .fetch_all(pool)
    .await
    .map_err(err(&what))?;
    let mut primary_key = None;
    let mut uniques = Vec::new();
    let mut foreign_keys = Vec::new();
    for r in &cons {
        let e = err(&what);
        let cname: String = r.try_get("name").map_err(&e)?;
        let kind: String = r.try_get("kind").map_err(&e)?;
        let cols: Vec<String> = r.try_get("cols").map_err(&e)?;
        match kind.as_str() {
            "p" => {
                primary_key = Some(Key {
                    name: Some(cname),
                    columns: cols,
                })
            }
            "u" => uniques.push(Key {
                name: Some(cname),
                columns: cols,
            }),
            _ => {
                let ref_schema: Option<String> = r.try_get("ref_schema").map_err(&e)?;
                foreign_keys.push(ForeignKey {
                    name: Some(cname),
                    columns: cols,
                    ref_schema: ref_schema.filter(|s| s != schema),
                    ref_table: r
                        .try_get::<Option<String>, _>("ref_table")
                        .map_err(&e)?
                        .unwrap_or_default(),
                    ref_columns: r.try_get("ref_cols").map_err(&e)?,
                    on_delete: action(&r.try_get::<String, _>("on_delete").map_err(&e)?),
                    on_update: action(&r.try_get::<String, _>("on_update").map_err(&e)?),
                });
            }
        }
    }

    let what = format!("indexes of {schema}.{name}");
    let idx = sqlx::query(
        "SELECT i.relname::text AS name, ix.indisunique AS is_unique, \
           ARRAY(SELECT a.attname::text FROM unnest(ix.indkey::int2[]) WITH ORDINALITY k(n, o) \
                 JOIN pg_attribute a ON a.attrelid = ix.indrelid AND a.attnum = k.n ORDER BY k.o) AS cols, \
           (ix.indexprs IS NOT NULL OR ix.indpred IS NOT NULL) AS special \
         FROM pg_index ix JOIN pg_class i ON i.oid = ix.indexrelid \
         WHERE ix.indrelid = $1::int8::oid AND NOT ix.indisprimary \
           AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = ix.indexrelid AND c.conrelid = ix.indrelid) \
         ORDER BY i.oid",
    )
    .bind(oid)
    .fetch_all(pool)
    .await
    .map_err(err(&what))?;
    let mut indexes = Vec::new();
    for r in &idx {
        let e = err(&what);
        if r.try_get::<bool, _>("special").map_err(&e)? {
            continue;
        }
        let iname: String = r.try_get("name").map_err(&e)?;
        let cols: Vec<String> = r.try_get("cols").map_err(&e)?;
        if r.try_get::<bool, _>("is_unique").map_err(&e)? {
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

    let relation = quote_table(Dialect::Postgres, &format!("{schema}.{name}"));
    let rows: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {relation}"))
        .fetch_one(pool)
        .await
        .map_err(err(&format!("the row count of {schema}.{name}")))?;
    Ok(Table {
        schema: Some(schema.to_string()),
        name: name.to_string(),
        columns,
        primary_key,
        uniques,
        foreign_keys,
        indexes,
        rows: u64::try_from(rows).unwrap_or(0),
    })
}
