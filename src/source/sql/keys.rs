//! Key parameters of the sqlx sources, bound with the key column's own type
//! (learned from the server before the first page): PostgreSQL compares
//! `uuid > text` or `timestamp > text` not at all, and MySQL compares a DECIMAL
//! with a string or a float in double precision, which skips or repeats rows.

use super::SqlError;
use serde_json::Value;
use std::str::FromStr;

/// How one key column's value is bound as a query parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum KeyType {
    /// SQLite: bound as the value's own storage class (integer, real, text).
    Dynamic,
    /// PostgreSQL: the value's text, cast to the column's type
    /// (`$1::pg_catalog.uuid`), so the server compares in that type exactly.
    PgCast(String),
    /// PostgreSQL bytea: base64 text, decoded by the server.
    PgBytes,
    // MySQL/MariaDB: the parameter carries the type.
    Int,
    Decimal,
    Float,
    Bool,
    Date,
    Time,
    DateTime,
    Timestamp,
    Text,
}

impl KeyType {
    /// A MySQL/MariaDB column type (as sqlx names it) → how its keys are bound.
    pub(crate) fn mysql(type_name: &str) -> KeyType {
        let t = type_name.to_ascii_uppercase();
        match t.as_str() {
            "BOOLEAN" => KeyType::Bool,
            "DECIMAL" => KeyType::Decimal,
            "FLOAT" | "DOUBLE" => KeyType::Float,
            "DATE" => KeyType::Date,
            "TIME" => KeyType::Time,
            "DATETIME" => KeyType::DateTime,
            "TIMESTAMP" => KeyType::Timestamp,
            "YEAR" | "BIT" => KeyType::Int,
            t if t.contains("INT") => KeyType::Int,
            _ => KeyType::Text,
        }
    }
}

/// A typed key parameter.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum KeyBind {
    Text(String),
    I64(i64),
    U64(u64),
    F64(f64),
    Bool(bool),
    /// Plain decimal digits (`-123.4500`), bound as DECIMAL.
    Decimal(String),
    Date(chrono::NaiveDate),
    Time(chrono::NaiveTime),
    DateTime(chrono::NaiveDateTime),
    Timestamp(chrono::DateTime<chrono::Utc>),
}

/// A decimal bound to MySQL as DECIMAL, written as its plain digits (a string
/// parameter would be compared with a DECIMAL column in double precision).
#[derive(Debug, Clone)]
pub(crate) struct MysqlDecimal(pub String);

impl sqlx::Type<sqlx::MySql> for MysqlDecimal {
    fn type_info() -> sqlx::mysql::MySqlTypeInfo {
        <bigdecimal::BigDecimal as sqlx::Type<sqlx::MySql>>::type_info()
    }
}

impl<'q> sqlx::Encode<'q, sqlx::MySql> for MysqlDecimal {
    fn encode_by_ref(
        &self,
        buf: &mut Vec<u8>,
    ) -> Result<sqlx::encode::IsNull, sqlx::error::BoxDynError> {
        <&str as sqlx::Encode<'q, sqlx::MySql>>::encode_by_ref(&self.0.as_str(), buf)
    }
}

fn is_plain_decimal(s: &str) -> bool {
    let s = s.strip_prefix('-').unwrap_or(s);
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    !int.is_empty()
        && int.bytes().all(|b| b.is_ascii_digit())
        && frac.bytes().all(|b| b.is_ascii_digit())
        && !(s.contains('.') && frac.is_empty())
}

