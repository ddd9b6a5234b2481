//! PostgreSQL values read from their binary wire form: what sqlx does not decode
//! (enums, domains, arrays, ranges, xml, interval, money, inet/cidr, macaddr,
//! bit strings, timetz, numerics kept to their scale, NaN and infinity).

use super::convert::{b64, datetime, datetime_utc, float, number, utf8, PgCtx};
use serde_json::Value;
use sqlx::postgres::{PgTypeInfo, PgTypeKind};
use sqlx::TypeInfo;
use std::fmt::Write as _;

/// The type's SQL name for messages: `mood`, `int4[]`, `hstore`.
pub(super) fn pg_type_name(t: &PgTypeInfo) -> String {
    let n = t.name();
    match n.strip_prefix('_') {
        Some(elem) if matches!(t.kind(), PgTypeKind::Array(_)) => format!("{elem}[]"),
        _ => n.to_string(),
    }
}

/// A cursor over a binary PostgreSQL value (network byte order).
struct Bytes<'a>(&'a [u8]);

impl<'a> Bytes<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if self.0.len() < n {
            return Err(format!(
                "the value is truncated (wanted {n} more bytes, {} left)",
                self.0.len()
            ));
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N], String> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }
    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.array::<1>()?[0])
    }
    fn i16(&mut self) -> Result<i16, String> {
        Ok(i16::from_be_bytes(self.array()?))
    }
    fn u16(&mut self) -> Result<u16, String> {
        Ok(u16::from_be_bytes(self.array()?))
    }
    fn i32(&mut self) -> Result<i32, String> {
        Ok(i32::from_be_bytes(self.array()?))
    }
    fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_be_bytes(self.array()?))
    }
    fn i64(&mut self) -> Result<i64, String> {
        Ok(i64::from_be_bytes(self.array()?))
    }
    fn end(&self) -> Result<(), String> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(format!("{} unexpected bytes after the value", self.0.len()))
        }
    }
}

fn pg_epoch() -> chrono::NaiveDateTime {
    chrono::NaiveDate::from_ymd_opt(2000, 1, 1)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .unwrap_or_default()
}

fn pg_timestamp(micros: i64) -> Result<Result<chrono::NaiveDateTime, &'static str>, String> {
    match micros {
        i64::MAX => Ok(Err("infinity")),
        i64::MIN => Ok(Err("-infinity")),
        m => pg_epoch()
            .checked_add_signed(chrono::TimeDelta::microseconds(m))
            .map(Ok)
            .ok_or_else(|| format!("timestamp out of range ({m} µs from 2000-01-01)")),
    }
}

