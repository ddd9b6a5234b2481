//! Command-line definitions (clap) and the command implementations: the CLI edge,
//! where printing and anyhow live.

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand, ValueEnum};
use cutover::mapping::Mapping;
use cutover::pipeline::{self, Cancel, RunError, RunOptions, RunSummary};
use cutover::sink::{self, Target};
use cutover::tracking::{ErrorFilter, RunStatus};
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Debug, Parser)]
#[command(
    name = "cutover",
    version,
    about = "Batch ETL for one-off legacy-to-new database cutovers",
    long_about = "Batch ETL for one-off legacy-to-new database cutovers.\n\n\
        Streams records from a legacy source (key-value dumps, JSON files, SQL databases) through \
        declarative TOML mappings into batched, idempotent upserts on a SQL target. Every run records \
        its progress and every failed record in tracking tables on the target (cutover_runs, \
        cutover_checkpoints, cutover_errors), so a stopped run resumes where it stopped and a rerun \
        changes nothing that is already right.\n\n\
        The target is --target, else $CUTOVER_TARGET, else $DATABASE_URL, else sqlite://cutover.db.\n\n\
        Exit codes: 0 done, 1 failed, 2 usage or mapping error, 3 finished with more record errors \
        than --max-errors, 130 interrupted."
)]
pub struct Cli {
    /// Log format on stderr (RUST_LOG sets the level; default warn, or info with -v).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// More logging (info); RUST_LOG overrides.
    #[arg(short, long, global = true)]
    pub verbose: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Args, Clone)]
pub struct TargetOpts {
    /// Target database URL: sqlite://FILE, postgres://..., mysql://...
    /// [default: $CUTOVER_TARGET, $DATABASE_URL, sqlite://cutover.db]
    #[arg(long, value_name = "URL")]
    pub target: Option<String>,
}

impl TargetOpts {
    pub fn url(&self) -> String {
        self.target
            .clone()
            .or_else(|| {
                std::env::var("CUTOVER_TARGET")
                    .ok()
                    .filter(|s| !s.is_empty())
            })
            .or_else(|| std::env::var("DATABASE_URL").ok().filter(|s| !s.is_empty()))
            .unwrap_or_else(|| "sqlite://cutover.db".to_string())
    }

