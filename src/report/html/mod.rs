//! The report as one self-contained HTML page: the style, the one small script
//! and the charts are inline, nothing is fetched when it is opened. Every text
//! that comes from the data goes through [`esc`]. The mapping sections are in
//! [`mapping`], the forecast and the comparison in [`extras`].

mod extras;
mod mapping;

use super::format::{anchor, duration, esc, thousands};
use super::Report;
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
        body.push_str(&mapping::mapping(m));
    }
    if let Some(f) = &r.forecast {
        body.push_str(&extras::forecast(f));
    }
    if let Some(c) = &r.compare {
        body.push_str(&extras::comparison(r, c));
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
