//! SQL Server source through tiberius: a table or a query read in pages by
//! keyset pagination (`SELECT TOP (n) ... WHERE a > @P1 OR (a = @P1 AND b > @P2)
//! ORDER BY a, b`: SQL Server has no row comparison), resumed at the last key
//! after a lost connection. Every column type becomes JSON without loss, or the
//! read stops with an error naming the column and its type.

use super::{Decoded, Label, Payload, RawRecord, Source, SourceError};
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
    conn: ConnectSpec,
    /// `mssql://user@host:port/db`: never the password (logs, errors, fingerprint).
    display: String,
    rt: Option<tokio::runtime::Runtime>,
    client: Option<Conn>,
    keyset: super::Keyset,
    counter: Arc<AtomicU64>,
    file: Arc<FileInfo>,
    /// The `rowversion`/`timestamp` columns of a `table` source, looked up once in
    /// `sys.columns` (tiberius sends them as plain `binary(8)`).
    rowversions: Option<Arc<Vec<String>>>,
}

// ---------------------------------------------------------------------------
// Connection settings
// ---------------------------------------------------------------------------

/// How the server certificate is checked.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Trust {
    /// Against the system's trust store.
    System,
    /// Not at all (`TrustServerCertificate=true`, `trust_server_certificate = true`).
    All,
    /// Against this CA certificate too (`TrustServerCertificateCA=path`).
    Ca(String),
}

/// What a mapping's `url` (an `mssql://` URL or an ADO.NET string) says, before it
/// becomes a tiberius [`Config`] (which keeps its fields private, so this is what the
/// tests look at). `Debug` hides the password.
#[derive(Clone, PartialEq, Eq)]
struct ConnectSpec {
    host: Option<String>,
    port: Option<u16>,
    instance: Option<String>,
    database: Option<String>,
    application_name: Option<String>,
    user: Option<String>,
    password: Option<String>,
    encryption: EncryptionLevel,
    trust: Trust,
    readonly: bool,
}

impl std::fmt::Debug for ConnectSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectSpec")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("instance", &self.instance)
            .field("database", &self.database)
            .field("application_name", &self.application_name)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "<hidden>"))
            .field("encryption", &self.encryption)
            .field("trust", &self.trust)
            .field("readonly", &self.readonly)
            .finish()
    }
}

fn url_error(message: impl std::fmt::Display) -> SourceError {
    SourceError::Other(format!("SQL Server url: {message}"))
}

/// `%XX` escapes of a URL component; anything else is kept as it is.
fn percent_decode(text: &str, what: &str) -> Result<String, SourceError> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .filter(|h| h.iter().all(u8::is_ascii_hexdigit))
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| {
                    url_error(format!(
                        "the {what} has a '%' that does not start a %XX escape (write a literal % as %25)"
                    ))
                })?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out)
        .map_err(|_| url_error(format!("the {what} is not UTF-8 once percent-decoded")))
}

fn ado_bool(key: &str, value: &str) -> Result<bool, SourceError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "yes" => Ok(true),
        "false" | "no" => Ok(false),
        _ => Err(url_error(format!(
            "{key}={value} is not a boolean (true, false, yes, no)"
        ))),
    }
}

impl ConnectSpec {
    /// Parse a mapping's `url`; `trust` is the mapping's `trust_server_certificate`.
    fn parse(url: &str, trust: bool) -> Result<ConnectSpec, SourceError> {
        let lower = url.trim_start().to_ascii_lowercase();
        let mut spec = if lower.starts_with("mssql://") || lower.starts_with("sqlserver://") {
            ConnectSpec::parse_url(url.trim())?
        } else {
            ConnectSpec::parse_ado(url)?
        };
        if trust {
            if let Trust::Ca(_) = spec.trust {
                return Err(url_error(
                    "trust_server_certificate = true and TrustServerCertificateCA exclude each other: keep one",
                ));
            }
            spec.trust = Trust::All;
        }
        if spec.instance.is_some() && spec.port.is_none() {
            return Err(url_error(
                "a named instance (host\\instance) needs its port here (server=tcp:host\\instance,PORT): this build does not ask the SQL Browser",
            ));
        }
        Ok(spec)
    }