    pub async fn connect(&self) -> Result<Box<dyn Target>> {
        let url = self.url();
        Ok(sink::connect(&url).await?)
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Load mappings into the target, in the order given (parents before children).
    ///
    /// Resumes from the checkpoint when the mapping's last run did not finish;
    /// starts a fresh, idempotent full pass when it did (or with --restart).
    Run {
        /// Mapping files (TOML).
        #[arg(required = true, value_name = "MAPPING")]
        mappings: Vec<PathBuf>,
        #[command(flatten)]
        target: TargetOpts,
        /// Records per batch (one transaction per batch on servers).
        #[arg(long, default_value_t = 5000, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
        batch_size: u64,
        /// Exit with code 3 when more records than this fail (default: no limit).
        #[arg(long, value_name = "N")]
        max_errors: Option<u64>,
        /// Start from the beginning even if the last run stopped half way.
        #[arg(long)]
        restart: bool,
        /// Read and transform everything, check it against the target, write nothing.
        #[arg(long)]
        dry_run: bool,
        /// Never draw progress bars.
        #[arg(long)]
        no_progress: bool,
        /// Commit after this many records (batches share a transaction until then,
        /// or for at most 5 s). Default: 200000 on SQLite (each commit rewrites the
        /// touched pages into the WAL), every batch on servers.
        #[arg(long, value_name = "N")]
        commit_every: Option<usize>,
        /// Write batches over N connections in parallel (PostgreSQL, MySQL; 1 to 6,
        /// default 2; the loader's pool also holds the run lock and the tracking
        /// writes); the checkpoint only advances over the contiguous committed
        /// prefix. SQLite has one writer.
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=6))]
        workers: Option<u16>,
    },
    /// Check a mapping against the target and print what would be written; writes nothing.
    Plan {
        #[arg(value_name = "MAPPING")]
        mapping: PathBuf,
        #[command(flatten)]
        target: TargetOpts,
    },
    /// Runs, progress and error counts per mapping.
    Status {
        #[command(flatten)]
        target: TargetOpts,
        /// Only this mapping.
        #[arg(long)]
        mapping: Option<String>,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Schema migrations of the target (sqlx's layout and _sqlx_migrations table).
    #[command(subcommand)]
    Migrate(MigrateCommand),
    /// Reconcile source and target: rows expected, found, missing, different; the mapping's checks.
    ///
    /// Exit 0 when every table and check is PASSED or WARNING (every difference is
    /// explained by a recorded record error), 1 when one FAILED.
    Verify {
        #[arg(required = true, value_name = "MAPPING")]
        mappings: Vec<PathBuf>,
        #[command(flatten)]
        target: TargetOpts,
        /// Compare N randomly chosen keys per table instead of every row.
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
        sample: Option<u64>,
        /// Records read and compared per round trip to the target.
        #[arg(long, default_value_t = 5000, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
        batch_size: u64,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Reload only the records that failed before (unresolved error rows), read
    /// again from the source at their stored position; works after the mapping changed.
    Retry {
        #[arg(required = true, value_name = "MAPPING")]
        mappings: Vec<PathBuf>,
        #[command(flatten)]
        target: TargetOpts,
        /// Records per batch.
        #[arg(long, default_value_t = 5000, value_name = "N")]
        batch_size: usize,
    },
    /// Per-record errors: key, position, stage, column, message.
    Errors {
        #[command(flatten)]
        target: TargetOpts,
        /// Only this mapping.
        #[arg(long)]
        mapping: Option<String>,
        /// Only this run.
        #[arg(long, value_name = "N")]
        run: Option<i64>,
        /// Only errors not yet resolved by a later load.
        #[arg(long)]
        unresolved: bool,
        /// At most this many.
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(i64).range(0..))]
        limit: Option<i64>,
        /// JSON lines, with the failing record.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum MigrateCommand {
    /// Apply pending migrations (up to --target-version).
    Run(MigrateOpts),
    /// Revert the latest applied migration (or down to --target-version).
    Revert(MigrateOpts),
    /// List every migration: applied (when, how long) or pending; flag edited and dirty ones.
    Info(MigrateOpts),
}

#[derive(Debug, Args)]
pub struct MigrateOpts {
    /// Folder of migrations in sqlx's layout (VERSION_name.sql, or .up.sql + .down.sql).
    #[arg(long, default_value = "sql", value_name = "DIR")]
    pub source: PathBuf,
    #[command(flatten)]
    pub target: TargetOpts,
    /// run: apply up to this version; revert: revert down to (not including) it.
    #[arg(long, value_name = "N")]
    pub target_version: Option<i64>,
    /// List what would be applied or reverted and print the SQL; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// First write a consistent copy of the database to FILE (SQLite: VACUUM INTO;
    /// servers: prints the pg_dump / mysqldump command to run instead).
    #[arg(long, value_name = "FILE")]
    pub backup: Option<PathBuf>,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
}

/// Exit code of a finished command.
pub type Code = i32;

pub async fn execute(cli: Cli, cancel: Cancel) -> Result<Code> {
    match cli.command {
        Command::Run {
            mappings,
            target,
            batch_size,
            max_errors,
            restart,
            dry_run,
            no_progress,
            commit_every,
            workers,
        } => {
            let opts = RunOptions {
                batch_size: usize::try_from(batch_size).unwrap_or(usize::MAX),
                max_errors,
                restart,
                dry_run,
                progress: !no_progress,
                commit_every,
                workers: workers.map(usize::from),
                ..RunOptions::default()
            };
            run(&mappings, &target, &opts, &cancel).await
        }
        Command::Plan { mapping, target } => plan(&mapping, &target).await,
        Command::Migrate(m) => migrate(m).await,
        Command::Verify {
            mappings,
            target,
            sample,
            batch_size,
            json,
        } => {
            verify(
                &mappings,
                &target,
                sample.map(|n| n as usize),
                batch_size as usize,
                json,
            )
            .await
        }
        Command::Retry {
            mappings,
            target,
            batch_size,
        } => retry(&mappings, &target, batch_size).await,
        Command::Status {
            target,
            mapping,
            json,
        } => status(&target, mapping.as_deref(), json).await,
        Command::Errors {
            target,
            mapping,
            run,
            unresolved,
            limit,
            json,
        } => {
            let f = ErrorFilter {
                mapping,
                run_id: run,
                unresolved_only: unresolved,
                limit,
            };
            errors(&target, &f, json).await
        }
    }
}

/// Load every mapping first: a mistake in any of them stops before anything is written.
fn load_all(paths: &[PathBuf]) -> Result<Vec<Arc<Mapping>>, RunError> {
    let mut out = Vec::new();
    let mut diags = Vec::new();
    for p in paths {
        match Mapping::load(p) {
            Ok(m) => out.push(Arc::new(m)),
            Err(cutover::mapping::MappingError::Invalid(d)) => diags.extend(d),
            Err(e) => return Err(e.into()),
        }
    }
    if !diags.is_empty() {
        return Err(RunError::Mapping(cutover::mapping::MappingError::Invalid(
            diags,
        )));
    }
    Ok(out)
}

/// (inserted, updated) of rows written, when the target counted inserts.
fn inserted_updated(written: i64, inserted: Option<i64>) -> [String; 2] {
    match inserted {
        Some(i) => [i.to_string(), (written - i).to_string()],
        None => ["-".into(), "-".into()],
    }
}

pub fn print_run_error(e: &RunError) {
    eprintln!("error: {e}");
}

fn print_summary(s: &RunSummary) {
    let what = if s.dry_run {
        "dry run".to_string()
    } else {
        format!("run {}", s.run_id.unwrap_or(0))
    };
    println!(
        "{}  {what}  {} in {:.2} s ({:.0} records/s)",
        s.mapping,
        s.status,
        s.seconds,
        s.records_per_second()
    );
    if let Some((run, pos)) = &s.resumed_from {
        println!("  resumed from run {run} at {pos}");
    }
    println!(
        "  records: {} read, {} written, {} filtered, {} failed",
        s.records_read, s.records_written, s.records_filtered, s.records_failed
    );
    // Inserted and updated are shown where the target tells them apart.
    let split = !s.dry_run && s.tables.iter().any(|t| t.rows_inserted.is_some());
    let mut head = vec!["table".to_string()];
    if s.dry_run {
        head.push("rows".into());
    } else {
        head.push("rows written".into());
        if split {
            head.extend(["inserted".into(), "updated".into()]);
        }
        head.push("unchanged".into());
    }
    let mut rows = vec![head];
    for t in &s.tables {
        let mut row = vec![t.table.clone(), t.rows_written.to_string()];
        if !s.dry_run {
            if split {
                row.extend(inserted_updated(t.rows_written, t.rows_inserted));
            }
            row.push(t.rows_unchanged.to_string());
        }
        rows.push(row);
    }
    print_table(&rows, "  ");
    if !s.failure_groups.is_empty() {
        println!("  failures by reason:");
        for (reason, n, keys) in &s.failure_groups {
            println!("    {n} × {reason}  (e.g. {})", keys.join(", "));
        }
    }
    for (table, n, keys) in &s.duplicate_keys {
        println!(
            "  {table}: {n} rows repeat a key already produced (the last one wins), e.g. {}",
            keys.join("; ")
        );
    }
    if s.dry_run {
        println!("  dry run: nothing was written");
    }
    if s.records_failed > 0 && !s.dry_run {
        println!(
            "  see every failed record: cutover errors --mapping {} --run {}",
            s.mapping,
            s.run_id.unwrap_or(0)
        );
    }
    if let Some(m) = &s.message {
        println!("  {m}");
    }
}

/// Print rows as aligned columns (first row is the header).
pub fn print_table(rows: &[Vec<String>], indent: &str) {
    let n = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..n)
        .map(|i| {
            rows.iter()
                .map(|r| r.get(i).map_or(0, |c| c.chars().count()))
                .max()
                .unwrap_or(0)
        })
        .collect();
    for r in rows {
        let mut line = String::from(indent);
        for (i, c) in r.iter().enumerate() {
            line.push_str(c);
            if i + 1 < r.len() {
                line.push_str(&" ".repeat(widths[i] - c.chars().count() + 2));
            }
        }
        println!("{}", line.trim_end());
    }
}