/// A binary PostgreSQL value of type `t` → JSON.
pub(super) fn pg_bytes(t: &PgTypeInfo, b: &[u8], ctx: &PgCtx) -> Result<Value, String> {
    match t.kind() {
        PgTypeKind::Enum(_) => return utf8(b),
        PgTypeKind::Domain(base) => return pg_bytes(base, b, ctx),
        PgTypeKind::Array(elem) => return pg_array(elem, b, ctx),
        PgTypeKind::Range(sub) => return pg_range(sub, b, ctx),
        PgTypeKind::Composite(_) => {
            return Err("composite types are not converted; select its fields, or cast it to text or json in a `query`".into())
        }
        PgTypeKind::Pseudo => return Err("a pseudo-type has no value to convert".into()),
        PgTypeKind::Simple => {}
    }
    let mut r = Bytes(b);
    let v = match t.oid().map(|o| o.0) {
        Some(16) => Value::Bool(r.u8()? != 0),
        Some(17) => return Ok(b64(b)),
        Some(18) => Value::String(char::from(r.u8()?).to_string()),
        // text, name, varchar, bpchar, xml, unknown: the binary form is the text.
        Some(19 | 25 | 142 | 705 | 1042 | 1043) => return utf8(b),
        Some(20) => Value::from(r.i64()?),
        Some(21) => Value::from(r.i16()?),
        Some(23) => Value::from(r.i32()?),
        // oid, regproc, xid, cid, regclass, regtype: unsigned 32-bit numbers.
        Some(24 | 26 | 28 | 29 | 2205 | 2206) => Value::from(r.u32()?),
        Some(114) => return serde_json::from_slice(b).map_err(|e| format!("invalid json: {e}")),
        Some(3802) => {
            let version = r.u8()?;
            if version != 1 {
                return Err(format!("jsonb binary format version {version}"));
            }
            return serde_json::from_slice(r.0).map_err(|e| format!("invalid jsonb: {e}"));
        }
        Some(4072) => {
            let _version = r.u8()?;
            return utf8(r.0);
        }
        Some(700) => float(f64::from(f32::from_be_bytes(r.array()?))),
        Some(701) => float(f64::from_be_bytes(r.array()?)),
        Some(790) => {
            let scale = ctx.money_scale.ok_or_else(|| {
                "the decimal places of money (lc_monetary) are not known".to_string()
            })?;
            Value::String(scaled(i128::from(r.i64()?), scale))
        }
        Some(650 | 869) => Value::String(pg_inet(&mut r)?),
        Some(829) => Value::String(hex_colons(r.take(6)?)),
        Some(774) => Value::String(hex_colons(r.take(8)?)),
        Some(1560 | 1562) => {
            let n = usize::try_from(r.i32()?).map_err(|_| "negative bit length".to_string())?;
            let bytes = r.take(n.div_ceil(8))?;
            let bits: String = (0..n)
                .map(|k| if bytes[k / 8] & (0x80 >> (k % 8)) != 0 { '1' } else { '0' })
                .collect();
            Value::String(bits)
        }
        Some(1082) => match r.i32()? {
            i32::MAX => Value::String("infinity".into()),
            i32::MIN => Value::String("-infinity".into()),
            days => Value::String(
                pg_epoch()
                    .date()
                    .checked_add_signed(chrono::TimeDelta::days(i64::from(days)))
                    .ok_or_else(|| format!("date out of range ({days} days from 2000-01-01)"))?
                    .to_string(),
            ),
        },
        Some(1083) => Value::String(pg_time(r.i64()?)?),
        Some(1266) => {
            let t = pg_time(r.i64()?)?;
            // PostgreSQL keeps the zone as seconds west of UTC.
            let east = -r.i32()?;
            Value::String(format!("{t}{}", offset(east)))
        }
        Some(1114) => match pg_timestamp(r.i64()?)? {
            Ok(t) => datetime(t),
            Err(inf) => Value::String(inf.into()),
        },
        Some(1184) => match pg_timestamp(r.i64()?)? {
            Ok(t) => datetime_utc(t.and_utc()),
            Err(inf) => Value::String(inf.into()),
        },
        Some(1186) => {
            let micros = r.i64()?;
            let days = r.i32()?;
            let months = r.i32()?;
            Value::String(interval_iso(months, days, micros))
        }
        Some(1700) => pg_numeric(&mut r)?,
        Some(2950) => Value::String(
            uuid::Uuid::from_slice(r.take(16)?)
                .map_err(|e| e.to_string())?
                .to_string(),
        ),
        _ if t.name().eq_ignore_ascii_case("citext") => return utf8(b),
        _ => {
            return Err(format!(
                "the reader does not know the type {}; cast the column to text in a `query` (`SELECT col::text AS col ...`)",
                pg_type_name(t)
            ))
        }
    };
    r.end()?;
    Ok(v)
}

/// `HH:MM:SS[.ffffff]`, as chrono prints times; `24:00:00` is a valid
/// PostgreSQL time that chrono has no value for.
fn pg_time(micros: i64) -> Result<String, String> {
    if micros == 86_400_000_000 {
        return Ok("24:00:00".into());
    }
    let bad = || format!("time out of range ({micros} µs)");
    let secs = u32::try_from(micros.div_euclid(1_000_000)).map_err(|_| bad())?;
    let nanos = u32::try_from(micros.rem_euclid(1_000_000) * 1000).map_err(|_| bad())?;
    chrono::NaiveTime::from_num_seconds_from_midnight_opt(secs, nanos)
        .map(|t| t.to_string())
        .ok_or_else(bad)
}

