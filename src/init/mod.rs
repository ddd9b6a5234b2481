//! `cutover init`: write the target schema (sqlx migrations) and one mapping
//! per table from the legacy source itself. A SQL source's catalog is read
//! ([`catalog`], one reader per dialect), converted by the [`types`] table and
//! named by `--naming` ([`naming`]) into a [`plan::Plan`] ([`relational`]); a
//! kv or json source is sampled and its fields inferred ([`infer`]). The plan
//! is then written as migrations ([`ddl`]) and mapping files ([`mappings`]).

pub mod catalog;
pub mod ddl;
pub mod docplan;
pub mod error;
pub mod generate;
pub mod infer;
pub mod mappings;
pub mod mssql;
pub mod mysql;
pub mod naming;
pub mod plan;
pub mod postgres;
pub mod relational;
pub mod source;
pub mod sqlite;
pub mod types;

pub use catalog::{Catalog, SourceDialect};
pub use error::InitError;
pub use generate::{init, InitOptions, Report, DEFAULT_PASSWORD_ENV};
pub use naming::Naming;

use generate::SqlTarget;

/// Read the catalog of a SQL source: `schema` (SQL Server and PostgreSQL) and
/// the tables to read (all when empty).
pub async fn read_catalog(
    target: &SqlTarget,
    schema: Option<&str>,
    tables: &[String],
) -> Result<Catalog, InitError> {
    match target.dialect {
        SourceDialect::Sqlite => {
            if schema.is_some() {
                return Err(InitError::Usage(
                    "--schema: a SQLite database has no schemas".into(),
                ));
            }
            sqlite::read(std::path::Path::new(&target.connect), tables).await
        }
        SourceDialect::Postgres => postgres::read(target, schema, tables).await,
        SourceDialect::Mysql => mysql::read(target, schema, tables).await,
        SourceDialect::Mssql => mssql::read(target, schema, tables).await,
    }
}
