//! SQL Server source through tiberius: a table or a query read in pages by
//! keyset pagination (`SELECT TOP (n) ... WHERE a > @P1 OR (a = @P1 AND b > @P2)
//! ORDER BY a, b`: SQL Server has no row comparison), resumed at the last key
//! after a lost connection. Every column type becomes JSON without loss.

use super::{Payload, RawRecord, Source, SourceError};
use crate::mapping::SourceSpec;
use crate::record::{FileInfo, Position};
use base64::Engine;
use chrono::{Duration, FixedOffset, NaiveDate, NaiveTime, TimeZone};
use serde_json::{Map, Number, Value};
use std::str::FromStr;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use tiberius::{AuthMethod, Client, ColumnData, ColumnType, Config, EncryptionLevel};
use tokio::net::TcpStream;
use tokio_util::compat::{Compat, TokioAsyncWriteCompatExt};

type Conn = Client<Compat<TcpStream>>;

pub struct MssqlSource {
    spec: SourceSpec,
    config: Config,
    display: String,
    rt: Option<tokio::runtime::Runtime>,
    client: Option<Conn>,
    keyset: super::Keyset,
    counter: Arc<AtomicU64>,
    file: Arc<FileInfo>,
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

fn b64(b: &[u8]) -> Value {
    Value::String(base64::engine::general_purpose::STANDARD.encode(b))
}

fn date_from_days(days_since_0001: i64) -> Option<NaiveDate> {
    NaiveDate::from_ymd_opt(1, 1, 1)?.checked_add_signed(Duration::days(days_since_0001))
}

fn time_from_increments(increments: u64, scale: u8) -> Option<NaiveTime> {
    let nanos = u128::from(increments) * 10u128.pow(9u32.saturating_sub(u32::from(scale)));
    let secs = (nanos / 1_000_000_000) as u32;
    NaiveTime::from_num_seconds_from_midnight_opt(secs, (nanos % 1_000_000_000) as u32)
}

fn iso(dt: chrono::NaiveDateTime) -> Value {
    Value::String(dt.format("%Y-%m-%dT%H:%M:%S%.f").to_string())
}

/// One SQL Server value as JSON. `Err` names the problem; the caller adds the column.
pub fn cell_to_json(ty: ColumnType, data: &ColumnData<'_>) -> Result<Value, String> {
    let bad = |what: &str| format!("cannot convert {what}");
    Ok(match data {
        ColumnData::U8(v) => v.map_or(Value::Null, Value::from),
        ColumnData::I16(v) => v.map_or(Value::Null, Value::from),
        ColumnData::I32(v) => v.map_or(Value::Null, Value::from),
        ColumnData::I64(v) => v.map_or(Value::Null, Value::from),
        ColumnData::F32(v) => v.map_or(Value::Null, |f| {
            Number::from_f64(f64::from(f)).map_or(Value::Null, Value::Number)
        }),
        // MONEY and SMALLMONEY arrive as f64 of a 4-decimal fixed point: the
        // nearest 1/10000 is the exact value (for |amount| < 9 * 10^11).
        ColumnData::F64(v) if matches!(ty, ColumnType::Money | ColumnType::Money4) => match v {
            None => Value::Null,
            Some(f) => number(&decimal_text((f * 10_000.0).round() as i128, 4)),
        },
        ColumnData::F64(v) => v.map_or(Value::Null, |f| {
            Number::from_f64(f).map_or(Value::Null, Value::Number)
        }),
        ColumnData::Bit(v) => v.map_or(Value::Null, Value::Bool),
        ColumnData::String(v) => v
            .as_ref()
            .map_or(Value::Null, |s| Value::String(s.to_string())),
        ColumnData::Guid(v) => v.map_or(Value::Null, |u| Value::String(u.hyphenated().to_string())),
        // rowversion arrives as binary(8) too; it is shown as base64 like any binary.
        ColumnData::Binary(v) => v.as_ref().map_or(Value::Null, |b| b64(b)),
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
                let base = NaiveDate::from_ymd_opt(1900, 1, 1).ok_or_else(|| bad("datetime"))?;
                let date = base
                    .checked_add_signed(Duration::days(i64::from(d.days())))
                    .ok_or_else(|| bad("datetime"))?;
                let nanos = u64::from(d.seconds_fragments()) * 1_000_000_000 / 300;
                let t = NaiveTime::from_num_seconds_from_midnight_opt(
                    (nanos / 1_000_000_000) as u32,
                    (nanos % 1_000_000_000) as u32,
                )
                .ok_or_else(|| bad("datetime"))?;
                iso(date.and_time(t))
            }
        },
        ColumnData::SmallDateTime(v) => match v {
            None => Value::Null,
            Some(d) => {
                let base =
                    NaiveDate::from_ymd_opt(1900, 1, 1).ok_or_else(|| bad("smalldatetime"))?;
                let date = base
                    .checked_add_signed(Duration::days(i64::from(d.days())))
                    .ok_or_else(|| bad("smalldatetime"))?;
                let t = NaiveTime::from_num_seconds_from_midnight_opt(
                    u32::from(d.seconds_fragments()) * 60,
                    0,
                )
                .ok_or_else(|| bad("smalldatetime"))?;
                iso(date.and_time(t))
            }
        },
        ColumnData::Date(v) => match v {
            None => Value::Null,
            Some(d) => Value::String(
                date_from_days(i64::from(d.days()))
                    .ok_or_else(|| bad("date"))?
                    .to_string(),
            ),
        },
        ColumnData::Time(v) => match v {
            None => Value::Null,
            Some(t) => Value::String(
                time_from_increments(t.increments(), t.scale())
                    .ok_or_else(|| bad("time"))?
                    .format("%H:%M:%S%.f")
                    .to_string(),
            ),
        },
        ColumnData::DateTime2(v) => match v {
            None => Value::Null,
            Some(d) => {
                let date =
                    date_from_days(i64::from(d.date().days())).ok_or_else(|| bad("datetime2"))?;
                let t = time_from_increments(d.time().increments(), d.time().scale())
                    .ok_or_else(|| bad("datetime2"))?;
                iso(date.and_time(t))
            }
        },
        ColumnData::DateTimeOffset(v) => match v {
            None => Value::Null,
            Some(d) => {
                // The stored date and time are UTC; the offset is kept.
                let dt2 = d.datetime2();
                let date = date_from_days(i64::from(dt2.date().days()))
                    .ok_or_else(|| bad("datetimeoffset"))?;
                let t = time_from_increments(dt2.time().increments(), dt2.time().scale())
                    .ok_or_else(|| bad("datetimeoffset"))?;
                let offset = FixedOffset::east_opt(i32::from(d.offset()) * 60)
                    .ok_or_else(|| bad("datetimeoffset"))?;
                let local = offset.from_utc_datetime(&date.and_time(t));
                Value::String(local.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
            }
        },
    })
}

