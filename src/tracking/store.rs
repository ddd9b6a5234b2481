//! Every read and write of the tracking tables, written once for all dialects
//! over [`Exec`]: statement texts with `?` placeholders, and a few clauses that
//! differ by dialect ([`upsert`], the order of `cutover_run_tables`).
//!
//! [`Store`] holds the reads and the run bookkeeping done outside a batch; the
//! writes a batch makes inside its transaction are in [`super::batch`].

use super::{
    now_text, CheckpointRow, ErrorFilter, ErrorRecord, Holder, NewRun, RunRow, RunStatus,
    TableCount,
};
use crate::db::{ctx, Arg, DbFailure, Exec, Row, TargetError};
use crate::dialect::Dialect;

/// Rows per multi-row statement: under every dialect's bind limit (SQLite's
/// 32,766 is the lowest) with up to nine columns per row.
pub(super) const ROWS_PER_STATEMENT: usize = 500;

/// How a column is set when an upsert finds the row.
#[derive(Clone, Copy)]
pub(super) enum Set {
    /// Take the new value.
    Replace,
    /// Add the new value to the old one.
    Add,
    /// Add when the new value is known; a NULL keeps the old value.
    AddKnown,
}

/// `ON CONFLICT (key) DO UPDATE SET ...` (SQLite, PostgreSQL) or `ON DUPLICATE
/// KEY UPDATE ...` (MySQL) for a tracking table.
pub(super) fn upsert(d: Dialect, table: &str, key: &[&str], sets: &[(&str, Set)]) -> String {
    let set = |c: &str, how: Set| -> String {
        let (old, new) = match d {
            Dialect::Mysql => (c.to_string(), format!("VALUES({c})")),
            _ => (format!("{table}.{c}"), format!("excluded.{c}")),
        };
        let value = match how {
            Set::Replace => new,
            Set::Add => format!("{old} + {new}"),
            Set::AddKnown => {
                format!("CASE WHEN {new} IS NULL THEN {old} ELSE COALESCE({old}, 0) + {new} END")
            }
        };
        format!("{c} = {value}")
    };
    let sets: Vec<String> = sets.iter().map(|(c, h)| set(c, *h)).collect();
    match d {
        Dialect::Mysql => format!("ON DUPLICATE KEY UPDATE {}", sets.join(", ")),
        _ => format!(
            "ON CONFLICT ({}) DO UPDATE SET {}",
            key.join(", "),
            sets.join(", ")
        ),
    }
}

/// `(?, ?, ?), (?, ?, ?)`: `rows` tuples of `cols` placeholders.
pub(super) fn tuples(rows: usize, cols: usize) -> String {
    let one = format!("({})", vec!["?"; cols].join(", "));
    vec![one.as_str(); rows].join(", ")
}

fn run_row(r: &Row) -> Result<RunRow, DbFailure> {
    Ok(RunRow {
        id: r.int("id")?,
        mapping: r.text("mapping")?,
        mapping_checksum: r.text("mapping_checksum")?,
        status: RunStatus::parse(&r.text("status")?),
        started_at: r.text("started_at")?,
        finished_at: r.opt_text("finished_at")?,
        heartbeat_at: r.opt_text("heartbeat_at")?,
        records_read: r.int("records_read")?,
        records_written: r.int("records_written")?,
        records_filtered: r.int("records_filtered")?,
        records_failed: r.int("records_failed")?,
        rows_written: r.int("rows_written")?,
        rows_unchanged: r.int("rows_unchanged")?,
        rows_inserted: r.opt_int("rows_inserted")?,
        dry_run: r.bool("dry_run")?,
        host: r.text("host")?,
        pid: r.int("pid")?,
        options: r.text("options")?,
        message: r.opt_text("message")?,
    })
}

fn checkpoint_row(r: &Row) -> Result<CheckpointRow, DbFailure> {
    Ok(CheckpointRow {
        mapping: r.text("mapping")?,
        shard: r.int("shard")?,
        run_id: r.int("run_id")?,
        position: r.opt_text("position")?,
        records_committed: r.int("records_committed")?,
        mapping_checksum: r.text("mapping_checksum")?,
        source_fingerprint: r.text("source_fingerprint")?,
        updated_at: r.text("updated_at")?,
    })
}

fn error_row(r: &Row) -> Result<ErrorRecord, DbFailure> {
    Ok(ErrorRecord {
        id: r.int("id")?,
        run_id: r.int("run_id")?,
        mapping: r.text("mapping")?,
        record_key: r.text("record_key")?,
        position: r.opt_text("position")?,
        stage: r.text("stage")?,
        column_name: r.opt_text("column_name")?,
        message: r.text("message")?,
        record: r.opt_text("record")?,
        created_at: r.text("created_at")?,
        resolved_at: r.opt_text("resolved_at")?,
    })
}

