//! The text form of each value that a segment checksum hashes, written twice:
//! as a SQL expression the target evaluates over its stored rows
//! (PostgreSQL, MySQL/MariaDB), and as the same text predicted in Rust from the
//! value the mapping produces. Where the target cannot produce an exact form
//! (a MariaDB `DOUBLE`: no function gives its bits) the column has none and its
//! table is compared row by row. SQLite is embedded: its rows are read and the
//! exact normal form ([`crate::value::norm`]) is taken on both sides in Rust.
//!
//! A row's text is the concatenation, over its columns, of `len:text` (bytes)
//! or `:` for NULL, so that no two rows share one; its digest is MD5 (which
//! both servers have built in), summed per segment as two independent 64-bit
//! halves beside the count. A prediction that misses (a value the target keeps
//! in another form) only costs a row-by-row look at that segment: it is never
//! taken for equality.

use crate::dialect::{quote_ident, Dialect};
use crate::transform::BoundTable;
use crate::value::{comparable_text, norm, parse_decimal, ColumnType, SqlValue};
use bigdecimal::{BigDecimal, RoundingMode};
use chrono::{NaiveDateTime, NaiveTime, SubsecRound, Timelike};
use md5::{Digest as _, Md5};
use serde_json::Value;

/// Segments are the first 12 bits of the MD5 of the key's text.
pub const BUCKET_HEX: usize = 3;
pub const BUCKETS: usize = 1 << (4 * BUCKET_HEX);

/// The SQL text form of column `i`, or why it has none on this dialect.
fn column_sql(d: Dialect, t: &BoundTable, i: usize) -> Result<String, String> {
    let c = quote_ident(d, &t.spec.columns[i].name);
    let ty = &t.types[i];
    let bool_case =
        format!("CASE WHEN {c} IS NULL THEN NULL WHEN {c} THEN 'true' ELSE 'false' END");
    Ok(match d {
        Dialect::Postgres => match ty {
            ColumnType::Float => format!("encode(float8send({c}::float8), 'hex')"),
            ColumnType::Decimal { scale: Some(_), .. } => format!("{c}::text"),
            ColumnType::Decimal { scale: None, .. } => format!("trim_scale({c})::text"),
            ColumnType::Bool => bool_case,
            ColumnType::Date => format!("to_char({c}, 'YYYY-MM-DD')"),
            ColumnType::Time => format!("to_char({c}::interval, 'HH24:MI:SS.US')"),
            ColumnType::Timestamp { tz: false } => {
                format!("to_char({c}, 'YYYY-MM-DD HH24:MI:SS.US')")
            }
            ColumnType::Timestamp { tz: true } => {
                format!("to_char({c} AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US')")
            }
            ColumnType::Json { .. } => format!("{c}::jsonb::text"),
            ColumnType::Bytes => format!("encode({c}, 'hex')"),
            _ => format!("{c}::text"),
        },
        Dialect::Mysql => match ty {
            ColumnType::Float => {
                return Err(format!(
                    "column {} ({}) has no exact text form on MySQL/MariaDB",
                    t.spec.columns[i].name, t.declared[i]
                ))
            }
            ColumnType::Decimal { scale: None, .. } => {
                return Err(format!(
                    "column {} (decimal without a scale) has no exact text form",
                    t.spec.columns[i].name
                ))
            }
            ColumnType::Bool => bool_case,
            ColumnType::Date => format!("DATE_FORMAT({c}, '%Y-%m-%d')"),
            ColumnType::Time => format!("TIME_FORMAT({c}, '%H:%i:%s.%f')"),
            ColumnType::Timestamp { .. } => format!("DATE_FORMAT({c}, '%Y-%m-%d %H:%i:%s.%f')"),
            ColumnType::Bytes => format!("LOWER(HEX({c}))"),
            _ => format!("CAST({c} AS CHAR)"),
        },
        Dialect::Sqlite => return Err("SQLite rows are hashed as they are read".into()),
    })
}