    /// `mssql://[user[:password]@]host[:port][/database][?encrypt=..&trustservercertificate=..]`;
    /// user, password and database are percent-decoded.
    fn parse_url(url: &str) -> Result<ConnectSpec, SourceError> {
        let rest = url.split_once("://").map_or(url, |(_, r)| r);
        let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (auth, hostpart) = rest.rsplit_once('@').unwrap_or(("", rest));
        let (hostport, db) = hostpart.split_once('/').unwrap_or((hostpart, ""));
        // An IPv6 address is written in brackets: [::1]:1433.
        let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
            let (h, after) = v6
                .split_once(']')
                .ok_or_else(|| url_error("an IPv6 host needs its closing ']'"))?;
            (h, after.strip_prefix(':'))
        } else {
            match hostport.split_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (hostport, None),
            }
        };
        let port = port
            .map(|p| {
                p.parse::<u16>().map_err(|_| {
                    url_error(format!("the port '{p}' is not a number from 0 to 65535"))
                })
            })
            .transpose()?;
        let (user, password) = match auth.split_once(':') {
            Some((u, p)) => (Some(u), Some(p)),
            None if auth.is_empty() => (None, None),
            None => (Some(auth), None),
        };
        let db = db.trim_end_matches('/');
        let mut spec = ConnectSpec {
            host: (!host.is_empty()).then(|| host.to_string()),
            port,
            instance: None,
            database: if db.is_empty() {
                None
            } else {
                Some(percent_decode(db, "database")?)
            },
            application_name: None,
            user: user.map(|u| percent_decode(u, "user")).transpose()?,
            password: password
                .map(|p| percent_decode(p, "password"))
                .transpose()?,
            // tiberius's default with TLS compiled in: encrypt everything.
            encryption: EncryptionLevel::Required,
            trust: Trust::System,
            readonly: false,
        };
        for kv in query.split('&').filter(|s| !s.is_empty()) {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            match k.to_ascii_lowercase().as_str() {
                "encrypt" => {
                    spec.encryption = match v.to_ascii_lowercase().as_str() {
                        "true" | "yes" => EncryptionLevel::Required,
                        "false" | "no" => EncryptionLevel::Off,
                        "danger_plaintext" => EncryptionLevel::NotSupported,
                        _ => {
                            return Err(url_error(format!(
                        "encrypt={v}: use true, false (TLS for the login only) or DANGER_PLAINTEXT"
                    )))
                        }
                    }
                }
                "trustservercertificate" | "trust_server_certificate" => {
                    if ado_bool(k, v)? {
                        spec.trust = Trust::All;
                    }
                }
                _ => return Err(url_error(format!("unknown option {k}={v}"))),
            }
        }
        Ok(spec)
    }

    /// An ADO.NET string, read with the keywords and defaults tiberius's
    /// `Config::from_ado_string` uses (the tests compare the two).
    fn parse_ado(text: &str) -> Result<ConnectSpec, SourceError> {
        let dict: connection_string::AdoNetString = text.parse().map_err(|e| {
            url_error(format!(
                "neither an mssql:// URL nor an ADO.NET string (key=value;...): {e}"
            ))
        })?;
        let get = |keys: &[&str]| keys.iter().find_map(|k| dict.get(*k)).cloned();
        if let Some(v) = get(&["integratedsecurity", "integrated security"]) {
            if v.eq_ignore_ascii_case("sspi") || ado_bool("Integrated Security", &v)? {
                return Err(url_error(
                    "integrated (Windows/Kerberos) authentication is not supported by this build: use a SQL login (user id=...; password or password_env)",
                ));
            }
        }
        let (mut host, mut port, mut instance) = (None, None, None);
        if let Some(server) = get(&["server", "data source"]) {
            let server = server.trim();
            let server = match server.get(..4) {
                Some(p) if p.eq_ignore_ascii_case("tcp:") => &server[4..],
                _ => server,
            };
            let parts: Vec<&str> = server.split(',').collect();
            if parts.len() > 2 {
                return Err(url_error(format!(
                    "server={server}: write tcp:host,port or tcp:host\\instance,port"
                )));
            }
            if let Some(p) = parts.get(1) {
                port = Some(p.trim().parse::<u16>().map_err(|_| {
                    url_error(format!("the port '{p}' is not a number from 0 to 65535"))
                })?);
            }
            let name = parts[0].trim();
            let (h, inst) = match name.split_once('\\') {
                Some((h, i)) => (h, Some(i.split('\\').next().unwrap_or(i).to_string())),
                None => (name, None),
            };
            host = Some(h.replace("(local)", "localhost"));
            instance = inst;
        }
        let encryption = match get(&["encrypt"]) {
            None => EncryptionLevel::Off,
            Some(v) if v.trim().eq_ignore_ascii_case("danger_plaintext") => {
                EncryptionLevel::NotSupported
            }
            Some(v) => {
                if ado_bool("encrypt", &v)? {
                    EncryptionLevel::Required
                } else {
                    EncryptionLevel::Off
                }
            }
        };
        let trust_all = get(&["trustservercertificate"])
            .map(|v| ado_bool("TrustServerCertificate", &v))
            .transpose()?
            .unwrap_or(false);
        let trust = match (trust_all, get(&["trustservercertificateca"])) {
            (true, Some(_)) => {
                return Err(url_error(
                    "TrustServerCertificate=true and TrustServerCertificateCA exclude each other: keep one",
                ))
            }
            (true, None) => Trust::All,
            (false, Some(ca)) => Trust::Ca(ca),
            (false, None) => Trust::System,
        };
        Ok(ConnectSpec {
            host,
            port,
            instance,
            database: get(&["database", "initial catalog", "databasename"]),
            application_name: get(&["application name", "applicationname"]),
            user: get(&["uid", "username", "user", "user id"]),
            password: get(&["password", "pwd"]),
            encryption,
            trust,
            readonly: get(&["applicationintent"])
                .is_some_and(|v| v.trim().eq_ignore_ascii_case("readonly")),
        })
    }

    /// The password from `password_env`: it replaces only the password, the user
    /// stays the one of the URL or the ADO.NET string.
    fn set_password(&mut self, var: &str, password: String) -> Result<(), SourceError> {
        if self.user.as_deref().unwrap_or("").is_empty() {
            return Err(url_error(format!(
                "password_env = \"{var}\" needs a user in the url (mssql://USER@host/db, or user id=USER in an ADO.NET string)"
            )));
        }
        self.password = Some(password);
        Ok(())
    }

    fn config(&self) -> Config {
        let mut c = Config::new();
        if let Some(h) = &self.host {
            c.host(h);
        }
        if let Some(p) = self.port {
            c.port(p);
        }
        if let Some(i) = &self.instance {
            c.instance_name(i);
        }
        // No user and no password: no SQL login sent (tiberius's ADO.NET reader gives
        // an empty user and password instead, which logs in the same way).
        if self.user.is_some() || self.password.is_some() {
            c.authentication(AuthMethod::sql_server(
                self.user.as_deref().unwrap_or(""),
                self.password.as_deref().unwrap_or(""),
            ));
        }
        if let Some(db) = &self.database {
            c.database(db);
        }
        if let Some(app) = &self.application_name {
            c.application_name(app);
        }
        // `trust_cert` and `trust_cert_ca` panic when both are called; `Trust` holds one.
        match &self.trust {
            Trust::System => {}
            Trust::All => c.trust_cert(),
            Trust::Ca(path) => c.trust_cert_ca(path),
        }
        c.encryption(self.encryption);
        c.readonly(self.readonly);
        c
    }

    /// For logs, errors and the source fingerprint: no password, ever.
    fn display(&self) -> String {
        let user = self
            .user
            .as_deref()
            .filter(|u| !u.is_empty())
            .map(|u| format!("{u}@"))
            .unwrap_or_default();
        let host = self.host.as_deref().unwrap_or("localhost");
        let instance = self
            .instance
            .as_deref()
            .map(|i| format!("\\{i}"))
            .unwrap_or_default();
        format!(
            "mssql://{user}{host}{instance}:{}/{}",
            self.port.unwrap_or(1433),
            self.database.as_deref().unwrap_or("")
        )
    }
}

