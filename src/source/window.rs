//! Delta passes over a watermark column: the high-water mark of the source, the
//! window a pass reads, and the source spec that reads only that window, paged
//! by keyset on (watermark, key).
//!
//! Bounds are the values the source itself returned for `MAX(watermark)`, as
//! JSON (an integer, or the column's text at its own precision: a
//! `datetime2(7)` keeps its 100 ns, a `rowversion` its `0x` hex), written back
//! into the query as literals, so nothing is rounded between passes.

use super::{open_spec, Payload, SourceError};
use crate::dialect::{quote_ident, quote_table, Dialect};
use crate::mapping::{Lookback, SourceKind, SourceSpec, WatermarkNulls};
use serde_json::Value;

/// What the source says about its watermark column at a pass's start.
#[derive(Debug, Clone, PartialEq)]
pub struct Probe {
    /// `MAX(watermark)`; none when the source has no row with a watermark.
    pub high: Option<Value>,
    /// Rows whose watermark is NULL.
    pub nulls: i64,
    /// The new high-water mark lies below the given previous one.
    pub backwards: bool,
    /// The key of a row holding `high`.
    pub high_key: Option<Value>,
}

/// The rows a delta pass reads: watermark in `low ..= high` (both inclusive).
#[derive(Debug, Clone, PartialEq)]
pub struct Window {
    pub low: Option<Value>,
    pub high: Option<Value>,
    pub nulls: Option<WatermarkNulls>,
}

fn dialect(kind: SourceKind) -> Option<Dialect> {
    match kind {
        SourceKind::Postgres => Some(Dialect::Postgres),
        SourceKind::Mysql => Some(Dialect::Mysql),
        SourceKind::Sqlite => Some(Dialect::Sqlite),
        _ => None,
    }
}

fn column(spec: &SourceSpec, name: &str) -> String {
    match dialect(spec.kind) {
        Some(d) => quote_ident(d, name),
        None => super::mssql::quote(name),
    }
}

/// A bound as a SQL literal of the source's dialect.
pub fn literal(kind: SourceKind, v: &Value) -> Result<String, SourceError> {
    match v {
        Value::Number(n) => Ok(n.to_string()),
        Value::String(s) if kind == SourceKind::Mssql && is_hex(s) => Ok(s.clone()),
        Value::String(s) => {
            let s = if kind == SourceKind::Mssql {
                mssql_time(s)
            } else {
                s.clone()
            };
            Ok(format!("'{}'", s.replace('\'', "''")))
        }
        other => Err(SourceError::Other(format!(
            "the watermark's high-water mark {other} is neither a number nor text: a watermark must be an integer, a time or a rowversion"
        ))),
    }
}

fn is_hex(s: &str) -> bool {
    s.len() > 2 && s.starts_with("0x") && s[2..].chars().all(|c| c.is_ascii_hexdigit())
}