/// `len:text` of a column's SQL form, `:` for NULL.
fn framed_sql(d: Dialect, e: &str) -> String {
    match d {
        Dialect::Postgres => format!("coalesce(octet_length({e})::text || ':' || {e}, ':')"),
        _ => format!("COALESCE(CONCAT(LENGTH({e}), ':', {e}), ':')"),
    }
}

fn concat_sql(d: Dialect, parts: Vec<String>) -> String {
    match d {
        Dialect::Postgres => parts.join(" || "),
        _ => format!("CONCAT({})", parts.join(", ")),
    }
}

/// The SQL of a table's segment checksums: per segment `b`, the row count `n`
/// and the two sums `s1`, `s2` as text; or why a column has no exact form.
pub fn segments_sql(d: Dialect, t: &BoundTable) -> Result<String, String> {
    let (key, row) = key_and_row_sql(d, t)?;
    let table = crate::dialect::quote_table(d, &t.spec.table);
    Ok(match d {
        Dialect::Postgres => format!(
            "SELECT b, count(*) AS n, \
             sum(('x' || substr(m, 1, 16))::bit(64)::bigint)::text AS s1, \
             sum(('x' || substr(m, 17, 16))::bit(64)::bigint)::text AS s2 \
             FROM (SELECT left(md5({key}), {BUCKET_HEX}) AS b, md5({row}) AS m FROM {table}) x GROUP BY b"
        ),
        _ => format!(
            "SELECT b, COUNT(*) AS n, \
             CAST(SUM(CAST(CONV(SUBSTR(m, 1, 16), 16, 10) AS UNSIGNED)) AS CHAR) AS s1, \
             CAST(SUM(CAST(CONV(SUBSTR(m, 17, 16), 16, 10) AS UNSIGNED)) AS CHAR) AS s2 \
             FROM (SELECT LEFT(MD5({key}), {BUCKET_HEX}) AS b, MD5({row}) AS m FROM {table}) x GROUP BY b"
        ),
    })
}

/// The SQL of the framed key text and the framed row text of a table.
fn key_and_row_sql(d: Dialect, t: &BoundTable) -> Result<(String, String), String> {
    let cols = (0..t.spec.columns.len())
        .map(|i| column_sql(d, t, i).map(|e| framed_sql(d, &e)))
        .collect::<Result<Vec<_>, _>>()?;
    let key = concat_sql(d, t.key_idx.iter().map(|&i| cols[i].clone()).collect());
    Ok((key, concat_sql(d, cols)))
}

/// The SQL listing the keys of the rows in some segments: each key column
/// read as `fetch_by_keys` reads it, for `n` segments bound as `?`.
pub fn segment_keys_sql(d: Dialect, t: &BoundTable, n: usize) -> Result<String, String> {
    let (key, _) = key_and_row_sql(d, t)?;
    let table = crate::dialect::quote_table(d, &t.spec.table);
    let read = crate::sink::fetch_columns(d, t);
    let shown: Vec<&str> = t.key_idx.iter().map(|&i| read[i].as_str()).collect();
    let marks = vec!["?"; n].join(", ");
    Ok(format!(
        "SELECT {}, left(md5({key}), {BUCKET_HEX}) AS cutover_segment_ FROM {table} \
         WHERE left(md5({key}), {BUCKET_HEX}) IN ({marks})",
        shown.join(", ")
    ))
}

/// Why a table cannot be compared by segment checksums on this dialect.
pub fn unhashable(d: Dialect, t: &BoundTable) -> Option<String> {
    if !crate::sink::secrets::secret_columns(t).is_empty() {
        return Some("secret columns are checked by opening each stored value".into());
    }
    match d {
        Dialect::Sqlite => None,
        _ => key_and_row_sql(d, t).err(),
    }
}

