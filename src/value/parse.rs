//! Value parsers shared by the evaluator, the column casts and `verify`: exact
//! numbers, booleans, timestamps and dates from JSON values, and the short
//! rendering of a value for messages.
//!
//! Every parser returns `Err` with a message naming the value (never panics):
//! the message becomes a record error.

use bigdecimal::BigDecimal;
use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use serde_json::{Number, Value};
use std::str::FromStr;

/// How a timestamp or date is read (the optional argument of `timestamp` / `date`).
#[derive(Debug, Clone)]
pub enum TimeFormat {
    /// ISO 8601 / RFC 3339 / RFC 2822 / common SQL forms; integers are epoch seconds.
    Auto,
    EpochSeconds,
    EpochMillis,
    Pattern(String),
}

/// Short rendering of a value for error messages.
pub fn show(v: &Value) -> String {
    let s = match v {
        Value::String(s) => format!("'{s}'"),
        other => other.to_string(),
    };
    if s.chars().count() > 60 {
        let cut: String = s.chars().take(57).collect();
        format!("{cut}...")
    } else {
        s
    }
}

/// The text form of a scalar (strings as is, numbers as digits, JSON otherwise).
pub fn as_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn number_from_str(s: &str) -> Option<Number> {
    serde_json::from_str::<Number>(s).ok()
}

/// Parse an exact decimal (number digits or text) without passing through f64.
pub fn parse_decimal(v: &Value) -> Result<BigDecimal, String> {
    let text = match v {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.trim().to_string(),
        other => return Err(format!("{} is not a number", show(other))),
    };
    let text = text.trim_start_matches('+');
    BigDecimal::from_str(text).map_err(|_| format!("{} is not a decimal number", show(v)))
}

pub fn decimal_value(d: &BigDecimal) -> Value {
    let s = d.to_plain_string();
    match number_from_str(&s) {
        Some(n) => Value::Number(n),
        None => Value::String(s),
    }
}

/// An integer from a JSON number or text, exact for every i64.
pub fn parse_int(v: &Value) -> Result<i64, String> {
    match v {
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                return Ok(i);
            }
            let d = parse_decimal(v)?;
            if d.is_integer() {
                let s = d.with_scale(0).to_plain_string();
                return s
                    .parse::<i64>()
                    .map_err(|_| format!("{} is out of the 64-bit integer range", show(v)));
            }
            Err(format!("{} is not a whole number", show(v)))
        }
        Value::String(s) => {
            let t = s.trim();
            if let Ok(i) = t.parse::<i64>() {
                return Ok(i);
            }
            match BigDecimal::from_str(t) {
                Ok(d) if d.is_integer() => d
                    .with_scale(0)
                    .to_plain_string()
                    .parse::<i64>()
                    .map_err(|_| format!("{} is out of the 64-bit integer range", show(v))),
                Ok(_) => Err(format!("{} is not a whole number", show(v))),
                Err(_) => Err(format!("{} is not an integer", show(v))),
            }
        }
        Value::Bool(b) => Ok(i64::from(*b)),
        other => Err(format!("{} is not an integer", show(other))),
    }
}

pub fn parse_float(v: &Value) -> Result<f64, String> {
    let f = match v {
        Value::Number(n) => n.as_f64().or_else(|| n.to_string().parse::<f64>().ok()),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    };
    match f {
        Some(f) if f.is_finite() => Ok(f),
        _ => Err(format!("{} is not a number", show(v))),
    }
}

pub fn parse_bool(v: &Value) -> Result<bool, String> {
    match v {
        Value::Bool(b) => Ok(*b),
        Value::Number(n) => match n.to_string().as_str() {
            "0" => Ok(false),
            "1" => Ok(true),
            _ => Err(format!("{} is not a boolean (0 or 1)", show(v))),
        },
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "t" | "yes" | "y" | "1" | "on" => Ok(true),
            "false" | "f" | "no" | "n" | "0" | "off" => Ok(false),
            _ => Err(format!("{} is not a boolean", show(v))),
        },
        other => Err(format!("{} is not a boolean", show(other))),
    }
}

/// A point in time that may or may not carry an offset.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Instant {
    Naive(NaiveDateTime),
    Zoned(DateTime<chrono::FixedOffset>),
}

impl Instant {
    pub fn naive_utc(&self) -> NaiveDateTime {
        match self {
            Instant::Naive(n) => *n,
            Instant::Zoned(z) => z.naive_utc(),
        }
    }