async fn run(
    paths: &[PathBuf],
    target: &TargetOpts,
    opts: &RunOptions,
    cancel: &Cancel,
) -> Result<Code> {
    let mappings = match load_all(paths) {
        Ok(m) => m,
        Err(e) => {
            print_run_error(&e);
            return Ok(e.exit_code());
        }
    };
    let t = target.connect().await?;
    // Every mapping whose tables exist already is checked against them before
    // the first one writes anything (the others after their migrations).
    if let Err(e) = pipeline::precheck(t.as_ref(), &mappings).await {
        print_run_error(&e);
        t.close().await;
        return Ok(e.exit_code());
    }
    let mut opts = opts.clone();
    if opts.dry_run && mappings.len() > 1 {
        opts.dry_keymap = Some(Default::default());
    }
    let opts = &opts;
    let mut code = 0;
    for m in mappings {
        match pipeline::run_mapping(t.as_ref(), m.clone(), opts, cancel).await {
            Ok(s) => {
                print_summary(&s);
                if s.status == RunStatus::Interrupted {
                    code = 130;
                    break;
                }
                if let Some(max) = opts.max_errors {
                    if s.records_failed as u64 > max {
                        eprintln!(
                            "error: {} records of {} failed, more than --max-errors {max}",
                            s.records_failed, s.mapping
                        );
                        code = 3;
                    }
                }
                if opts.dry_run
                    && s.records_failed > 0
                    && opts.max_errors.is_some_and(|m| s.records_failed as u64 > m)
                {
                    code = 3;
                }
            }
            Err(e) => {
                print_run_error(&e);
                code = e.exit_code();
                break;
            }
        }
    }
    t.close().await;
    Ok(code)
}

