//! `init` from start to end: check `--out`, read the source (a SQL catalog, or
//! a sample of documents), build the [`Plan`], and only then write the files,
//! so a source that fails leaves nothing behind. Nothing is written to any
//! database: SQLite sources are opened read-only, servers only get SELECTs.

use super::catalog::{split_list, SourceDialect};
use super::error::InitError;
use super::naming::Naming;
use super::plan::Plan;
use super::relational::{self, Options, SqlSource};
use super::source::{
    absolute, dialect_of, relative, split_ado_password, split_url_password, sql_kind, sqlite_path,
};
use super::{ddl, infer, mappings};
use crate::dialect::Dialect;
use crate::mapping::{KvFormat, SourceKind};
use std::path::{Path, PathBuf};

/// The environment variable the mappings read the source password from, unless
/// `--password-env` names another.
pub const DEFAULT_PASSWORD_ENV: &str = "CUTOVER_SOURCE_PASSWORD";

/// What the user asked for.
#[derive(Debug, Clone)]
pub struct InitOptions {
    /// A URL, an ADO.NET string, a SQLite file, or a file source's path (pattern).
    pub source: String,
    /// The source kind; from the form of `source` when not given.
    pub kind: Option<SourceKind>,
    /// kv sources: the format (`jsonl` by default).
    pub format: Option<KvFormat>,
    /// kv/json sources: the record's key fields (dynamodb: its key attributes).
    pub key: Vec<String>,
    pub dialect: Dialect,
    pub out: PathBuf,
    /// SQL sources: the schema to read (SQL Server `dbo`, PostgreSQL `public` by default).
    pub schema: Option<String>,
    /// SQL sources: only these tables.
    pub tables: Vec<String>,
    pub naming: Naming,
    /// kv/json sources: records sampled.
    pub sample: usize,
    pub force: bool,
    pub password_env: Option<String>,
    /// Job-name prefix (SQL) or root table name (kv/json).
    pub name: Option<String>,
}

/// What `init` wrote and what to tell the user.
#[derive(Debug, Clone)]
pub struct Report {
    pub out: PathBuf,
    pub origin: String,
    /// Migration files, then mapping files.
    pub sql_files: Vec<PathBuf>,
    pub mapping_files: Vec<PathBuf>,
    /// Per mapping: file name, target tables, source rows (when known).
    pub jobs: Vec<(String, Vec<String>, Option<u64>)>,
    pub todos: Vec<String>,
    pub notes: Vec<String>,
    pub password_env: Option<String>,
}

/// A SQL source, ready to connect.
pub struct SqlTarget {
    pub dialect: SourceDialect,
    /// The URL or connection string with its password (for `init`'s connection only).
    pub connect: String,
    pub password: Option<String>,
    /// What the mappings get.
    pub mapping: SqlSource,
    /// For messages: no password.
    pub display: String,
}

/// Sort out a SQL `--source`: the password out of the mappings' URL.
fn sql_target(o: &InitOptions, dialect: SourceDialect) -> Result<SqlTarget, InitError> {
    if dialect == SourceDialect::Sqlite {
        let file = absolute(&sqlite_path(&o.source));
        let base = absolute(&o.out).join("mappings");
        return Ok(SqlTarget {
            dialect,
            connect: file.display().to_string(),
            password: None,
            mapping: SqlSource {
                url: format!("sqlite://{}", relative(&file, &base).display()),
                password_env: None,
            },
            display: file.display().to_string(),
        });
    }
    let is_url = o.source.contains("://");
    let (url, password) = if is_url {
        split_url_password(&o.source)?
    } else {
        split_ado_password(&o.source)?
    };
    let env = match (&password, &o.password_env) {
        (_, Some(name)) => Some(name.clone()),
        (Some(_), None) => Some(DEFAULT_PASSWORD_ENV.to_string()),
        (None, None) => None,
    };
    let password = password.or_else(|| o.password_env.as_ref().and_then(|v| std::env::var(v).ok()));
    Ok(SqlTarget {
        dialect,
        connect: o.source.clone(),
        password,
        display: crate::redact_url(&url),
        mapping: SqlSource {
            url,
            password_env: env,
        },
    })
}

