//! What the tracking tables of one target say, as a [`Report`]: per mapping, the
//! last full pass (a pass resumed over several runs counts as one) and every run
//! after it, their rows per table and progress samples, the unresolved
//! failures by reason, and the last recorded verify.

use super::{
    FailureGroup, MappingReport, Report, ReportError, RunReport, TableRows, Totals, VerifySummary,
};
use crate::pipeline::normalize_reason;
use crate::sink::Target;
use crate::tracking::passes::{PassKind, PassRow};
use crate::tracking::verifies::ErrorMessage;
use crate::tracking::{RunRow, RunStatus};
use std::collections::HashMap;

/// Example keys kept per failure reason.
const EXAMPLES: usize = 3;

/// Seconds between two tracking times (RFC 3339 text).
pub(super) fn seconds_between(from: &str, to: &str) -> Option<f64> {
    let a = chrono::DateTime::parse_from_rfc3339(from).ok()?;
    let b = chrono::DateTime::parse_from_rfc3339(to).ok()?;
    Some(((b - a).num_milliseconds() as f64 / 1000.0).max(0.0))
}

fn rate(records: i64, seconds: f64) -> Option<f64> {
    (records > 0 && seconds > 0.0).then(|| records as f64 / seconds)
}

/// Quote a word for a POSIX shell when it needs it.
pub(super) fn shell_word(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=@,+".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// The longest literal part of a normalised reason (what `--reason` looks for).
fn reason_text(reason: &str) -> &str {
    reason
        .split("<value>")
        .map(str::trim)
        .max_by_key(|p| p.len())
        .unwrap_or(reason)
}

/// Error messages grouped by reason (stage, column, message without its value).
fn failure_groups(mapping: &str, target: &str, msgs: Vec<ErrorMessage>) -> Vec<FailureGroup> {
    let mut groups: Vec<FailureGroup> = Vec::new();
    let mut at: HashMap<(String, Option<String>, String), usize> = HashMap::new();
    for m in msgs {
        let reason = normalize_reason(&m.message);
        let key = (m.stage.clone(), m.column.clone(), reason.clone());
        let i = *at.entry(key).or_insert_with(|| {
            let mut cmd = format!(
                "cutover errors --mapping {} --unresolved --stage {}",
                shell_word(mapping),
                shell_word(&m.stage)
            );
            if let Some(c) = &m.column {
                cmd.push_str(&format!(" --column {}", shell_word(c)));
            }
            cmd.push_str(&format!(
                " --reason {} --target {}",
                shell_word(reason_text(&reason)),
                shell_word(target)
            ));
            groups.push(FailureGroup {
                stage: m.stage.clone(),
                column: m.column.clone(),
                reason: reason.clone(),
                count: 0,
                examples: Vec::new(),
                command: cmd,
            });
            groups.len() - 1
        });
        let g = &mut groups[i];
        g.count += m.count;
        if g.examples.len() < EXAMPLES && !g.examples.contains(&m.example) {
            g.examples.push(m.example);
        }
    }
    // Largest first; equal counts in the order they first failed.
    groups.sort_by_key(|g| std::cmp::Reverse(g.count));
    groups
}

/// A run that is neither a pass nor a retry: `retry` or `undo` (by its options).
fn other_kind(options: &serde_json::Value) -> Option<&'static str> {
    if options.get("retry").and_then(serde_json::Value::as_bool) == Some(true) {
        Some("retry")
    } else if options.get("kind").and_then(serde_json::Value::as_str) == Some("undo") {
        Some("undo")
    } else {
        None
    }
}

/// Which run starts the reported pass: the start of the last full pass that
/// was not undone, else (runs from before passes were recorded) the last run
/// that was not a retry or an undo.
fn pass_start(runs: &[RunRow], passes: &HashMap<i64, PassRow>) -> Option<i64> {
    let other =
        |r: &RunRow| other_kind(&serde_json::from_str(&r.options).unwrap_or_default()).is_some();
    runs.iter()
        .rev()
        .filter(|r| r.status != RunStatus::Undone)
        .find(|r| match passes.get(&r.id) {
            Some(p) => p.kind == PassKind::Full && p.pass_id == r.id,
            None => !other(r),
        })
        .or_else(|| runs.first())
        .map(|r| r.id)
}