async fn plan(path: &std::path::Path, target: &TargetOpts) -> Result<Code> {
    let m = match Mapping::load(path) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(2);
        }
    };
    let t = target.connect().await?;
    println!("mapping {} ({})", m.name, m.file.display());
    if let Some(d) = &m.description {
        println!("  {d}");
    }
    println!("target  {}", t.display_url());
    match cutover::source::open(&m) {
        Ok(s) => println!("source  {}", s.describe()),
        Err(e) => {
            eprintln!("error: source: {e}");
            return Ok(2);
        }
    }
    if let Some(dir) = &m.schema {
        println!(
            "schema  migrations in {} are applied before loading",
            dir.display()
        );
    }
    let mut missing_ok = Vec::new();
    for tb in &m.tables {
        if m.schema.is_some() && t.describe_table(&tb.table).await?.is_none() {
            missing_ok.push(tb.table.clone());
        }
    }
    let bound = if missing_ok.is_empty() {
        match pipeline::bind(t.as_ref(), &m).await {
            Ok(b) => Some(b),
            Err(e) => {
                print_run_error(&e);
                return Ok(e.exit_code());
            }
        }
    } else {
        println!(
            "note: table(s) {} do not exist yet; the mapping's migrations will create them. Column checks happen at `run`.",
            missing_ok.join(", ")
        );
        None
    };
    for tb in &m.tables {
        println!();
        println!(
            "table {}  key ({})  on_conflict {:?}{}",
            tb.table,
            tb.key.join(", "),
            tb.on_conflict,
            tb.for_each
                .as_ref()
                .map(|_| "  one row per for_each element")
                .unwrap_or("")
        );
        let bt = bound
            .as_ref()
            .and_then(|b| b.iter().find(|x| x.spec.table == tb.table));
        let mut rows = vec![vec![
            "column".to_string(),
            "type".into(),
            "expression".into(),
        ]];
        for (i, c) in tb.columns.iter().enumerate() {
            rows.push(vec![
                c.name.clone(),
                bt.map_or("?".into(), |b| b.types[i].name()),
                c.text.clone(),
            ]);
        }
        print_table(&rows, "  ");
        if let Some(b) = bt {
            println!("  SQL: {}", t.upsert_sql(b, 1));
        }
    }
    // Checkpoint state, if the tracking tables exist.
    if let Ok(Some(cp)) = t.store().checkpoint(&m.name).await {
        let last = t.store().checkpoint_run(&m.name).await.ok().flatten();
        match last {
            Some(r) if r.status != cutover::tracking::RunStatus::Succeeded => println!(
                "\nrun would resume after run {} ({}) at {} ({} records committed)",
                r.id,
                r.status,
                cp.position.unwrap_or_default(),
                cp.records_committed
            ),
            _ => println!("\nrun would start a full pass (the last run succeeded)"),
        }
    } else {
        println!("\nrun would start a full pass (no checkpoint)");
    }
    t.close().await;
    Ok(0)
}

