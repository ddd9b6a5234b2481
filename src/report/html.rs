//! The report as one self-contained HTML page: the style, the one small script
//! and the charts are inline, nothing is fetched when it is opened. Every text
//! that comes from the data goes through [`esc`].

use super::format::{anchor, duration, esc, rate, thousands, thousands_u};
use super::{chart, Comparison, Forecast, MappingReport, Report, RunReport};
use std::fmt::Write;

const CSS: &str = include_str!("page.css");
const JS: &str = include_str!("page.js");

/// A right-aligned number cell; `bad`: shown in red when not zero.
fn num(field: &str, n: i64, bad: bool) -> String {
    let class = if bad && n != 0 { "num bad" } else { "num" };
    format!(
        r#"<td class="{class}" data-field="{field}">{}</td>"#,
        thousands(n)
    )
}

fn opt_num(field: &str, n: Option<i64>) -> String {
    match n {
        Some(n) => num(field, n, false),
        None => format!(r#"<td class="num note" data-field="{field}">–</td>"#),
    }
}

fn text_cell(field: &str, s: &str) -> String {
    format!(r#"<td data-field="{field}">{}</td>"#, esc(s))
}

fn badge(s: &str) -> String {
    format!(r#"<span class="badge {0}">{0}</span>"#, esc(s))
}

fn head(cols: &[&str]) -> String {
    let mut s = String::from("<thead><tr>");
    for c in cols {
        let (class, label) = match c.strip_prefix('#') {
            Some(l) => (r#" class="num""#, l),
            None => ("", *c),
        };
        let _ = write!(s, "<th{class}>{}</th>", esc(label));
    }
    s.push_str("</tr></thead>");
    s
}

fn table(class: &str, cols: &[&str], body: &str, foot: &str) -> String {
    format!(
        r#"<div class="scroll"><table class="{class}">{}<tbody>{body}</tbody>{foot}</table></div>"#,
        head(cols)
    )
}

fn command(cmd: &str) -> String {
    format!(r#"<div class="cmd"><code>{}</code></div>"#, esc(cmd))
}

fn summary(r: &Report) -> String {
    let mut body = String::new();
    for m in &r.mappings {
        let _ = write!(
            body,
            r##"<tr data-mapping="{name}"><td><a href="#{id}">{name}</a></td><td>{status}</td><td class="num" data-field="duration">{dur}</td>{}{}{}{}{}{}{}<td data-field="verify">{verify}</td></tr>"##,
            num("records_read", m.records_read, false),
            num("records_written", m.records_written, false),
            num("records_filtered", m.records_filtered, false),
            num("records_failed", m.records_failed, true),
            num("rows_written", m.rows_written, false),
            num("rows_unchanged", m.rows_unchanged, false),
            num("rows_deleted", m.rows_deleted, false),
            name = esc(&m.mapping),
            id = anchor("m-", &m.mapping),
            status = m
                .status
                .map_or_else(|| "no runs".into(), |s| badge(s.as_str())),
            dur = esc(&duration(m.seconds)),
            verify = m.verify.as_ref().map_or_else(
                || r#"<span class="notrecorded">not recorded</span>"#.to_string(),
                |v| badge(&format!("{:?}", v.verdict).to_uppercase())
            ),
        );
    }
    let t = &r.totals;
    let foot = format!(
        r#"<tfoot><tr data-mapping=""><td>all {n} mappings</td><td></td><td class="num" data-field="duration">{}</td>{}{}{}{}{}{}{}<td></td></tr></tfoot>"#,
        esc(&duration(t.seconds)),
        num("records_read", t.records_read, false),
        num("records_written", t.records_written, false),
        num("records_filtered", t.records_filtered, false),
        num("records_failed", t.records_failed, true),
        num("rows_written", t.rows_written, false),
        num("rows_unchanged", t.rows_unchanged, false),
        num("rows_deleted", t.rows_deleted, false),
        n = r.mappings.len(),
    );
    format!(
        r#"<section id="summary"><h2>The cutover as a whole</h2><p>{n} mappings in the order they ran, each by its last full pass, one after another: <strong>{dur}</strong> in all; {read} records read, {written} written, {filtered} filtered, <span class="{fclass}">{failed} failed</span>.</p>{table}</section>"#,
        n = r.mappings.len(),
        dur = esc(&duration(t.seconds)),
        read = thousands(t.records_read),
        written = thousands(t.records_written),
        filtered = thousands(t.records_filtered),
        failed = thousands(t.records_failed),
        fclass = if t.records_failed > 0 { "bad" } else { "" },
        table = table(
            "summary",
            &[
                "mapping",
                "status",
                "#duration",
                "#read",
                "#written",
                "#filtered",
                "#failed",
                "#rows written",
                "#unchanged",
                "#deleted",
                "verify"
            ],
            &body,
            &foot
        ),
    )
}

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
                r#"<p class="notrecorded" data-run="{}">Run {}: no progress samples recorded (runs before this version of cutover record none).</p>"#,
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

fn mapping(m: &MappingReport) -> String {
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

fn forecast(f: &Forecast) -> String {
    let mut body = String::new();
    for r in &f.mappings {
        let _ = write!(
            body,
            r#"<tr data-mapping="{}"><td>{}</td>{}<td class="num">{}</td><td class="num" data-field="rate">{}</td>{}<td data-field="basis">{}</td><td class="num" data-field="forecast">{}</td></tr>"#,
            esc(&r.mapping),
            esc(&r.mapping),
            num("rehearsal_records", r.rehearsal_records, false),
            esc(&duration(r.rehearsal_seconds)),
            r.records_per_second.map_or_else(|| "–".into(), rate),
            num(
                "production_records",
                i64::try_from(r.production_records).unwrap_or(i64::MAX),
                false
            ),
            esc(&r.basis),
            esc(&r
                .seconds
                .map_or_else(|| "unknown (no rate measured)".into(), duration)),
        );
    }
    let foot = format!(
        r#"<tfoot><tr data-mapping=""><td>all</td><td></td><td></td><td></td>{}<td></td><td class="num" data-field="forecast">{}</td></tr></tfoot>"#,
        num(
            "production_records",
            i64::try_from(f.production_records).unwrap_or(i64::MAX),
            false
        ),
        esc(&f.seconds.map_or_else(|| "unknown".into(), duration)),
    );
    format!(
        r#"<section id="forecast"><h2>Forecast of the real cutover</h2><p>For {} production records ({}): <strong data-field="forecast-total">{}</strong>.</p><p class="assumption">{}</p>{}</section>"#,
        thousands_u(f.production_records),
        esc(&f.input),
        esc(&f.seconds.map_or_else(|| "unknown".into(), duration)),
        esc(&f.assumption),
        table(
            "forecast",
            &[
                "mapping",
                "#rehearsal records",
                "#rehearsal time",
                "#records/s",
                "#production records",
                "from",
                "#expected time"
            ],
            &body,
            &foot
        )
    )
}

fn value_text(what: &str, v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Null => "–".into(),
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Number(n) if what == "duration (s)" => {
            duration(n.as_f64().unwrap_or(0.0))
        }
        serde_json::Value::Number(n) => n.as_i64().map_or_else(|| n.to_string(), thousands),
        other => other.to_string(),
    }
}

fn comparison(r: &Report, c: &Comparison) -> String {
    let mut body = String::new();
    for d in &c.rows {
        let _ = write!(
            body,
            r#"<tr class="{}" data-mapping="{}"><td>{}</td><td class="what">{}</td><td class="num" data-field="this">{}</td><td class="num" data-field="other">{}</td></tr>"#,
            if d.differs { "differs" } else { "same" },
            esc(&d.mapping),
            esc(&d.mapping),
            esc(&d.what),
            esc(&value_text(&d.what, &d.this)),
            esc(&value_text(&d.what, &d.other)),
        );
    }
    format!(
        r#"<section id="compare"><h2>Compared with another target</h2><p>This target: <code>{}</code>; the other: <code>{}</code>. <strong data-field="differences">{}</strong> of {} figures differ (highlighted; durations within {:.0} % count as the same).</p>{}</section>"#,
        esc(&r.target),
        esc(&c.target),
        c.differences,
        c.rows.len(),
        super::compare::DURATION_TOLERANCE * 100.0,
        table(
            "compare",
            &["mapping", "figure", "#this target", "#other target"],
            &body,
            ""
        )
    )
}

/// The whole page.
pub fn render(r: &Report) -> String {
    let mut toc = String::from(r##"<li><a href="#summary">The cutover as a whole</a></li>"##);
    for m in &r.mappings {
        let _ = write!(
            toc,
            r##"<li><a href="#{}">{}</a></li>"##,
            anchor("m-", &m.mapping),
            esc(&m.mapping)
        );
    }
    if r.forecast.is_some() {
        toc.push_str(r##"<li><a href="#forecast">Forecast</a></li>"##);
    }
    if r.compare.is_some() {
        toc.push_str(r##"<li><a href="#compare">Compared with another target</a></li>"##);
    }
    let mut body = summary(r);
    for m in &r.mappings {
        body.push_str(&mapping(m));
    }
    if let Some(f) = &r.forecast {
        body.push_str(&forecast(f));
    }
    if let Some(c) = &r.compare {
        body.push_str(&comparison(r, c));
    }
    format!(
        r#"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:">
<title>Cutover rehearsal report: {target}</title>
<style>{CSS}</style>
</head>
<body>
<header><h1>Cutover rehearsal report</h1><p class="meta">Target <code>{target}</code> · generated {generated} UTC by cutover {version}</p></header>
<nav class="toc"><h2>Contents</h2><ol>{toc}</ol></nav>
<main>{body}</main>
<footer>Figures from the tracking tables on the target (cutover_runs, cutover_run_tables, cutover_run_samples, cutover_errors, cutover_verifies). Times are UTC.</footer>
<script>{JS}</script>
</body>
</html>
"#,
        target = esc(&r.target),
        generated = esc(&r.generated_at),
        version = esc(&r.version),
    )
}
