//! `cutover undo`: take runs back and print what changed (or would, or why not).

use super::load::load_all;
use super::render::{print_run_error, print_table};
use super::{Code, TargetOpts};
use anyhow::Result;
use cutover::pipeline::{undo_mapping, UndoOptions, UndoReport};
use std::path::PathBuf;

pub(super) async fn undo(
    paths: &[PathBuf],
    target: &TargetOpts,
    opts: &UndoOptions,
    json: bool,
) -> Result<Code> {
    let mappings = match load_all(paths) {
        Ok(m) => m,
        Err(e) => {
            print_run_error(&e);
            return Ok(e.exit_code());
        }
    };
    let t = target.connect().await?;
    let mut code = 0;
    // Children before parents: the reverse of the order `run` takes them in.
    for m in mappings.iter().rev() {
        let r = match undo_mapping(t.as_ref(), m, opts).await {
            Ok(r) => r,
            Err(e) => {
                print_run_error(&e);
                t.close().await;
                return Ok(e.exit_code());
            }
        };
        if json {
            println!("{}", serde_json::to_string(&r)?);
        } else {
            print_report(&r, opts);
        }
        if !r.conflicts.is_empty() && !opts.force && !r.resumed {
            // Nothing was changed; the mappings before this one are left alone too.
            code = 1;
            break;
        }
    }
    t.close().await;
    Ok(code)
}

fn print_report(r: &UndoReport, opts: &UndoOptions) {
    if let Some(why) = &r.nothing {
        println!("{}  nothing to undo: {why}", r.mapping);
        return;
    }
    let runs = r
        .runs
        .iter()
        .map(|n| n.to_string())
        .collect::<Vec<_>>()
        .join(", ");
    let blocked = !r.conflicts.is_empty() && !opts.force && !r.resumed;
    let head = if r.dry_run {
        format!("would undo run(s) {runs} (dry run: nothing changed)")
    } else if blocked {
        format!("refused to undo run(s) {runs}: rows changed since (nothing changed)")
    } else if r.resumed {
        format!(
            "finished the undo of run(s) {runs} that had stopped (undo run {})",
            r.undo_run.unwrap_or(0)
        )
    } else {
        format!("undid run(s) {runs} (undo run {})", r.undo_run.unwrap_or(0))
    };
    println!("{}  {head}", r.mapping);
    let mut rows = vec![[
        "table",
        "inserted rows deleted",
        "updated rows restored",
        "deleted rows re-inserted",
        "example keys",
    ]
    .map(String::from)
    .to_vec()];
    for t in &r.tables {
        rows.push(vec![
            t.table.clone(),
            t.deleted.to_string(),
            t.restored.to_string(),
            t.reinserted.to_string(),
            t.example_keys
                .iter()
                .map(|k| k.join("/"))
                .collect::<Vec<_>>()
                .join(", "),
        ]);
    }
    if r.tables.is_empty() {
        println!("  no rows to change");
    } else {
        print_table(&rows, "  ");
    }
    if r.keymap_removed > 0 || r.errors_unresolved > 0 {
        println!(
            "  key map entries removed: {}; error rows unresolved again: {}",
            r.keymap_removed, r.errors_unresolved
        );
    }
    if !r.conflicts.is_empty() {
        println!(
            "  {} row(s) changed since by something other than cutover{}:",
            r.conflicts.len(),
            if opts.force && !r.dry_run {
                " (restored anyway: --force)"
            } else if r.dry_run {
                ""
            } else {
                "; run again with --force to restore them anyway"
            }
        );
        for c in r.conflicts.iter().take(20) {
            let cols = if c.columns.is_empty() {
                String::new()
            } else {
                format!(" (columns {})", c.columns.join(", "))
            };
            println!("    {} ({}): {}{cols}", c.table, c.key.join(", "), c.reason);
        }
        if r.conflicts.len() > 20 {
            println!(
                "    … and {} more (--json lists them all)",
                r.conflicts.len() - 20
            );
        }
    }
}