async fn status(target: &TargetOpts, mapping: Option<&str>, json: bool) -> Result<Code> {
    let t = target.connect().await?;
    t.ensure_tracking().await.context("the tracking tables")?;
    let runs = t.store().runs(mapping).await?;
    let checkpoints = t.store().checkpoints().await?;
    if json {
        let mut out = Vec::new();
        for r in &runs {
            let tables = t.store().table_counts(r.id).await?;
            let unresolved = t
                .store()
                .errors(&ErrorFilter {
                    mapping: Some(r.mapping.clone()),
                    run_id: Some(r.id),
                    unresolved_only: true,
                    limit: None,
                })
                .await?
                .len();
            let mut v = serde_json::to_value(r)?;
            v["tables"] = serde_json::to_value(&tables)?;
            v["errors_unresolved"] = serde_json::json!(unresolved);
            out.push(v);
        }
        let doc = serde_json::json!({ "runs": out, "checkpoints": checkpoints });
        println!("{}", serde_json::to_string_pretty(&doc)?);
        t.close().await;
        return Ok(0);
    }
    if runs.is_empty() {
        println!("no runs on {}", t.display_url());
    }
    let mut rows = vec![[
        "run",
        "mapping",
        "status",
        "started",
        "finished",
        "read",
        "written",
        "filtered",
        "failed",
        "rows written",
        "unchanged",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect::<Vec<_>>()];
    for r in &runs {
        rows.push(vec![
            r.id.to_string(),
            r.mapping.clone() + if r.dry_run { " (dry run)" } else { "" },
            r.status.to_string(),
            r.started_at.clone(),
            r.finished_at.clone().unwrap_or_default(),
            r.records_read.to_string(),
            r.records_written.to_string(),
            r.records_filtered.to_string(),
            r.records_failed.to_string(),
            r.rows_written.to_string(),
            r.rows_unchanged.to_string(),
        ]);
    }
    print_table(&rows, "");
    for r in &runs {
        let tables = t.store().table_counts(r.id).await?;
        if !tables.is_empty() {
            let per: Vec<String> = tables
                .iter()
                .map(|c| match c.rows_inserted {
                    Some(i) => format!(
                        "{} {} written ({i} inserted, {} updated), {} unchanged",
                        c.table_name,
                        c.rows_written,
                        c.rows_written - i,
                        c.rows_unchanged
                    ),
                    None => format!(
                        "{} {} written, {} unchanged",
                        c.table_name, c.rows_written, c.rows_unchanged
                    ),
                })
                .collect();
            println!("  run {}: {}", r.id, per.join("; "));
        }
        if let Some(m) = &r.message {
            println!("  run {}: {m}", r.id);
        }
    }
    let cps: Vec<_> = checkpoints
        .iter()
        .filter(|c| mapping.is_none_or(|m| m == c.mapping))
        .collect();
    if !cps.is_empty() {
        println!();
        let mut rows = vec![vec![
            "checkpoint".to_string(),
            "run".into(),
            "records committed".into(),
            "position".into(),
            "updated".into(),
        ]];
        for c in cps {
            rows.push(vec![
                c.mapping.clone(),
                c.run_id.to_string(),
                c.records_committed.to_string(),
                c.position.clone().unwrap_or_default(),
                c.updated_at.clone(),
            ]);
        }
        print_table(&rows, "");
    }
    t.close().await;
    Ok(0)
}

async fn errors(target: &TargetOpts, f: &ErrorFilter, json: bool) -> Result<Code> {
    let t = target.connect().await?;
    t.ensure_tracking().await.context("the tracking tables")?;
    let rows = t.store().errors(f).await?;
    if json {
        for e in &rows {
            let mut v = serde_json::to_value(e)?;
            if let Some(r) = &e.record {
                v["record"] =
                    serde_json::from_str(r).unwrap_or(serde_json::Value::String(r.clone()));
            }
            println!("{}", serde_json::to_string(&v)?);
        }
    } else if rows.is_empty() {
        println!("no errors");
    } else {
        let mut table = vec![[
            "id", "run", "mapping", "record", "stage", "column", "message", "resolved",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect::<Vec<_>>()];
        for e in &rows {
            table.push(vec![
                e.id.to_string(),
                e.run_id.to_string(),
                e.mapping.clone(),
                e.record_key.clone(),
                e.stage.clone(),
                e.column_name.clone().unwrap_or_default(),
                e.message.clone(),
                e.resolved_at.clone().unwrap_or_default(),
            ]);
        }
        print_table(&table, "");
    }
    t.close().await;
    Ok(0)
}

async fn migrate(cmd: MigrateCommand) -> Result<Code> {
    use cutover::migrate::{Action, State};
    let (opts, action) = match cmd {
        MigrateCommand::Run(o) => {
            let a = Action::Run {
                up_to: o.target_version,
                dry_run: o.dry_run,
            };
            (o, a)
        }
        MigrateCommand::Revert(o) => {
            let a = Action::Revert {
                down_to: o.target_version,
                dry_run: o.dry_run,
            };
            (o, a)
        }
        MigrateCommand::Info(o) => (o, Action::Info),
    };
    if !opts.source.is_dir() {
        eprintln!(
            "error: migrations folder {} does not exist (use --source DIR)",
            opts.source.display()
        );
        return Ok(2);
    }
    let t = opts.target.connect().await?;
    if let Some(file) = &opts.backup {
        if opts.dry_run {
            println!("dry run: would back up to {}", file.display());
        } else {
            match t.backup(file).await? {
                None => println!("backup written to {}", file.display()),
                Some(cmd) => println!("back up the server first with:\n  {cmd}"),
            }
        }
    }
    let report = match t.migrations(&opts.source, &action).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            t.close().await;
            return Ok(1);
        }
    };
    t.close().await;
    if opts.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(0);
    }
    let verb = if report.dry_run {
        "would apply"
    } else {
        "applied"
    };
    for (v, d) in &report.applied {
        println!("{verb} {v} {d}");
    }
    let verb = if report.dry_run {
        "would revert"
    } else {
        "reverted"
    };
    for (v, d) in &report.reverted {
        println!("{verb} {v} {d}");
    }
    for (v, sql) in &report.sql {
        println!("-- {v}\n{}", sql.trim_end());
    }
    if matches!(action, Action::Info) {
        let mut rows = vec![vec![
            "version".to_string(),
            "description".into(),
            "state".into(),
            "installed".into(),
            "ms".into(),
            "reversible".into(),
        ]];
        for e in &report.entries {
            rows.push(vec![
                e.version.to_string(),
                e.description.clone(),
                match e.state {
                    State::Applied => "applied".into(),
                    State::Pending => "pending".into(),
                    State::ChecksumMismatch => "applied, FILE CHANGED (checksum mismatch)".into(),
                    State::Dirty => "DIRTY (failed half way)".into(),
                    State::Missing => "applied, no file".into(),
                },
                e.installed_on.clone().unwrap_or_default(),
                e.execution_ms
                    .map(|m| format!("{m:.1}"))
                    .unwrap_or_default(),
                if e.reversible {
                    "yes".into()
                } else {
                    "no".into()
                },
            ]);
        }
        print_table(&rows, "");
    } else if report.applied.is_empty() && report.reverted.is_empty() {
        println!("nothing to do");
    }
    Ok(0)
}

