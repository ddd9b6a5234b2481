//! `cutover errors`: the per-record errors, as a table or JSON lines.

use super::render::print_table;
use super::{Code, TargetOpts};
use anyhow::{Context, Result};
use cutover::tracking::ErrorFilter;

pub(super) async fn errors(target: &TargetOpts, f: &ErrorFilter, json: bool) -> Result<Code> {
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