async fn run_report(
    target: &dyn Target,
    r: &RunRow,
    pass: Option<&PassRow>,
    in_pass: bool,
) -> Result<RunReport, ReportError> {
    let options: serde_json::Value = serde_json::from_str(&r.options).unwrap_or_default();
    let opt_int = |k: &str| options.get(k).and_then(serde_json::Value::as_i64);
    let kind = match (pass, other_kind(&options)) {
        (Some(p), _) => p.kind.to_string(),
        (None, Some(k)) => k.into(),
        (None, None) => "full".into(),
    };
    let end = r.finished_at.as_deref().or(r.heartbeat_at.as_deref());
    let seconds = end.and_then(|e| seconds_between(&r.started_at, e));
    Ok(RunReport {
        id: r.id,
        kind,
        in_pass,
        status: r.status,
        started_at: r.started_at.clone(),
        finished_at: r.finished_at.clone(),
        seconds,
        records_read: r.records_read,
        records_written: r.records_written,
        records_filtered: r.records_filtered,
        records_failed: r.records_failed,
        rows_written: r.rows_written,
        rows_unchanged: r.rows_unchanged,
        records_per_second: seconds.and_then(|s| rate(r.records_read, s)),
        batch_size: opt_int("batch_size"),
        workers: opt_int("workers"),
        resumed_from_run: opt_int("resumed_from_run"),
        message: r.message.clone(),
        samples: target.store().samples(r.id).await?,
    })
}

async fn mapping_report(
    target: &dyn Target,
    name: &str,
    runs: Vec<RunRow>,
    passes: &HashMap<i64, PassRow>,
) -> Result<MappingReport, ReportError> {
    let display = target.display_url();
    let start = pass_start(&runs, passes);
    let mut m = MappingReport {
        mapping: name.to_string(),
        pass_id: start,
        status: None,
        seconds: 0.0,
        records_read: 0,
        records_written: 0,
        records_filtered: 0,
        records_failed: 0,
        rows_written: 0,
        rows_unchanged: 0,
        rows_inserted: Some(0),
        rows_deleted: 0,
        records_per_second: None,
        tables: Vec::new(),
        runs: Vec::new(),
        errors_unresolved: 0,
        errors_resolved: 0,
        failures: Vec::new(),
        verify: None,
    };
    for r in runs.iter().filter(|r| start.is_some_and(|s| r.id >= s)) {
        let pass = passes.get(&r.id);
        let in_pass = Some(r.id) == start || pass.is_some_and(|p| Some(p.pass_id) == start);
        let report = run_report(target, r, pass, in_pass).await?;
        if in_pass {
            m.status = Some(r.status);
            m.seconds += report.seconds.unwrap_or(0.0);
            m.records_read += r.records_read;
            m.records_written += r.records_written;
            m.records_filtered += r.records_filtered;
            m.records_failed += r.records_failed;
            m.rows_written += r.rows_written;
            m.rows_unchanged += r.rows_unchanged;
            m.rows_inserted = m.rows_inserted.zip(r.rows_inserted).map(|(a, b)| a + b);
            let deleted = target.store().run_deletes(r.id).await?;
            for c in target.store().table_counts(r.id).await? {
                let gone = deleted
                    .iter()
                    .find(|(t, _)| *t == c.table_name)
                    .map_or(0, |(_, n)| *n);
                let i = match m.tables.iter().position(|t| t.table == c.table_name) {
                    Some(i) => i,
                    None => {
                        m.tables.push(TableRows {
                            table: c.table_name.clone(),
                            rows_written: 0,
                            rows_inserted: Some(0),
                            rows_updated: Some(0),
                            rows_unchanged: 0,
                            rows_deleted: 0,
                        });
                        m.tables.len() - 1
                    }
                };
                let t = &mut m.tables[i];
                t.rows_written += c.rows_written;
                t.rows_unchanged += c.rows_unchanged;
                t.rows_deleted += gone;
                t.rows_inserted = t.rows_inserted.zip(c.rows_inserted).map(|(a, b)| a + b);
                t.rows_updated = t
                    .rows_updated
                    .zip(c.rows_inserted)
                    .map(|(a, i)| a + c.rows_written - i);
            }
            m.rows_deleted += deleted.iter().map(|(_, n)| n).sum::<i64>();
        }
        m.runs.push(report);
    }
    if m.runs.is_empty() {
        m.rows_inserted = None;
    }
    m.records_per_second = rate(m.records_read, m.seconds);
    let (unresolved, resolved) = target.store().error_counts(name).await?;
    m.errors_unresolved = unresolved;
    m.errors_resolved = resolved;
    m.failures = failure_groups(name, &display, target.store().error_messages(name).await?);
    if let Some(v) = target.store().last_verify(name).await? {
        // A document this version cannot read is shown as not recorded.
        if let Ok(doc) = serde_json::from_value::<crate::verify::Report>(v.report.clone()) {
            let last_run = runs.last().map(|r| r.id);
            m.verify = Some(VerifySummary {
                verdict: doc.verdict,
                finished_at: v.finished_at,
                duration_ms: v.duration_ms,
                sampled: v.sampled,
                run_id: v.run_id,
                outdated: last_run.is_some() && last_run > v.run_id,
                records_read: doc.records_read,
                records_failing: doc.records_failing,
                unresolved_errors: doc.unresolved_errors,
                tables: doc.tables,
                checks: doc.checks,
            });
        }
    }
    Ok(m)
}