/// `+02:00`, `-05:30`, `+05:45:30`.
fn offset(east: i32) -> String {
    let sign = if east < 0 { '-' } else { '+' };
    let a = east.unsigned_abs();
    let (h, m, s) = (a / 3600, a / 60 % 60, a % 60);
    if s == 0 {
        format!("{sign}{h:02}:{m:02}")
    } else {
        format!("{sign}{h:02}:{m:02}:{s:02}")
    }
}

/// `v / 10^scale` as exact decimal text.
fn scaled(v: i128, scale: u32) -> String {
    let digits = v.unsigned_abs().to_string();
    let scale = scale as usize;
    let sign = if v < 0 { "-" } else { "" };
    if scale == 0 {
        return format!("{sign}{digits}");
    }
    let padded = format!("{digits:0>width$}", width = scale + 1);
    let (int, frac) = padded.split_at(padded.len() - scale);
    format!("{sign}{int}.{frac}")
}

/// An interval in ISO 8601 (as PostgreSQL's `intervalstyle = iso_8601` prints it):
/// `P1Y2M3DT4H5M6.5S`; each part keeps its own sign, months and days are not
/// folded into time (a month is not a fixed number of days).
pub(crate) fn interval_iso(months: i32, days: i32, micros: i64) -> String {
    if months == 0 && days == 0 && micros == 0 {
        return "PT0S".into();
    }
    let mut out = String::from("P");
    let (y, m) = (months / 12, months % 12);
    if y != 0 {
        let _ = write!(out, "{y}Y");
    }
    if m != 0 {
        let _ = write!(out, "{m}M");
    }
    if days != 0 {
        let _ = write!(out, "{days}D");
    }
    if micros != 0 {
        out.push('T');
        let sign = if micros < 0 { "-" } else { "" };
        let a = micros.unsigned_abs();
        let (h, mi, s, f) = (
            a / 3_600_000_000,
            a / 60_000_000 % 60,
            a / 1_000_000 % 60,
            a % 1_000_000,
        );
        if h != 0 {
            let _ = write!(out, "{sign}{h}H");
        }
        if mi != 0 {
            let _ = write!(out, "{sign}{mi}M");
        }
        if s != 0 || f != 0 {
            let _ = write!(out, "{sign}{s}");
            if f != 0 {
                let frac = format!("{f:06}");
                let _ = write!(out, ".{}", frac.trim_end_matches('0'));
            }
            out.push('S');
        }
    }
    out
}