/// The text a column's SQL form gives for the value the mapping produces.
pub fn predict(d: Dialect, t: &BoundTable, i: usize, v: &SqlValue) -> Option<String> {
    let ty = &t.types[i];
    if let Dialect::Sqlite = d {
        return exact(d, ty, &t.declared[i], comparable_text(v).as_deref());
    }
    if v.is_null() {
        return None;
    }
    Some(match ty {
        ColumnType::Integer { .. } | ColumnType::Unsigned { .. } => match v {
            SqlValue::Int(i) => i.to_string(),
            other => plain_number(other)?,
        },
        ColumnType::Float => float_hex(v, single(d, &t.declared[i]))?,
        ColumnType::Decimal { scale, .. } => {
            let dec = decimal(v)?;
            match scale {
                Some(s) => dec
                    .with_scale_round(i64::from(*s), RoundingMode::HalfUp)
                    .to_plain_string(),
                None => dec.normalized().to_plain_string(),
            }
        }
        ColumnType::Bool => match v {
            SqlValue::Bool(b) => b.to_string(),
            SqlValue::Int(i) => (*i != 0).to_string(),
            other => norm(ty, comparable_text(other).as_deref())?,
        },
        ColumnType::Date => match v {
            SqlValue::Date(d) => d.format("%Y-%m-%d").to_string(),
            SqlValue::Timestamp(t) | SqlValue::TimestampTz(t) => t.format("%Y-%m-%d").to_string(),
            other => norm(ty, comparable_text(other).as_deref())?,
        },
        ColumnType::Time => match v {
            SqlValue::Time(t) => micros_time(*t),
            SqlValue::Timestamp(t) | SqlValue::TimestampTz(t) => micros_time(t.time()),
            other => comparable_text(other)?,
        },
        ColumnType::Timestamp { .. } => match v {
            SqlValue::Timestamp(t) | SqlValue::TimestampTz(t) => micros(*t),
            SqlValue::Date(d) => micros(d.and_time(NaiveTime::MIN)),
            other => comparable_text(other)?,
        },
        ColumnType::Uuid => comparable_text(v)?.to_lowercase(),
        ColumnType::Json { .. } if d == Dialect::Postgres => {
            let text = comparable_text(v)?;
            match serde_json::from_str::<Value>(&text) {
                Ok(doc) => {
                    let mut out = String::with_capacity(text.len() + 8);
                    jsonb_text(&doc, &mut out);
                    out
                }
                Err(_) => text,
            }
        }
        _ => comparable_text(v)?,
    })
}

/// The exact normal form of a stored value read back as text (SQLite), and of
/// the value the mapping produces as text: floats by their bits, decimals at
/// the declared scale, instants to the microsecond, JSON canonical.
pub fn exact(d: Dialect, ty: &ColumnType, declared: &str, text: Option<&str>) -> Option<String> {
    let t = text?;
    Some(match ty {
        ColumnType::Float => float_hex(&SqlValue::Text(t.to_string()), single(d, declared))
            .unwrap_or_else(|| t.to_string()),
        ColumnType::Decimal { scale: Some(s), .. } => match parse_decimal(&Value::String(t.into()))
        {
            Ok(d) => d
                .with_scale_round(i64::from(*s), RoundingMode::HalfUp)
                .to_plain_string(),
            Err(_) => t.to_string(),
        },
        ColumnType::Decimal { scale: None, .. } => match parse_decimal(&Value::String(t.into())) {
            Ok(d) => d.normalized().to_plain_string(),
            Err(_) => t.to_string(),
        },
        ColumnType::Timestamp { .. } => match norm(ty, Some(t)) {
            Some(n) => match NaiveDateTime::parse_from_str(&n, "%Y-%m-%d %H:%M:%S%.f") {
                Ok(i) => micros(i),
                Err(_) => n,
            },
            None => t.to_string(),
        },
        _ => norm(ty, Some(t))?,
    })
}

fn plain_number(v: &SqlValue) -> Option<String> {
    Some(match decimal(v) {
        Some(d) => d.normalized().to_plain_string(),
        None => comparable_text(v)?,
    })
}

