//! What a run is asked to do, and how it is stopped.

use crate::dialect::Dialect;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::dry_run::DryKeymap;
use super::events::Observer;

/// Options of `cutover run`.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub batch_size: usize,
    pub max_errors: Option<u64>,
    pub restart: bool,
    /// A full pass even where a delta pass would do (`--full`).
    pub full: bool,
    /// Let one pass delete up to this many rows per table (`--allow-deletes`).
    pub allow_deletes: Option<u64>,
    pub dry_run: bool,
    /// Where the run's progress goes (the CLI draws it); `None`: nowhere.
    pub observer: Option<Arc<dyn Observer>>,
    /// Attempts for a batch that fails on the connection.
    pub retries: u32,
    /// Commit after this many records (several batches per transaction). `None`:
    /// the target's default (SQLite groups batches: each commit rewrites every
    /// touched page into the WAL; servers commit every batch).
    pub commit_every: Option<usize>,
    /// Batches written in parallel over this many connections (servers only).
    /// `None`: [`DEFAULT_SERVER_WORKERS`].
    pub workers: Option<usize>,
    /// Dry runs of several mappings: the key map pairs the earlier mappings would
    /// record, so that a later mapping's `lookup()`s are checked against them.
    pub dry_keymap: Option<Arc<DryKeymap>>,
    /// How often a run's lock and run rows say it is alive (20 s; the
    /// environment variable `CUTOVER_HEARTBEAT_MS` overrides it, for tests).
    pub heartbeat: Duration,
}

/// The heartbeat interval: `CUTOVER_HEARTBEAT_MS` or 20 s (other hosts take a
/// lock over after two minutes without one).
fn heartbeat_interval() -> Duration {
    std::env::var("CUTOVER_HEARTBEAT_MS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .filter(|&ms| ms > 0)
        .map_or(Duration::from_secs(20), Duration::from_millis)
}

/// Connections that write batches on PostgreSQL and MySQL when `--workers` is not
/// given. Two overlap one batch's round trip and commit with the next batch's
/// statement: on the 1M-record bench (2 cores), MariaDB 58.5 s with one, 37.6 s
/// with two; PostgreSQL 10.7 s and 7.9 s. More gave nothing on 2 cores.
pub const DEFAULT_SERVER_WORKERS: usize = 2;

/// Connections that write the batches of a run.
pub(super) fn writers(dialect: Dialect, opts: &RunOptions) -> usize {
    if dialect == Dialect::Sqlite {
        1
    } else {
        opts.workers.unwrap_or(DEFAULT_SERVER_WORKERS).max(1)
    }
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            batch_size: 5000,
            max_errors: None,
            restart: false,
            full: false,
            allow_deletes: None,
            dry_run: false,
            observer: None,
            retries: 5,
            commit_every: None,
            workers: None,
            dry_keymap: None,
            heartbeat: heartbeat_interval(),
        }
    }
}

/// Set by Ctrl-C: stop reading, finish the batch in flight, mark the run interrupted.
#[derive(Debug, Default, Clone)]
pub struct Cancel(Arc<AtomicBool>);

impl Cancel {
    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}