fn hex_colons(b: &[u8]) -> String {
    b.iter()
        .map(|x| format!("{x:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// inet / cidr: `192.168.0.1`, `10.0.0.0/8`, `2001:db8::/32` (the prefix length
/// is shown when it is not a single host, and always for cidr, as PostgreSQL does).
fn pg_inet(r: &mut Bytes) -> Result<String, String> {
    let family = r.u8()?;
    let bits = r.u8()?;
    let is_cidr = r.u8()? != 0;
    let n = usize::from(r.u8()?);
    let addr = r.take(n)?;
    let (text, max) = match (family, addr.len()) {
        (2, 4) => (
            std::net::Ipv4Addr::new(addr[0], addr[1], addr[2], addr[3]).to_string(),
            32,
        ),
        (3, 16) => {
            let mut a = [0u8; 16];
            a.copy_from_slice(addr);
            (std::net::Ipv6Addr::from(a).to_string(), 128)
        }
        _ => return Err(format!("address family {family} with {n} bytes")),
    };
    Ok(if is_cidr || bits != max {
        format!("{text}/{bits}")
    } else {
        text
    })
}

/// numeric: base-10000 digits → exact decimal text, keeping the scale
/// (`1.50` stays `1.50`); NaN and ±Infinity as strings.
fn pg_numeric(r: &mut Bytes) -> Result<Value, String> {
    let ndigits = usize::try_from(r.i16()?).map_err(|_| "negative digit count")?;
    let weight = i32::from(r.i16()?);
    let sign = r.u16()?;
    let dscale = usize::from(r.u16()?);
    let digits = (0..ndigits)
        .map(|_| r.i16())
        .collect::<Result<Vec<_>, _>>()?;
    match sign {
        0x0000 | 0x4000 => {}
        0xC000 => return Ok(Value::String("NaN".into())),
        0xD000 => return Ok(Value::String("Infinity".into())),
        0xF000 => return Ok(Value::String("-Infinity".into())),
        s => return Err(format!("numeric sign {s:#x}")),
    }
    let digit = |k: i32| -> i16 {
        usize::try_from(k)
            .ok()
            .and_then(|k| digits.get(k).copied())
            .unwrap_or(0)
    };
    let mut text = String::new();
    if sign == 0x4000 {
        text.push('-');
    }
    if weight < 0 {
        text.push('0');
    } else {
        for k in 0..=weight {
            if k == 0 {
                let _ = write!(text, "{}", digit(k));
            } else {
                let _ = write!(text, "{:04}", digit(k));
            }
        }
    }
    if dscale > 0 {
        let mut frac = String::new();
        let mut k = weight + 1;
        while frac.len() < dscale {
            let _ = write!(frac, "{:04}", digit(k));
            k += 1;
        }
        frac.truncate(dscale);
        text.push('.');
        text.push_str(&frac);
    }
    Ok(number(&text))
}

/// Arrays of any element type and any number of dimensions → nested JSON arrays
/// (the lower bounds, which are 1 unless set explicitly, are not kept).
fn pg_array(elem: &PgTypeInfo, b: &[u8], ctx: &PgCtx) -> Result<Value, String> {
    let mut r = Bytes(b);
    let ndim = r.i32()?;
    let _has_nulls = r.i32()?;
    let _elem_oid = r.u32()?;
    if ndim == 0 {
        return Ok(Value::Array(Vec::new()));
    }
    if !(1..=6).contains(&ndim) {
        return Err(format!("array with {ndim} dimensions"));
    }
    let mut dims = Vec::new();
    let mut total: usize = 1;
    for _ in 0..ndim {
        let len = usize::try_from(r.i32()?).map_err(|_| "negative array length")?;
        let _lower = r.i32()?;
        total = total.checked_mul(len).ok_or("array too large")?;
        dims.push(len);
    }
    // Every element takes at least its 4-byte length: refuse impossible sizes
    // before allocating.
    if total > r.0.len() / 4 {
        return Err(format!("array of {total} elements in {} bytes", r.0.len()));
    }
    let mut elems = Vec::with_capacity(total);
    for _ in 0..total {
        let len = r.i32()?;
        if len < 0 {
            elems.push(Value::Null);
        } else {
            let bytes = r.take(len as usize)?;
            elems.push(pg_bytes(elem, bytes, ctx)?);
        }
    }
    r.end()?;
    Ok(nest(elems, &dims))
}

fn nest(mut elems: Vec<Value>, dims: &[usize]) -> Value {
    if dims.len() <= 1 {
        return Value::Array(elems);
    }
    let inner: usize = dims[1..].iter().product();
    let mut out = Vec::with_capacity(dims[0]);
    for _ in 0..dims[0] {
        let rest = elems.split_off(inner.min(elems.len()));
        out.push(nest(elems, &dims[1..]));
        elems = rest;
    }
    Value::Array(out)
}

/// Ranges as PostgreSQL's text form with the bounds converted: `[1,10)`,
/// `["2024-01-01T00:00:00",)`, `empty`.
fn pg_range(sub: &PgTypeInfo, b: &[u8], ctx: &PgCtx) -> Result<Value, String> {
    let mut r = Bytes(b);
    let flags = r.u8()?;
    if flags & 0x01 != 0 {
        return Ok(Value::String("empty".into()));
    }
    let mut bound = |present: bool| -> Result<String, String> {
        if !present {
            return Ok(String::new());
        }
        let len = usize::try_from(r.i32()?).map_err(|_| "negative bound length")?;
        let v = pg_bytes(sub, r.take(len)?, ctx)?;
        Ok(v.to_string())
    };
    let lower = bound(flags & 0x08 == 0)?;
    let upper = bound(flags & 0x10 == 0)?;
    let open = if flags & 0x02 != 0 { '[' } else { '(' };
    let close = if flags & 0x04 != 0 { ']' } else { ')' };
    Ok(Value::String(format!("{open}{lower},{upper}{close}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_print_as_iso_8601() {
        assert_eq!(interval_iso(0, 0, 0), "PT0S");
        assert_eq!(
            interval_iso(14, 3, 4 * 3_600_000_000 + 5 * 60_000_000 + 6_500_000),
            "P1Y2M3DT4H5M6.5S"
        );
        assert_eq!(interval_iso(-1, -2, -1_500_000), "P-1M-2DT-1.5S");
        assert_eq!(interval_iso(0, 0, 1), "PT0.000001S");
    }

    #[test]
    fn scaled_integers_are_exact() {
        assert_eq!(scaled(123456, 2), "1234.56");
        assert_eq!(scaled(-5, 2), "-0.05");
        assert_eq!(scaled(i128::from(i64::MIN), 2), "-92233720368547758.08");
        assert_eq!(scaled(7, 0), "7");
    }

    #[test]
    fn offsets() {
        assert_eq!(offset(7200), "+02:00");
        assert_eq!(offset(-19800), "-05:30");
        assert_eq!(offset(0), "+00:00");
    }

    #[test]
    fn numeric_binary_keeps_every_digit_and_the_scale() {
        fn enc(ndigits: i16, weight: i16, sign: u16, dscale: u16, digits: &[i16]) -> Vec<u8> {
            let mut b = Vec::new();
            b.extend(ndigits.to_be_bytes());
            b.extend(weight.to_be_bytes());
            b.extend(sign.to_be_bytes());
            b.extend(dscale.to_be_bytes());
            for d in digits {
                b.extend(d.to_be_bytes());
            }
            b
        }
        let dec = |b: Vec<u8>| pg_numeric(&mut Bytes(&b)).unwrap().to_string();
        // 12345678.9 = 1234 5678 . 9000, weight 1
        assert_eq!(dec(enc(3, 1, 0, 1, &[1234, 5678, 9000])), "12345678.9");
        // -0.0001 = . 0001, weight -1
        assert_eq!(dec(enc(1, -1, 0x4000, 4, &[1])), "-0.0001");
        // 0.00000001 = . 0000 0001, weight -2
        assert_eq!(dec(enc(1, -2, 0, 8, &[1])), "0.00000001");
        // 1.50 keeps its scale; 10000 has trailing groups not sent
        assert_eq!(dec(enc(2, 0, 0, 2, &[1, 5000])), "1.50");
        assert_eq!(dec(enc(1, 1, 0, 0, &[1])), "10000");
        assert_eq!(dec(enc(0, 0, 0, 2, &[])), "0.00");
        assert_eq!(dec(enc(0, 0, 0xC000, 0, &[])), "\"NaN\"");
        // a digit count that does not match the bytes is an error, not a panic
        assert!(pg_numeric(&mut Bytes(&enc(3, 0, 0, 0, &[1]))).is_err());
    }

    #[test]
    fn nesting_follows_the_dimensions() {
        let v: Vec<Value> = (1..=6).map(Value::from).collect();
        assert_eq!(nest(v, &[2, 3]).to_string(), "[[1,2,3],[4,5,6]]");
    }
}
