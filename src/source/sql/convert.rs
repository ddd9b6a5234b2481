//! One column of a row → JSON, without loss, for the three sqlx dialects.
//!
//! The common types go through sqlx's own decoders. What sqlx does not decode
//! (PostgreSQL enums, domains, arrays, xml, interval, money, inet/cidr, macaddr,
//! bit strings, timetz, NaN/infinity values; MySQL SET/ENUM/BIT/YEAR/GEOMETRY) is
//! read from the value's bytes here. A type that still cannot be converted is an
//! error naming the column and its type.

use super::pg_binary::{pg_bytes, pg_type_name};
use super::SqlError;
use base64::Engine;
use serde_json::{Map, Number, Value};
use sqlx::{Column, Row, TypeInfo, ValueRef};
use std::str::FromStr;

/// What converting a PostgreSQL row needs to know about the session.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct PgCtx {
    /// Decimal places of `money` (from lc_monetary), when known.
    pub money_scale: Option<u32>,
}

pub(super) fn b64(b: &[u8]) -> Value {
    Value::String(base64::engine::general_purpose::STANDARD.encode(b))
}

/// Exact digits as a JSON number (serde_json keeps them with `arbitrary_precision`).
pub(crate) fn number(text: &str) -> Value {
    Number::from_str(text)
        .map(Value::Number)
        .unwrap_or_else(|_| Value::String(text.to_string()))
}

/// A float as a JSON number; NaN and the infinities, which JSON has no number
/// for, as the strings PostgreSQL prints for them (never a silent null).
pub(crate) fn float(f: f64) -> Value {
    match Number::from_f64(f) {
        Some(n) => Value::Number(n),
        None if f.is_nan() => Value::String("NaN".into()),
        None if f > 0.0 => Value::String("Infinity".into()),
        None => Value::String("-Infinity".into()),
    }
}

pub(super) fn utf8(b: &[u8]) -> Result<Value, String> {
    std::str::from_utf8(b)
        .map(|s| Value::String(s.to_string()))
        .map_err(|e| format!("not UTF-8 text: {e}"))
}

macro_rules! decode {
    ($row:expr, $i:expr, $($ty:ty => $f:expr),+ $(,)?) => {{
        let mut out: Option<Value> = None;
        $(
            if out.is_none() {
                if let Ok(v) = $row.try_get::<Option<$ty>, _>($i) {
                    out = Some(v.map($f).unwrap_or(Value::Null));
                }
            }
        )+
        out
    }};
}

fn unknown<R: Row>(row: &R, i: usize, ty: &str, why: Option<String>) -> SqlError
where
    usize: sqlx::ColumnIndex<R>,
{
    SqlError::Convert {
        column: row
            .try_column(i)
            .map(|c| c.name().to_string())
            .unwrap_or_else(|_| format!("#{i}")),
        type_name: ty.to_string(),
        message: why.unwrap_or_else(|| "the reader cannot convert this value".into()),
    }
}

pub(super) fn datetime(t: chrono::NaiveDateTime) -> Value {
    Value::String(t.format("%Y-%m-%dT%H:%M:%S%.f").to_string())
}

