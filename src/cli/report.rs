//! `cutover report`: the rehearsal report as one HTML file, one JSON document,
//! or a plain-text summary.

use super::render::print_table;
use super::{Code, TargetOpts};
use anyhow::{Context, Result};
use cutover::mapping::Mapping;
use cutover::report::format::{duration, rate, thousands, thousands_u};
use cutover::report::{self, Report, Scale};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// What `cutover report` was asked for.
pub(super) struct ReportArgs {
    pub mappings: Vec<String>,
    pub target: TargetOpts,
    pub html: Option<PathBuf>,
    pub json: bool,
    pub compare: Option<String>,
    pub scale: Vec<String>,
    pub production_source: bool,
}

/// A MAPPING argument: a mapping file, or the name of a mapping on the target.
fn is_file(arg: &str) -> bool {
    arg.ends_with(".toml") || Path::new(arg).is_file()
}

/// Count each mapping's source as configured (on a thread of its own: the
/// readers block).
async fn count_sources(files: &[Arc<Mapping>], scale: &mut Scale) -> Result<(), Code> {
    for m in files {
        let mapping = m.clone();
        let counted = tokio::task::spawn_blocking(move || {
            let mut s = cutover::source::open(&mapping)?;
            let what = s.describe();
            s.count().map(|n| (n, what))
        })
        .await;
        match counted {
            Ok(Ok((n, what))) => {
                eprintln!("{}: {} records in {what}", m.name, thousands_u(n));
                scale.pinned.insert(m.name.clone(), n);
                scale.counted_from.insert(m.name.clone(), what);
            }
            Ok(Err(e)) => {
                eprintln!("error: counting the source of mapping {}: {e}", m.name);
                return Err(1);
            }
            Err(e) => {
                eprintln!("error: counting the source of mapping {}: {e}", m.name);
                return Err(1);
            }
        }
    }
    Ok(())
}

pub(super) async fn report(a: ReportArgs) -> Result<Code> {
    let mut names = Vec::new();
    let mut files = Vec::new();
    for arg in &a.mappings {
        if is_file(arg) {
            match Mapping::load(Path::new(arg)) {
                Ok(m) => {
                    names.push(m.name.clone());
                    files.push(Arc::new(m));
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    return Ok(2);
                }
            }
        } else {
            names.push(arg.clone());
        }
    }
    let mut scale = Scale::default();
    for s in &a.scale {
        if let Err(e) = scale.add_arg(s) {
            eprintln!("error: {e}");
            return Ok(2);
        }
    }
    if a.production_source {
        if files.is_empty() || files.len() != names.len() {
            eprintln!("error: --production-source counts each mapping's source as its mapping file configures it: name the mapping files (MAPPING.toml), not mapping names");
            return Ok(2);
        }
        if let Err(code) = count_sources(&files, &mut scale).await {
            return Ok(code);
        }
    }
    let t = a.target.connect().await?;
    let mut r = report::gather(t.as_ref(), &names)
        .await
        .context("reading the tracking tables")?;
    t.close().await;
    if a.production_source || !a.scale.is_empty() {
        let input = if a.production_source {
            "--production-source: each mapping's source counted".to_string()
        } else {
            format!("--scale {}", a.scale.join(" --scale "))
        };
        match report::forecast(&r, &scale, &input) {
            Ok(f) => r.forecast = Some(f),
            Err(e) => {
                eprintln!("error: {e}");
                return Ok(2);
            }
        }
    }
    if let Some(url) = &a.compare {
        let other_target = TargetOpts {
            target: Some(url.clone()),
        };
        let o = other_target.connect().await?;
        let other = report::gather(o.as_ref(), &names)
            .await
            .context("reading the tracking tables of the --compare target")?;
        o.close().await;
        r.compare = Some(report::compare(&r, &other));
    }
    if let Some(path) = &a.html {
        std::fs::write(path, report::html::render(&r))
            .with_context(|| format!("writing {}", path.display()))?;
        if !a.json {
            println!(
                "wrote {} ({} mappings, {} records read, {} failed)",
                path.display(),
                r.mappings.len(),
                thousands(r.totals.records_read),
                thousands(r.totals.records_failed)
            );
        }
    }
    if a.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
    } else if a.html.is_none() {
        print_text(&r);
    }
    Ok(0)
}

fn verdict_text(m: &report::MappingReport) -> String {
    m.verify.as_ref().map_or_else(
        || "not recorded".into(),
        |v| format!("{:?}", v.verdict).to_uppercase(),
    )
}

fn print_text(r: &Report) {
    println!("cutover rehearsal report: {}", r.target);
    if r.mappings.is_empty() {
        println!("no runs on {}", r.target);
        return;
    }
    let mut rows = vec![[
        "mapping",
        "status",
        "duration",
        "read",
        "written",
        "filtered",
        "failed",
        "records/s",
        "verify",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect::<Vec<_>>()];
    for m in &r.mappings {
        rows.push(vec![
            m.mapping.clone(),
            m.status.map_or("no runs".into(), |s| s.to_string()),
            duration(m.seconds),
            thousands(m.records_read),
            thousands(m.records_written),
            thousands(m.records_filtered),
            thousands(m.records_failed),
            m.records_per_second.map_or("-".into(), rate),
            verdict_text(m),
        ]);
    }
    let t = &r.totals;
    rows.push(vec![
        match r.mappings.len() {
            1 => "all 1 mapping".to_string(),
            n => format!("all {n} mappings"),
        },
        String::new(),
        duration(t.seconds),
        thousands(t.records_read),
        thousands(t.records_written),
        thousands(t.records_filtered),
        thousands(t.records_failed),
        String::new(),
        String::new(),
    ]);
    print_table(&rows, "");
    for m in r.mappings.iter().filter(|m| !m.failures.is_empty()) {
        println!(
            "\n{}: {} unresolved error rows; records failing, by reason:",
            m.mapping,
            thousands(m.errors_unresolved)
        );
        for f in &m.failures {
            println!(
                "  {} × {}  (e.g. {})",
                thousands(f.count),
                f.id(),
                f.examples.join(", ")
            );
            println!("    {}", f.command);
        }
    }
    if let Some(f) = &r.forecast {
        println!(
            "\nforecast for {} production records ({}): {}",
            thousands_u(f.production_records),
            f.input,
            f.seconds.map_or("unknown".into(), duration)
        );
        let mut rows = vec![vec![
            "  mapping".to_string(),
            "production records".into(),
            "records/s".into(),
            "expected".into(),
        ]];
        for m in &f.mappings {
            rows.push(vec![
                format!("  {}", m.mapping),
                thousands_u(m.production_records),
                m.records_per_second.map_or("-".into(), rate),
                m.seconds.map_or("unknown".into(), duration),
            ]);
        }
        print_table(&rows, "");
        println!("  assumption: {}", f.assumption);
    }
    if let Some(c) = &r.compare {
        println!(
            "\ncompared with {}: {} of {} figures differ",
            c.target,
            c.differences,
            c.rows.len()
        );
        let mut rows = vec![vec![
            "  mapping".to_string(),
            "figure".into(),
            "this".into(),
            "other".into(),
        ]];
        for d in c.rows.iter().filter(|d| d.differs) {
            rows.push(vec![
                format!("  {}", d.mapping),
                d.what.clone(),
                d.this.to_string(),
                d.other.to_string(),
            ]);
        }
        print_table(&rows, "");
    }
}
