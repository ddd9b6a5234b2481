//! Comparing values written with values read back as text (`verify`, and the
//! writer matching the stored rows of secret columns by key): both sides are
//! brought to one normal form per column type.

use super::{parse_bool, parse_decimal, parse_instant, ColumnType, SqlValue, TimeFormat};
use serde_json::Value;

/// Normal form of a value for comparison (and key matching).
pub fn norm(ty: &ColumnType, text: Option<&str>) -> Option<String> {
    let t = text?;
    Some(match ty {
        ColumnType::Integer { .. } | ColumnType::Unsigned { .. } => {
            parse_decimal(&Value::String(t.into()))
                .map(|d| d.normalized().to_string())
                .unwrap_or_else(|_| t.into())
        }
        ColumnType::Decimal { .. } | ColumnType::Float | ColumnType::Any => {
            match parse_decimal(&Value::String(t.into())) {
                Ok(d) => d.round(9).normalized().to_string(),
                Err(_) => t.to_string(),
            }
        }
        ColumnType::Bool => parse_bool(&Value::String(t.into()))
            .map(|b| b.to_string())
            .unwrap_or_else(|_| t.into()),
        ColumnType::Json { .. } => serde_json::from_str::<Value>(t)
            .map(|v| canonical_json(&v))
            .unwrap_or_else(|_| t.into()),
        ColumnType::Timestamp { .. } => parse_instant(
            &Value::String(t.trim_end_matches("+00").into()),
            &TimeFormat::Auto,
        )
        .map(|i| i.naive_utc().format("%Y-%m-%d %H:%M:%S%.f").to_string())
        .unwrap_or_else(|_| t.into()),
        ColumnType::Date => t.get(..10).unwrap_or(t).to_string(),
        ColumnType::Uuid => t.to_lowercase(),
        // Read back as hex (`sink::fetch_sql`): bytes are not text.
        ColumnType::Bytes => t.trim_start_matches("\\x").to_ascii_lowercase(),
        _ => t.to_string(),
    })
}

fn canonical_json(v: &Value) -> String {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let parts: Vec<String> = keys
                .iter()
                .map(|k| format!("{}:{}", Value::String((*k).clone()), canonical_json(&m[*k])))
                .collect();
            format!("{{{}}}", parts.join(","))
        }
        Value::Array(a) => format!(
            "[{}]",
            a.iter().map(canonical_json).collect::<Vec<_>>().join(",")
        ),
        Value::Number(_) => parse_decimal(v)
            .map(|d| d.normalized().to_string())
            .unwrap_or_else(|_| v.to_string()),
        other => other.to_string(),
    }
}

/// The text of a value to write, comparable with [`norm`] to the text read back.
pub fn comparable_text(v: &SqlValue) -> Option<String> {
    match v {
        SqlValue::Bool(b) => Some(b.to_string()),
        SqlValue::Bytes(b) => Some(hex::encode(b)),
        other => other.to_text(),
    }
}
