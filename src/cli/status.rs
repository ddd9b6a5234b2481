//! `cutover status`: runs, per-table counts and checkpoints, as tables or JSON.

use super::render::print_table;
use super::{Code, TargetOpts};
use anyhow::{Context, Result};
use cutover::tracking::ErrorFilter;

pub(super) async fn status(target: &TargetOpts, mapping: Option<&str>, json: bool) -> Result<Code> {
    let t = target.connect().await?;
    t.ensure_tracking().await.context("the tracking tables")?;
    let runs = t.store().runs(mapping).await?;
    let checkpoints = t.store().checkpoints().await?;
    let passes: std::collections::HashMap<i64, cutover::tracking::passes::PassRow> = t
        .store()
        .passes(mapping)
        .await?
        .into_iter()
        .map(|p| (p.run_id, p))
        .collect();
    let undo = {
        let mut db = t.exec();
        cutover::tracking::journal::all_undo_runs(&mut *db)
            .await
            .map_err(|f| f.into_target("reading the undo journal"))?
    };
    // The last verify of each mapping with runs (recorded by `cutover verify`).
    let mut names: Vec<String> = runs.iter().map(|r| r.mapping.clone()).collect();
    names.sort();
    names.dedup();
    let mut verifies = Vec::new();
    for m in &names {
        if let Some(v) = t.store().last_verify(m).await? {
            verifies.push(v);
        }
    }
    let undo_state =
        |r: &cutover::tracking::RunRow| cutover::tracking::journal::undo_state(r, undo.get(&r.id));
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
                    ..ErrorFilter::default()
                })
                .await?
                .len();
            let deleted = t.store().run_deletes(r.id).await?;
            let mut v = serde_json::to_value(r)?;
            let mut tables = serde_json::to_value(&tables)?;
            if let Some(list) = tables.as_array_mut() {
                for e in list.iter_mut() {
                    let name = e["table_name"].as_str().unwrap_or_default().to_string();
                    e["rows_deleted"] = serde_json::json!(deleted
                        .iter()
                        .find(|(t, _)| *t == name)
                        .map_or(0, |(_, n)| *n));
                }
            }
            v["tables"] = tables;
            v["rows_deleted"] = serde_json::json!(deleted.iter().map(|(_, n)| n).sum::<i64>());
            v["pass"] = match passes.get(&r.id) {
                Some(p) => serde_json::json!({
                    "kind": p.kind.as_str(),
                    "watermark": p.watermark,
                    "low": p.low,
                    "high": p.high,
                }),
                None => serde_json::Value::Null,
            };
            v["errors_unresolved"] = serde_json::json!(unresolved);
            v["undo"] = serde_json::json!({
                "state": undo_state(r),
                "can_undo": undo_state(r) == "yes",
                "undone_by": undo.get(&r.id).and_then(|u| u.undone_by),
            });
            out.push(v);
        }
        let last: Vec<serde_json::Value> = verifies
            .iter()
            .map(|v| {
                serde_json::json!({
                    "mapping": v.mapping,
                    "verdict": v.verdict,
                    "run_id": v.run_id,
                    "finished_at": v.finished_at,
                    "duration_ms": v.duration_ms,
                    "sampled": v.sampled,
                    "incomplete": v.report.get("incomplete"),
                    "tables": v.report.get("tables").and_then(|t| t.as_array()).map(|ts| ts
                        .iter()
                        .map(|t| serde_json::json!({
                            "table": t["table"], "verdict": t["verdict"], "expected": t["expected"],
                            "found": t["found"], "missing": t["missing"], "different": t["different"],
                            "extra": t["extra"], "method": t.get("method"),
                        }))
                        .collect::<Vec<_>>()),
                })
            })
            .collect();
        let doc = serde_json::json!({ "runs": out, "checkpoints": checkpoints, "verifies": last });
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
        "pass",
        "status",
        "started",
        "finished",
        "read",
        "written",
        "filtered",
        "failed",
        "rows written",
        "unchanged",
        "undo",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect::<Vec<_>>()];
    for r in &runs {
        rows.push(vec![
            r.id.to_string(),
            r.mapping.clone() + if r.dry_run { " (dry run)" } else { "" },
            passes
                .get(&r.id)
                .map_or("-".to_string(), |p| p.kind.to_string()),
            r.status.to_string(),
            r.started_at.clone(),
            r.finished_at.clone().unwrap_or_default(),
            r.records_read.to_string(),
            r.records_written.to_string(),
            r.records_filtered.to_string(),
            r.records_failed.to_string(),
            r.rows_written.to_string(),
            r.rows_unchanged.to_string(),
            undo_state(r).to_string(),
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
        if let Some(p) = passes.get(&r.id).filter(|p| p.low.is_some()) {
            println!(
                "  run {}: delta pass over {} from {} to {}",
                r.id,
                p.watermark.clone().unwrap_or_default(),
                p.low.clone().unwrap_or_default(),
                p.high.clone().unwrap_or_default()
            );
        }
        let deleted = t.store().run_deletes(r.id).await?;
        if !deleted.is_empty() {
            let per: Vec<String> = deleted
                .iter()
                .map(|(t, n)| format!("{t} {n} deleted"))
                .collect();
            println!("  run {}: {}", r.id, per.join("; "));
        }
        if let Some(m) = &r.message {
            println!("  run {}: {m}", r.id);
        }
    }
    if !verifies.is_empty() {
        println!();
        for v in &verifies {
            let per: Vec<String> = v
                .report
                .get("tables")
                .and_then(|t| t.as_array())
                .into_iter()
                .flatten()
                .map(|t| {
                    let n = |k: &str| t[k].as_u64().unwrap_or(0);
                    let table = t["table"].as_str().unwrap_or("?");
                    let verdict = t["verdict"].as_str().unwrap_or("?");
                    if n("missing") + n("different") + n("extra") == 0 {
                        format!("{table} {verdict}")
                    } else {
                        format!(
                            "{table} {verdict} ({} missing, {} different, {} extra)",
                            n("missing"),
                            n("different"),
                            n("extra")
                        )
                    }
                })
                .collect();
            let after = v
                .run_id
                .map_or(String::new(), |r| format!(" after run {r}"));
            let stopped = match v.report.get("incomplete").and_then(|i| i.as_str()) {
                Some(why) => format!(", INCOMPLETE: {why}"),
                None => String::new(),
            };
            println!(
                "last verify of {}: {} at {}{after}, {:.1} s{}{stopped}: {}",
                v.mapping,
                v.verdict,
                v.finished_at,
                v.duration_ms as f64 / 1000.0,
                if v.sampled { " (sample)" } else { "" },
                per.join("; ")
            );
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