    pub fn to_value(&self) -> Value {
        Value::String(match self {
            Instant::Naive(n) => n.format("%Y-%m-%dT%H:%M:%S%.f").to_string(),
            Instant::Zoned(z) => z.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
        })
    }
}

const NAIVE_FORMATS: &[&str] = &[
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%dT%H:%M",
    "%Y-%m-%d %H:%M",
    "%Y/%m/%d %H:%M:%S",
];

/// Parse a timestamp: ISO 8601 / RFC 3339, RFC 2822, SQL forms, a date alone.
pub fn parse_instant(v: &Value, fmt: &TimeFormat) -> Result<Instant, String> {
    let epoch = |secs: i64, nanos: u32| -> Result<Instant, String> {
        Utc.timestamp_opt(secs, nanos)
            .single()
            .map(|t| Instant::Zoned(t.fixed_offset()))
            .ok_or_else(|| format!("{} is out of the timestamp range", show(v)))
    };
    match (fmt, v) {
        (TimeFormat::EpochMillis, _) => {
            let ms = parse_int(v).map_err(|_| format!("{} is not epoch milliseconds", show(v)))?;
            epoch(
                ms.div_euclid(1000),
                (ms.rem_euclid(1000) * 1_000_000) as u32,
            )
        }
        (TimeFormat::EpochSeconds, _) | (TimeFormat::Auto, Value::Number(_)) => {
            let d = parse_decimal(v).map_err(|_| format!("{} is not epoch seconds", show(v)))?;
            let secs = parse_int(&decimal_value(
                &d.with_scale_round(0, bigdecimal::RoundingMode::Floor),
            ))?;
            let frac = (d - BigDecimal::from(secs)) * BigDecimal::from(1_000_000_000);
            let nanos = parse_int(&decimal_value(&frac.with_scale(0))).unwrap_or(0);
            epoch(secs, nanos as u32)
        }
        (TimeFormat::Pattern(p), Value::String(s)) => {
            let s = s.trim();
            if let Ok(z) = DateTime::parse_from_str(s, p) {
                return Ok(Instant::Zoned(z));
            }
            if let Ok(n) = NaiveDateTime::parse_from_str(s, p) {
                return Ok(Instant::Naive(n));
            }
            if let Ok(d) = NaiveDate::parse_from_str(s, p) {
                return Ok(Instant::Naive(d.and_time(NaiveTime::MIN)));
            }
            Err(format!("{} does not match the format '{p}'", show(v)))
        }
        (TimeFormat::Auto, Value::String(s)) => {
            let s = s.trim();
            if let Ok(z) = DateTime::parse_from_rfc3339(s) {
                return Ok(Instant::Zoned(z));
            }
            if let Ok(z) = DateTime::parse_from_rfc2822(s) {
                return Ok(Instant::Zoned(z));
            }
            for f in NAIVE_FORMATS {
                if let Ok(n) = NaiveDateTime::parse_from_str(s, f) {
                    return Ok(Instant::Naive(n));
                }
            }
            for f in ["%Y-%m-%d %H:%M:%S%.f%#z", "%Y-%m-%dT%H:%M:%S%.f%#z"] {
                if let Ok(z) = DateTime::parse_from_str(s, f) {
                    return Ok(Instant::Zoned(z));
                }
            }
            if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
                return Ok(Instant::Naive(d.and_time(NaiveTime::MIN)));
            }
            Err(format!(
                "{} is not a timestamp (expected ISO 8601 such as 2024-05-04T04:44:31Z)",
                show(v)
            ))
        }
        (_, other) => Err(format!("{} is not a timestamp", show(other))),
    }
}

pub fn parse_date(v: &Value, fmt: &TimeFormat) -> Result<NaiveDate, String> {
    if let (TimeFormat::Auto, Value::String(s)) = (fmt, v) {
        if let Ok(d) = NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d") {
            return Ok(d);
        }
    }
    if let (TimeFormat::Pattern(p), Value::String(s)) = (fmt, v) {
        if let Ok(d) = NaiveDate::parse_from_str(s.trim(), p) {
            return Ok(d);
        }
    }
    parse_instant(v, fmt)
        .map(|i| match i {
            Instant::Naive(n) => n.date(),
            Instant::Zoned(z) => z.date_naive(),
        })
        .map_err(|e| e.replace("is not a timestamp", "is not a date"))
}
