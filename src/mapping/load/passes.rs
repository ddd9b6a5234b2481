//! The parts of a mapping that decide passes: `[source] watermark` (delta
//! passes) and each table's `deletes` / `soft_delete` / `max_deletes`.

use super::super::config::{Deletes, SourceConfig, SourceKind, TableConfig};
use super::super::spec::{DeletePolicy, Lookback, MaxDeletes, SoftValue, Watermark};
use super::Ctx;

/// `watermark`, `lookback` and `watermark_nulls` of a source.
pub(super) fn watermark(
    cx: &mut Ctx<'_>,
    src: &SourceConfig,
    kind: SourceKind,
) -> Option<Watermark> {
    match (&src.watermark, kind) {
        (None, _) => {
            for (span, what) in [
                (src.lookback.as_ref().map(|l| l.span()), "lookback"),
                (
                    src.watermark_nulls.as_ref().map(|n| n.span()),
                    "watermark_nulls",
                ),
            ] {
                if let Some(span) = span {
                    cx.push(
                        span,
                        format!("`{what}` needs `watermark = \"column\"`"),
                        None,
                    );
                }
            }
            None
        }
        (Some(w), SourceKind::Kv | SourceKind::Json) => {
            cx.push(
                w.span(),
                "`watermark` is for SQL sources; a file source's later passes write only the records that changed",
                None,
            );
            None
        }
        (Some(w), _) => {
            let lookback = match src.lookback.as_ref().map(|l| (l.span(), l.get_ref())) {
                None => None,
                Some((_, toml::Value::Integer(n))) if *n >= 0 => Some(Lookback::Count(*n)),
                Some((span, toml::Value::String(s))) => match humantime::parse_duration(s) {
                    Ok(d) => Some(Lookback::Duration(d)),
                    Err(e) => {
                        cx.push(span, format!("lookback '{s}': {e}"), Some("a duration such as \"10m\", \"90s\" or \"2h\", or an integer for integer columns".into()));
                        None
                    }
                },
                Some((span, v)) => {
                    cx.push(span, format!("lookback {v}: expected a duration such as \"10m\" or a non-negative integer"), None);
                    None
                }
            };
            let column = w.get_ref().trim().to_string();
            if column.is_empty() {
                cx.push(w.span(), "`watermark` names no column", None);
            }
            Some(Watermark {
                column,
                lookback,
                nulls: src.watermark_nulls.as_ref().map(|n| *n.get_ref()),
                loc: cx.loc(w.span().start),
            })
        }
    }
}

/// `deletes`, `soft_delete` and `max_deletes` of a table.
pub(super) fn deletions(cx: &mut Ctx<'_>, t: &TableConfig) -> (DeletePolicy, MaxDeletes) {
    let deletes = match (t.deletes.as_ref().map(|d| *d.get_ref()), &t.soft_delete) {
        (None | Some(Deletes::Keep), None) => DeletePolicy::Keep,
        (Some(Deletes::Delete), None) => DeletePolicy::Delete,
        (Some(Deletes::Soft), Some(s)) => {
            let sd = s.get_ref();
            let value = match &sd.value {
                toml::Value::String(v) if v.trim() == "now()" => Some(SoftValue::Now),
                toml::Value::String(v) => Some(SoftValue::Text(v.clone())),
                toml::Value::Integer(i) => Some(SoftValue::Int(*i)),
                toml::Value::Float(x) => Some(SoftValue::Float(*x)),
                toml::Value::Boolean(b) => Some(SoftValue::Bool(*b)),
                other => {
                    cx.push(s.span(), format!("soft_delete value {other}: expected \"now()\", a string, a number or a boolean"), None);
                    None
                }
            };
            value.map_or(DeletePolicy::Keep, |value| DeletePolicy::Soft {
                column: sd.column.clone(),
                value,
            })
        }
        (Some(Deletes::Soft), None) => {
            let span = t.deletes.as_ref().map_or(t.table.span(), |d| d.span());
            cx.push(span, "deletes = \"soft\" needs soft_delete = { column = \"deleted_at\", value = \"now()\" }", None);
            DeletePolicy::Keep
        }
        (_, Some(s)) => {
            cx.push(s.span(), "soft_delete is for deletes = \"soft\"", None);
            DeletePolicy::Keep
        }
    };
    let max_deletes = match t.max_deletes.as_ref().map(|m| (m.span(), m.get_ref())) {
        None => MaxDeletes::default(),
        Some((_, toml::Value::Integer(n))) if *n >= 0 => MaxDeletes::Count(*n as u64),
        Some((span, toml::Value::String(s))) => match s
            .trim()
            .strip_suffix('%')
            .and_then(|p| p.trim().parse::<f64>().ok())
            .filter(|p| (0.0..=100.0).contains(p))
        {
            Some(p) => MaxDeletes::Share(p / 100.0),
            None => {
                cx.push(
                    span,
                    format!("max_deletes '{s}': expected a share such as \"1%\" or a count"),
                    None,
                );
                MaxDeletes::default()
            }
        },
        Some((span, v)) => {
            cx.push(
                span,
                format!("max_deletes {v}: expected a share such as \"1%\" or a non-negative count"),
                None,
            );
            MaxDeletes::default()
        }
    };
    (deletes, max_deletes)
}