fn decimal(v: &SqlValue) -> Option<BigDecimal> {
    match v {
        SqlValue::Int(i) => Some(BigDecimal::from(*i)),
        SqlValue::Float(f) => parse_decimal(&Value::String(f.to_string())).ok(),
        other => parse_decimal(&Value::String(comparable_text(other)?)).ok(),
    }
}

/// Whether a float column keeps 32 bits (PostgreSQL `real`, MySQL `FLOAT`;
/// SQLite's `REAL` has 64).
fn single(d: Dialect, declared: &str) -> bool {
    let decl = declared.to_ascii_lowercase();
    match d {
        Dialect::Postgres => decl == "real" || decl == "float4",
        Dialect::Mysql => decl.starts_with("float"),
        Dialect::Sqlite => false,
    }
}

/// The bits of a float as 16 hex digits (PostgreSQL's `float8send`); a
/// 32-bit column keeps a 32-bit float, widened.
fn float_hex(v: &SqlValue, single: bool) -> Option<String> {
    let f = match v {
        SqlValue::Float(f) => *f,
        SqlValue::Int(i) => *i as f64,
        other => comparable_text(other)?.trim().parse::<f64>().ok()?,
    };
    let f = if single { f64::from(f as f32) } else { f };
    // -0 and 0 are one value to a reader; NaN has one form.
    let f = if f == 0.0 { 0.0 } else { f };
    Some(hex::encode(f.to_be_bytes()))
}

fn micros(t: NaiveDateTime) -> String {
    t.round_subsecs(6)
        .format("%Y-%m-%d %H:%M:%S%.6f")
        .to_string()
}

fn micros_time(t: NaiveTime) -> String {
    let t = t.round_subsecs(6);
    format!(
        "{:02}:{:02}:{:02}.{:06}",
        t.hour(),
        t.minute(),
        t.second(),
        t.nanosecond() / 1000
    )
}

/// A JSON document as PostgreSQL prints a `jsonb`: object keys by length,
/// then bytes, the last of duplicates kept; `", "` and `": "` between items;
/// numbers as `numeric` prints them.
pub fn jsonb_text(v: &Value, out: &mut String) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&jsonb_number(&n.to_string())),
        Value::String(s) => jsonb_string(s, out),
        Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                jsonb_text(x, out);
            }
            out.push(']');
        }
        Value::Object(m) => {
            let mut keys: Vec<(&String, &Value)> = m.iter().collect();
            keys.sort_by(|a, b| {
                a.0.len()
                    .cmp(&b.0.len())
                    .then_with(|| a.0.as_bytes().cmp(b.0.as_bytes()))
            });
            out.push('{');
            for (i, (k, x)) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                jsonb_string(k, out);
                out.push_str(": ");
                jsonb_text(x, out);
            }
            out.push('}');
        }
    }
}

/// A JSON number as `numeric` prints it: no exponent, the scale its digits
/// after the point give (never below zero).
fn jsonb_number(text: &str) -> String {
    match text.parse::<BigDecimal>() {
        Ok(d) => {
            let (_, scale) = d.as_bigint_and_exponent();
            let d = if scale < 0 { d.with_scale(0) } else { d };
            let s = d.to_plain_string();
            // numeric has no negative zero.
            match s.strip_prefix('-') {
                Some(rest) if rest.bytes().all(|b| b == b'0' || b == b'.') => rest.to_string(),
                _ => s,
            }
        }
        Err(_) => text.to_string(),
    }
}

