//! One SQL Server value (a tiberius [`ColumnData`]) as JSON: without loss, or an
//! error naming the column and its type.

use base64::Engine;
use chrono::{Duration, FixedOffset, NaiveDate, NaiveTime, TimeZone};
use serde_json::{Number, Value};
use std::str::FromStr;
use tiberius::{ColumnData, ColumnType};

/// Why one SQL Server value could not become JSON (the reader adds the column).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CellError {
    #[error("a type the reader does not know ({sent} sent for a {ty:?} column); convert the column in a `query` (CAST or CONVERT to a type listed in the README)")]
    UnknownType { ty: ColumnType, sent: &'static str },
    #[error("the {0} value is outside the range the reader can represent")]
    OutOfRange(&'static str),
    #[error("the {0} value is not a finite number")]
    NotFinite(&'static str),
    #[error("the MONEY value {0} cannot be recovered exactly: tiberius decodes MONEY through an f64, which is exact only up to ±549755813888 (2^39); read the column as CAST(col AS DECIMAL(19,4)) in a `query`")]
    MoneyInexact(f64),
}

fn number(text: &str) -> Value {
    Number::from_str(text)
        .map(Value::Number)
        .unwrap_or_else(|_| Value::String(text.to_string()))
}

/// An exact decimal from an integer mantissa and a scale.
fn decimal_text(value: i128, scale: u8) -> String {
    let neg = value < 0;
    let digits = value.unsigned_abs().to_string();
    let scale = scale as usize;
    let s = if scale == 0 {
        digits
    } else if digits.len() > scale {
        format!(
            "{}.{}",
            &digits[..digits.len() - scale],
            &digits[digits.len() - scale..]
        )
    } else {
        format!("0.{}{}", "0".repeat(scale - digits.len()), digits)
    };
    if neg {
        format!("-{s}")
    } else {
        s
    }
}

/// What tiberius 0.12 makes of the 8-byte MONEY integer `n` (1/10000 units):
/// `((high << 32) as f64 + low as f64) / 1e4` (src/tds/codec/column_data/money.rs).
/// SMALLMONEY (`n as f64 / 1e4`) gives the same f64 for every 4-byte `n`.
fn tiberius_money(n: i64) -> f64 {
    let high = n >> 32;
    let low = (n as u64 & 0xffff_ffff) as f64;
    ((high << 32) as f64 + low) / 1e4
}

/// The exact MONEY amount behind tiberius's f64: the one integer `n` of 1/10000
/// units whose decoding gives `f`. Up to |amount| < 2^39 every `n` gives its own
/// f64; beyond, some neighbours share one, and those values are an error.
fn money_text(f: f64) -> Result<String, CellError> {
    if !f.is_finite() {
        return Err(CellError::NotFinite("money"));
    }
    if f.abs() > 1e15 {
        return Err(CellError::MoneyInexact(f));
    }
    let c = (f * 1e4).round() as i128;
    let hits: Vec<i128> = (c - 3..=c + 3)
        .filter(|&k| i64::try_from(k).is_ok_and(|k| tiberius_money(k) == f))
        .collect();
    // Decoding is monotonic, so the integers giving `f` are a run; a single hit
    // whose two neighbours miss is the only one.
    match hits.as_slice() {
        [k] if *k > c - 3 && *k < c + 3 => Ok(decimal_text(*k, 4)),
        _ => Err(CellError::MoneyInexact(f)),
    }
}

fn b64(b: &[u8]) -> Value {
    Value::String(base64::engine::general_purpose::STANDARD.encode(b))
}

/// `rowversion`/`timestamp`: `0x` and upper-case hex, as SQL Server shows it and as
/// `CONVERT(VARCHAR(18), col, 1)` writes it.
fn rowversion_hex(b: &[u8]) -> Value {
    Value::String(format!("0x{}", hex::encode_upper(b)))
}

fn date_from_days(days_since_0001: i64) -> Option<NaiveDate> {
    NaiveDate::from_ymd_opt(1, 1, 1)?.checked_add_signed(Duration::try_days(days_since_0001)?)
}

fn time_from_increments(increments: u64, scale: u8) -> Option<NaiveTime> {
    let nanos = u128::from(increments)
        .checked_mul(10u128.checked_pow(9u32.checked_sub(u32::from(scale))?)?)?;
    let secs = u32::try_from(nanos / 1_000_000_000).ok()?;
    NaiveTime::from_num_seconds_from_midnight_opt(secs, (nanos % 1_000_000_000) as u32)
}

fn iso(dt: chrono::NaiveDateTime) -> Value {
    Value::String(dt.format("%Y-%m-%dT%H:%M:%S%.f").to_string())
}

/// Does tiberius send `data` for a column of type `ty`? (It builds both from the
/// same TDS type info, so a mismatch is a type this reader was not written for.)
fn sent_as_expected(ty: ColumnType, data: &ColumnData<'_>) -> bool {
    use ColumnType as T;
    if matches!(ty, T::Null | T::SSVariant) {
        return true;
    }
    match data {
        ColumnData::U8(_) => matches!(ty, T::Int1 | T::Intn),
        ColumnData::I16(_) => matches!(ty, T::Int2 | T::Intn),
        ColumnData::I32(_) => matches!(ty, T::Int4 | T::Intn),
        ColumnData::I64(_) => matches!(ty, T::Int8 | T::Intn),
        ColumnData::F32(_) => matches!(ty, T::Float4 | T::Floatn),
        ColumnData::F64(_) => matches!(ty, T::Float8 | T::Floatn | T::Money | T::Money4),
        ColumnData::Bit(_) => matches!(ty, T::Bit | T::Bitn),
        ColumnData::String(_) => matches!(
            ty,
            T::BigVarChar | T::BigChar | T::NVarchar | T::NChar | T::Text | T::NText | T::Xml
        ),
        ColumnData::Guid(_) => ty == T::Guid,
        ColumnData::Binary(_) => matches!(ty, T::BigVarBin | T::BigBinary | T::Image),
        ColumnData::Numeric(_) => matches!(ty, T::Decimaln | T::Numericn),
        ColumnData::Xml(_) => ty == T::Xml,
        ColumnData::DateTime(_) => matches!(ty, T::Datetime | T::Datetimen),
        ColumnData::SmallDateTime(_) => matches!(ty, T::Datetime4 | T::Datetimen),
        ColumnData::Date(_) => ty == T::Daten,
        ColumnData::Time(_) => ty == T::Timen,
        ColumnData::DateTime2(_) => ty == T::Datetime2,
        ColumnData::DateTimeOffset(_) => ty == T::DatetimeOffsetn,
    }
}

fn variant_name(data: &ColumnData<'_>) -> &'static str {
    match data {
        ColumnData::U8(_) => "U8",
        ColumnData::I16(_) => "I16",
        ColumnData::I32(_) => "I32",
        ColumnData::I64(_) => "I64",
        ColumnData::F32(_) => "F32",
        ColumnData::F64(_) => "F64",
        ColumnData::Bit(_) => "Bit",
        ColumnData::String(_) => "String",
        ColumnData::Guid(_) => "Guid",
        ColumnData::Binary(_) => "Binary",
        ColumnData::Numeric(_) => "Numeric",
        ColumnData::Xml(_) => "Xml",
        ColumnData::DateTime(_) => "DateTime",
        ColumnData::SmallDateTime(_) => "SmallDateTime",
        ColumnData::Date(_) => "Date",
        ColumnData::Time(_) => "Time",
        ColumnData::DateTime2(_) => "DateTime2",
        ColumnData::DateTimeOffset(_) => "DateTimeOffset",
    }
}

fn float(f: Option<f64>, what: &'static str) -> Result<Value, CellError> {
    match f {
        None => Ok(Value::Null),
        Some(f) => Number::from_f64(f)
            .map(Value::Number)
            .ok_or(CellError::NotFinite(what)),
    }
}

/// One SQL Server value as JSON. `rowversion` says the column is a
/// `rowversion`/`timestamp` (binary(8) on the wire): hex instead of base64.
pub fn cell_to_json(
    ty: ColumnType,
    rowversion: bool,
    data: &ColumnData<'_>,
) -> Result<Value, CellError> {
    if !sent_as_expected(ty, data) {
        return Err(CellError::UnknownType {
            ty,
            sent: variant_name(data),
        });
    }
    Ok(match data {
        ColumnData::U8(v) => v.map_or(Value::Null, Value::from),
        ColumnData::I16(v) => v.map_or(Value::Null, Value::from),
        ColumnData::I32(v) => v.map_or(Value::Null, Value::from),
        ColumnData::I64(v) => v.map_or(Value::Null, Value::from),
        // The shortest text that reads back as the same f32 (0.1, not 0.100000001).
        ColumnData::F32(v) => match v {
            None => Value::Null,
            Some(f) if f.is_finite() => number(&f.to_string()),
            Some(_) => return Err(CellError::NotFinite("real")),
        },
        ColumnData::F64(v) if matches!(ty, ColumnType::Money | ColumnType::Money4) => match v {
            None => Value::Null,
            Some(f) => number(&money_text(*f)?),
        },
        ColumnData::F64(v) => float(*v, "float")?,
        ColumnData::Bit(v) => v.map_or(Value::Null, Value::Bool),
        ColumnData::String(v) => v
            .as_ref()
            .map_or(Value::Null, |s| Value::String(s.to_string())),
        ColumnData::Guid(v) => v.map_or(Value::Null, |u| Value::String(u.hyphenated().to_string())),
        ColumnData::Binary(v) => match v {
            None => Value::Null,
            Some(b) if rowversion => rowversion_hex(b),
            Some(b) => b64(b),
        },
        ColumnData::Numeric(v) => {
            v.map_or(Value::Null, |n| number(&decimal_text(n.value(), n.scale())))
        }
        ColumnData::Xml(v) => v
            .as_ref()
            .map_or(Value::Null, |x| Value::String(x.to_string())),
        ColumnData::DateTime(v) => match v {
            None => Value::Null,
            Some(d) => {
                // Days since 1900-01-01 and 1/300 s since midnight.
                let bad = CellError::OutOfRange("datetime");
                let date = NaiveDate::from_ymd_opt(1900, 1, 1)
                    .and_then(|b| b.checked_add_signed(Duration::try_days(i64::from(d.days()))?))
                    .ok_or(bad.clone())?;
                let nanos = u64::from(d.seconds_fragments()) * 1_000_000_000 / 300;
                let t = u32::try_from(nanos / 1_000_000_000)
                    .ok()
                    .and_then(|s| {
                        NaiveTime::from_num_seconds_from_midnight_opt(
                            s,
                            (nanos % 1_000_000_000) as u32,
                        )
                    })
                    .ok_or(bad)?;
                iso(date.and_time(t))
            }
        },
        ColumnData::SmallDateTime(v) => match v {
            None => Value::Null,
            Some(d) => {
                // Days since 1900-01-01 and minutes since midnight.
                let bad = CellError::OutOfRange("smalldatetime");
                let date = NaiveDate::from_ymd_opt(1900, 1, 1)
                    .and_then(|b| b.checked_add_signed(Duration::try_days(i64::from(d.days()))?))
                    .ok_or(bad.clone())?;
                let t = NaiveTime::from_num_seconds_from_midnight_opt(
                    u32::from(d.seconds_fragments()) * 60,
                    0,
                )
                .ok_or(bad)?;
                iso(date.and_time(t))
            }
        },
        ColumnData::Date(v) => match v {
            None => Value::Null,
            Some(d) => Value::String(
                date_from_days(i64::from(d.days()))
                    .ok_or(CellError::OutOfRange("date"))?
                    .to_string(),
            ),
        },
        ColumnData::Time(v) => match v {
            None => Value::Null,
            Some(t) => Value::String(
                time_from_increments(t.increments(), t.scale())
                    .ok_or(CellError::OutOfRange("time"))?
                    .format("%H:%M:%S%.f")
                    .to_string(),
            ),
        },
        ColumnData::DateTime2(v) => match v {
            None => Value::Null,
            Some(d) => {
                let bad = CellError::OutOfRange("datetime2");
                let date = date_from_days(i64::from(d.date().days())).ok_or(bad.clone())?;
                let t = time_from_increments(d.time().increments(), d.time().scale()).ok_or(bad)?;
                iso(date.and_time(t))
            }
        },
        ColumnData::DateTimeOffset(v) => match v {
            None => Value::Null,
            Some(d) => {
                // The stored date and time are UTC; the offset (minutes) is kept.
                let bad = CellError::OutOfRange("datetimeoffset");
                let dt2 = d.datetime2();
                let date = date_from_days(i64::from(dt2.date().days())).ok_or(bad.clone())?;
                let t = time_from_increments(dt2.time().increments(), dt2.time().scale())
                    .ok_or(bad.clone())?;
                let offset = FixedOffset::east_opt(i32::from(d.offset()) * 60).ok_or(bad)?;
                let local = offset.from_utc_datetime(&date.and_time(t));
                Value::String(local.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
            }
        },
    })
}

/// A cell of a named column, with the column and its type in the error.
pub(crate) fn column_value(
    name: &str,
    ty: ColumnType,
    rowversion: bool,
    data: &ColumnData<'_>,
) -> Result<Value, String> {
    cell_to_json(ty, rowversion, data).map_err(|e| format!("column {name} ({ty:?}): {e}"))
}

#[cfg(test)]
mod tests;
