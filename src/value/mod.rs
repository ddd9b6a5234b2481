//! Target column types and the cast of a JSON value into a typed SQL value.
//!
//! Each target dialect introspects its tables into [`ColumnType`]s; the transform
//! casts every column value with [`cast`] on the rayon workers, so a value that does
//! not fit its column becomes a record error naming the column, before the
//! database sees it.

mod compare;
mod parse;

pub use compare::{comparable_text, norm};

pub use parse::{
    as_text, decimal_value, parse_bool, parse_date, parse_decimal, parse_float, parse_instant,
    parse_int, show, Instant, TimeFormat,
};

use crate::mapping::Kind;
use bigdecimal::BigDecimal;
use chrono::{NaiveDate, NaiveDateTime, NaiveTime};
use serde_json::Value;

/// A column's type as the loader understands it.
#[derive(Debug, Clone, PartialEq)]
pub enum ColumnType {
    /// Signed integer of `bits` width (8, 16, 24, 32, 64).
    Integer {
        bits: u8,
    },
    /// Unsigned integer of `bits` width (MySQL `... UNSIGNED`).
    Unsigned {
        bits: u8,
    },
    Float,
    /// Exact decimal; precision and scale when declared.
    Decimal {
        precision: Option<u32>,
        scale: Option<u32>,
    },
    Bool,
    /// Text with an optional maximum length in characters.
    Text {
        max_len: Option<u32>,
    },
    Date,
    Time,
    Timestamp {
        tz: bool,
    },
    Uuid,
    Json {
        binary: bool,
    },
    Bytes,
    Enum(Vec<String>),
    /// No declared type (SQLite): values go in as they come.
    Any,
}

impl ColumnType {
    pub fn name(&self) -> String {
        match self {
            ColumnType::Integer { bits } => format!("integer ({bits}-bit)"),
            ColumnType::Unsigned { bits } => format!("unsigned integer ({bits}-bit)"),
            ColumnType::Float => "float".into(),
            ColumnType::Decimal {
                precision: Some(p),
                scale,
            } => format!("decimal({p},{})", scale.unwrap_or(0)),
            ColumnType::Decimal { .. } => "decimal".into(),
            ColumnType::Bool => "boolean".into(),
            ColumnType::Text { max_len: Some(n) } => format!("varchar({n})"),
            ColumnType::Text { max_len: None } => "text".into(),
            ColumnType::Date => "date".into(),
            ColumnType::Time => "time".into(),
            ColumnType::Timestamp { tz: true } => "timestamptz".into(),
            ColumnType::Timestamp { tz: false } => "timestamp".into(),
            ColumnType::Uuid => "uuid".into(),
            ColumnType::Json { .. } => "json".into(),
            ColumnType::Bytes => "bytes".into(),
            ColumnType::Enum(v) => format!("enum({})", v.join(", ")),
            ColumnType::Any => "any".into(),
        }
    }

    /// Whether an expression of static kind `k` can never fit this column
    /// (a load-time error), e.g. a `date` into an integer column.
    #[allow(clippy::match_like_matches_macro)]
    pub fn rejects(&self, k: Kind) -> bool {
        use ColumnType as C;
        match (self, k) {
            (_, Kind::Any) | (C::Any, _) | (C::Text { .. }, _) | (C::Json { .. }, _) => false,
            (
                C::Integer { .. } | C::Unsigned { .. },
                Kind::Int | Kind::Bool | Kind::Decimal | Kind::Text,
            ) => false,
            (
                C::Float | C::Decimal { .. },
                Kind::Int | Kind::Float | Kind::Decimal | Kind::Text,
            ) => false,
            (C::Bool, Kind::Bool | Kind::Int | Kind::Text) => false,
            (C::Date, Kind::Date | Kind::Timestamp | Kind::Text) => false,
            (C::Timestamp { .. }, Kind::Timestamp | Kind::Date | Kind::Text) => false,
            (C::Time, Kind::Text | Kind::Timestamp) => false,
            (C::Uuid, Kind::Uuid | Kind::Text) => false,
            (C::Bytes, Kind::Text | Kind::Array) => false,
            (C::Enum(_), Kind::Text) => false,
            _ => true,
        }
    }
}

/// A typed value ready to bind.
#[derive(Debug, Clone, PartialEq)]
pub enum SqlValue {
    Null,
    Int(i64),
    Float(f64),
    /// Exact decimal as plain digits.
    Decimal(String),
    Bool(bool),
    Text(String),
    Bytes(Vec<u8>),
    Date(NaiveDate),
    Time(NaiveTime),
    Timestamp(NaiveDateTime),
    /// A point in time in UTC (timestamptz).
    TimestampTz(NaiveDateTime),
    Uuid(uuid::Uuid),
    /// JSON text.
    Json(String),
}