// ---------------------------------------------------------------------------
// Values
// ---------------------------------------------------------------------------

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
fn column_value(
    name: &str,
    ty: ColumnType,
    rowversion: bool,
    data: &ColumnData<'_>,
) -> Result<Value, String> {
    cell_to_json(ty, rowversion, data).map_err(|e| format!("column {name} ({ty:?}): {e}"))
}

fn query_error(sql: &str, e: impl std::fmt::Display) -> SourceError {
    SourceError::Other(format!("reading SQL Server ({sql}): {e}"))
}

/// Run a future on the source's runtime from a thread of its own (the caller may
/// be inside another runtime). A panic in there (tiberius 0.12 panics with
/// `todo!`/`unimplemented!` on `sql_variant` and CLR user-defined types) becomes an
/// error, not a crash of the reader.
fn on_rt<T: Send>(
    rt: &tokio::runtime::Runtime,
    f: impl std::future::Future<Output = T> + Send,
) -> Result<T, SourceError> {
    std::thread::scope(|s| s.spawn(|| rt.block_on(f)).join()).map_err(|payload| {
        let why = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "no message".into());
        SourceError::Other(format!(
            "the SQL Server driver (tiberius) failed while reading ({why}); it cannot decode \
             some column types (sql_variant, and CLR types such as geography, geometry and \
             hierarchyid): select those columns converted in a `query`, e.g. \
             CAST(col AS NVARCHAR(4000)) or col.ToString()"
        ))
    })
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

/// The query naming the `rowversion`/`timestamp` columns (system type 189) of a
/// table or view; a three-part name reads that database's catalog.
fn rowversion_sql(table: &str) -> String {
    let parts: Vec<&str> = table.split('.').collect();
    let catalog = if parts.len() == 3 {
        format!("{}.", quote(parts[0]))
    } else {
        String::new()
    };
    format!(
        "SELECT c.name AS name FROM {catalog}sys.columns AS c \
         WHERE c.object_id = OBJECT_ID(@P1) AND c.system_type_id = 189"
    )
}

impl MssqlSource {
    pub fn open(spec: &SourceSpec) -> Result<MssqlSource, SourceError> {
        MssqlSource::open_with(spec, |var| std::env::var(var).ok())
    }

    /// `open`, with the environment (for `password_env`) given by `env`.
    fn open_with(
        spec: &SourceSpec,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<MssqlSource, SourceError> {
        let url = spec
            .url
            .clone()
            .ok_or_else(|| SourceError::Other("the mssql source has no url".into()))?;
        let mut conn = ConnectSpec::parse(&url, spec.trust_server_certificate)?;
        if let Some(var) = &spec.password_env {
            let pw = env(var).ok_or_else(|| {
                SourceError::Other(format!(
                    "the environment variable {var} (password_env) is not set (or not UTF-8)"
                ))
            })?;
            conn.set_password(var, pw)?;
        }
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| SourceError::Other(e.to_string()))?;
        Ok(MssqlSource {
            spec: spec.clone(),
            display: conn.display(),
            conn,
            rt: Some(rt),
            client: None,
            keyset: super::Keyset::default(),
            counter: Arc::new(AtomicU64::new(0)),
            file: Arc::new(FileInfo::default()),
            rowversions: None,
        })
    }