fn jsonb_string(s: &str, out: &mut String) {
    out.push('"');
    for ch in s.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Append `len:text` (or `:` for NULL) to a row's text.
pub fn frame(out: &mut String, text: Option<&str>) {
    if let Some(t) = text {
        out.push_str(&t.len().to_string());
        out.push(':');
        out.push_str(t);
    } else {
        out.push(':');
    }
}

/// The MD5 of a text.
pub fn md5(text: &str) -> [u8; 16] {
    Md5::digest(text.as_bytes()).into()
}

/// The segment of a key's MD5 (its first [`BUCKET_HEX`] hex digits).
pub fn bucket_of(key_md5: &[u8; 16]) -> usize {
    ((usize::from(key_md5[0]) << 8) | usize::from(key_md5[1])) >> (16 - 4 * BUCKET_HEX)
}

/// The two 64-bit halves of a row's MD5.
pub fn halves(row_md5: &[u8; 16]) -> (u64, u64) {
    let mut a = [0u8; 8];
    let mut b = [0u8; 8];
    a.copy_from_slice(&row_md5[..8]);
    b.copy_from_slice(&row_md5[8..]);
    (u64::from_be_bytes(a), u64::from_be_bytes(b))
}

/// One row's key MD5 and row MD5 from its columns' texts.
pub fn digest_row(t: &BoundTable, texts: &[Option<String>]) -> ([u8; 16], [u8; 16]) {
    let mut key = String::new();
    for &i in &t.key_idx {
        frame(&mut key, texts.get(i).and_then(|x| x.as_deref()));
    }
    let mut row = String::new();
    for x in texts {
        frame(&mut row, x.as_deref());
    }
    (md5(&key), md5(&row))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jsonb(s: &str) -> String {
        let mut out = String::new();
        jsonb_text(&serde_json::from_str(s).unwrap(), &mut out);
        out
    }

    /// Each expected text below is what PostgreSQL 15 prints for `'…'::jsonb::text`.
    #[test]
    fn json_as_postgres_prints_a_jsonb() {
        assert_eq!(
            jsonb(r#"{"bb":1.50e1,"a":[1,2],"a":"x\u0001"}"#),
            r#"{"a": "x\u0001", "bb": 15.0}"#
        );
        assert_eq!(
            jsonb(r#"{"n": 1e2, "m": -0, "k": 0.10}"#),
            r#"{"k": 0.10, "m": 0, "n": 100}"#
        );
        assert_eq!(jsonb(r#"["é\"\\\n", {}, []]"#), r#"["é\"\\\n", {}, []]"#);
    }

    #[test]
    fn exact_forms_keep_what_a_lossy_compare_loses() {
        let f = ColumnType::Float;
        assert_ne!(
            exact(Dialect::Sqlite, &f, "double", Some("0.30000000000000004")),
            exact(Dialect::Sqlite, &f, "double", Some("0.3"))
        );
        let d = ColumnType::Decimal {
            precision: Some(20),
            scale: Some(10),
        };
        assert_eq!(
            exact(Dialect::Sqlite, &d, "", Some("1.5")),
            Some("1.5000000000".into())
        );
        assert_ne!(
            exact(Dialect::Sqlite, &d, "", Some("1.0000000001")),
            exact(Dialect::Sqlite, &d, "", Some("1.0000000002"))
        );
        let ts = ColumnType::Timestamp { tz: false };
        assert_eq!(
            exact(Dialect::Sqlite, &ts, "", Some("2024-01-02 03:04:05.000001")),
            Some("2024-01-02 03:04:05.000001".into())
        );
        assert_ne!(
            exact(Dialect::Sqlite, &ts, "", Some("2024-01-02 03:04:05.000001")),
            exact(Dialect::Sqlite, &ts, "", Some("2024-01-02 03:04:05"))
        );
    }

    #[test]
    fn segments_and_halves_read_the_md5_as_the_servers_do() {
        // md5('') = d41d8cd98f00b204e9800998ecf8427e
        let m = md5("");
        assert_eq!(bucket_of(&m), 0xd41);
        assert_eq!(halves(&m), (0xd41d8cd98f00b204, 0xe9800998ecf8427e));
        let mut s = String::new();
        frame(&mut s, Some("ab"));
        frame(&mut s, None);
        frame(&mut s, Some(""));
        assert_eq!(s, "2:ab:0:");
    }
}
