//! The section of one mapping: its pass, rows per table, runs, throughput
//! charts, failures by reason and last verify.

use super::{badge, command, num, opt_num, table, text_cell};
use crate::report::format::{anchor, duration, esc, rate, thousands, thousands_u};
use crate::report::{chart, MappingReport, RunReport};
use std::fmt::Write;

fn run_kind(r: &RunReport) -> String {
    let mut k = r.kind.clone();
    if let Some(from) = r.resumed_from_run {
        k.push_str(&format!(", resumed from run {from}"));
    }
    if !r.in_pass {
        k.push_str(" (after the pass)");
    }
    k
}

fn runs(m: &MappingReport) -> String {
    let mut body = String::new();
    for r in &m.runs {
        let _ = write!(
            body,
            r#"<tr data-run="{id}"><td class="num">{id}</td>{}<td>{}</td>{}<td class="num" data-field="duration">{}</td>{}{}{}{}<td class="num" data-field="rate">{}</td>{}{}</tr>"#,
            text_cell("kind", &run_kind(r)),
            badge(r.status.as_str()),
            text_cell("started", &r.started_at),
            esc(&r.seconds.map_or_else(|| "?".into(), duration)),
            num("records_read", r.records_read, false),
            num("records_written", r.records_written, false),
            num("records_filtered", r.records_filtered, false),
            num("records_failed", r.records_failed, true),
            r.records_per_second.map_or_else(|| "–".into(), rate),
            opt_num("batch_size", r.batch_size),
            opt_num("workers", r.workers),
            id = r.id,
        );
        if let Some(msg) = &r.message {
            let _ = write!(
                body,
                r#"<tr class="message"><td></td><td colspan="11" class="{}">{}</td></tr>"#,
                if r.status == crate::tracking::RunStatus::Failed {
                    "bad"
                } else {
                    "note"
                },
                esc(msg)
            );
        }
    }
    table(
        "runs",
        &[
            "#run",
            "pass",
            "status",
            "started (UTC)",
            "#duration",
            "#read",
            "#written",
            "#filtered",
            "#failed",
            "#records/s",
            "#batch size",
            "#workers",
        ],
        &body,
        "",
    )
}

fn charts(m: &MappingReport) -> String {
    let mut s = String::new();
    for r in &m.runs {
        let svg = chart::throughput(r);
        let settings = format!(
            "batch size {}, {} writer{}",
            r.batch_size.map_or_else(|| "?".into(), thousands),
            r.workers.map_or_else(|| "?".into(), thousands),
            if r.workers == Some(1) { "" } else { "s" }
        );
        if svg.is_empty() {
            let _ = write!(
                s,
                r#"<p class="notrecorded" data-run="{}">Run {}: no progress samples recorded (retry runs, and runs by cutover versions before the report, record none).</p>"#,
                r.id, r.id
            );
            continue;
        }
        let _ = write!(
            s,
            r#"<figure data-run="{id}">{svg}<figcaption>Run {id} ({kind}, {status}): {avg} records/s on average over {dur}, {n} progress sample{plural}; {settings}.</figcaption></figure>"#,
            id = r.id,
            kind = esc(&run_kind(r)),
            status = esc(r.status.as_str()),
            avg = r.records_per_second.map_or_else(|| "–".into(), rate),
            dur = esc(&r.seconds.map_or_else(|| "?".into(), duration)),
            n = r.samples.len(),
            plural = if r.samples.len() == 1 { "" } else { "s" },
            settings = esc(&settings),
        );
    }
    s
}

fn tables(m: &MappingReport) -> String {
    if m.tables.is_empty() {
        return r#"<p class="note">No rows written by the pass.</p>"#.into();
    }
    let mut body = String::new();
    for t in &m.tables {
        let _ = write!(
            body,
            r#"<tr data-table="{}"><td>{}</td>{}{}{}{}{}</tr>"#,
            esc(&t.table),
            esc(&t.table),
            num("rows_written", t.rows_written, false),
            opt_num("rows_inserted", t.rows_inserted),
            opt_num("rows_updated", t.rows_updated),
            num("rows_unchanged", t.rows_unchanged, false),
            num("rows_deleted", t.rows_deleted, false),
        );
    }
    let mut s = table(
        "tables",
        &[
            "table",
            "#written",
            "#inserted",
            "#updated",
            "#unchanged",
            "#deleted",
        ],
        &body,
        "",
    );
    if m.tables.iter().any(|t| t.rows_inserted.is_none()) {
        s.push_str(
            r#"<p class="note">– : this target does not tell inserted rows from updated ones.</p>"#,
        );
    }
    s
}

fn failures(m: &MappingReport) -> String {
    if m.failures.is_empty() {
        return format!(
            r#"<p class="failures none">No unresolved failures{}.</p>"#,
            if m.errors_resolved > 0 {
                format!(
                    " ({} error rows were resolved by later loads)",
                    thousands(m.errors_resolved)
                )
            } else {
                String::new()
            }
        );
    }
    let mut body = String::new();
    for f in &m.failures {
        let _ = write!(
            body,
            r#"<tr class="failure"><td data-field="reason" class="bad">{}</td>{}{}{}<td data-field="examples" class="mono">{}</td><td data-field="command">{}</td></tr>"#,
            esc(&f.reason),
            text_cell("stage", &f.stage),
            text_cell("column", f.column.as_deref().unwrap_or("")),
            num("count", f.count, true),
            f.examples
                .iter()
                .map(|e| esc(e))
                .collect::<Vec<_>>()
                .join("<br>"),
            command(&f.command),
        );
    }
    format!(
        r#"<p><span class="bad">{} unresolved error rows</span> in {} reasons{}.</p>{}"#,
        thousands(m.errors_unresolved),
        m.failures.len(),
        if m.errors_resolved > 0 {
            format!(
                "; {} more were resolved by later loads",
                thousands(m.errors_resolved)
            )
        } else {
            String::new()
        },
        table(
            "failures",
            &[
                "reason",
                "stage",
                "column",
                "#records",
                "for example",
                "list them all"
            ],
            &body,
            ""
        )
    )
}