/// The text a key value is bound as on PostgreSQL (then cast to the column type).
fn key_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Type one key value for its column.
pub(crate) fn key_bind(ty: &KeyType, column: &str, v: &Value) -> Result<KeyBind, SqlError> {
    let bad = |what: &str| SqlError::KeyValue {
        column: column.to_string(),
        message: format!("the key value {v} is not {what}"),
    };
    if v.is_null() {
        return Err(SqlError::KeyValue {
            column: column.to_string(),
            message: "the key value is NULL; a keyset key must be NOT NULL and unique".into(),
        });
    }
    let text = || v.as_str().map(str::to_string);
    Ok(match ty {
        KeyType::PgCast(_) | KeyType::PgBytes => KeyBind::Text(key_text(v)),
        KeyType::Dynamic => match v {
            Value::String(s) => KeyBind::Text(s.clone()),
            Value::Bool(b) => KeyBind::Bool(*b),
            Value::Number(n) => match (n.as_i64(), n.as_f64()) {
                (Some(i), _) => KeyBind::I64(i),
                (None, Some(f)) => KeyBind::F64(f),
                _ => return Err(bad("a number SQLite can hold")),
            },
            other => KeyBind::Text(other.to_string()),
        },
        KeyType::Int => match v {
            Value::Number(n) => match (n.as_i64(), n.as_u64()) {
                (Some(i), _) => KeyBind::I64(i),
                (None, Some(u)) => KeyBind::U64(u),
                _ => return Err(bad("an integer")),
            },
            Value::Bool(b) => KeyBind::I64(i64::from(*b)),
            _ => return Err(bad("an integer")),
        },
        KeyType::Decimal => {
            let s = match v {
                Value::Number(n) => n.to_string(),
                Value::String(s) => s.clone(),
                _ => return Err(bad("a decimal")),
            };
            if is_plain_decimal(&s) {
                KeyBind::Decimal(s)
            } else {
                let d = bigdecimal::BigDecimal::from_str(&s).map_err(|_| bad("a decimal"))?;
                KeyBind::Decimal(d.to_plain_string())
            }
        }
        KeyType::Float => KeyBind::F64(
            v.as_f64()
                .or_else(|| text().and_then(|s| s.parse().ok()))
                .ok_or_else(|| bad("a number"))?,
        ),
        KeyType::Bool => match v {
            Value::Bool(b) => KeyBind::Bool(*b),
            Value::Number(n) => KeyBind::Bool(n.as_i64().ok_or_else(|| bad("a boolean"))? != 0),
            _ => return Err(bad("a boolean")),
        },
        KeyType::Date => KeyBind::Date(
            text()
                .and_then(|s| chrono::NaiveDate::parse_from_str(&s, "%Y-%m-%d").ok())
                .ok_or_else(|| bad("a date (YYYY-MM-DD)"))?,
        ),
        // MySQL TIME is a duration that can pass 24 hours: what chrono cannot
        // read is bound as text, which MySQL converts to TIME.
        KeyType::Time => match text() {
            Some(s) => match chrono::NaiveTime::from_str(&s) {
                Ok(t) => KeyBind::Time(t),
                Err(_) => KeyBind::Text(s),
            },
            None => return Err(bad("a time")),
        },
        KeyType::DateTime => KeyBind::DateTime(
            text()
                .and_then(|s| {
                    chrono::NaiveDateTime::parse_from_str(&s, "%Y-%m-%dT%H:%M:%S%.f").ok()
                })
                .ok_or_else(|| bad("a date and time (YYYY-MM-DDTHH:MM:SS)"))?,
        ),
        KeyType::Timestamp => KeyBind::Timestamp(
            text()
                .and_then(|s| chrono::DateTime::parse_from_rfc3339(&s).ok())
                .map(|t| t.with_timezone(&chrono::Utc))
                .ok_or_else(|| bad("an RFC 3339 timestamp"))?,
        ),
        KeyType::Text => KeyBind::Text(key_text(v)),
    })
}