impl SqlValue {
    pub fn is_null(&self) -> bool {
        matches!(self, SqlValue::Null)
    }

    /// The value as text, as SQLite stores it and as key maps record it.
    pub fn to_text(&self) -> Option<String> {
        Some(match self {
            SqlValue::Null => return None,
            SqlValue::Int(i) => i.to_string(),
            SqlValue::Float(f) => f.to_string(),
            SqlValue::Decimal(d) => d.clone(),
            SqlValue::Bool(b) => b.to_string(),
            SqlValue::Text(t) | SqlValue::Json(t) => t.clone(),
            SqlValue::Bytes(b) => hex::encode(b),
            SqlValue::Date(d) => d.format("%Y-%m-%d").to_string(),
            SqlValue::Time(t) => t.format("%H:%M:%S%.f").to_string(),
            SqlValue::Timestamp(t) | SqlValue::TimestampTz(t) => {
                t.format("%Y-%m-%d %H:%M:%S%.f").to_string()
            }
            SqlValue::Uuid(u) => u.hyphenated().to_string(),
        })
    }

    /// A hashable identity for folding rows with the same key.
    pub fn key_text(&self) -> String {
        match self {
            SqlValue::Null => "\u{0}null".into(),
            other => other.to_text().unwrap_or_default(),
        }
    }

    /// Hash [`SqlValue::key_text`] without building it for the common kinds.
    pub fn hash_key_text<H: std::hash::Hasher>(&self, h: &mut H) {
        use std::hash::Hash;
        match self {
            SqlValue::Text(s) | SqlValue::Json(s) | SqlValue::Decimal(s) => s.as_str().hash(h),
            SqlValue::Int(i) => itoa::Buffer::new().format(*i).hash(h),
            other => other.key_text().as_str().hash(h),
        }
    }
}