async fn verify(
    paths: &[PathBuf],
    target: &TargetOpts,
    sample: Option<usize>,
    batch_size: usize,
    json: bool,
) -> Result<Code> {
    use cutover::verify::Verdict;
    let mappings = match load_all(paths) {
        Ok(m) => m,
        Err(e) => {
            print_run_error(&e);
            return Ok(e.exit_code());
        }
    };
    let t = target.connect().await?;
    let mut worst = Verdict::Passed;
    for m in mappings {
        let r = match cutover::verify::verify(t.as_ref(), m, sample, batch_size).await {
            Ok(r) => r,
            Err(e) => {
                print_run_error(&e);
                t.close().await;
                return Ok(e.exit_code().max(1));
            }
        };
        worst = worst.max(r.verdict);
        if json {
            println!("{}", serde_json::to_string(&r)?);
            continue;
        }
        let unexplained = if r.records_failing_unexplained > 0 {
            format!(
                " ({} without an error row: the mapping or the source changed since the load?)",
                r.records_failing_unexplained
            )
        } else {
            String::new()
        };
        println!(
            "{}  {}  ({} records read, {} fail to transform{unexplained}, {} unresolved error rows)",
            r.mapping,
            format!("{:?}", r.verdict).to_uppercase(),
            r.records_read,
            r.records_failing,
            r.unresolved_errors
        );
        let mut rows = vec![[
            "table",
            "expected",
            "found",
            "compared",
            "missing",
            "different",
            "extra",
            "status",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect::<Vec<_>>()];
        for tb in &r.tables {
            rows.push(vec![
                tb.table.clone(),
                tb.expected.to_string(),
                tb.found.to_string(),
                format!(
                    "{}{}",
                    tb.compared,
                    if tb.sampled { " (sample)" } else { "" }
                ),
                tb.missing.to_string(),
                tb.different.to_string(),
                tb.extra.to_string(),
                format!("{:?}", tb.verdict).to_uppercase(),
            ]);
        }
        print_table(&rows, "  ");
        for tb in &r.tables {
            for d in &tb.examples {
                let what = if d.columns.is_empty() {
                    "missing".to_string()
                } else {
                    format!("different in {}", d.columns.join(", "))
                };
                let why = if d.explained {
                    " (explained by an error row)"
                } else {
                    ""
                };
                println!(
                    "  {}: key ({}) record {}: {what}{why}",
                    tb.table, d.key, d.record_key
                );
            }
        }
        if !r.checks.is_empty() {
            let mut rows = vec![vec![
                "check".to_string(),
                "expect".into(),
                "got".into(),
                "status".into(),
            ]];
            for c in &r.checks {
                rows.push(vec![
                    c.name.clone(),
                    c.expect.to_string(),
                    c.got.clone().unwrap_or_else(|| "NULL".into()),
                    format!("{:?}", c.verdict).to_uppercase(),
                ]);
            }
            print_table(&rows, "  ");
        }
    }
    t.close().await;
    Ok(if worst == Verdict::Failed { 1 } else { 0 })
}

async fn retry(paths: &[PathBuf], target: &TargetOpts, batch_size: usize) -> Result<Code> {
    let mappings = match load_all(paths) {
        Ok(m) => m,
        Err(e) => {
            print_run_error(&e);
            return Ok(e.exit_code());
        }
    };
    let t = target.connect().await?;
    let opts = RunOptions {
        batch_size,
        ..RunOptions::default()
    };
    let mut code = 0;
    for m in mappings {
        match pipeline::retry_mapping(t.as_ref(), m, &opts).await {
            Ok(s) => {
                println!(
                    "{}  retry run {}: {} records with unresolved errors, {} loaded (errors resolved), {} filtered, {} failed again",
                    s.mapping, s.run_id, s.records, s.loaded, s.filtered, s.failed
                );
                for k in &s.not_found {
                    println!(
                        "  {k}: no record at its stored position any more (the source changed?)"
                    );
                }
                for e in &s.first_errors {
                    println!("  {e}");
                }
            }
            Err(e) => {
                print_run_error(&e);
                code = e.exit_code();
                break;
            }
        }
    }
    t.close().await;
    Ok(code)
}