    /// The `rowversion` columns of a `table` source (looked up once). A `query`
    /// source cannot be looked up: the README asks for `CONVERT(VARCHAR(18), col, 1)`.
    fn rowversion_columns(&mut self) -> Result<Arc<Vec<String>>, SourceError> {
        if let Some(cols) = &self.rowversions {
            return Ok(cols.clone());
        }
        let cols = match self.spec.table.clone() {
            Some(table) => {
                let rows = self.fetch(
                    rowversion_sql(&table),
                    vec![Value::String(quote(&table))],
                    Arc::default(),
                )?;
                rows.iter()
                    .filter_map(|r| r.get("name").and_then(Value::as_str))
                    .map(str::to_string)
                    .collect()
            }
            None => Vec::new(),
        };
        if !cols.is_empty() {
            tracing::debug!(columns = ?cols, "rowversion columns are read as 0x hex");
        }
        let cols = Arc::new(cols);
        self.rowversions = Some(cols.clone());
        Ok(cols)
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
        rowversions: Arc<Vec<String>>,
    ) -> Result<Vec<Map<String, Value>>, SourceError> {
        let config = self.conn.config();
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
                        Err(e) => {
                            return (
                                None,
                                Err(SourceError::Other(format!(
                                    "cannot connect to {display}: {e}"
                                ))),
                            )
                        }
                    }
                }
                let Some(c) = client.as_mut() else {
                    return (None, Err(SourceError::Other("not connected".into())));
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
                                let rv = rowversions
                                    .iter()
                                    .any(|c| c.eq_ignore_ascii_case(col.name()));
                                match column_value(col.name(), col.column_type(), rv, data) {
                                    Ok(v) => {
                                        m.insert(col.name().to_string(), v);
                                    }
                                    Err(e) => return (client, Err(query_error(&sql, e))),
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
                    Err(e) => return (client, Err(query_error(&sql, e))),
                }
            }
        })
        .map_err(|e| SourceError::Other(format!("reading SQL Server ({sql_for_err}): {e}")))?;
        self.client = client;
        res
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
            label: Label::Key,
            payload: Payload::Decoded(Box::new(Decoded::new(
                text,
                key_value,
                Decoded::json_of(row),
            ))),
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
        let rowversions = self.rowversion_columns()?;
        let rows = self.fetch(sql, binds, rowversions)?;
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
        let rowversions = self.rowversion_columns()?;
        let rows = self.fetch(sql, key.clone(), rowversions)?;
        rows.into_iter().next().map(|r| self.record(r)).transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mapping::{KvFormat, SourceKind};
    use serde_json::json;
    use std::borrow::Cow;
    use tiberius::numeric::Numeric;
    use tiberius::time::{Date, DateTime, DateTime2, DateTimeOffset, SmallDateTime, Time};
    use tiberius::xml::XmlData;

    /// A value as JSON text.
    fn j(ty: ColumnType, d: ColumnData<'_>) -> String {
        cell_to_json(ty, false, &d)
            .unwrap_or_else(|e| panic!("{ty:?} {d:?}: {e}"))
            .to_string()
    }

    fn spec_of(url: &str, password_env: Option<&str>) -> SourceSpec {
        SourceSpec {
            kind: SourceKind::Mssql,
            path: None,
            path_text: None,
            format: KvFormat::Jsonl,
            key: vec!["Id".into()],
            url: Some(url.into()),
            password_env: password_env.map(str::to_string),
            table: Some("dbo.T".into()),
            query: None,
            trust_server_certificate: false,
            dir: std::path::PathBuf::from("."),
        }
    }

    fn err_text<T>(r: Result<T, SourceError>) -> String {
        match r {
            Ok(_) => panic!("expected an error"),
            Err(e) => e.to_string(),
        }
    }

    // -- connection settings -------------------------------------------------

    #[test]
    fn url_gives_every_setting() {
        let c = ConnectSpec::parse(
            "mssql://sa:pw@db.example:1444/pliers?encrypt=DANGER_PLAINTEXT",
            false,
        )
        .unwrap();
        assert_eq!(c.host.as_deref(), Some("db.example"));
        assert_eq!(c.port, Some(1444));
        assert_eq!(c.database.as_deref(), Some("pliers"));
        assert_eq!(c.user.as_deref(), Some("sa"));
        assert_eq!(c.password.as_deref(), Some("pw"));
        assert_eq!(c.encryption, EncryptionLevel::NotSupported);
        assert_eq!(c.trust, Trust::System);
        assert_eq!(c.config().get_addr(), "db.example:1444");

        // Defaults: port 1433, TLS required, no login, the server's default database.
        let c = ConnectSpec::parse("sqlserver://legacy-db", false).unwrap();
        assert_eq!(c.config().get_addr(), "legacy-db:1433");
        assert_eq!(
            (c.database, c.user, c.password, c.encryption, c.trust),
            (None, None, None, EncryptionLevel::Required, Trust::System)
        );

        let c = ConnectSpec::parse(
            "mssql://etl@h/db?encrypt=false&TrustServerCertificate=true",
            false,
        )
        .unwrap();
        assert_eq!(c.encryption, EncryptionLevel::Off);
        assert_eq!(c.trust, Trust::All);
        assert_eq!(c.user.as_deref(), Some("etl"));
        assert_eq!(c.password, None);
        // The mapping's trust_server_certificate = true.
        let c = ConnectSpec::parse("mssql://h/db?encrypt=true", true).unwrap();
        assert_eq!(
            (c.encryption, c.trust),
            (EncryptionLevel::Required, Trust::All)
        );
        // IPv6 in brackets.
        let c = ConnectSpec::parse("mssql://sa@[::1]:1500/db", false).unwrap();
        assert_eq!((c.host.as_deref(), c.port), (Some("::1"), Some(1500)));
    }

    #[test]
    fn url_user_password_and_database_are_percent_decoded() {
        let c = ConnectSpec::parse(
            "mssql://app%40corp:p%40ss%3Aw%2Fd%25%20x@h:1433/my%20db%C3%A9?encrypt=true",
            false,
        )
        .unwrap();
        assert_eq!(c.user.as_deref(), Some("app@corp"));
        assert_eq!(c.password.as_deref(), Some("p@ss:w/d% x"));
        assert_eq!(c.database.as_deref(), Some("my dbé"));
        // An unencoded '@' in the password: the last '@' ends the user info.
        let c = ConnectSpec::parse("mssql://sa:p@ss@h/db", false).unwrap();
        assert_eq!(
            (c.user.as_deref(), c.password.as_deref(), c.host.as_deref()),
            (Some("sa"), Some("p@ss"), Some("h"))
        );
        let e = err_text(ConnectSpec::parse("mssql://sa:%zz-secret@h/db", false));
        assert!(e.contains("password") && e.contains("%XX"), "{e}");
        assert!(!e.contains("secret"), "the password leaked: {e}");
        let e = err_text(ConnectSpec::parse("mssql://sa@h/db%FF", false));
        assert!(e.contains("database is not UTF-8"), "{e}");
    }

    #[test]
    fn bad_urls_are_errors_not_defaults() {
        let e = err_text(ConnectSpec::parse("mssql://h:99999/db", false));
        assert!(e.contains("port '99999'"), "{e}");
        let e = err_text(ConnectSpec::parse("mssql://h:14x3/db", false));
        assert!(e.contains("port '14x3'"), "{e}");
        let e = err_text(ConnectSpec::parse("mssql://h/db?bogus=1", false));
        assert!(e.contains("unknown option bogus=1"), "{e}");
        let e = err_text(ConnectSpec::parse("mssql://h/db?encrypt=maybe", false));
        assert!(e.contains("encrypt=maybe"), "{e}");
        let e = err_text(ConnectSpec::parse("mssql://[::1/db", false));
        assert!(e.contains("IPv6"), "{e}");
    }

    #[test]
    fn ado_string_gives_every_setting() {
        let c = ConnectSpec::parse(
            "server=tcp:db.example,1444;user id=sa;password=x;database=pliers;TrustServerCertificate=true;encrypt=true",
            false,
        )
        .unwrap();
        assert_eq!(c.host.as_deref(), Some("db.example"));
        assert_eq!(c.port, Some(1444));
        assert_eq!(c.database.as_deref(), Some("pliers"));
        assert_eq!(c.user.as_deref(), Some("sa"));
        assert_eq!(c.password.as_deref(), Some("x"));
        assert_eq!(c.encryption, EncryptionLevel::Required);
        assert_eq!(c.trust, Trust::All);

        let c = ConnectSpec::parse(
            "Server=(local);Initial Catalog=Legacy;UID=etl;PWD={a;b=c};Encrypt=DANGER_PLAINTEXT;Application Name=cutover;ApplicationIntent=ReadOnly",
            false,
        )
        .unwrap();
        assert_eq!(c.host.as_deref(), Some("localhost"));
        assert_eq!(c.port, None);
        assert_eq!(c.database.as_deref(), Some("Legacy"));
        assert_eq!(c.user.as_deref(), Some("etl"));
        assert_eq!(c.password.as_deref(), Some("a;b=c"));
        assert_eq!(c.encryption, EncryptionLevel::NotSupported);
        assert_eq!(c.application_name.as_deref(), Some("cutover"));
        assert!(c.readonly);
        assert_eq!(c.config().get_addr(), "localhost:1433");

        // No encrypt: TLS for the login only (tiberius's ADO.NET default).
        let c = ConnectSpec::parse(
            "data source=tcp:h\\SQLEXPRESS,1500;user=u;TrustServerCertificateCA=/etc/ca.pem",
            false,
        )
        .unwrap();
        assert_eq!(c.instance.as_deref(), Some("SQLEXPRESS"));
        assert_eq!(c.port, Some(1500));
        assert_eq!(c.encryption, EncryptionLevel::Off);
        assert_eq!(c.trust, Trust::Ca("/etc/ca.pem".into()));
        assert_eq!(c.config().get_addr(), "h:1500");
    }

    #[test]
    fn ado_string_reads_like_tiberius() {
        // tiberius's Config hides its fields but prints them (password hidden):
        // the same ADO.NET string gives the same Config both ways.
        for s in [
            "server=tcp:db.example,1444;user id=sa;password=x;database=pliers;TrustServerCertificate=true;encrypt=true",
            "Server=(local);Initial Catalog=Legacy;UID=etl;PWD={a;b=c};Encrypt=DANGER_PLAINTEXT;Application Name=cutover;ApplicationIntent=ReadOnly",
            "data source=h\\SQLEXPRESS,1500;username=u;pwd=p;databasename=d;TrustServerCertificateCA=/etc/ca.pem",
            "server=10.0.0.5;user=u;encrypt=no;trustservercertificate=yes",
            "server=tcp:h;User ID=u;Password=p;Encrypt=False",
        ] {
            let ours = ConnectSpec::parse(s, false).unwrap().config();
            let theirs = Config::from_ado_string(s).unwrap();
            assert_eq!(format!("{ours:?}"), format!("{theirs:?}"), "{s}");
        }
    }

    #[test]
    fn bad_ado_strings_are_errors_not_panics() {
        // tiberius's own Config panics on these two (trust_cert + trust_cert_ca).
        let e = err_text(ConnectSpec::parse(
            "server=h,1;TrustServerCertificate=true;TrustServerCertificateCA=/ca.pem",
            false,
        ));
        assert!(e.contains("exclude each other"), "{e}");
        let e = err_text(ConnectSpec::parse(
            "server=h,1;TrustServerCertificateCA=/ca.pem",
            true,
        ));
        assert!(e.contains("trust_server_certificate = true"), "{e}");
        let e = err_text(ConnectSpec::parse("server=h\\inst;user id=u", false));
        assert!(e.contains("named instance"), "{e}");
        let e = err_text(ConnectSpec::parse(
            "server=h;Integrated Security=SSPI",
            false,
        ));
        assert!(e.contains("integrated"), "{e}");
        let e = err_text(ConnectSpec::parse("server=h,14x;user id=u", false));
        assert!(e.contains("port '14x'"), "{e}");
        let e = err_text(ConnectSpec::parse("server=h;encrypt=maybe", false));
        assert!(e.contains("encrypt=maybe"), "{e}");
        let e = err_text(ConnectSpec::parse("just some words", false));
        assert!(
            e.contains("neither an mssql:// URL nor an ADO.NET string"),
            "{e}"
        );
    }

    /// `open` with PLIERS_PASSWORD set to `pw` in its environment (and nothing else).
    fn open_env(url: &str, pw_env: Option<&str>, pw: &str) -> Result<MssqlSource, SourceError> {
        MssqlSource::open_with(&spec_of(url, pw_env), |v| {
            (v == "PLIERS_PASSWORD").then(|| pw.to_string())
        })
    }

    #[test]
    fn password_env_keeps_the_user_of_either_form() {
        let var = Some("PLIERS_PASSWORD");
        let ado = open_env(
            "server=tcp:h,1433;user id=etl;database=legacy;encrypt=DANGER_PLAINTEXT",
            var,
            "s3cr;et",
        )
        .unwrap();
        assert_eq!(ado.conn.user.as_deref(), Some("etl"));
        assert_eq!(ado.conn.password.as_deref(), Some("s3cr;et"));
        assert_eq!(ado.conn.database.as_deref(), Some("legacy"));
        assert!(
            format!("{:?}", ado.conn.config()).contains("user: \"etl\""),
            "{:?}",
            ado.conn.config()
        );
        // The environment replaces a password written in the url; the user stays.
        let url = open_env(
            "mssql://app%40corp:old@h:1433/legacy?encrypt=DANGER_PLAINTEXT",
            var,
            "s3cr;et",
        )
        .unwrap();
        assert_eq!(url.conn.user.as_deref(), Some("app@corp"));
        assert_eq!(url.conn.password.as_deref(), Some("s3cr;et"));
        let ado_pw = open_env("server=h,1433;user id=etl;password=old", var, "s3cr;et").unwrap();
        assert_eq!(ado_pw.conn.user.as_deref(), Some("etl"));
        assert_eq!(ado_pw.conn.password.as_deref(), Some("s3cr;et"));
        // Without password_env the url's password is used.
        let plain = open_env("server=h,1433;user id=etl;password=old", None, "s3cr;et").unwrap();
        assert_eq!(plain.conn.password.as_deref(), Some("old"));
        // Nothing shows a password.
        for s in [&ado, &url, &ado_pw, &plain] {
            assert!(
                !s.describe().contains("s3cr") && !s.describe().contains("old"),
                "{}",
                s.describe()
            );
            assert!(!s.fingerprint().contains("s3cr") && !s.fingerprint().contains("old"));
            assert!(!format!("{:?}", s.conn).contains("s3cr"));
        }
        assert_eq!(ado.display, "mssql://etl@h:1433/legacy");
        assert_eq!(url.display, "mssql://app@corp@h:1433/legacy");
    }

    #[test]
    fn password_env_needs_a_user_and_the_variable() {
        let var = Some("PLIERS_PASSWORD");
        let e = err_text(open_env("server=h,1433;database=d", var, "pw"));
        assert!(
            e.contains("password_env = \"PLIERS_PASSWORD\" needs a user"),
            "{e}"
        );
        let e = err_text(open_env("mssql://h/d", var, "pw"));
        assert!(e.contains("needs a user"), "{e}");
        let e = err_text(open_env(
            "mssql://sa@h/d",
            Some("CUTOVER_TEST_NEVER_SET"),
            "pw",
        ));
        assert!(
            e.contains("the environment variable CUTOVER_TEST_NEVER_SET (password_env) is not set"),
            "{e}"
        );
    }

    // -- values ---------------------------------------------------------------

    #[test]
    fn integers_of_every_width() {
        assert_eq!(j(ColumnType::Int1, ColumnData::U8(Some(0))), "0");
        assert_eq!(j(ColumnType::Intn, ColumnData::U8(Some(255))), "255");
        assert_eq!(
            j(ColumnType::Int2, ColumnData::I16(Some(i16::MIN))),
            "-32768"
        );
        assert_eq!(
            j(ColumnType::Intn, ColumnData::I16(Some(i16::MAX))),
            "32767"
        );
        assert_eq!(
            j(ColumnType::Int4, ColumnData::I32(Some(i32::MIN))),
            "-2147483648"
        );
        assert_eq!(
            j(ColumnType::Intn, ColumnData::I32(Some(i32::MAX))),
            "2147483647"
        );
        // BIGINT exact, beyond f64's 2^53.
        assert_eq!(
            j(
                ColumnType::Int8,
                ColumnData::I64(Some(9_007_199_254_740_993))
            ),
            "9007199254740993"
        );
        assert_eq!(
            j(ColumnType::Intn, ColumnData::I64(Some(i64::MIN))),
            "-9223372036854775808"
        );
        assert_eq!(
            j(ColumnType::Int8, ColumnData::I64(Some(i64::MAX))),
            "9223372036854775807"
        );
        for d in [
            ColumnData::U8(None),
            ColumnData::I16(None),
            ColumnData::I32(None),
            ColumnData::I64(None),
        ] {
            assert_eq!(j(ColumnType::Intn, d), "null");
        }
    }

    #[test]
    fn floats_bits_strings_guids() {
        // REAL: the shortest text of the f32, not its f64 widening (0.100000001…).
        assert_eq!(j(ColumnType::Float4, ColumnData::F32(Some(0.1))), "0.1");
        assert_eq!(
            j(ColumnType::Floatn, ColumnData::F32(Some(-1.5e-7))),
            "-0.00000015"
        );
        assert_eq!(j(ColumnType::Floatn, ColumnData::F32(None)), "null");
        assert_eq!(j(ColumnType::Float8, ColumnData::F64(Some(0.1))), "0.1");
        let big =
            cell_to_json(ColumnType::Floatn, false, &ColumnData::F64(Some(f64::MAX))).unwrap();
        assert_eq!(big.as_f64(), Some(f64::MAX));
        assert_eq!(j(ColumnType::Floatn, ColumnData::F64(None)), "null");
        assert_eq!(
            cell_to_json(ColumnType::Float8, false, &ColumnData::F64(Some(f64::NAN))),
            Err(CellError::NotFinite("float"))
        );
        assert_eq!(
            cell_to_json(
                ColumnType::Float4,
                false,
                &ColumnData::F32(Some(f32::INFINITY))
            ),
            Err(CellError::NotFinite("real"))
        );
        assert_eq!(j(ColumnType::Bit, ColumnData::Bit(Some(true))), "true");
        assert_eq!(j(ColumnType::Bitn, ColumnData::Bit(Some(false))), "false");
        assert_eq!(j(ColumnType::Bitn, ColumnData::Bit(None)), "null");
        // char, varchar, nchar, nvarchar, text, ntext: all arrive as String.
        for (ty, text) in [
            (ColumnType::BigChar, "ab   "),
            (ColumnType::BigVarChar, "plain"),
            (ColumnType::NChar, "Zürich "),
            (ColumnType::NVarchar, "Zürich 東京 😀"),
            (ColumnType::Text, "old text"),
            (ColumnType::NText, "old ntext ü"),
            (ColumnType::NVarchar, ""),
        ] {
            assert_eq!(
                cell_to_json(ty, false, &ColumnData::String(Some(Cow::Borrowed(text)))).unwrap(),
                json!(text),
                "{ty:?}"
            );
        }
        assert_eq!(j(ColumnType::NVarchar, ColumnData::String(None)), "null");
        let g = uuid::Uuid::parse_str("0E984725-C51C-4BF4-9960-E1C80E27ABA0").unwrap();
        assert_eq!(
            j(ColumnType::Guid, ColumnData::Guid(Some(g))),
            "\"0e984725-c51c-4bf4-9960-e1c80e27aba0\""
        );
        assert_eq!(j(ColumnType::Guid, ColumnData::Guid(None)), "null");
    }

    #[test]
    fn binary_is_base64_and_rowversion_is_hex() {
        for ty in [
            ColumnType::BigBinary,
            ColumnType::BigVarBin,
            ColumnType::Image,
        ] {
            assert_eq!(
                j(ty, ColumnData::Binary(Some(vec![0u8, 1, 255].into()))),
                "\"AAH/\"",
                "{ty:?}"
            );
            assert_eq!(j(ty, ColumnData::Binary(Some(vec![].into()))), "\"\"");
            assert_eq!(j(ty, ColumnData::Binary(None)), "null");
        }
        let rv = ColumnData::Binary(Some(vec![0, 0, 0, 0, 0, 0, 0x07, 0xD1].into()));
        assert_eq!(
            cell_to_json(ColumnType::BigBinary, true, &rv).unwrap(),
            json!("0x00000000000007D1")
        );
        // The same bytes in a plain binary(8) column stay base64.
        assert_eq!(
            cell_to_json(ColumnType::BigBinary, false, &rv).unwrap(),
            json!("AAAAAAAAB9E=")
        );
        assert_eq!(
            cell_to_json(ColumnType::BigBinary, true, &ColumnData::Binary(None)).unwrap(),
            Value::Null
        );
        assert_eq!(
            rowversion_sql("dbo.Orders"),
            "SELECT c.name AS name FROM sys.columns AS c WHERE c.object_id = OBJECT_ID(@P1) AND c.system_type_id = 189"
        );
        assert_eq!(
            rowversion_sql("Legacy.dbo.Orders"),
            "SELECT c.name AS name FROM [Legacy].sys.columns AS c WHERE c.object_id = OBJECT_ID(@P1) AND c.system_type_id = 189"
        );
    }

    #[test]
    fn decimals_are_exact() {
        let n = |v: i128, s: u8| {
            j(
                ColumnType::Numericn,
                ColumnData::Numeric(Some(Numeric::new_with_scale(v, s))),
            )
        };
        assert_eq!(
            n(123456789012345678901234567, 4),
            "12345678901234567890123.4567"
        );
        // Precision 38, the maximum, at both ends of the scale (tiberius's Numeric
        // stops at scale 37: it panics on a decimal(38,38) column, see on_rt).
        let max38 = 10i128.pow(38) - 1;
        assert_eq!(n(max38, 0), "99999999999999999999999999999999999999");
        assert_eq!(n(max38, 37), "9.9999999999999999999999999999999999999");
        assert_eq!(
            n(10i128.pow(37) - 1, 37),
            "0.9999999999999999999999999999999999999"
        );
        assert_eq!(n(-max38, 10), "-9999999999999999999999999999.9999999999");
        // Negative values at every position of the decimal point.
        assert_eq!(n(-5, 2), "-0.05");
        assert_eq!(n(-123456, 3), "-123.456");
        assert_eq!(n(-7, 0), "-7");
        assert_eq!(n(-1, 37), "-0.0000000000000000000000000000000000001");
        assert_eq!(n(0, 2), "0.00");
        assert_eq!(n(232860, 2), "2328.60");
        assert_eq!(j(ColumnType::Decimaln, ColumnData::Numeric(None)), "null");
    }

    #[test]
    fn money_and_smallmoney_are_exact_within_2_pow_39() {
        let m = |ty: ColumnType, n: i64| j(ty, ColumnData::F64(Some(tiberius_money(n))));
        assert_eq!(m(ColumnType::Money, 23_286_000), "2328.6000");
        assert_eq!(m(ColumnType::Money, -1), "-0.0001");
        assert_eq!(m(ColumnType::Money, 0), "0.0000");
        assert_eq!(m(ColumnType::Money, 9_223_372_035_807), "922337203.5807");
        // SMALLMONEY's whole range.
        assert_eq!(m(ColumnType::Money4, i64::from(i32::MIN)), "-214748.3648");
        assert_eq!(m(ColumnType::Money4, i64::from(i32::MAX)), "214748.3647");
        // The largest amounts below 2^39 still come back to the last 1/10000.
        let limit: i64 = (1 << 39) * 10_000;
        assert_eq!(m(ColumnType::Money, limit - 1), "549755813887.9999");
        assert_eq!(m(ColumnType::Money, -(limit - 1)), "-549755813887.9999");
        assert_eq!(j(ColumnType::Money, ColumnData::F64(None)), "null");
        // Pseudo-random amounts of every magnitude below the limit, both signs.
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for bits in 1..=52u32 {
            for _ in 0..2000 {
                x = x
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                let n = ((x >> 11) % (1u64 << bits)) as i64 % limit;
                for n in [n, -n] {
                    assert_eq!(
                        money_text(tiberius_money(n)),
                        Ok(decimal_text(n.into(), 4)),
                        "{n}"
                    );
                }
            }
        }
        // Every amount just under the limit.
        for n in limit - 200_000..limit {
            assert_eq!(
                money_text(tiberius_money(n)),
                Ok(decimal_text(n.into(), 4)),
                "{n}"
            );
        }
    }

    #[test]
    fn money_beyond_2_pow_39_is_exact_or_an_error_never_wrong() {
        let limit: i64 = (1 << 39) * 10_000;
        let mut errors = 0;
        for n in (limit..limit + 100_000).chain(i64::MAX - 100_000..=i64::MAX) {
            match money_text(tiberius_money(n)) {
                Ok(text) => assert_eq!(text, decimal_text(n.into(), 4), "{n}"),
                Err(e) => {
                    assert_eq!(e, CellError::MoneyInexact(tiberius_money(n)));
                    errors += 1;
                }
            }
        }
        assert!(errors > 0, "f64 cannot hold every amount past 2^39");
        // MONEY's own extremes are among them: an error telling what to do.
        let e = column_value(
            "Balance",
            ColumnType::Money,
            false,
            &ColumnData::F64(Some(tiberius_money(i64::MAX))),
        )
        .unwrap_err();
        assert!(
            e.starts_with("column Balance (Money): the MONEY value")
                && e.contains("CAST(col AS DECIMAL(19,4))"),
            "{e}"
        );
        assert!(money_text(tiberius_money(i64::MIN)).is_err());
        assert_eq!(money_text(f64::NAN), Err(CellError::NotFinite("money")));
    }

    #[test]
    fn xml_arrives_as_its_own_variant() {
        let x = XmlData::new("<form id=\"1\"><field/></form>");
        assert_eq!(
            cell_to_json(
                ColumnType::Xml,
                false,
                &ColumnData::Xml(Some(Cow::Owned(x)))
            )
            .unwrap(),
            json!("<form id=\"1\"><field/></form>")
        );
        assert_eq!(j(ColumnType::Xml, ColumnData::Xml(None)), "null");
    }

    #[test]
    fn dates_and_times_as_iso_8601() {
        // datetime: days since 1900-01-01, 1/300 s since midnight.
        assert_eq!(
            j(
                ColumnType::Datetime,
                ColumnData::DateTime(Some(DateTime::new(44195, 300 * 3600 + 150)))
            ),
            "\"2021-01-01T01:00:00.500\""
        );
        assert_eq!(
            j(
                ColumnType::Datetimen,
                ColumnData::DateTime(Some(DateTime::new(-53690, 0)))
            ),
            "\"1753-01-01T00:00:00\""
        );
        // 9999-12-31 23:59:59.997 is 25919999/300 s: kept to the nanosecond.
        assert_eq!(
            j(
                ColumnType::Datetimen,
                ColumnData::DateTime(Some(DateTime::new(2_958_463, 25_919_999)))
            ),
            "\"9999-12-31T23:59:59.996666666\""
        );
        assert_eq!(j(ColumnType::Datetimen, ColumnData::DateTime(None)), "null");
        // smalldatetime: days since 1900-01-01, minutes.
        assert_eq!(
            j(
                ColumnType::Datetime4,
                ColumnData::SmallDateTime(Some(SmallDateTime::new(44195, 61)))
            ),
            "\"2021-01-01T01:01:00\""
        );
        assert_eq!(
            j(
                ColumnType::Datetimen,
                ColumnData::SmallDateTime(Some(SmallDateTime::new(65535, 1439)))
            ),
            "\"2079-06-06T23:59:00\""
        );
        assert_eq!(
            j(ColumnType::Datetimen, ColumnData::SmallDateTime(None)),
            "null"
        );
        // date: days since 0001-01-01.
        let date = Date::new(737_790);
        assert_eq!(
            j(ColumnType::Daten, ColumnData::Date(Some(date))),
            "\"2021-01-01\""
        );
        assert_eq!(
            j(ColumnType::Daten, ColumnData::Date(Some(Date::new(0)))),
            "\"0001-01-01\""
        );
        assert_eq!(
            j(
                ColumnType::Daten,
                ColumnData::Date(Some(Date::new(3_652_058)))
            ),
            "\"9999-12-31\""
        );
        assert_eq!(j(ColumnType::Daten, ColumnData::Date(None)), "null");
        // time(n): increments of 10^-n s.
        let time = Time::new(12_345_678_901, 7);
        assert_eq!(
            j(ColumnType::Timen, ColumnData::Time(Some(time))),
            "\"00:20:34.567890100\""
        );
        assert_eq!(
            j(
                ColumnType::Timen,
                ColumnData::Time(Some(Time::new(863_999_999_999, 7)))
            ),
            "\"23:59:59.999999900\""
        );
        assert_eq!(
            j(
                ColumnType::Timen,
                ColumnData::Time(Some(Time::new(45_296_789, 3)))
            ),
            "\"12:34:56.789\""
        );
        assert_eq!(
            j(
                ColumnType::Timen,
                ColumnData::Time(Some(Time::new(3_600, 0)))
            ),
            "\"01:00:00\""
        );
        assert_eq!(j(ColumnType::Timen, ColumnData::Time(None)), "null");
        assert_eq!(
            cell_to_json(
                ColumnType::Timen,
                false,
                &ColumnData::Time(Some(Time::new(864_000_000_000, 7)))
            ),
            Err(CellError::OutOfRange("time"))
        );
        // datetime2.
        assert_eq!(
            j(
                ColumnType::Datetime2,
                ColumnData::DateTime2(Some(DateTime2::new(date, time)))
            ),
            "\"2021-01-01T00:20:34.567890100\""
        );
        assert_eq!(
            j(ColumnType::Datetime2, ColumnData::DateTime2(None)),
            "null"
        );
        // datetimeoffset: UTC on the wire, shown in its own offset.
        let utc3 = DateTime2::new(date, Time::new(3 * 3600, 0));
        assert_eq!(
            j(
                ColumnType::DatetimeOffsetn,
                ColumnData::DateTimeOffset(Some(DateTimeOffset::new(utc3, 120)))
            ),
            "\"2021-01-01T05:00:00+02:00\""
        );
        assert_eq!(
            j(
                ColumnType::DatetimeOffsetn,
                ColumnData::DateTimeOffset(Some(DateTimeOffset::new(utc3, -300)))
            ),
            "\"2020-12-31T22:00:00-05:00\""
        );
        assert_eq!(
            j(
                ColumnType::DatetimeOffsetn,
                ColumnData::DateTimeOffset(Some(DateTimeOffset::new(utc3, 0)))
            ),
            "\"2021-01-01T03:00:00Z\""
        );
        assert_eq!(
            j(
                ColumnType::DatetimeOffsetn,
                ColumnData::DateTimeOffset(None)
            ),
            "null"
        );
    }

    #[test]
    fn a_type_the_reader_does_not_know_is_an_error_naming_column_and_type() {
        let e = column_value(
            "Shape",
            ColumnType::Udt,
            false,
            &ColumnData::Binary(Some(vec![1, 2].into())),
        )
        .unwrap_err();
        assert!(
            e.starts_with("column Shape (Udt): a type the reader does not know (Binary sent for a Udt column)"),
            "{e}"
        );
        let e = column_value(
            "CreatedAt",
            ColumnType::Datetime2,
            false,
            &ColumnData::I32(Some(1)),
        )
        .unwrap_err();
        assert!(e.contains("column CreatedAt (Datetime2)"), "{e}");
        assert!(e.contains("I32 sent for a Datetime2 column"), "{e}");
    }

    #[test]
    fn a_driver_panic_is_an_error() {
        // tiberius 0.12 answers a sql_variant column with todo!(); the reader returns
        // an error instead of taking the process down.
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let r: Result<(), SourceError> = on_rt(&rt, async {
            todo!("not yet implemented for SSVariant");
        });
        let e = err_text(r);
        assert!(e.contains("not yet implemented for SSVariant"), "{e}");
        assert!(e.contains("sql_variant"), "{e}");
        // The runtime still works afterwards.
        assert_eq!(on_rt(&rt, async { 7 }).unwrap(), 7);
    }

    #[test]
    fn keyset_sql() {
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