pub(super) fn datetime_utc(t: chrono::DateTime<chrono::Utc>) -> Value {
    Value::String(t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
}

pub(crate) fn sqlite_value(row: &sqlx::sqlite::SqliteRow, i: usize) -> Result<Value, SqlError> {
    let raw = row
        .try_get_raw(i)
        .map_err(|e| unknown(row, i, "?", Some(e.to_string())))?;
    if raw.is_null() {
        return Ok(Value::Null);
    }
    let ty = raw.type_info().name().to_ascii_uppercase();
    let v = match ty.as_str() {
        "INTEGER" => decode!(row, i, i64 => Value::from),
        "REAL" => decode!(row, i, f64 => float),
        "BLOB" => decode!(row, i, Vec<u8> => |b: Vec<u8>| b64(&b)),
        _ => decode!(row, i, String => Value::String, i64 => Value::from, f64 => float),
    };
    v.ok_or_else(|| unknown(row, i, &ty, None))
}

pub(crate) fn pg_value(
    row: &sqlx::postgres::PgRow,
    i: usize,
    ctx: &PgCtx,
) -> Result<Value, SqlError> {
    let raw = row
        .try_get_raw(i)
        .map_err(|e| unknown(row, i, "?", Some(e.to_string())))?;
    if raw.is_null() {
        return Ok(Value::Null);
    }
    let info = raw.type_info().into_owned();
    let ty = info.name().to_ascii_uppercase();
    let v = match ty.as_str() {
        "INT2" => decode!(row, i, i16 => Value::from),
        "INT4" => decode!(row, i, i32 => Value::from),
        "INT8" => decode!(row, i, i64 => Value::from),
        "FLOAT4" => decode!(row, i, f32 => |f: f32| float(f64::from(f))),
        "FLOAT8" => decode!(row, i, f64 => float),
        "BOOL" => decode!(row, i, bool => Value::Bool),
        // NUMERIC, DATE, TIME, TIMESTAMP and TIMESTAMPTZ are read from their bytes
        // below: sqlx's decoders pad numerics past their scale, refuse NaN, panic
        // on `infinity` and turn 24:00:00 into 00:00:00.
        "UUID" => decode!(row, i, uuid::Uuid => |u: uuid::Uuid| Value::String(u.to_string())),
        "JSON" | "JSONB" => decode!(row, i, Value => |v| v),
        "BYTEA" => decode!(row, i, Vec<u8> => |b: Vec<u8>| b64(&b)),
        "TEXT" | "VARCHAR" | "BPCHAR" | "NAME" | "CITEXT" | "UNKNOWN" => {
            decode!(row, i, String => Value::String)
        }
        _ => None,
    };
    if let Some(v) = v {
        return Ok(v);
    }
    // Not decoded by sqlx (a type it does not know, a domain, an array, or a value
    // such as NaN or infinity that its decoder refuses): read the binary value.
    let bytes = raw
        .as_bytes()
        .map_err(|e| unknown(row, i, &ty, Some(e.to_string())))?;
    pg_bytes(&info, bytes, ctx).map_err(|why| unknown(row, i, &pg_type_name(&info), Some(why)))
}

pub(crate) fn mysql_value(row: &sqlx::mysql::MySqlRow, i: usize) -> Result<Value, SqlError> {
    let raw = row
        .try_get_raw(i)
        .map_err(|e| unknown(row, i, "?", Some(e.to_string())))?;
    if raw.is_null() {
        return Ok(Value::Null);
    }
    let ty = raw.type_info().name().to_ascii_uppercase();
    let v = match ty.as_str() {
        "BOOLEAN" => decode!(row, i, bool => Value::Bool),
        t if t.contains("INT") && t.contains("UNSIGNED") => decode!(row, i, u64 => Value::from),
        t if t.contains("INT") => decode!(row, i, i64 => Value::from),
        // YEAR is a small unsigned integer; BIT(n) arrives as big-endian bytes,
        // which sqlx's u64 decoder folds into one number (n ≤ 64).
        "YEAR" | "BIT" => row
            .try_get_unchecked::<Option<u64>, _>(i)
            .ok()
            .map(|v| v.map(Value::from).unwrap_or(Value::Null)),
        "DECIMAL" => {
            decode!(row, i, bigdecimal::BigDecimal => |d: bigdecimal::BigDecimal| number(&d.to_plain_string()))
        }
        "FLOAT" | "DOUBLE" => decode!(row, i, f64 => float),
        "DATE" => {
            decode!(row, i, chrono::NaiveDate => |d: chrono::NaiveDate| Value::String(d.to_string()))
        }
        // TIME is a duration in MySQL (-838:59:59 to 838:59:59).
        "TIME" => decode!(row, i,
            chrono::NaiveTime => |t: chrono::NaiveTime| Value::String(t.to_string()),
            sqlx::mysql::types::MySqlTime => |t: sqlx::mysql::types::MySqlTime| Value::String(t.to_string()),
        ),
        "DATETIME" => decode!(row, i, chrono::NaiveDateTime => datetime),
        "TIMESTAMP" => decode!(row, i, chrono::DateTime<chrono::Utc> => datetime_utc),
        "JSON" => decode!(row, i, Value => |v| v),
        // VARBINARY is also what text columns with a binary collation report:
        // valid UTF-8 stays text, other bytes become base64. SET and ENUM arrive
        // as their text.
        t if t.contains("BLOB")
            || t.contains("BINARY")
            || t.contains("TEXT")
            || t.contains("CHAR")
            || t == "SET"
            || t == "ENUM" =>
        {
            row.try_get_unchecked::<Option<Vec<u8>>, _>(i)
                .ok()
                .map(|b| {
                    b.map(|b| match String::from_utf8(b) {
                        Ok(s) => Value::String(s),
                        Err(e) => b64(e.as_bytes()),
                    })
                    .unwrap_or(Value::Null)
                })
        }
        // Well-known binary (with MySQL's 4-byte SRID in front), as base64.
        "GEOMETRY" => row
            .try_get_unchecked::<Option<Vec<u8>>, _>(i)
            .ok()
            .map(|b| b.map(|b| b64(&b)).unwrap_or(Value::Null)),
        _ => None,
    };
    v.ok_or_else(|| unknown(row, i, &ty, None))
}

/// Convert every column of a row.
pub(crate) fn row_map<R: Row>(
    row: &R,
    conv: impl Fn(&R, usize) -> Result<Value, SqlError>,
) -> Result<Map<String, Value>, SqlError> {
    let mut m = Map::new();
    for (i, c) in row.columns().iter().enumerate() {
        m.insert(c.name().to_string(), conv(row, i)?);
    }
    Ok(m)
}

/// A row as compact JSON text (the same text as serializing [`row_map`]'s
/// object) and the values of its key columns, in the order of `key`, without
/// building the object: a page's rows are converted on the source's thread and
/// freed on another, and the trees cost more than the text.
pub(crate) fn row_json<R: Row>(
    row: &R,
    key: &[String],
    conv: impl Fn(&R, usize) -> Result<Value, SqlError>,
) -> Result<(Vec<Value>, Vec<u8>), SqlError> {
    let columns = row.columns();
    let mut keys: Vec<Option<Value>> = vec![None; key.len()];
    let mut json = Vec::with_capacity(64 * columns.len().max(1));
    json.push(b'{');
    for (i, c) in columns.iter().enumerate() {
        let v = conv(row, i)?;
        if i > 0 {
            json.push(b',');
        }
        let io = |e: serde_json::Error| SqlError::Convert {
            column: c.name().to_string(),
            type_name: c.type_info().name().to_string(),
            message: e.to_string(),
        };
        serde_json::to_writer(&mut json, c.name()).map_err(io)?;
        json.push(b':');
        serde_json::to_writer(&mut json, &v).map_err(io)?;
        if let Some(k) = key.iter().position(|k| k == c.name()) {
            keys[k] = Some(v);
        }
    }
    json.push(b'}');
    let keys = keys
        .into_iter()
        .enumerate()
        .map(|(k, v)| {
            v.ok_or_else(|| SqlError::KeyColumnMissing {
                column: key[k].clone(),
                columns: columns
                    .iter()
                    .map(|c| c.name().to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok((keys, json))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_finite_floats_are_strings_not_null() {
        assert_eq!(float(f64::NAN), Value::String("NaN".into()));
        assert_eq!(float(f64::NEG_INFINITY), Value::String("-Infinity".into()));
        assert_eq!(float(0.5).to_string(), "0.5");
    }
}