fn parse_url(url: &str, trust: bool) -> Result<Config, SourceError> {
    let bad = |m: String| SourceError::Other(format!("SQL Server url: {m}"));
    let lower = url.to_ascii_lowercase();
    if !(lower.starts_with("mssql://") || lower.starts_with("sqlserver://")) {
        let mut c =
            Config::from_ado_string(url).map_err(|e| bad(crate::redact_url(&e.to_string())))?;
        if trust {
            c.trust_cert();
        }
        return Ok(c);
    }
    let rest = &url[url.find("://").map_or(0, |i| i + 3)..];
    let (rest, query) = rest.split_once('?').map_or((rest, ""), |(a, b)| (a, b));
    let (auth, hostpart) = rest.rsplit_once('@').map_or(("", rest), |(a, b)| (a, b));
    let (hostport, db) = hostpart
        .split_once('/')
        .map_or((hostpart, ""), |(a, b)| (a, b));
    let (host, port) = hostport
        .split_once(':')
        .map_or((hostport, 1433), |(h, p)| (h, p.parse().unwrap_or(1433)));
    let mut c = Config::new();
    c.host(host);
    c.port(port);
    if !db.is_empty() {
        c.database(db);
    }
    if let Some((u, p)) = auth.split_once(':') {
        c.authentication(AuthMethod::sql_server(u, p));
    } else if !auth.is_empty() {
        c.authentication(AuthMethod::sql_server(auth, ""));
    }
    let mut trust = trust;
    for kv in query.split('&').filter(|s| !s.is_empty()) {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        match (
            k.to_ascii_lowercase().as_str(),
            v.to_ascii_lowercase().as_str(),
        ) {
            ("encrypt", "true") => c.encryption(EncryptionLevel::Required),
            ("encrypt", "false") => c.encryption(EncryptionLevel::Off),
            ("encrypt", "danger_plaintext") => c.encryption(EncryptionLevel::NotSupported),
            ("trustservercertificate", "true") | ("trust_server_certificate", "true") => {
                trust = true
            }
            _ => return Err(bad(format!("unknown option {k}={v}"))),
        }
    }
    if trust {
        c.trust_cert();
    }
    Ok(c)
}