/// Type the key values of a position, checking there is one per key column.
pub(crate) fn key_binds(
    types: &[KeyType],
    columns: &[String],
    values: &[Value],
) -> Result<Vec<KeyBind>, SqlError> {
    if values.len() != columns.len() || types.len() != columns.len() {
        return Err(SqlError::KeyArity {
            got: values.len(),
            expected: columns.len(),
            columns: columns.join(", "),
        });
    }
    types
        .iter()
        .zip(columns)
        .zip(values)
        .map(|((t, c), v)| key_bind(t, c, v))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dialect::Dialect;
    use crate::source::sql::query::placeholder;
    use serde_json::json;

    fn keys(n: usize) -> Vec<String> {
        ["a", "b", "c"][..n].iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn postgres_binds_the_exact_text_of_every_key() {
        let t = KeyType::PgCast("pg_catalog.numeric".into());
        let big: Value = serde_json::from_str("12345678901234567890.123456789012345678").unwrap();
        assert_eq!(
            key_bind(&t, "k", &big).unwrap(),
            KeyBind::Text("12345678901234567890.123456789012345678".into())
        );
        assert_eq!(
            key_bind(&t, "k", &json!("2024-01-01T10:00:00.000001")).unwrap(),
            KeyBind::Text("2024-01-01T10:00:00.000001".into())
        );
        assert_eq!(
            key_bind(&t, "k", &json!(true)).unwrap(),
            KeyBind::Text("true".into())
        );
        assert_eq!(
            placeholder(
                Dialect::Postgres,
                &KeyType::PgCast("public.\"Mood\"".into()),
                2
            ),
            "$2::public.\"Mood\""
        );
    }

    #[test]
    fn mysql_binds_carry_the_column_type() {
        let big: Value = serde_json::from_str("12345678901234567890.123456789012345678").unwrap();
        assert_eq!(
            key_bind(&KeyType::Decimal, "k", &big).unwrap(),
            KeyBind::Decimal("12345678901234567890.123456789012345678".into())
        );
        // Never through f64: the neighbour one digit away stays distinct.
        let next: Value = serde_json::from_str("12345678901234567890.123456789012345679").unwrap();
        assert_ne!(
            key_bind(&KeyType::Decimal, "k", &big).unwrap(),
            key_bind(&KeyType::Decimal, "k", &next).unwrap()
        );
        assert_eq!(
            key_bind(&KeyType::Int, "k", &json!(u64::MAX)).unwrap(),
            KeyBind::U64(u64::MAX)
        );
        assert_eq!(
            key_bind(&KeyType::Int, "k", &json!(-3)).unwrap(),
            KeyBind::I64(-3)
        );
        assert_eq!(
            key_bind(
                &KeyType::DateTime,
                "k",
                &json!("2024-02-29T23:59:59.999999")
            )
            .unwrap(),
            KeyBind::DateTime(
                chrono::NaiveDate::from_ymd_opt(2024, 2, 29)
                    .unwrap()
                    .and_hms_micro_opt(23, 59, 59, 999_999)
                    .unwrap()
            )
        );
        assert!(matches!(
            key_bind(&KeyType::Timestamp, "k", &json!("2024-01-01T00:00:00Z")).unwrap(),
            KeyBind::Timestamp(_)
        ));
        assert_eq!(
            key_bind(&KeyType::Time, "k", &json!("838:59:59")).unwrap(),
            KeyBind::Text("838:59:59".into())
        );
        assert_eq!(KeyType::mysql("BIGINT UNSIGNED"), KeyType::Int);
        assert_eq!(KeyType::mysql("VARBINARY"), KeyType::Text);
        assert_eq!(KeyType::mysql("DECIMAL"), KeyType::Decimal);
        assert_eq!(placeholder(Dialect::Mysql, &KeyType::Decimal, 3), "?");
    }

    #[test]
    fn sqlite_binds_the_storage_class() {
        assert_eq!(
            key_bind(&KeyType::Dynamic, "k", &json!(7)).unwrap(),
            KeyBind::I64(7)
        );
        assert_eq!(
            key_bind(&KeyType::Dynamic, "k", &json!(0.1)).unwrap(),
            KeyBind::F64(0.1)
        );
        assert_eq!(
            key_bind(&KeyType::Dynamic, "k", &json!("Ä")).unwrap(),
            KeyBind::Text("Ä".into())
        );
    }

    #[test]
    fn bad_key_values_are_errors_naming_the_column() {
        let e = key_bind(&KeyType::Int, "OrgId", &Value::Null).unwrap_err();
        assert!(
            e.to_string()
                .contains("key column OrgId: the key value is NULL"),
            "{e}"
        );
        let e = key_bind(&KeyType::Date, "Day", &json!("yesterday")).unwrap_err();
        assert!(e.to_string().contains("key column Day"), "{e}");
        let e = key_bind(&KeyType::Decimal, "Amount", &json!("1,5")).unwrap_err();
        assert!(e.to_string().contains("is not a decimal"), "{e}");
    }

    #[test]
    fn a_position_with_the_wrong_number_of_keys_is_an_error() {
        let e = key_binds(&[KeyType::Int, KeyType::Int], &keys(2), &[json!(1)]).unwrap_err();
        assert!(
            matches!(
                e,
                SqlError::KeyArity {
                    got: 1,
                    expected: 2,
                    ..
                }
            ),
            "{e}"
        );
        assert!(key_binds(&[KeyType::Int], &keys(1), &[json!(1), json!(2)]).is_err());
    }

    #[test]
    fn plain_decimals() {
        assert!(is_plain_decimal("-12.50"));
        assert!(is_plain_decimal("7"));
        assert!(!is_plain_decimal("1e5"));
        assert!(!is_plain_decimal("1."));
        assert!(!is_plain_decimal(""));
    }
}
