//! The command line: clap definitions (what the user can type, with its help
//! text), the option groups shared by the subcommands, and `execute`, which hands
//! each command to its file. This is the CLI edge, where printing and anyhow live:
//! one file per command's implementation and output, `render` for the table
//! printing they share.

mod errors;
mod init;
mod load;
mod migrate;
mod plan;
mod progress;
mod render;
mod report;
mod retry;
mod run;
mod status;
mod undo;
mod verify;

use anyhow::Result;
use clap::{Args, Parser, Subcommand, ValueEnum};
use cutover::pipeline::{Cancel, Observer, RunOptions};
use cutover::sink::{self, Target};
use cutover::tracking::ErrorFilter;
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
        /// Read the whole source even where a delta pass would read only what
        /// changed since the last succeeded pass (a `watermark` source), and write
        /// every record again, also those read exactly as the pass that last wrote
        /// them (otherwise skipped); the way out when the source's high-water mark
        /// went backwards or target rows were changed by hand.
        #[arg(long)]
        full: bool,
        /// Let this pass delete up to N rows per table where `max_deletes` would
        /// refuse (tables with `deletes = "delete" | "soft"`).
        #[arg(long, value_name = "N")]
        allow_deletes: Option<u64>,
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
    ///
    /// Prints the source, each table's columns with their target types and
    /// expressions, the upsert SQL, and whether `run` would resume or start a full
    /// pass. Exit 2 when the mapping or its source is invalid.
    Plan {
        /// Mapping file (TOML).
        #[arg(value_name = "MAPPING")]
        mapping: PathBuf,
        #[command(flatten)]
        target: TargetOpts,
    },
    /// Runs, progress and error counts per mapping.
    ///
    /// One row per run (records read, written, filtered, failed; rows written and
    /// unchanged), the rows per table of each run, then the checkpoint each mapping
    /// would resume from. Creates the tracking tables if the target has none yet.
    Status {
        #[command(flatten)]
        target: TargetOpts,
        /// Only the runs and checkpoint of this mapping (its `name` in the mapping file).
        #[arg(long)]
        mapping: Option<String>,
        /// Machine-readable output: one JSON document with the runs (each with its
        /// tables and unresolved error count) and the checkpoints.
        #[arg(long)]
        json: bool,
    },
    /// Schema migrations of the target (sqlx's layout and _sqlx_migrations table).
    #[command(subcommand)]
    Migrate(MigrateCommand),
    /// Reconcile source and target: rows expected, found, missing, different, extra; the
    /// mapping's checks. Each result is recorded on the target (`cutover_verifies`).
    ///
    /// Tables are compared by segment checksums: the target sums its rows per segment of
    /// keys (inside PostgreSQL and MariaDB) while the source is read through the mapping
    /// and summed the same way; only segments whose sums differ are compared row by row,
    /// naming each key and column. A table with a column that has no exact form on its
    /// dialect (a MariaDB DOUBLE) or with secret columns is compared row by row, and the
    /// output says so.
    ///
    /// Exit 0 when every table and check is PASSED or WARNING (every difference is
    /// explained by a recorded record error), 1 when one FAILED or the verify stopped
    /// early (--time-limit, --max-differences).
    Verify {
        /// Mapping files (TOML), as given to `run`.
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
        /// Stop after N differing keys (missing, different or extra), with what was found.
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
        max_differences: Option<u64>,
        /// Stop after this long (e.g. 10m, 90s) with what was found so far, and say so.
        #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
        time_limit: Option<std::time::Duration>,
        /// Machine-readable output: one JSON line per mapping.
        #[arg(long)]
        json: bool,
    },
    /// Put the mapping's tables back as they were before a run: rows it inserted
    /// deleted, rows it updated or deleted given back every column, its key-map
    /// entries removed, the errors it resolved unresolved, its checkpoint undone.
    ///
    /// Undoes run N (default: the last run that changed anything) and every later
    /// run of the mapping, newest first; several mappings in reverse order
    /// (children before parents). Rows changed since by anything other than
    /// cutover are conflicts: nothing is changed and the exit code is 1, unless
    /// --force. An undo that stopped half way is finished by the next one. Exit 2
    /// when the runs kept no undo journal (`undo = false`).
    Undo {
        /// Mapping files (TOML), as given to `run`.
        #[arg(required = true, value_name = "MAPPING")]
        mappings: Vec<PathBuf>,
        #[command(flatten)]
        target: TargetOpts,
        /// Undo this run and every later run of the mapping.
        #[arg(long, value_name = "N")]
        run: Option<i64>,
        /// Print per table what would be deleted, restored and re-inserted; change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Restore rows that were changed since by something else, too.
        #[arg(long)]
        force: bool,
        /// Machine-readable output: one JSON line per mapping.
        #[arg(long)]
        json: bool,
    },
    /// Reload only the records that failed before (unresolved error rows), read
    /// again from the source at their stored position; works after the mapping changed.
    ///
    /// A record that loads now has its error rows marked resolved; one that fails
    /// again gets a new error row; the checkpoint does not move. Exit 2 when a
    /// mapping is invalid.
    Retry {
        /// Mapping files (TOML) whose failed records to reload.
        #[arg(required = true, value_name = "MAPPING")]
        mappings: Vec<PathBuf>,
        #[command(flatten)]
        target: TargetOpts,
        /// Records per batch (one transaction per batch on servers).
        #[arg(long, default_value_t = 5000, value_name = "N")]
        batch_size: usize,
    },
    /// Write the target schema and one mapping per table from a legacy source.
    ///
    /// SQL sources: reads the catalog (tables, columns, types, keys, foreign keys,
    /// indexes, row counts). kv/json sources: samples records and infers their
    /// fields. Writes OUT/sql (sqlx migrations for --dialect) and OUT/mappings
    /// (numbered in foreign-key order). Writes nothing to any database. Exit 2 for
    /// usage (OUT exists, no such schema or table), 1 when the source fails.
    Init(init::InitArgs),
    /// Per-record errors: key, position, stage, column, message.
    ///
    /// Every record that failed, from the cutover_errors table on the target, in
    /// the order they were recorded; the filters combine.
    Errors {
        #[command(flatten)]
        target: TargetOpts,
        /// Only errors of this mapping (its `name` in the mapping file).
        #[arg(long)]
        mapping: Option<String>,
        /// Only errors of this run (the run number that `run` and `status` print).
        #[arg(long, value_name = "N")]
        run: Option<i64>,
        /// Only errors not yet resolved by a later load (`run` or `retry`).
        #[arg(long)]
        unresolved: bool,
        /// Show at most N errors (the first N).
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(i64).range(0..))]
        limit: Option<i64>,
        /// Only errors of this stage: read, transform or load.
        #[arg(long, value_name = "STAGE", value_parser = ["read", "transform", "load"])]
        stage: Option<String>,
        /// Only errors of this column (`table.column`, as the column list shows it).
        #[arg(long, value_name = "COLUMN")]
        column: Option<String>,
        /// Only errors whose message contains TEXT.
        #[arg(long, value_name = "TEXT")]
        reason: Option<String>,
        /// JSON lines, with the failing record.
        #[arg(long)]
        json: bool,
    },
    /// The rehearsal report: durations, throughput, failures by reason, the
    /// last verify and a forecast of the real cutover, as HTML, JSON or text.
    ///
    /// Per mapping (in the order they ran): its last full pass and the runs
    /// after it, rows per table, a throughput chart of every run from the
    /// progress samples runs record (at most one a second), unresolved failures
    /// grouped by reason with the `cutover errors` command that lists them, and
    /// the last `cutover verify` recorded on the target. Without --html or
    /// --json, a plain-text summary.
    Report {
        /// Mapping files (TOML) or mapping names (default: every mapping with
        /// runs on the target).
        #[arg(value_name = "MAPPING")]
        mappings: Vec<String>,
        #[command(flatten)]
        target: TargetOpts,
        /// Write the report as one self-contained HTML file (nothing is fetched
        /// when it is opened).
        #[arg(long, value_name = "FILE")]
        html: Option<PathBuf>,
        /// Print the report as one JSON document.
        #[arg(long)]
        json: bool,
        /// A second target to compare with, side by side (the previous
        /// rehearsal, or staging against production).
        #[arg(long, value_name = "URL")]
        compare: Option<String>,
        /// Forecast the real cutover: N production records of all mappings
        /// (shared as in this rehearsal), or MAPPING=N for one; repeatable.
        #[arg(long, value_name = "N|MAPPING=N", conflicts_with = "production_source")]
        scale: Vec<String>,
        /// Forecast the real cutover from each mapping's source as its file
        /// configures it, counted now (SQL sources by COUNT(*), files read
        /// through). Needs the mapping files.
        #[arg(long)]
        production_source: bool,
    },
}