fn on_rt<T: Send>(
    rt: &tokio::runtime::Runtime,
    f: impl std::future::Future<Output = T> + Send,
) -> T {
    std::thread::scope(|s| s.spawn(|| rt.block_on(f)).join())
        .unwrap_or_else(|_| panic!("source thread panicked"))
}

fn quote(name: &str) -> String {
    name.split('.')
        .map(|p| {
            format!(
                "[{}]",
                p.trim_matches(|c| c == '[' || c == ']').replace(']', "]]")
            )
        })
        .collect::<Vec<_>>()
        .join(".")
}

impl MssqlSource {
    pub fn open(spec: &SourceSpec) -> Result<MssqlSource, SourceError> {
        let url = spec
            .url
            .clone()
            .ok_or_else(|| SourceError::Other("the mssql source has no url".into()))?;
        let mut config = parse_url(&url, spec.trust_server_certificate)?;
        if let Some(var) = &spec.password_env {
            let pw = std::env::var(var).map_err(|_| {
                SourceError::Other(format!(
                    "the environment variable {var} (password_env) is not set"
                ))
            })?;
            let user = url
                .split("://")
                .nth(1)
                .and_then(|r| r.rsplit_once('@'))
                .map(|(a, _)| a.split(':').next().unwrap_or("").to_string())
                .unwrap_or_default();
            config.authentication(AuthMethod::sql_server(user, pw));
        }
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| SourceError::Other(e.to_string()))?;
        Ok(MssqlSource {
            spec: spec.clone(),
            config,
            display: crate::redact_url(&url),
            rt: Some(rt),
            client: None,
            keyset: super::Keyset::default(),
            counter: Arc::new(AtomicU64::new(0)),
            file: Arc::new(FileInfo::default()),
        })
    }

    fn relation(&self) -> String {
        match (&self.spec.table, &self.spec.query) {
            (Some(t), _) => format!("(SELECT * FROM {}) AS q", quote(t)),
            (None, Some(q)) => format!("({}) AS q", q.trim().trim_end_matches(';')),
            (None, None) => "(SELECT 1 AS x) AS q".into(),
        }
    }

    /// Run a query with parameters; on a lost connection, reconnect once.
    fn fetch(
        &mut self,
        sql: String,
        binds: Vec<Value>,
    ) -> Result<Vec<Map<String, Value>>, SourceError> {
        let config = self.config.clone();
        let mut client = self.client.take();
        let display = self.display.clone();
        let sql_for_err = sql.clone();
        let rt = self
            .rt
            .as_ref()
            .ok_or_else(|| SourceError::Other("source closed".into()))?;
        let (client, res) = on_rt(rt, async move {
            let mut attempt = 0;
            loop {
                if client.is_none() {
                    let c = async {
                        let tcp = TcpStream::connect(config.get_addr())
                            .await
                            .map_err(|e| e.to_string())?;
                        tcp.set_nodelay(true).map_err(|e| e.to_string())?;
                        Client::connect(config.clone(), tcp.compat_write())
                            .await
                            .map_err(|e| e.to_string())
                    }
                    .await;
                    match c {
                        Ok(c) => client = Some(c),
                        Err(e) => return (None, Err(format!("cannot connect to {display}: {e}"))),
                    }
                }
                let Some(c) = client.as_mut() else {
                    return (None, Err("not connected".into()));
                };
                let mut q = tiberius::Query::new(sql.clone());
                for b in &binds {
                    match b {
                        Value::Number(n) if n.as_i64().is_some() => q.bind(n.as_i64().unwrap_or(0)),
                        Value::Number(n) => q.bind(n.to_string()),
                        Value::Bool(x) => q.bind(*x),
                        Value::String(s) => q.bind(s.clone()),
                        other => q.bind(other.to_string()),
                    }
                }
                let rows = match q.query(c).await {
                    Ok(stream) => stream.into_first_result().await,
                    Err(e) => Err(e),
                };
                match rows {
                    Ok(rows) => {
                        let mut out = Vec::with_capacity(rows.len());
                        for r in rows {
                            let mut m = Map::new();
                            for (col, data) in r.cells() {
                                match cell_to_json(col.column_type(), data) {
                                    Ok(v) => {
                                        m.insert(col.name().to_string(), v);
                                    }
                                    Err(e) => {
                                        return (
                                            client,
                                            Err(format!(
                                                "column {} ({:?}): {e}",
                                                col.name(),
                                                col.column_type()
                                            )),
                                        )
                                    }
                                }
                            }
                            out.push(m);
                        }
                        return (client, Ok(out));
                    }
                    Err(tiberius::error::Error::Io { .. }) if attempt == 0 => {
                        attempt += 1;
                        client = None;
                    }
                    Err(e) => return (client, Err(e.to_string())),
                }
            }
        });
        self.client = client;
        res.map_err(|e| SourceError::Other(format!("reading SQL Server ({sql_for_err}): {e}")))
    }

    fn record(&self, row: Map<String, Value>) -> Result<RawRecord, SourceError> {
        let mut key = Vec::new();
        for k in &self.spec.key {
            let v = row
                .iter()
                .find(|(c, _)| c.eq_ignore_ascii_case(k))
                .map(|(_, v)| v.clone())
                .ok_or_else(|| {
                    SourceError::Other(format!(
                        "the key column {k} is not among the source's columns"
                    ))
                })?;
            key.push(v);
        }
        let text = key
            .iter()
            .map(super::key_text)
            .collect::<Vec<_>>()
            .join(", ");
        let key_value = if key.len() == 1 {
            key[0].clone()
        } else {
            Value::Array(key.clone())
        };
        let pos = Position {
            file: 0,
            offset: 0,
            line: 0,
            key: Some(key),
        };
        Ok(RawRecord {
            position: pos.clone(),
            next: pos,
            file: self.file.clone(),
            label: text.clone(),
            payload: Payload::Decoded {
                key: text,
                key_value,
                value: Value::Object(row),
            },
        })
    }
}

