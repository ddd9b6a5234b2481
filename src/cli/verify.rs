//! `cutover verify`: reconcile source and target, print the verdicts and
//! record each mapping's result on the target (`cutover_verifies`).

use super::load::load_all;
use super::render::{print_run_error, print_table};
use super::{Code, TargetOpts};
use anyhow::Result;
use std::path::PathBuf;

/// Record a verify in `cutover_verifies`, with the mapping's last run.
async fn record(
    t: &dyn cutover::sink::Target,
    r: &cutover::verify::Report,
    sampled: bool,
    started_at: &str,
    clock: std::time::Instant,
) -> Result<()> {
    let run_id = t.store().runs(Some(&r.mapping)).await?.last().map(|r| r.id);
    let doc = serde_json::to_value(r)?;
    let verdict = format!("{:?}", r.verdict).to_uppercase();
    t.store()
        .record_verify(&cutover::tracking::verifies::NewVerify {
            mapping: &r.mapping,
            run_id,
            verdict: &verdict,
            sampled,
            started_at,
            duration_ms: i64::try_from(clock.elapsed().as_millis()).unwrap_or(i64::MAX),
            report: &doc,
        })
        .await?;
    Ok(())
}

pub(super) async fn verify(
    paths: &[PathBuf],
    target: &TargetOpts,
    opts: &cutover::verify::Options,
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
    let mut stopped = false;
    for m in mappings {
        let started_at = cutover::tracking::now_text();
        let clock = std::time::Instant::now();
        let r = match cutover::verify::verify(t.as_ref(), m, opts).await {
            Ok(r) => r,
            Err(e) => {
                print_run_error(&e);
                t.close().await;
                return Ok(e.exit_code().max(1));
            }
        };
        worst = worst.max(r.verdict);
        stopped |= r.incomplete.is_some();
        // Recorded on the target for `cutover report`; a verify that cannot be
        // recorded still gives its verdict.
        if let Err(e) = record(t.as_ref(), &r, opts.sample.is_some(), &started_at, clock).await {
            eprintln!(
                "warning: the verify of {} was not recorded on the target: {e:#}",
                r.mapping
            );
        }
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
        if let Some(why) = &r.incomplete {
            println!("  INCOMPLETE: stopped because {why}; what is above is what was found so far");
        }
        for tb in &r.tables {
            if let Some(why) = &tb.rows_because {
                println!("  {}: compared row by row: {why}", tb.table);
            }
            if tb.segments_unexplained > 0 {
                println!(
                    "  {}: {} of {} differing segments matched row by row: the source or the target changed during the verify, or the target keeps a value in another form",
                    tb.table, tb.segments_unexplained, tb.segments_differing
                );
            }
            for d in &tb.examples {
                if d.extra {
                    println!(
                        "  {}: key ({}): extra (no record produces it)",
                        tb.table, d.key
                    );
                    continue;
                }
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
    Ok(if worst == Verdict::Failed || stopped {
        1
    } else {
        0
    })
}
