//! `cutover plan`: check a mapping against the target and print what would be written.

use super::render::{print_run_error, print_table};
use super::{Code, TargetOpts};
use anyhow::Result;
use cutover::mapping::Mapping;
use cutover::pipeline;

pub(super) async fn plan(path: &std::path::Path, target: &TargetOpts) -> Result<Code> {
    let m = match Mapping::load(path) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(2);
        }
    };
    let t = target.connect().await?;
    println!("mapping {} ({})", m.name, m.file.display());
    if let Some(d) = &m.description {
        println!("  {d}");
    }
    println!("target  {}", t.display_url());
    match cutover::source::open(&m) {
        Ok(s) => println!("source  {}", s.describe()),
        Err(e) => {
            eprintln!("error: source: {e}");
            return Ok(2);
        }
    }
    if let Some(dir) = &m.schema {
        println!(
            "schema  migrations in {} are applied before loading",
            dir.display()
        );
    }
    let mut missing_ok = Vec::new();
    for tb in &m.tables {
        if m.schema.is_some() && t.describe_table(&tb.table).await?.is_none() {
            missing_ok.push(tb.table.clone());
        }
    }
    let bound = if missing_ok.is_empty() {
        match pipeline::bind(t.as_ref(), &m).await {
            Ok(b) => Some(b),
            Err(e) => {
                print_run_error(&e);
                return Ok(e.exit_code());
            }
        }
    } else {
        println!(
            "note: table(s) {} do not exist yet; the mapping's migrations will create them. Column checks happen at `run`.",
            missing_ok.join(", ")
        );
        None
    };
    for tb in &m.tables {
        println!();
        println!(
            "table {}  key ({})  on_conflict {:?}{}",
            tb.table,
            tb.key.join(", "),
            tb.on_conflict,
            tb.for_each
                .as_ref()
                .map(|_| "  one row per for_each element")
                .unwrap_or("")
        );
        let bt = bound
            .as_ref()
            .and_then(|b| b.iter().find(|x| x.spec.table == tb.table));
        let mut rows = vec![vec![
            "column".to_string(),
            "type".into(),
            "expression".into(),
        ]];
        for (i, c) in tb.columns.iter().enumerate() {
            rows.push(vec![
                c.name.clone(),
                bt.map_or("?".into(), |b| b.types[i].name()),
                c.text.clone(),
            ]);
        }
        print_table(&rows, "  ");
        if let Some(b) = bt {
            println!("  SQL: {}", t.upsert_sql(b, 1));
        }
    }
    // Checkpoint state, if the tracking tables exist.
    if let Ok(Some(cp)) = t.store().checkpoint(&m.name).await {
        let last = t.store().checkpoint_run(&m.name).await.ok().flatten();
        match last {
            Some(r) if r.status != cutover::tracking::RunStatus::Succeeded => println!(
                "\nrun would resume after run {} ({}) at {} ({} records committed)",
                r.id,
                r.status,
                cp.position.unwrap_or_default(),
                cp.records_committed
            ),
            _ => println!("\nrun would start a full pass (the last run succeeded)"),
        }
    } else {
        println!("\nrun would start a full pass (no checkpoint)");
    }
    t.close().await;
    Ok(0)
}