fn table_count(r: &Row) -> Result<TableCount, DbFailure> {
    Ok(TableCount {
        run_id: r.int("run_id")?,
        table_name: r.text("table_name")?,
        rows_written: r.int("rows_written")?,
        rows_unchanged: r.int("rows_unchanged")?,
        rows_inserted: r.opt_int("rows_inserted")?,
    })
}

fn holder_row(r: &Row) -> Result<Holder, DbFailure> {
    Ok(Holder {
        run_id: r.opt_int("run_id")?,
        host: r.text("host")?,
        pid: r.int("pid")?,
        acquired_at: r.text("acquired_at")?,
        heartbeat_at: r.text("heartbeat_at")?,
    })
}

fn all<T>(rows: Vec<Row>, f: fn(&Row) -> Result<T, DbFailure>) -> Result<Vec<T>, DbFailure> {
    rows.iter().map(f).collect()
}

/// The tracking tables of one target, read and written outside a batch.
pub struct Store<'a> {
    pub(super) db: Box<dyn Exec + 'a>,
}

impl<'a> Store<'a> {
    pub fn new(db: Box<dyn Exec + 'a>) -> Store<'a> {
        Store { db }
    }

    fn dialect(&self) -> Dialect {
        self.db.dialect()
    }

    pub async fn start_run(&mut self, run: &NewRun) -> Result<i64, TargetError> {
        let now = now_text();
        self.db
            .insert_id(
                "INSERT INTO cutover_runs (mapping, mapping_checksum, status, started_at, heartbeat_at, dry_run, host, pid, options)
                 VALUES (?, ?, 'running', ?, ?, ?, ?, ?, ?)",
                &[
                    Arg::Text(&run.mapping),
                    Arg::Text(&run.checksum),
                    Arg::Text(&now),
                    Arg::Text(&now),
                    Arg::Bool(run.dry_run),
                    Arg::Text(&run.host),
                    Arg::Int(i64::from(run.pid)),
                    Arg::Text(&run.options),
                ],
            )
            .await
            .map_err(ctx("recording the run"))
    }

    pub async fn finish_run(
        &mut self,
        run_id: i64,
        status: RunStatus,
        message: Option<&str>,
    ) -> Result<(), TargetError> {
        let now = now_text();
        self.db
            .execute(
                "UPDATE cutover_runs SET status = ?, finished_at = ?, message = COALESCE(?, message) WHERE id = ?",
                &[
                    Arg::Text(status.as_str()),
                    Arg::Text(&now),
                    Arg::OptText(message),
                    Arg::Int(run_id),
                ],
            )
            .await
            .map_err(ctx("finishing the run"))?;
        Ok(())
    }

    /// Mark `running` runs of a mapping whose process is gone as interrupted.
    pub async fn mark_abandoned(
        &mut self,
        mapping: &str,
        message: &str,
    ) -> Result<u64, TargetError> {
        self.db
            .execute(
                "UPDATE cutover_runs SET status = 'interrupted', finished_at = COALESCE(heartbeat_at, started_at), message = ?
                 WHERE mapping = ? AND status = 'running'",
                &[Arg::Text(message), Arg::Text(mapping)],
            )
            .await
            .map_err(ctx("marking abandoned runs"))
    }

    /// The run that wrote the mapping's checkpoint: a run resumes when that run
    /// did not succeed. (Retry runs never move the checkpoint, so they never
    /// decide a resume; a pass that failed before its first commit leaves the
    /// previous checkpoint and its run in place.)
    pub async fn checkpoint_run(&mut self, mapping: &str) -> Result<Option<RunRow>, TargetError> {
        let c = ctx("reading the run of the checkpoint");
        let row = self
            .db
            .fetch_one(
                "SELECT r.* FROM cutover_runs r JOIN cutover_checkpoints c ON c.run_id = r.id WHERE c.mapping = ? AND c.shard = 0",
                &[Arg::Text(mapping)],
            )
            .await
            .map_err(&c)?;
        row.as_ref().map(run_row).transpose().map_err(c)
    }

    pub async fn checkpoint(
        &mut self,
        mapping: &str,
    ) -> Result<Option<CheckpointRow>, TargetError> {
        let c = ctx("reading the checkpoint");
        let row = self
            .db
            .fetch_one(
                "SELECT * FROM cutover_checkpoints WHERE mapping = ? AND shard = 0",
                &[Arg::Text(mapping)],
            )
            .await
            .map_err(&c)?;
        row.as_ref().map(checkpoint_row).transpose().map_err(c)
    }

    pub async fn unresolved_errors(&mut self, mapping: &str) -> Result<i64, TargetError> {
        let c = ctx("counting errors");
        let row = self
            .db
            .fetch_one(
                "SELECT count(*) AS n FROM cutover_errors WHERE mapping = ? AND resolved_at IS NULL",
                &[Arg::Text(mapping)],
            )
            .await
            .map_err(&c)?;
        row.map_or(Ok(0), |r| r.int("n")).map_err(c)
    }

    pub async fn runs(&mut self, mapping: Option<&str>) -> Result<Vec<RunRow>, TargetError> {
        let c = ctx("reading runs");
        let rows = match mapping {
            Some(m) => {
                self.db
                    .fetch(
                        "SELECT * FROM cutover_runs WHERE mapping = ? ORDER BY id",
                        &[Arg::Text(m)],
                    )
                    .await
            }
            None => {
                self.db
                    .fetch("SELECT * FROM cutover_runs ORDER BY id", &[])
                    .await
            }
        }
        .map_err(&c)?;
        all(rows, run_row).map_err(c)
    }

    pub async fn checkpoints(&mut self) -> Result<Vec<CheckpointRow>, TargetError> {
        let c = ctx("reading checkpoints");
        let rows = self
            .db
            .fetch(
                "SELECT * FROM cutover_checkpoints ORDER BY mapping, shard",
                &[],
            )
            .await
            .map_err(&c)?;
        all(rows, checkpoint_row).map_err(c)
    }

    /// Rows per table of a run, in the order the tables were first written.
    pub async fn table_counts(&mut self, run_id: i64) -> Result<Vec<TableCount>, TargetError> {
        let c = ctx("reading table counts");
        // The order rows were inserted in: SQLite's rowid, a sequence column on
        // MySQL, the physical order on PostgreSQL (rows only grow in place).
        let order = match self.dialect() {
            Dialect::Sqlite => "rowid",
            Dialect::Mysql => "seq",
            Dialect::Postgres => "ctid",
        };
        let sql = format!(
            "SELECT run_id, table_name, rows_written, rows_unchanged, rows_inserted FROM cutover_run_tables WHERE run_id = ? ORDER BY {order}"
        );
        let rows = self.db.fetch(&sql, &[Arg::Int(run_id)]).await.map_err(&c)?;
        all(rows, table_count).map_err(c)
    }

    pub async fn errors(&mut self, f: &ErrorFilter) -> Result<Vec<ErrorRecord>, TargetError> {
        let c = ctx("reading errors");
        let mut sql = String::from("SELECT * FROM cutover_errors WHERE 1 = 1");
        let mut args: Vec<Arg<'_>> = Vec::new();
        if let Some(m) = &f.mapping {
            sql.push_str(" AND mapping = ?");
            args.push(Arg::Text(m));
        }
        if let Some(r) = f.run_id {
            sql.push_str(" AND run_id = ?");
            args.push(Arg::Int(r));
        }
        if f.unresolved_only {
            sql.push_str(" AND resolved_at IS NULL");
        }
        if let Some(s) = &f.stage {
            sql.push_str(" AND stage = ?");
            args.push(Arg::Text(s));
        }
        if let Some(col) = &f.column {
            sql.push_str(" AND column_name = ?");
            args.push(Arg::Text(col));
        }
        if let Some(r) = &f.reason {
            // A plain substring test (LIKE would read % and _ in the text).
            sql.push_str(match self.dialect() {
                Dialect::Sqlite => " AND instr(message, ?) > 0",
                Dialect::Postgres => " AND strpos(message, ?) > 0",
                Dialect::Mysql => " AND LOCATE(?, message) > 0",
            });
            args.push(Arg::Text(r));
        }
        sql.push_str(" ORDER BY id");
        if let Some(l) = f.limit {
            sql.push_str(" LIMIT ?");
            args.push(Arg::Int(l));
        }
        let rows = self.db.fetch(&sql, &args).await.map_err(&c)?;
        all(rows, error_row).map_err(c)
    }

    /// New keys recorded in `cutover_keymap` by `mapping` for these legacy keys.
    pub async fn keymap_get(
        &mut self,
        mapping: &str,
        legacy: &[String],
    ) -> Result<Vec<(String, String)>, TargetError> {
        let c = ctx("reading the key map");
        let mut out = Vec::with_capacity(legacy.len());
        for chunk in legacy.chunks(ROWS_PER_STATEMENT) {
            let sql = format!(
                "SELECT legacy_key, new_key FROM cutover_keymap WHERE mapping = ? AND legacy_key IN ({})",
                vec!["?"; chunk.len()].join(", ")
            );
            let mut args = vec![Arg::Text(mapping)];
            args.extend(chunk.iter().map(|k| Arg::Text(k)));
            for r in self.db.fetch(&sql, &args).await.map_err(&c)? {
                out.push((
                    r.text("legacy_key").map_err(&c)?,
                    r.text("new_key").map_err(&c)?,
                ));
            }
        }
        Ok(out)
    }

    /// Who holds a mapping's run lock, as its lock row says.
    pub async fn read_holder(&mut self, mapping: &str) -> Result<Option<Holder>, TargetError> {
        let c = ctx("reading the run lock");
        let row = self
            .db
            .fetch_one(
                "SELECT run_id, host, pid, acquired_at, heartbeat_at FROM cutover_locks WHERE mapping = ?",
                &[Arg::Text(mapping)],
            )
            .await
            .map_err(&c)?;
        row.as_ref().map(holder_row).transpose().map_err(c)
    }

    /// Write the lock row of `me`: only where there is none (`replace` false:
    /// the row is the lock itself, true when one was written), or over any
    /// row (`replace` true: a server lock is held already).
    pub async fn write_holder(
        &mut self,
        mapping: &str,
        me: &Holder,
        replace: bool,
    ) -> Result<bool, TargetError> {
        let d = self.dialect();
        let tail = match (replace, d) {
            (false, Dialect::Mysql) => "ON DUPLICATE KEY UPDATE mapping = mapping".to_string(),
            (false, _) => "ON CONFLICT (mapping) DO NOTHING".to_string(),
            (true, _) => upsert(
                d,
                "cutover_locks",
                &["mapping"],
                &[
                    ("run_id", Set::Replace),
                    ("host", Set::Replace),
                    ("pid", Set::Replace),
                    ("acquired_at", Set::Replace),
                    ("heartbeat_at", Set::Replace),
                ],
            ),
        };
        let sql = format!(
            "INSERT INTO cutover_locks (mapping, run_id, host, pid, acquired_at, heartbeat_at) VALUES (?, ?, ?, ?, ?, ?) {tail}"
        );
        let n = self
            .db
            .execute(
                &sql,
                &[
                    Arg::Text(mapping),
                    Arg::OptInt(me.run_id),
                    Arg::Text(&me.host),
                    Arg::Int(me.pid),
                    Arg::Text(&me.acquired_at),
                    Arg::Text(&me.heartbeat_at),
                ],
            )
            .await
            .map_err(ctx("taking the run lock"))?;
        Ok(n == 1)
    }

    /// Remove a holder's lock row (`acquired_at` given: only that holding).
    pub async fn delete_holder(
        &mut self,
        mapping: &str,
        host: &str,
        pid: i64,
        acquired_at: Option<&str>,
    ) -> Result<(), TargetError> {
        let mut sql =
            String::from("DELETE FROM cutover_locks WHERE mapping = ? AND host = ? AND pid = ?");
        let mut args = vec![Arg::Text(mapping), Arg::Text(host), Arg::Int(pid)];
        if let Some(a) = acquired_at {
            sql.push_str(" AND acquired_at = ?");
            args.push(Arg::Text(a));
        }
        self.db
            .execute(&sql, &args)
            .await
            .map_err(ctx("releasing the run lock"))?;
        Ok(())
    }

    /// The run is alive: its lock row and its run row say so.
    pub async fn heartbeat(&mut self, mapping: &str, run_id: i64) -> Result<(), TargetError> {
        let c = ctx("updating the heartbeat");
        let now = now_text();
        self.db
            .execute(
                "UPDATE cutover_locks SET heartbeat_at = ?, run_id = ? WHERE mapping = ? AND pid = ?",
                &[
                    Arg::Text(&now),
                    Arg::Int(run_id),
                    Arg::Text(mapping),
                    Arg::Int(i64::from(std::process::id())),
                ],
            )
            .await
            .map_err(&c)?;
        self.db
            .execute(
                "UPDATE cutover_runs SET heartbeat_at = ? WHERE id = ?",
                &[Arg::Text(&now), Arg::Int(run_id)],
            )
            .await
            .map_err(c)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upserts_per_dialect() {
        let sets = [("a", Set::Replace), ("n", Set::Add), ("i", Set::AddKnown)];
        assert_eq!(
            upsert(Dialect::Postgres, "t", &["k"], &sets),
            "ON CONFLICT (k) DO UPDATE SET a = excluded.a, n = t.n + excluded.n, \
             i = CASE WHEN excluded.i IS NULL THEN t.i ELSE COALESCE(t.i, 0) + excluded.i END"
        );
        assert_eq!(
            upsert(Dialect::Mysql, "t", &["k"], &sets),
            "ON DUPLICATE KEY UPDATE a = VALUES(a), n = n + VALUES(n), \
             i = CASE WHEN VALUES(i) IS NULL THEN i ELSE COALESCE(i, 0) + VALUES(i) END"
        );
        assert_eq!(tuples(2, 3), "(?, ?, ?), (?, ?, ?)");
    }
}