/// The keyset page query (SQL Server has no row comparison: the expanded form).
pub fn page_sql(
    relation: &str,
    key: &[String],
    after: Option<&[Value]>,
    limit: usize,
) -> (String, Vec<Value>) {
    let keys: Vec<String> = key.iter().map(|k| format!("q.{}", quote(k))).collect();
    let mut sql = format!("SELECT TOP ({limit}) * FROM {relation}");
    let mut binds = Vec::new();
    if let Some(after) = after {
        binds = after.to_vec();
        let ors: Vec<String> = (0..keys.len())
            .map(|i| {
                let mut ands: Vec<String> = (0..i)
                    .map(|j| format!("{} = @P{}", keys[j], j + 1))
                    .collect();
                ands.push(format!("{} > @P{}", keys[i], i + 1));
                format!("({})", ands.join(" AND "))
            })
            .collect();
        sql.push_str(&format!(" WHERE {}", ors.join(" OR ")));
    }
    sql.push_str(&format!(" ORDER BY {}", keys.join(", ")));
    (sql, binds)
}

impl Drop for MssqlSource {
    fn drop(&mut self) {
        if let Some(rt) = self.rt.take() {
            {
                let _inside = rt.enter();
                self.client = None;
            }
            rt.shutdown_background();
        }
    }
}