/// Run `init`.
pub async fn init(o: &InitOptions) -> Result<Report, InitError> {
    if o.out.exists() && !o.force {
        return Err(InitError::OutExists(o.out.clone()));
    }
    let kind = match o.kind {
        Some(k) => Some(k),
        None => sql_kind(&o.source).map(|d| match d {
            SourceDialect::Mssql => SourceKind::Mssql,
            SourceDialect::Postgres => SourceKind::Postgres,
            SourceDialect::Mysql => SourceKind::Mysql,
            SourceDialect::Sqlite => SourceKind::Sqlite,
        }),
    };
    let Some(kind) = kind else {
        return Err(InitError::Usage(format!(
            "cannot tell what kind of source {} is: give --kind (mssql, postgres, mysql, sqlite, kv or json)",
            o.source
        )));
    };
    let plan = match dialect_of(kind) {
        Some(dialect) => {
            if !o.key.is_empty() || o.format.is_some() {
                return Err(InitError::Usage(
                    "--key and --format are for kv and json sources; a SQL source's keys come from its catalog".into(),
                ));
            }
            let target = sql_target(o, dialect)?;
            let catalog = super::read_catalog(&target, o.schema.as_deref(), &o.tables).await?;
            if catalog.tables.is_empty() {
                return Err(InitError::Usage(format!(
                    "{} has no tables{}",
                    target.display,
                    o.schema
                        .as_ref()
                        .map(|s| format!(" in schema {s}"))
                        .unwrap_or_default()
                )));
            }
            let prefix = o
                .name
                .clone()
                .unwrap_or_else(|| Naming::SnakeCase.apply(&catalog.database));
            let opts = Options {
                dialect: o.dialect,
                naming: o.naming,
                prefix,
                origin: format!("{} {}", dialect.name(), target.display),
            };
            relational::plan(&catalog, &target.mapping, &opts)
        }
        None => {
            if o.schema.is_some() || !o.tables.is_empty() {
                return Err(InitError::Usage(
                    "--schema and --tables are for SQL sources".into(),
                ));
            }
            infer::plan(o, kind).await?
        }
    };
    write(o, &plan)
}

/// Write the plan's files under `--out` (replacing its sql/ and mappings/ with --force).
fn write(o: &InitOptions, plan: &Plan) -> Result<Report, InitError> {
    let sql_dir = o.out.join("sql");
    let map_dir = o.out.join("mappings");
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| InitError::Write { path, source }
    };
    for dir in [&sql_dir, &map_dir] {
        if dir.exists() {
            std::fs::remove_dir_all(dir).map_err(io(dir))?;
        }
        std::fs::create_dir_all(dir).map_err(io(dir))?;
    }
    let base = chrono::Utc::now().naive_utc();
    let mut sql_files = Vec::new();
    for f in ddl::files(&plan.schema, &plan.origin, base) {
        let p = sql_dir.join(&f.name);
        std::fs::write(&p, f.text).map_err(io(&p))?;
        sql_files.push(p);
    }
    let mut mapping_files = Vec::new();
    let mut jobs = Vec::new();
    for job in &plan.jobs {
        let p = map_dir.join(format!("{}.toml", job.file_stem));
        std::fs::write(&p, mappings::render(job, &plan.origin, "../sql")).map_err(io(&p))?;
        jobs.push((
            format!("{}.toml", job.file_stem),
            job.tables.iter().map(|t| t.table.clone()).collect(),
            job.checks.first().map(|c| c.expect),
        ));
        mapping_files.push(p);
    }
    Ok(Report {
        out: o.out.clone(),
        origin: plan.origin.clone(),
        sql_files,
        mapping_files,
        jobs,
        todos: plan.todos.clone(),
        notes: plan.notes.clone(),
        password_env: plan.password_env.clone(),
    })
}

/// `a,b` for `--tables` and `--key`.
pub fn list(s: &str) -> Vec<String> {
    split_list(s)
}