/// Cast a JSON value into a column type. `Err` is the reason, naming the value.
pub fn cast(v: &Value, ty: &ColumnType) -> Result<SqlValue, String> {
    if v.is_null() {
        return Ok(SqlValue::Null);
    }
    Ok(match ty {
        ColumnType::Any => match v {
            Value::Bool(b) => SqlValue::Int(i64::from(*b)),
            Value::Number(n) => match n.as_i64() {
                Some(i) => SqlValue::Int(i),
                None => SqlValue::Decimal(n.to_string()),
            },
            Value::String(s) => SqlValue::Text(s.clone()),
            other => SqlValue::Json(other.to_string()),
        },
        ColumnType::Unsigned { bits } => {
            let out_of_range = || {
                format!(
                    "{} is out of range for an unsigned {bits}-bit integer column",
                    show(v)
                )
            };
            if *bits >= 64 {
                // Up to 2^64 - 1: beyond i64, the exact digits go as text.
                let i = match parse_int(v) {
                    Ok(i) => i,
                    Err(e) => {
                        let d = parse_decimal(v).map_err(|_| e.clone())?;
                        if !d.is_integer() {
                            return Err(e);
                        }
                        if d < 0 || d > u64::MAX {
                            return Err(out_of_range());
                        }
                        return Ok(SqlValue::Decimal(d.with_scale(0).to_string()));
                    }
                };
                if i < 0 {
                    return Err(out_of_range());
                }
                SqlValue::Int(i)
            } else {
                let i = parse_int(v)?;
                if i < 0 || i > (1i64 << bits) - 1 {
                    return Err(out_of_range());
                }
                SqlValue::Int(i)
            }
        }
        ColumnType::Integer { bits } => {
            let i = parse_int(v)?;
            let (min, max) = match bits {
                b @ 1..=63 => (-(1i64 << (b - 1)), (1i64 << (b - 1)) - 1),
                _ => (i64::MIN, i64::MAX),
            };
            if i < min || i > max {
                return Err(format!(
                    "{} is out of range for a {bits}-bit integer column",
                    show(v)
                ));
            }
            SqlValue::Int(i)
        }
        ColumnType::Float => SqlValue::Float(parse_float(v)?),
        ColumnType::Decimal { precision, scale } => {
            let mut d = parse_decimal(v)?;
            if let Some(s) = scale {
                d = d.with_scale_round(i64::from(*s), bigdecimal::RoundingMode::HalfUp);
            }
            if let Some(p) = precision {
                let s = i64::from(scale.unwrap_or(0));
                let int_digits = integer_digits(&d);
                if int_digits > i64::from(*p) - s {
                    return Err(format!(
                        "{} does not fit decimal({p},{s}): at most {} digit(s) before the point",
                        show(v),
                        i64::from(*p) - s
                    ));
                }
            }
            SqlValue::Decimal(d.to_plain_string())
        }
        ColumnType::Bool => SqlValue::Bool(parse_bool(v)?),
        ColumnType::Text { max_len } => {
            let t = match v {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                other => other.to_string(),
            };
            if let Some(n) = max_len {
                let len = t.chars().count();
                if len > *n as usize {
                    return Err(format!(
                        "{} is {len} characters long, longer than the column's limit of {n}",
                        show(v)
                    ));
                }
            }
            SqlValue::Text(t)
        }
        ColumnType::Date => SqlValue::Date(parse_date(v, &TimeFormat::Auto)?),
        ColumnType::Time => {
            let t = match v {
                Value::String(s) => {
                    let s = s.trim();
                    NaiveTime::parse_from_str(s, "%H:%M:%S%.f")
                        .or_else(|_| NaiveTime::parse_from_str(s, "%H:%M"))
                        .ok()
                }
                _ => None,
            };
            SqlValue::Time(
                t.ok_or_else(|| format!("{} is not a time of day (HH:MM[:SS])", show(v)))?,
            )
        }
        ColumnType::Timestamp { tz } => {
            if v.is_number() {
                return Err(format!(
                    "{} is a number, not a timestamp: use `| timestamp('epoch')` or `| timestamp('epoch_ms')`",
                    show(v)
                ));
            }
            let i = parse_instant(v, &TimeFormat::Auto)?;
            match (tz, i) {
                (true, i) => SqlValue::TimestampTz(i.naive_utc()),
                (false, Instant::Naive(n)) => SqlValue::Timestamp(n),
                (false, Instant::Zoned(z)) => SqlValue::Timestamp(z.naive_utc()),
            }
        }
        ColumnType::Uuid => {
            let t = match v {
                Value::String(s) => s.trim(),
                _ => return Err(format!("{} is not a UUID", show(v))),
            };
            SqlValue::Uuid(
                uuid::Uuid::parse_str(t).map_err(|_| format!("{} is not a UUID", show(v)))?,
            )
        }
        ColumnType::Json { .. } => SqlValue::Json(match v {
            // Text that already is JSON (e.g. from `| json`) goes in as is.
            Value::String(s) if serde_json::from_str::<serde::de::IgnoredAny>(s).is_ok() => {
                s.clone()
            }
            other => other.to_string(),
        }),
        ColumnType::Bytes => match v {
            Value::String(s) => SqlValue::Bytes(s.as_bytes().to_vec()),
            Value::Array(a) => SqlValue::Bytes(
                a.iter()
                    .map(|b| b.as_u64().filter(|x| *x < 256).map(|x| x as u8))
                    .collect::<Option<Vec<u8>>>()
                    .ok_or_else(|| format!("{} is not an array of bytes", show(v)))?,
            ),
            other => return Err(format!("{} cannot be stored as bytes", show(other))),
        },
        ColumnType::Enum(allowed) => {
            let t = match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            if !allowed.contains(&t) {
                return Err(format!(
                    "{} is not one of the enum's values ({})",
                    show(v),
                    allowed.join(", ")
                ));
            }
            SqlValue::Text(t)
        }
    })
}