impl Source for MssqlSource {
    fn seek(&mut self, pos: &Position) -> Result<(), SourceError> {
        self.keyset.last = pos.key.clone();
        Ok(())
    }

    fn next_batch(&mut self, max: usize) -> Result<Vec<RawRecord>, SourceError> {
        if self.keyset.done {
            return Ok(Vec::new());
        }
        let max = max.max(1);
        let (sql, binds) = page_sql(
            &self.relation(),
            &self.spec.key,
            self.keyset.last.as_deref(),
            max + 1,
        );
        let rows = self.fetch(sql, binds)?;
        let page = rows
            .into_iter()
            .map(|r| self.record(r))
            .collect::<Result<Vec<_>, _>>()?;
        self.keyset
            .advance(&self.spec.key, page, max, &self.counter)
    }

    fn total_bytes(&self) -> Option<u64> {
        None
    }

    fn bytes_counter(&self) -> Arc<AtomicU64> {
        self.counter.clone()
    }

    fn fingerprint(&self) -> String {
        format!(
            "mssql {} {} key ({})",
            self.display,
            self.spec
                .table
                .clone()
                .or_else(|| self.spec.query.clone())
                .unwrap_or_default(),
            self.spec.key.join(", ")
        )
    }

    fn describe(&self) -> String {
        format!(
            "mssql {} ({}), keyset on ({})",
            self.display,
            self.spec.table.clone().unwrap_or_else(|| "query".into()),
            self.spec.key.join(", ")
        )
    }