/// The report of one target: the mappings named in `only` (all with runs when
/// empty), in the order their reported passes started.
pub async fn gather(target: &dyn Target, only: &[String]) -> Result<Report, ReportError> {
    target.ensure_tracking().await?;
    let all = target.store().runs(None).await?;
    let passes: HashMap<i64, PassRow> = target
        .store()
        .passes(None)
        .await?
        .into_iter()
        .map(|p| (p.run_id, p))
        .collect();
    let mut names: Vec<String> = only.to_vec();
    if names.is_empty() {
        for r in all.iter().filter(|r| !r.dry_run) {
            if !names.contains(&r.mapping) {
                names.push(r.mapping.clone());
            }
        }
    }
    let mut mappings = Vec::with_capacity(names.len());
    for n in &names {
        let runs: Vec<RunRow> = all
            .iter()
            .filter(|r| &r.mapping == n && !r.dry_run)
            .cloned()
            .collect();
        mappings.push(mapping_report(target, n, runs, &passes).await?);
    }
    // Run order: by the run that started each pass (mappings without runs last).
    mappings.sort_by_key(|m| m.pass_id.unwrap_or(i64::MAX));
    let mut totals = Totals::default();
    for m in &mappings {
        totals.seconds += m.seconds;
        totals.records_read += m.records_read;
        totals.records_written += m.records_written;
        totals.records_filtered += m.records_filtered;
        totals.records_failed += m.records_failed;
        totals.rows_written += m.rows_written;
        totals.rows_unchanged += m.rows_unchanged;
        totals.rows_deleted += m.rows_deleted;
        totals.errors_unresolved += m.errors_unresolved;
    }
    Ok(Report {
        target: target.display_url(),
        generated_at: crate::tracking::now_text(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        mappings,
        totals,
        forecast: None,
        compare: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(
        stage: &str,
        column: Option<&str>,
        message: &str,
        count: i64,
        key: &str,
    ) -> ErrorMessage {
        ErrorMessage {
            stage: stage.into(),
            column: column.map(str::to_string),
            message: message.into(),
            count,
            example: key.into(),
            first_id: 0,
        }
    }

    #[test]
    fn failures_group_by_reason_without_the_value() {
        let g = failure_groups(
            "m",
            "sqlite://t.db",
            vec![
                msg("transform", Some("t.n"), "'12a' is not an integer", 2, "k1"),
                msg("read", None, "invalid JSON", 1, "f:line 3"),
                msg("transform", Some("t.n"), "'x' is not an integer", 3, "k2"),
            ],
        );
        assert_eq!(g.len(), 2);
        assert_eq!(g[0].reason, "<value> is not an integer");
        assert_eq!(g[0].count, 5);
        assert_eq!(g[0].examples, ["k1", "k2"]);
        assert_eq!(
            g[0].command,
            "cutover errors --mapping m --unresolved --stage transform --column t.n --reason 'is not an integer' --target sqlite://t.db"
        );
        assert_eq!(g[1].id(), "read: invalid JSON");
        assert_eq!(shell_word("it's"), r"'it'\''s'");
    }

    fn run(id: i64, status: RunStatus, options: &str) -> RunRow {
        RunRow {
            id,
            mapping: "m".into(),
            mapping_checksum: String::new(),
            status,
            started_at: String::new(),
            finished_at: None,
            heartbeat_at: None,
            records_read: 0,
            records_written: 0,
            records_filtered: 0,
            records_failed: 0,
            rows_written: 0,
            rows_unchanged: 0,
            rows_inserted: None,
            dry_run: false,
            host: String::new(),
            pid: 0,
            options: options.into(),
            message: None,
        }
    }

    #[test]
    fn the_reported_pass_is_the_last_full_pass_not_undone() {
        let pass = |run_id: i64, pass_id: i64| PassRow {
            run_id,
            pass_id,
            kind: PassKind::Full,
            watermark: None,
            low: None,
            high: None,
            high_key: None,
            mapping_checksum: String::new(),
        };
        let passes: HashMap<i64, PassRow> =
            [(1, pass(1, 1)), (2, pass(2, 1)), (4, pass(4, 4))].into();
        let ok = RunStatus::Succeeded;
        let runs = vec![
            run(1, RunStatus::Interrupted, "{}"),
            run(2, ok, "{}"),                // resumes the pass of run 1
            run(3, ok, r#"{"retry":true}"#), // no pass
            run(4, RunStatus::Undone, "{}"),
            run(5, ok, r#"{"kind":"undo","runs":[4]}"#),
        ];
        assert_eq!(pass_start(&runs, &passes), Some(1));
        assert_eq!(pass_start(&runs[..2], &passes), Some(1));
        // Runs from before passes were recorded: the last one that loaded.
        assert_eq!(pass_start(&runs[..3], &HashMap::new()), Some(2));
        assert_eq!(pass_start(&[], &passes), None);
    }

    #[test]
    fn durations_from_tracking_times() {
        assert_eq!(
            seconds_between("2026-01-01T00:00:00.000Z", "2026-01-01T00:01:01.500Z"),
            Some(61.5)
        );
        assert_eq!(seconds_between("nope", "2026-01-01T00:00:00Z"), None);
    }
}