fn verify(m: &MappingReport) -> String {
    let Some(v) = &m.verify else {
        return format!(
            r#"<p class="verify notrecorded" data-verdict="">Not recorded: no <code>cutover verify</code> of {} on this target.</p>"#,
            esc(&m.mapping)
        );
    };
    let verdict = format!("{:?}", v.verdict).to_uppercase();
    let mut s = format!(
        r#"<p class="verify" data-verdict="{verdict}">{} at {} ({}{}): {} records read, {} fail to transform, {} unresolved error rows.{}</p>"#,
        badge(&verdict),
        esc(&v.finished_at),
        esc(&duration(v.duration_ms as f64 / 1000.0)),
        if v.sampled { ", sampled" } else { "" },
        thousands_u(v.records_read),
        thousands_u(v.records_failing),
        thousands_u(v.unresolved_errors),
        if v.outdated {
            r#" <span class="bad">A run of the mapping came after this verify: verify again.</span>"#
        } else {
            ""
        }
    );
    let mut body = String::new();
    for t in &v.tables {
        let tv = format!("{:?}", t.verdict).to_uppercase();
        let _ = write!(
            body,
            r#"<tr data-table="{}"><td>{}</td>{}{}{}{}{}{}<td>{}</td></tr>"#,
            esc(&t.table),
            esc(&t.table),
            num("expected", t.expected as i64, false),
            num("found", t.found, false),
            num("compared", t.compared as i64, false),
            num("missing", t.missing as i64, true),
            num("different", t.different as i64, true),
            num("extra", t.extra as i64, true),
            badge(&tv),
        );
    }
    s.push_str(&table(
        "verify-tables",
        &[
            "table",
            "#expected",
            "#found",
            "#compared",
            "#missing",
            "#different",
            "#extra",
            "status",
        ],
        &body,
        "",
    ));
    let keys: Vec<String> = v
        .tables
        .iter()
        .flat_map(|t| {
            t.examples.iter().map(move |d| {
                if d.extra {
                    return format!(
                        "{}: key ({}): extra (no record produces it)",
                        t.table, d.key
                    );
                }
                format!(
                    "{}: key ({}) record {}: {}{}",
                    t.table,
                    d.key,
                    d.record_key,
                    if d.columns.is_empty() {
                        "missing".to_string()
                    } else {
                        format!("different in {}", d.columns.join(", "))
                    },
                    if d.explained {
                        " (explained by an error row)"
                    } else {
                        ""
                    }
                )
            })
        })
        .collect();
    if !keys.is_empty() {
        s.push_str("<ul class=\"verify-keys mono\">");
        for k in keys {
            let _ = write!(s, "<li>{}</li>", esc(&k));
        }
        s.push_str("</ul>");
    }
    if !v.checks.is_empty() {
        let mut body = String::new();
        for c in &v.checks {
            let cv = format!("{:?}", c.verdict).to_uppercase();
            let expect = c
                .expect
                .as_str()
                .map_or(c.expect.to_string(), str::to_string);
            let _ = write!(
                body,
                r#"<tr class="check"><td>{}</td><td class="num">{}</td><td class="num{}">{}</td><td>{}</td></tr>"#,
                esc(&c.name),
                esc(&expect),
                if cv == "FAILED" { " bad" } else { "" },
                esc(c.got.as_deref().unwrap_or("NULL")),
                badge(&cv)
            );
        }
        s.push_str(&table(
            "checks",
            &["check", "#expect", "#got", "status"],
            &body,
            "",
        ));
    }
    s
}

pub(super) fn mapping(m: &MappingReport) -> String {
    let status = m
        .status
        .map_or_else(|| badge("no runs"), |s| badge(s.as_str()));
    let pass = match m.pass_id {
        Some(p) => format!(
            "Last full pass from run {p}: <strong>{}</strong>, {} records read, {} written, {} filtered, <span class=\"{}\">{} failed</span>; {} records/s.",
            esc(&duration(m.seconds)),
            thousands(m.records_read),
            thousands(m.records_written),
            thousands(m.records_filtered),
            if m.records_failed > 0 { "bad" } else { "" },
            thousands(m.records_failed),
            m.records_per_second.map_or_else(|| "–".into(), rate),
        ),
        None => "No runs of this mapping on this target.".into(),
    };
    format!(
        r#"<section class="mapping" id="{id}" data-mapping="{name}"><h2>{name} {status}</h2><p>{pass}</p><h3>Rows per table</h3>{tables}<h3>Runs</h3>{runs}<h3>Throughput</h3>{charts}<h3>Failures by reason</h3>{failures}<h3>Last verify</h3>{verify}</section>"#,
        id = anchor("m-", &m.mapping),
        name = esc(&m.mapping),
        tables = tables(m),
        runs = if m.runs.is_empty() {
            String::new()
        } else {
            runs(m)
        },
        charts = charts(m),
        failures = failures(m),
        verify = verify(m),
    )
}
