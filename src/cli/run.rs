//! `cutover run`: load the mappings in order and print each run's summary.

use super::load::load_all;
use super::render::{print_run_error, print_table};
use super::{Code, TargetOpts};
use anyhow::Result;
use cutover::pipeline::{self, Cancel, RunOptions, RunSummary};
use cutover::tracking::RunStatus;
use std::path::PathBuf;

/// (inserted, updated) of rows written, when the target counted inserts.
fn inserted_updated(written: i64, inserted: Option<i64>) -> [String; 2] {
    match inserted {
        Some(i) => [i.to_string(), (written - i).to_string()],
        None => ["-".into(), "-".into()],
    }
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
    if let Some(p) = &s.pass {
        match (p.kind, &p.watermark) {
            (cutover::tracking::passes::PassKind::Delta, Some(w)) => println!(
                "  delta pass: {w} from {} to {}",
                p.low.clone().unwrap_or_default(),
                p.high.clone().unwrap_or_default()
            ),
            (_, Some(w)) => println!(
                "  full pass: read everything; high-water mark of {w}: {}",
                p.high.clone().unwrap_or_default()
            ),
            _ => {}
        }
    }
    if let Some((run, pos)) = &s.resumed_from {
        println!("  resumed from run {run} at {pos}");
    }
    println!(
        "  records: {} read, {} written, {} filtered, {} failed",
        s.records_read, s.records_written, s.records_filtered, s.records_failed
    );
    if s.records_unchanged > 0 {
        println!(
            "  of the written records, {} read exactly as the pass that last wrote them (skipped: not transformed, their rows left as they are; --full writes every record again)",
            s.records_unchanged
        );
    }
    // Inserted and updated are shown where the target tells them apart (a
    // table no row was sent to tells nothing: every record was skipped).
    let split = !s.dry_run
        && s.tables
            .iter()
            .any(|t| t.rows_inserted.is_some() && t.rows_written + t.rows_unchanged > 0);
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
    for (table, n, keys) in &s.would_delete {
        if *n > 0 {
            println!(
                "  would delete {n} rows of {table} whose records are gone (e.g. {})",
                keys.join("; ")
            );
        }
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

pub(super) async fn run(
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
    // Passes whose deletions are carried over once every mapping has loaded,
    // children before parents (the reverse order), so foreign keys hold.
    let mut done = Vec::new();
    for m in mappings {
        match pipeline::run_mapping(t.as_ref(), m.clone(), opts, cancel).await {
            Ok(s) => {
                print_summary(&s);
                let complete = s.status == RunStatus::Succeeded
                    && !s.dry_run
                    && opts
                        .max_errors
                        .is_none_or(|max| s.records_failed as u64 <= max);
                if complete {
                    done.push((m.clone(), s.clone()));
                }
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
    if code == 0 {
        for (m, s) in done.iter().rev() {
            match pipeline::carry_deletions(t.as_ref(), m, s, opts).await {
                Ok(d) => {
                    for (table, n, refused) in &d.tables {
                        if *n > 0 || *refused > 0 {
                            println!(
                                "{}  deleted {n} rows of {table} whose records are gone from the source{}",
                                d.mapping,
                                if *refused > 0 {
                                    format!(" ({refused} refused by the database: see cutover errors --mapping {})", d.mapping)
                                } else {
                                    String::new()
                                }
                            );
                        }
                    }
                }
                Err(e) => {
                    print_run_error(&e);
                    if let Some(id) = s.run_id {
                        let msg = e.to_string();
                        if let Err(f) = t
                            .store()
                            .finish_run(id, RunStatus::Failed, Some(&msg))
                            .await
                        {
                            eprintln!(
                                "warning: could not record the refused deletions on run {id}: {f}"
                            );
                        }
                    }
                    code = e.exit_code();
                    break;
                }
            }
        }
    }
    t.close().await;
    Ok(code)
}
