//! The tracking tables on the target (`cutover_runs`, `cutover_checkpoints`,
//! `cutover_errors`, `cutover_keymap`, plus `cutover_run_tables`,
//! `cutover_locks`, the progress [`samples`] and the recorded [`verifies`]):
//! their row types and the rules around them (who holds a
//! run lock, when a run may resume). [`store`] reads and writes them for every
//! dialect; [`ddl`] creates them.

pub mod batch;
pub mod ddl;
pub mod digests;
pub mod journal;
pub mod passes;
pub mod samples;
pub mod store;
pub mod verifies;

pub use store::Store;

use crate::record::Position;
use serde::Serialize;
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    Running,
    Succeeded,
    Failed,
    Interrupted,
    /// Taken back by `cutover undo`.
    Undone,
}

impl RunStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Succeeded => "succeeded",
            RunStatus::Failed => "failed",
            RunStatus::Interrupted => "interrupted",
            RunStatus::Undone => "undone",
        }
    }

    pub fn parse(s: &str) -> RunStatus {
        match s {
            "running" => RunStatus::Running,
            "succeeded" => RunStatus::Succeeded,
            "interrupted" => RunStatus::Interrupted,
            "undone" => RunStatus::Undone,
            _ => RunStatus::Failed,
        }
    }
}

impl fmt::Display for RunStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A run about to start.
#[derive(Debug, Clone)]
pub struct NewRun {
    pub mapping: String,
    pub checksum: String,
    pub dry_run: bool,
    pub host: String,
    pub pid: u32,
    /// Options used (batch size, restart, resumed position...) as JSON text.
    pub options: String,
}

impl NewRun {
    /// A run of `mapping` by this process (not a dry run) with these options.
    pub fn here(mapping: &crate::mapping::Mapping, options: &serde_json::Value) -> NewRun {
        NewRun {
            mapping: mapping.name.clone(),
            checksum: mapping.checksum.clone(),
            dry_run: false,
            host: this_host(),
            pid: std::process::id(),
            options: options.to_string(),
        }
    }
}

/// A row of `cutover_runs`.
#[derive(Debug, Clone, Serialize)]
pub struct RunRow {
    pub id: i64,
    pub mapping: String,
    pub mapping_checksum: String,
    pub status: RunStatus,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub heartbeat_at: Option<String>,
    pub records_read: i64,
    pub records_written: i64,
    pub records_filtered: i64,
    pub records_failed: i64,
    pub rows_written: i64,
    pub rows_unchanged: i64,
    /// Rows inserted (the rest of rows_written were updates); where the target tells.
    pub rows_inserted: Option<i64>,
    pub dry_run: bool,
    pub host: String,
    pub pid: i64,
    pub options: String,
    pub message: Option<String>,
}

/// A row of `cutover_checkpoints`.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct CheckpointRow {
    pub mapping: String,
    pub shard: i64,
    pub run_id: i64,
    pub position: Option<String>,
    pub records_committed: i64,
    pub mapping_checksum: String,
    pub source_fingerprint: String,
    pub updated_at: String,
}

impl CheckpointRow {
    pub fn position(&self) -> Option<Position> {
        self.position.as_deref().and_then(Position::from_json)
    }
}

/// A row of `cutover_errors`.
#[derive(Debug, Clone, Serialize)]
pub struct ErrorRecord {
    pub id: i64,
    pub run_id: i64,
    pub mapping: String,
    pub record_key: String,
    pub position: Option<String>,
    pub stage: String,
    pub column_name: Option<String>,
    pub message: String,
    pub record: Option<String>,
    pub created_at: String,
    pub resolved_at: Option<String>,
}

/// A row of `cutover_run_tables`: rows per table of a run.
#[derive(Debug, Clone, Serialize)]
pub struct TableCount {
    pub run_id: i64,
    pub table_name: String,
    pub rows_written: i64,
    pub rows_unchanged: i64,
    pub rows_inserted: Option<i64>,
}

/// Filters of `cutover errors`.
#[derive(Debug, Clone, Default)]
pub struct ErrorFilter {
    pub mapping: Option<String>,
    pub run_id: Option<i64>,
    pub unresolved_only: bool,
    pub limit: Option<i64>,
    /// Only errors of this stage (read, transform, load).
    pub stage: Option<String>,
    /// Only errors of this column (`table.column`).
    pub column: Option<String>,
    /// Only errors whose message contains this text.
    pub reason: Option<String>,
}