fn integer_digits(d: &BigDecimal) -> i64 {
    let (digits, scale) = d.as_bigint_and_exponent();
    let s = digits.magnitude().to_string();
    if s == "0" {
        return 0;
    }
    (s.len() as i64 - scale).max(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn integers_check_range_and_form() {
        assert_eq!(
            cast(&json!("42"), &ColumnType::Integer { bits: 64 }),
            Ok(SqlValue::Int(42))
        );
        assert_eq!(
            cast(&json!(true), &ColumnType::Integer { bits: 16 }),
            Ok(SqlValue::Int(1))
        );
        assert_eq!(
            cast(&json!(-128), &ColumnType::Integer { bits: 8 }),
            Ok(SqlValue::Int(-128))
        );
        assert!(cast(&json!(128), &ColumnType::Integer { bits: 8 }).is_err());
        assert_eq!(
            cast(&json!(255), &ColumnType::Unsigned { bits: 8 }),
            Ok(SqlValue::Int(255))
        );
        assert_eq!(
            cast(&json!(-1), &ColumnType::Unsigned { bits: 32 }),
            Err("-1 is out of range for an unsigned 32-bit integer column".into())
        );
        // Beyond i64 the exact digits go as text; 2^64 does not fit.
        assert_eq!(
            cast(
                &json!("18446744073709551615"),
                &ColumnType::Unsigned { bits: 64 }
            ),
            Ok(SqlValue::Decimal("18446744073709551615".into()))
        );
        assert!(cast(
            &json!("18446744073709551616"),
            &ColumnType::Unsigned { bits: 64 }
        )
        .is_err());
        assert!(cast(&json!("1.5"), &ColumnType::Unsigned { bits: 64 }).is_err());
        let e = cast(&json!(70000), &ColumnType::Integer { bits: 16 }).unwrap_err();
        assert_eq!(e, "70000 is out of range for a 16-bit integer column");
        let e = cast(&json!("abc"), &ColumnType::Integer { bits: 64 }).unwrap_err();
        assert_eq!(e, "'abc' is not an integer");
    }

    #[test]
    fn decimals_are_exact_and_bounded() {
        let ty = ColumnType::Decimal {
            precision: Some(10),
            scale: Some(2),
        };
        let n: Value = serde_json::from_str("2328.6").unwrap();
        assert_eq!(cast(&n, &ty), Ok(SqlValue::Decimal("2328.60".into())));
        assert_eq!(
            cast(&json!("0.125"), &ty),
            Ok(SqlValue::Decimal("0.13".into()))
        );
        let e = cast(&json!("123456789.5"), &ty).unwrap_err();
        assert!(e.contains("does not fit decimal(10,2)"), "{e}");
        let big: Value = serde_json::from_str("123456789012345678901234567890.000000001").unwrap();
        assert_eq!(
            cast(
                &big,
                &ColumnType::Decimal {
                    precision: None,
                    scale: None
                }
            ),
            Ok(SqlValue::Decimal(
                "123456789012345678901234567890.000000001".into()
            ))
        );
    }

    #[test]
    fn text_length_and_enum() {
        let e = cast(&json!("abcdef"), &ColumnType::Text { max_len: Some(5) }).unwrap_err();
        assert_eq!(
            e,
            "'abcdef' is 6 characters long, longer than the column's limit of 5"
        );
        assert_eq!(
            cast(&json!("héllo"), &ColumnType::Text { max_len: Some(5) }),
            Ok(SqlValue::Text("héllo".into()))
        );
        assert_eq!(
            cast(&json!({"a":1}), &ColumnType::Text { max_len: None }),
            Ok(SqlValue::Text("{\"a\":1}".into()))
        );
        let e = cast(&json!("x"), &ColumnType::Enum(vec!["a".into(), "b".into()])).unwrap_err();
        assert_eq!(e, "'x' is not one of the enum's values (a, b)");
    }

    #[test]
    fn times() {
        assert_eq!(
            cast(
                &json!("2024-05-04T04:44:31+02:00"),
                &ColumnType::Timestamp { tz: false }
            )
            .unwrap()
            .to_text()
            .unwrap(),
            "2024-05-04 02:44:31"
        );
        assert_eq!(
            cast(&json!("2024-05-04"), &ColumnType::Date)
                .unwrap()
                .to_text()
                .unwrap(),
            "2024-05-04"
        );
        let e = cast(&json!(1714797871), &ColumnType::Timestamp { tz: false }).unwrap_err();
        assert!(e.contains("timestamp('epoch')"), "{e}");
        let e = cast(&json!("soon"), &ColumnType::Date).unwrap_err();
        assert!(e.contains("'soon' is not a date"), "{e}");
        assert_eq!(
            cast(&json!("20:00"), &ColumnType::Time)
                .unwrap()
                .to_text()
                .unwrap(),
            "20:00:00"
        );
    }

    #[test]
    fn key_hash_equals_the_hash_of_the_key_text() {
        use std::hash::{Hash, Hasher};
        for v in [
            SqlValue::Int(-42),
            SqlValue::Text("héllo".into()),
            SqlValue::Decimal("1.50".into()),
            SqlValue::Null,
            SqlValue::Bool(true),
        ] {
            let mut a = std::collections::hash_map::DefaultHasher::new();
            let mut b = std::collections::hash_map::DefaultHasher::new();
            v.hash_key_text(&mut a);
            v.key_text().as_str().hash(&mut b);
            assert_eq!(a.finish(), b.finish(), "{v:?}");
        }
    }

    #[test]
    fn json_and_uuid() {
        assert_eq!(
            cast(&json!({"a": [1]}), &ColumnType::Json { binary: true }),
            Ok(SqlValue::Json("{\"a\":[1]}".into()))
        );
        assert_eq!(
            cast(&json!("{\"a\":1}"), &ColumnType::Json { binary: true }),
            Ok(SqlValue::Json("{\"a\":1}".into()))
        );
        assert_eq!(
            cast(&json!("plain"), &ColumnType::Json { binary: true }),
            Ok(SqlValue::Json("\"plain\"".into()))
        );
        assert!(cast(&json!("nope"), &ColumnType::Uuid).is_err());
        assert!(ColumnType::Integer { bits: 64 }.rejects(Kind::Date));
        assert!(!ColumnType::Integer { bits: 64 }.rejects(Kind::Any));
    }
}