/// SQL Server takes at most 7 fractional digits; the reader gives 9 (the last
/// two always 0 for a `datetime2`).
fn mssql_time(s: &str) -> String {
    if let Some(dot) = s.find('.') {
        let digits: String = s[dot + 1..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        if digits.len() == 9 && digits.ends_with("00") {
            return format!("{}{}{}", &s[..=dot], &digits[..7], &s[dot + 10..]);
        }
    }
    s.to_string()
}

/// Read `MAX(watermark)` and the NULL count; with `prev`, also whether the
/// maximum went below it (the database compares, in its own types).
pub fn probe(spec: &SourceSpec, prev: Option<&Value>) -> Result<Probe, SourceError> {
    let Some(w) = &spec.watermark else {
        return Err(SourceError::Other("the source has no watermark".into()));
    };
    let c = column(spec, &w.column);
    let back = match prev {
        Some(p) => format!(
            ", CASE WHEN MAX({c}) < {} THEN 1 ELSE 0 END AS cutover_back",
            literal(spec.kind, p)?
        ),
        None => String::new(),
    };
    let relation = match (&spec.table, &spec.query, dialect(spec.kind)) {
        (Some(t), _, Some(d)) => quote_table(d, t),
        (Some(t), _, None) => super::mssql::quote(t),
        (None, Some(q), _) => format!("({}) AS w", q.trim().trim_end_matches(';')),
        (None, None, _) => return Err(SourceError::Other("the source has no table".into())),
    };
    let mut p = spec.clone();
    p.query = Some(format!(
        "SELECT 1 AS cutover_one, MAX({c}) AS cutover_high, COUNT(*) - COUNT({c}) AS cutover_nulls{back} FROM {relation}"
    ));
    p.table = None;
    p.key = vec!["cutover_one".into()];
    p.watermark = None;
    let mut src = open_spec(&p)?;
    let rows = src.next_batch(1)?;
    let Some(r) = rows.first() else {
        return Err(SourceError::Other(
            "the watermark query returned no row".into(),
        ));
    };
    let row: serde_json::Map<String, Value> = match &r.payload {
        Payload::Decoded(d) => serde_json::from_slice(d.row_json())
            .map_err(|e| SourceError::Other(format!("the watermark query's row: {e}")))?,
        _ => {
            return Err(SourceError::Other(
                "the watermark query returned no row".into(),
            ))
        }
    };
    let int = |v: Option<&Value>| -> i64 {
        match v {
            Some(Value::Number(n)) => n.as_i64().unwrap_or(0),
            Some(Value::String(s)) => s.parse().unwrap_or(0),
            Some(Value::Bool(b)) => i64::from(*b),
            _ => 0,
        }
    };
    let high = row.get("cutover_high").cloned().filter(|v| !v.is_null());
    let high_key = match &high {
        Some(h) => {
            let mut k = spec.clone();
            k.watermark = None;
            k.filter = Some(format!("{c} = {}", literal(spec.kind, h)?));
            let mut src = open_spec(&k)?;
            src.next_batch(1)?
                .first()
                .and_then(|r| r.position.key.clone())
                .map(Value::Array)
        }
        None => None,
    };
    Ok(Probe {
        high_key,
        high,
        nulls: int(row.get("cutover_nulls")),
        backwards: int(row.get("cutover_back")) == 1,
    })
}

/// Whether the row with this key is still in the source.
pub fn row_exists(spec: &SourceSpec, key: &Value) -> Result<bool, SourceError> {
    let Value::Array(key) = key else {
        return Ok(false);
    };
    let mut base = spec.clone();
    base.watermark = None;
    let mut src = open_spec(&base)?;
    let pos = crate::record::Position {
        key: Some(key.clone()),
        ..Default::default()
    };
    Ok(src.read_at(&pos)?.is_some())
}

/// `high - lookback`: an integer minus a count, a time minus a duration (the
/// text keeps its form: separator, fractional digits, zone).
pub fn minus(high: &Value, lookback: Option<Lookback>) -> Result<Value, String> {
    match (high, lookback) {
        (v, None) => Ok(v.clone()),
        (Value::Number(n), Some(Lookback::Count(k))) => n
            .as_i64()
            .map(|n| Value::from(n.saturating_sub(k)))
            .ok_or_else(|| format!("the high-water mark {n} is not an integer")),
        (Value::String(s), Some(Lookback::Count(k))) if s.parse::<i64>().is_ok() => {
            Ok(Value::String((s.parse::<i64>().unwrap_or(0) - k).to_string()))
        }
        (Value::String(s), Some(Lookback::Duration(d))) => time_minus(s, d)
            .map(Value::String)
            .ok_or_else(|| format!("lookback is a duration but the high-water mark '{s}' is not a time (give an integer lookback for integer columns)")),
        (v, Some(Lookback::Duration(_))) => Err(format!(
            "lookback is a duration but the high-water mark {v} is not a time (give an integer lookback for integer columns)"
        )),
        (v, Some(Lookback::Count(_))) => Err(format!(
            "lookback is an integer but the high-water mark {v} is not an integer (give a duration such as \"10m\" for time columns)"
        )),
    }
}

fn time_minus(s: &str, d: std::time::Duration) -> Option<String> {
    let sep = s.chars().nth(10)?;
    if s.len() < 19 || !(sep == 'T' || sep == ' ') {
        return None;
    }
    let (base, rest) = s.split_at(19);
    let t = chrono::NaiveDateTime::parse_from_str(base, &format!("%Y-%m-%d{sep}%H:%M:%S")).ok()?;
    let digits: String = rest
        .strip_prefix('.')
        .map(|r| r.chars().take_while(char::is_ascii_digit).collect())
        .unwrap_or_default();
    let zone = &rest[if digits.is_empty() {
        0
    } else {
        digits.len() + 1
    }..];
    let nanos: i64 = format!("{digits:0<9}").get(..9)?.parse().ok()?;
    let t = t + chrono::Duration::nanoseconds(nanos) - chrono::Duration::from_std(d).ok()?;
    let mut out = t.format(&format!("%Y-%m-%d{sep}%H:%M:%S")).to_string();
    if !digits.is_empty() {
        let frac = format!("{:09}", t.and_utc().timestamp_subsec_nanos());
        out.push('.');
        out.push_str(&frac[..digits.len().min(9)]);
    }
    out.push_str(zone);
    Some(out)
}

/// The spec that reads only `window`, paged on (watermark, key); with NULL
/// watermarks included, paged on the key alone (NULLs have no place in the
/// watermark's order).
pub fn windowed(spec: &SourceSpec, window: &Window) -> Result<SourceSpec, SourceError> {
    let Some(w) = &spec.watermark else {
        return Ok(spec.clone());
    };
    let c = column(spec, &w.column);
    let mut conds = Vec::new();
    if let Some(low) = &window.low {
        conds.push(format!("{c} >= {}", literal(spec.kind, low)?));
    }
    match &window.high {
        Some(high) => conds.push(format!("{c} <= {}", literal(spec.kind, high)?)),
        None => conds.push(format!("{c} IS NOT NULL")),
    }
    let mut out = spec.clone();
    let range = conds.join(" AND ");
    if window.nulls == Some(WatermarkNulls::Include) {
        out.filter = Some(format!("({range}) OR {c} IS NULL"));
    } else {
        out.filter = Some(range);
        out.key.insert(0, w.column.clone());
        out.paging_prefix = 1;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::time::Duration;

    #[test]
    fn lookback_keeps_the_form_of_the_time() {
        let m = |s: &str, secs| {
            minus(
                &json!(s),
                Some(Lookback::Duration(Duration::from_secs(secs))),
            )
        };
        assert_eq!(
            m("2026-01-01 10:00:00", 600),
            Ok(json!("2026-01-01 09:50:00"))
        );
        assert_eq!(
            m("2026-01-01T00:05:00.1234567+02:00", 600),
            Ok(json!("2025-12-31T23:55:00.1234567+02:00"))
        );
        assert_eq!(
            m("2026-01-01T10:00:00.5Z", 1),
            Ok(json!("2026-01-01T09:59:59.5Z"))
        );
        assert_eq!(minus(&json!(100), Some(Lookback::Count(10))), Ok(json!(90)));
        assert!(minus(
            &json!(100),
            Some(Lookback::Duration(Duration::from_secs(1)))
        )
        .is_err());
        assert!(m("not a time", 1).is_err());
    }

    #[test]
    fn literals_keep_precision() {
        assert_eq!(literal(SourceKind::Postgres, &json!(12)).unwrap(), "12");
        assert_eq!(
            literal(SourceKind::Mssql, &json!("0x00000000000007D1")).unwrap(),
            "0x00000000000007D1"
        );
        assert_eq!(
            literal(SourceKind::Mssql, &json!("2026-01-01T10:00:00.123456700")).unwrap(),
            "'2026-01-01T10:00:00.1234567'"
        );
        assert_eq!(
            literal(SourceKind::Postgres, &json!("it's")).unwrap(),
            "'it''s'"
        );
        assert!(literal(SourceKind::Postgres, &json!(true)).is_err());
    }
}