    fn read_at(&mut self, pos: &Position) -> Result<Option<RawRecord>, SourceError> {
        let Some(key) = &pos.key else { return Ok(None) };
        let conds: Vec<String> = self
            .spec
            .key
            .iter()
            .enumerate()
            .map(|(i, k)| format!("q.{} = @P{}", quote(k), i + 1))
            .collect();
        let sql = format!(
            "SELECT * FROM {} WHERE {}",
            self.relation(),
            conds.join(" AND ")
        );
        let rows = self.fetch(sql, key.clone())?;
        rows.into_iter().next().map(|r| self.record(r)).transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use tiberius::numeric::Numeric;
    use tiberius::time::{Date, DateTime, DateTime2, DateTimeOffset, SmallDateTime, Time};

    fn j(ty: ColumnType, d: ColumnData<'_>) -> String {
        cell_to_json(ty, &d).unwrap().to_string()
    }

    #[test]
    fn every_type_converts_without_loss() {
        assert_eq!(
            j(
                ColumnType::Int8,
                ColumnData::I64(Some(9_007_199_254_740_993))
            ),
            "9007199254740993"
        );
        assert_eq!(j(ColumnType::Int1, ColumnData::U8(Some(255))), "255");
        assert_eq!(j(ColumnType::Int2, ColumnData::I16(Some(-2))), "-2");
        assert_eq!(
            j(
                ColumnType::Numericn,
                ColumnData::Numeric(Some(Numeric::new_with_scale(
                    123456789012345678901234567,
                    4
                )))
            ),
            "12345678901234567890123.4567"
        );
        assert_eq!(
            j(
                ColumnType::Numericn,
                ColumnData::Numeric(Some(Numeric::new_with_scale(-5, 2)))
            ),
            "-0.05"
        );
        assert_eq!(
            j(ColumnType::Money, ColumnData::F64(Some(2328.6))),
            "2328.6000"
        );
        assert_eq!(
            j(ColumnType::Money4, ColumnData::F64(Some(-0.0001))),
            "-0.0001"
        );
        assert_eq!(
            j(ColumnType::Money, ColumnData::F64(Some(922_337_203.580_7))),
            "922337203.5807"
        );
        assert_eq!(j(ColumnType::Bit, ColumnData::Bit(Some(true))), "true");
        assert_eq!(j(ColumnType::Float8, ColumnData::F64(Some(0.1))), "0.1");
        assert_eq!(
            j(
                ColumnType::NVarchar,
                ColumnData::String(Some("Zürich 東京".into()))
            ),
            "\"Zürich 東京\""
        );
        let g = uuid::Uuid::parse_str("0E984725-C51C-4BF4-9960-E1C80E27ABA0").unwrap();
        assert_eq!(
            j(ColumnType::Guid, ColumnData::Guid(Some(g))),
            "\"0e984725-c51c-4bf4-9960-e1c80e27aba0\""
        );
        assert_eq!(
            j(
                ColumnType::BigVarBin,
                ColumnData::Binary(Some(vec![0u8, 1, 255].into()))
            ),
            "\"AAH/\""
        );
        // datetime: days since 1900-01-01, 1/300 s.
        assert_eq!(
            j(
                ColumnType::Datetime,
                ColumnData::DateTime(Some(DateTime::new(44195, 300 * 3600 + 150)))
            ),
            "\"2021-01-01T01:00:00.500\""
        );
        assert_eq!(
            j(
                ColumnType::Datetime4,
                ColumnData::SmallDateTime(Some(SmallDateTime::new(44195, 61)))
            ),
            "\"2021-01-01T01:01:00\""
        );
        let date = Date::new(737_790); // 2021-01-01 counted from 0001-01-01
        assert_eq!(
            j(ColumnType::Daten, ColumnData::Date(Some(date))),
            "\"2021-01-01\""
        );
        let time = Time::new(12_345_678_901, 7); // 7 digits: 1234.5678901 s
        assert_eq!(
            j(ColumnType::Timen, ColumnData::Time(Some(time))),
            "\"00:20:34.567890100\""
        );
        assert_eq!(
            j(
                ColumnType::Datetime2,
                ColumnData::DateTime2(Some(DateTime2::new(date, time)))
            ),
            "\"2021-01-01T00:20:34.567890100\""
        );
        let dto = DateTimeOffset::new(DateTime2::new(date, Time::new(3600, 0)), 120);
        assert_eq!(
            j(
                ColumnType::DatetimeOffsetn,
                ColumnData::DateTimeOffset(Some(dto))
            ),
            "\"2021-01-01T03:00:00+02:00\""
        );
        assert_eq!(j(ColumnType::Intn, ColumnData::I32(None)), "null");
        assert_eq!(
            cell_to_json(ColumnType::Xml, &ColumnData::String(Some("<a/>".into()))).unwrap(),
            json!("<a/>")
        );
    }

    #[test]
    fn urls_and_keyset_sql() {
        let c = parse_url(
            "mssql://sa:pw@db.example:1444/pliers?encrypt=DANGER_PLAINTEXT",
            false,
        )
        .unwrap();
        assert_eq!(c.get_addr(), "db.example:1444");
        assert!(parse_url(
            "server=tcp:h,1433;user id=sa;password=x;database=d;TrustServerCertificate=true",
            false
        )
        .is_ok());
        assert!(parse_url("mssql://h/db?bogus=1", false).is_err());
        let (sql, binds) = page_sql(
            "(SELECT * FROM [dbo].[T]) AS q",
            &["a".into(), "b".into()],
            Some(&[json!(1), json!("x")]),
            500,
        );
        assert_eq!(sql, "SELECT TOP (500) * FROM (SELECT * FROM [dbo].[T]) AS q WHERE (q.[a] > @P1) OR (q.[a] = @P1 AND q.[b] > @P2) ORDER BY q.[a], q.[b]");
        assert_eq!(binds.len(), 2);
        assert_eq!(quote("dbo.FormSubmission"), "[dbo].[FormSubmission]");
    }
}
