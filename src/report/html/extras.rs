//! The forecast and the comparison with another target.

use super::{num, table};
use crate::report::format::{duration, esc, rate, thousands, thousands_u};
use crate::report::{Comparison, Forecast, Report};
use std::fmt::Write;

/// Seconds for a `data-seconds` attribute (empty: unknown).
fn secs(s: Option<f64>) -> String {
    s.map_or_else(String::new, |s| format!("{s:.3}"))
}

pub(super) fn forecast(f: &Forecast) -> String {
    let mut body = String::new();
    for r in &f.mappings {
        let _ = write!(
            body,
            r#"<tr data-mapping="{}"><td>{}</td>{}<td class="num">{}</td><td class="num" data-field="rate">{}</td>{}<td data-field="basis">{}</td><td class="num" data-field="forecast" data-seconds="{}">{}</td></tr>"#,
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
            secs(r.seconds),
            esc(&r
                .seconds
                .map_or_else(|| "unknown (no rate measured)".into(), duration)),
        );
    }
    let foot = format!(
        r#"<tfoot><tr data-mapping=""><td>all</td><td></td><td></td><td></td>{}<td></td><td class="num" data-field="forecast" data-seconds="{}">{}</td></tr></tfoot>"#,
        num(
            "production_records",
            i64::try_from(f.production_records).unwrap_or(i64::MAX),
            false
        ),
        secs(f.seconds),
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

pub(super) fn comparison(r: &Report, c: &Comparison) -> String {
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
        crate::report::compare::DURATION_TOLERANCE * 100.0,
        table(
            "compare",
            &["mapping", "figure", "#this target", "#other target"],
            &body,
            ""
        )
    )
}