/// What one committed batch adds, saved in the batch's transaction.
#[derive(Debug, Clone, Default)]
pub struct Progress {
    pub run_id: i64,
    pub mapping: String,
    pub read: i64,
    pub written: i64,
    pub filtered: i64,
    pub failed: i64,
    /// (table, rows written, rows unchanged, rows inserted if known).
    pub tables: Vec<(String, i64, i64, Option<i64>)>,
    /// The new checkpoint (resume after this) and the records of the pass so far.
    pub position: Option<Position>,
    pub records_committed: i64,
    pub mapping_checksum: String,
    pub source_fingerprint: String,
    /// The pass the batch belongs to (rows written are stamped with it).
    pub pass_id: i64,
    /// Progress samples taken since the last batch, saved with this one.
    pub samples: Vec<samples::Sample>,
}

/// Who holds (or wants) a mapping's run lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub host: String,
    pub pid: i64,
    pub run_id: Option<i64>,
    pub acquired_at: String,
    pub heartbeat_at: String,
}

impl fmt::Display for Holder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "process {} on host {}", self.pid, self.host)?;
        if let Some(r) = self.run_id {
            write!(f, " (run {r})")?;
        }
        write!(f, ", started {}", self.acquired_at)
    }
}

/// Seconds without a heartbeat after which a holder on another host is stale.
pub const STALE_AFTER_SECS: i64 = 120;

pub fn this_host() -> String {
    gethostname::gethostname().to_string_lossy().to_string()
}

pub fn now_text() -> String {
    chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

/// Whether a process is alive on this host.
pub fn pid_alive(pid: i64) -> bool {
    if pid <= 0 || pid > i64::from(i32::MAX) {
        return false;
    }
    // SAFETY: kill with signal 0 only checks for existence and permission.
    let r = unsafe { libc::kill(pid as libc::pid_t, 0) };
    r == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// Whether process `pid` runs the same program as this one, where the system
/// tells (Linux `/proc/PID/comm`): a holder that died long ago may have its pid
/// reused by an unrelated process, which must not keep the lock alive.
fn same_program(pid: i64) -> bool {
    let comm = |p: &str| std::fs::read_to_string(format!("/proc/{p}/comm"));
    match (comm("self"), comm(&pid.to_string())) {
        (Ok(me), Ok(other)) => me.trim() == other.trim(),
        // No /proc, or the process went away meanwhile: the pid check decides.
        _ => true,
    }
}

impl Holder {
    pub fn me(run_id: Option<i64>) -> Holder {
        let now = now_text();
        Holder {
            host: this_host(),
            pid: i64::from(std::process::id()),
            run_id,
            acquired_at: now.clone(),
            heartbeat_at: now,
        }
    }

    /// A holder is alive when its process exists (same host) or its heartbeat is
    /// recent (another host).
    pub fn is_alive(&self) -> bool {
        if self.host == this_host() {
            return pid_alive(self.pid) && same_program(self.pid);
        }
        match chrono::DateTime::parse_from_rfc3339(&self.heartbeat_at) {
            Ok(t) => {
                (chrono::Utc::now() - t.with_timezone(&chrono::Utc)).num_seconds()
                    < STALE_AFTER_SECS
            }
            Err(_) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn liveness() {
        let me = Holder::me(None);
        assert!(me.is_alive());
        let gone = Holder {
            pid: 999_999_999,
            ..me.clone()
        };
        assert!(!gone.is_alive());
        // A live process that is not cutover (pid 1 here: init, or the test
        // harness in a container) does not hold a lock.
        let reused = Holder {
            pid: 1,
            ..me.clone()
        };
        if std::fs::read_to_string("/proc/1/comm").is_ok_and(|c| !c.contains("cutover")) {
            assert!(!reused.is_alive());
        }
        let remote_stale = Holder {
            host: "elsewhere".into(),
            heartbeat_at: "2020-01-01T00:00:00Z".into(),
            ..me.clone()
        };
        assert!(!remote_stale.is_alive());
        let remote_fresh = Holder {
            host: "elsewhere".into(),
            heartbeat_at: now_text(),
            ..me
        };
        assert!(remote_fresh.is_alive());
    }
}