/// `--layout` of `cutover migrate`.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum LayoutArg {
    Auto,
    D1,
    Sqlx,
}

impl From<LayoutArg> for cutover::migrate::Layout {
    fn from(l: LayoutArg) -> Self {
        match l {
            LayoutArg::Auto => cutover::migrate::Layout::Auto,
            LayoutArg::D1 => cutover::migrate::Layout::D1,
            LayoutArg::Sqlx => cutover::migrate::Layout::Sqlx,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum MigrateCommand {
    /// Apply pending migrations (up to --target-version).
    ///
    /// Refuses, before applying anything, when a migration is dirty (failed half
    /// way) or was edited after it was applied.
    Run(MigrateOpts),
    /// Revert the latest applied migration (or down to --target-version).
    ///
    /// Only reversible migrations (VERSION_name.up.sql with its .down.sql) are reverted.
    Revert(MigrateOpts),
    /// List every migration: applied (when, how long) or pending; flag edited and dirty ones.
    Info(MigrateOpts),
}

#[derive(Debug, Args)]
pub struct MigrateOpts {
    /// Folder of migrations: sqlx's layout (VERSION_name.sql, or .up.sql + .down.sql)
    /// or the D1 layout (NNNN_name.sql + NNNN_name.rollback.sql).
    #[arg(long, default_value = "sql", value_name = "DIR")]
    pub source: PathBuf,
    /// The folder's layout: d1 keeps the history in `_migrations` (the D1 / SQLite
    /// runners' table); auto picks d1 when the folder holds .rollback.sql files and
    /// no .up.sql/.down.sql.
    #[arg(long, value_enum, default_value_t = LayoutArg::Auto)]
    pub layout: LayoutArg,
    #[command(flatten)]
    pub target: TargetOpts,
    /// run: apply up to and including this version; revert: revert down to (not
    /// including) it; info: not used.
    #[arg(long, value_name = "N")]
    pub target_version: Option<i64>,
    /// List what would be applied or reverted and print the SQL, and only announce
    /// --backup; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// First write a consistent copy of the database to FILE (SQLite: VACUUM INTO;
    /// servers: prints the pg_dump / mysqldump command to run instead).
    #[arg(long, value_name = "FILE")]
    pub backup: Option<PathBuf>,
    /// Machine-readable output: one JSON document with every migration's state and
    /// what was (or would be) applied or reverted.
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
            full,
            allow_deletes,
            dry_run,
            no_progress,
            commit_every,
            workers,
        } => {
            let opts = RunOptions {
                batch_size: usize::try_from(batch_size).unwrap_or(usize::MAX),
                max_errors,
                restart,
                full,
                allow_deletes,
                dry_run,
                observer: if no_progress {
                    None
                } else {
                    progress::Bars::on_terminal().map(|b| Arc::new(b) as Arc<dyn Observer>)
                },
                commit_every,
                workers: workers.map(usize::from),
                ..RunOptions::default()
            };
            run::run(&mappings, &target, &opts, &cancel).await
        }
        Command::Plan { mapping, target } => plan::plan(&mapping, &target).await,
        Command::Init(args) => init::init(args).await,
        Command::Migrate(m) => migrate::migrate(m).await,
        Command::Verify {
            mappings,
            target,
            sample,
            batch_size,
            max_differences,
            time_limit,
            json,
        } => {
            let opts = cutover::verify::Options {
                sample: sample.map(|n| n as usize),
                batch_size: batch_size as usize,
                max_differences,
                time_limit,
            };
            verify::verify(&mappings, &target, &opts, json).await
        }
        Command::Retry {
            mappings,
            target,
            batch_size,
        } => retry::retry(&mappings, &target, batch_size).await,
        Command::Undo {
            mappings,
            target,
            run,
            dry_run,
            force,
            json,
        } => {
            let opts = cutover::pipeline::UndoOptions {
                run,
                dry_run,
                force,
            };
            undo::undo(&mappings, &target, &opts, json).await
        }
        Command::Status {
            target,
            mapping,
            json,
        } => status::status(&target, mapping.as_deref(), json).await,
        Command::Errors {
            target,
            mapping,
            run,
            unresolved,
            limit,
            stage,
            column,
            reason,
            json,
        } => {
            let f = ErrorFilter {
                mapping,
                run_id: run,
                unresolved_only: unresolved,
                limit,
                stage,
                column,
                reason,
            };
            errors::errors(&target, &f, json).await
        }
        Command::Report {
            mappings,
            target,
            html,
            json,
            compare,
            scale,
            production_source,
        } => {
            report::report(report::ReportArgs {
                mappings,
                target,
                html,
                json,
                compare,
                scale,
                production_source,
            })
            .await
        }
    }
}
