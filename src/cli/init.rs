//! `cutover init`: write the target schema and one mapping per table from a
//! legacy source, then say what was written, what to fix and what to run next.

use super::Code;
use anyhow::Result;
use clap::{Args, ValueEnum};
use cutover::dialect::Dialect;
use cutover::init::{self, InitOptions, Naming};
use cutover::mapping::{KvFormat, SourceKind};
use std::path::PathBuf;

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum KindArg {
    Mssql,
    Postgres,
    Mysql,
    Sqlite,
    Kv,
    Json,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum FormatArg {
    Jsonl,
    Object,
    Dynamodb,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum DialectArg {
    Postgres,
    Mysql,
    Sqlite,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum NamingArg {
    /// InvoiceLine.BillingCity -> invoice_line.billing_city (tables, columns, constraints).
    #[value(name = "snake_case")]
    SnakeCase,
    /// Names as the source has them, quoted where needed.
    Keep,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// The legacy source: a URL (mssql://, postgres://, mysql://, sqlite://), an
    /// ADO.NET string, a SQLite file, or a kv/json path (pattern) with --kind.
    #[arg(long, value_name = "SOURCE")]
    pub source: String,
    /// The source kind (default: from the form of --source).
    #[arg(long, value_enum)]
    pub kind: Option<KindArg>,
    /// kv sources: jsonl ({"key","value"} lines), object, or dynamodb (an S3 export folder).
    #[arg(long, value_enum)]
    pub format: Option<FormatArg>,
    /// kv/json sources: the key field(s) of a record, comma-separated (dynamodb:
    /// the table's key attributes).
    #[arg(long, value_name = "FIELD,...")]
    pub key: Option<String>,
    /// The target database's dialect: the schema is written for it.
    #[arg(long, value_enum)]
    pub dialect: DialectArg,
    /// The folder to write: OUT/sql (migrations) and OUT/mappings (one mapping per table).
    #[arg(long, value_name = "OUT")]
    pub out: PathBuf,
    /// SQL sources: the schema to read (default: dbo on SQL Server, public on PostgreSQL).
    #[arg(long)]
    pub schema: Option<String>,
    /// SQL sources: only these tables, comma-separated.
    #[arg(long, value_name = "A,B,...")]
    pub tables: Option<String>,
    /// How source names become target names.
    #[arg(long, value_enum, default_value = "snake_case")]
    pub naming: NamingArg,
    /// kv/json sources: how many records to read to infer the fields (streamed).
    #[arg(long, default_value_t = 1000, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub sample: u64,
    /// Replace OUT's sql/ and mappings/ folders when OUT exists.
    #[arg(long)]
    pub force: bool,
    /// The environment variable the mappings read the source password from
    /// [default: CUTOVER_SOURCE_PASSWORD when --source holds a password].
    #[arg(long, value_name = "VAR")]
    pub password_env: Option<String>,
    /// SQL sources: the prefix of the job names (default: the database's name);
    /// kv/json sources: the name of the root table.
    #[arg(long)]
    pub name: Option<String>,
}

impl InitArgs {
    fn options(self) -> InitOptions {
        InitOptions {
            source: self.source,
            kind: self.kind.map(|k| match k {
                KindArg::Mssql => SourceKind::Mssql,
                KindArg::Postgres => SourceKind::Postgres,
                KindArg::Mysql => SourceKind::Mysql,
                KindArg::Sqlite => SourceKind::Sqlite,
                KindArg::Kv => SourceKind::Kv,
                KindArg::Json => SourceKind::Json,
            }),
            format: self.format.map(|f| match f {
                FormatArg::Jsonl => KvFormat::Jsonl,
                FormatArg::Object => KvFormat::Object,
                FormatArg::Dynamodb => KvFormat::Dynamodb,
            }),
            key: self
                .key
                .as_deref()
                .map(init::generate::list)
                .unwrap_or_default(),
            dialect: match self.dialect {
                DialectArg::Postgres => Dialect::Postgres,
                DialectArg::Mysql => Dialect::Mysql,
                DialectArg::Sqlite => Dialect::Sqlite,
            },
            out: self.out,
            schema: self.schema,
            tables: self
                .tables
                .as_deref()
                .map(init::generate::list)
                .unwrap_or_default(),
            naming: match self.naming {
                NamingArg::SnakeCase => Naming::SnakeCase,
                NamingArg::Keep => Naming::Keep,
            },
            sample: usize::try_from(self.sample).unwrap_or(usize::MAX),
            force: self.force,
            password_env: self.password_env,
            name: self.name,
        }
    }
}

pub(super) async fn init(args: InitArgs) -> Result<Code> {
    let o = args.options();
    let r = match init::init(&o).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(e.exit_code());
        }
    };
    println!("init: read {}", r.origin);
    println!(
        "wrote {}: {} migration files",
        r.out.join("sql").display(),
        r.sql_files.len()
    );
    println!(
        "wrote {}: {} mappings, numbered in foreign-key order (parents first)",
        r.out.join("mappings").display(),
        r.mapping_files.len()
    );
    let rows: Vec<Vec<String>> = std::iter::once(vec![
        "  mapping".to_string(),
        "tables".to_string(),
        "source rows".to_string(),
    ])
    .chain(r.jobs.iter().map(|(file, tables, rows)| {
        vec![
            format!("  {file}"),
            tables.join(", "),
            rows.map_or_else(|| "-".to_string(), |n| n.to_string()),
        ]
    }))
    .collect();
    super::render::print_table(&rows, "");
    if !r.notes.is_empty() {
        println!("notes:");
        for n in &r.notes {
            println!("  {n}");
        }
    }
    if let Some(env) = &r.password_env {
        println!(
            "the source password is in no file: the mappings read it from ${env}; set it before `cutover run`"
        );
    }
    let glob = r.out.join("mappings").join("*.toml");
    println!("next:");
    println!("  cutover run {} --target URL", glob.display());
    println!("  cutover verify {} --target URL", glob.display());
    if !r.todos.is_empty() {
        println!(
            "TODO ({}): fix these in the generated files:",
            r.todos.len()
        );
        for t in &r.todos {
            println!("  {t}");
        }
    }
    Ok(0)
}
