//! SQL sources through sqlx (PostgreSQL, MySQL/MariaDB, SQLite): a table or a
//! query read in pages of `--batch-size` rows by keyset pagination
//! (`WHERE a > ? OR (a = ? AND b > ?) ORDER BY a, b`): never OFFSET, never a
//! cursor held open, and the checkpoint is the last key committed. Every column
//! type becomes JSON without loss (decimals keep their digits).

use super::{Payload, RawRecord, Source, SourceError};
use crate::mapping::{SourceKind, SourceSpec};
use crate::record::{FileInfo, Position};
use crate::target::{quote_ident, quote_table, Dialect};
use base64::Engine;
use serde_json::{Map, Number, Value};
use sqlx::{Column, Row, TypeInfo, ValueRef};
use std::str::FromStr;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

enum Pool {
    Sqlite(sqlx::SqlitePool),
    Postgres(sqlx::PgPool),
    Mysql(sqlx::MySqlPool),
}

pub struct SqlSource {
    spec: SourceSpec,
    dialect: Dialect,
    url: String,
    /// Its own runtime (dropped with `shutdown_background`: sources are dropped
    /// inside async commands too).
    rt: Option<tokio::runtime::Runtime>,
    pool: Option<Pool>,
    /// Key of the last record read (the keyset cursor).
    keyset: super::Keyset,
    counter: Arc<AtomicU64>,
    file: Arc<FileInfo>,
}

fn err(e: impl std::fmt::Display) -> SourceError {
    SourceError::Other(crate::redact_url(&e.to_string()))
}

fn number(text: &str) -> Value {
    Number::from_str(text)
        .map(Value::Number)
        .unwrap_or_else(|_| Value::String(text.to_string()))
}

/// Run a future on the source's own runtime from any context (the reader thread,
/// or an async command such as `retry`): on a fresh thread, so it never nests
/// inside another runtime.
fn on_rt<T: Send>(
    rt: &tokio::runtime::Runtime,
    f: impl std::future::Future<Output = T> + Send,
) -> T {
    std::thread::scope(|s| s.spawn(|| rt.block_on(f)).join())
        .unwrap_or_else(|_| panic!("source thread panicked"))
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

fn sqlite_value(row: &sqlx::sqlite::SqliteRow, i: usize) -> Result<Value, String> {
    let raw = row.try_get_raw(i).map_err(|e| e.to_string())?;
    if raw.is_null() {
        return Ok(Value::Null);
    }
    let ty = raw.type_info().name().to_ascii_uppercase();
    let v = match ty.as_str() {
        "INTEGER" => decode!(row, i, i64 => Value::from),
        "REAL" => {
            decode!(row, i, f64 => |f: f64| Number::from_f64(f).map(Value::Number).unwrap_or(Value::Null))
        }
        "BLOB" => {
            decode!(row, i, Vec<u8> => |b: Vec<u8>| Value::String(base64::engine::general_purpose::STANDARD.encode(b)))
        }
        _ => {
            decode!(row, i, String => Value::String, i64 => Value::from, f64 => |f: f64| Number::from_f64(f).map(Value::Number).unwrap_or(Value::Null))
        }
    };
    v.ok_or_else(|| {
        format!(
            "column {} has a type the reader does not know ({ty})",
            row.column(i).name()
        )
    })
}

fn pg_value(row: &sqlx::postgres::PgRow, i: usize) -> Result<Value, String> {
    let raw = row.try_get_raw(i).map_err(|e| e.to_string())?;
    if raw.is_null() {
        return Ok(Value::Null);
    }
    let ty = raw.type_info().name().to_ascii_uppercase();
    let v = match ty.as_str() {
        "INT2" => decode!(row, i, i16 => Value::from),
        "INT4" => decode!(row, i, i32 => Value::from),
        "INT8" => decode!(row, i, i64 => Value::from),
        "NUMERIC" => {
            decode!(row, i, bigdecimal::BigDecimal => |d: bigdecimal::BigDecimal| number(&d.to_plain_string()))
        }
        "FLOAT4" => {
            decode!(row, i, f32 => |f: f32| Number::from_f64(f64::from(f)).map(Value::Number).unwrap_or(Value::Null))
        }
        "FLOAT8" => {
            decode!(row, i, f64 => |f: f64| Number::from_f64(f).map(Value::Number).unwrap_or(Value::Null))
        }
        "BOOL" => decode!(row, i, bool => Value::Bool),
        "DATE" => {
            decode!(row, i, chrono::NaiveDate => |d: chrono::NaiveDate| Value::String(d.to_string()))
        }
        "TIME" => {
            decode!(row, i, chrono::NaiveTime => |t: chrono::NaiveTime| Value::String(t.to_string()))
        }
        "TIMESTAMP" => {
            decode!(row, i, chrono::NaiveDateTime => |t: chrono::NaiveDateTime| Value::String(t.format("%Y-%m-%dT%H:%M:%S%.f").to_string()))
        }
        "TIMESTAMPTZ" => {
            decode!(row, i, chrono::DateTime<chrono::Utc> => |t: chrono::DateTime<chrono::Utc>| Value::String(t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)))
        }
        "UUID" => decode!(row, i, uuid::Uuid => |u: uuid::Uuid| Value::String(u.to_string())),
        "JSON" | "JSONB" => decode!(row, i, Value => |v| v),
        "BYTEA" => {
            decode!(row, i, Vec<u8> => |b: Vec<u8>| Value::String(base64::engine::general_purpose::STANDARD.encode(b)))
        }
        _ => decode!(row, i, String => Value::String),
    };
    v.ok_or_else(|| {
        format!(
            "column {} has a type the reader does not know ({ty})",
            row.column(i).name()
        )
    })
}

fn mysql_value(row: &sqlx::mysql::MySqlRow, i: usize) -> Result<Value, String> {
    let raw = row.try_get_raw(i).map_err(|e| e.to_string())?;
    if raw.is_null() {
        return Ok(Value::Null);
    }
    let ty = raw.type_info().name().to_ascii_uppercase();
    let v = match ty.as_str() {
        "BOOLEAN" => decode!(row, i, bool => Value::Bool),
        t if t.contains("INT") && t.contains("UNSIGNED") => decode!(row, i, u64 => Value::from),
        t if t.contains("INT") => decode!(row, i, i64 => Value::from),
        "DECIMAL" => {
            decode!(row, i, bigdecimal::BigDecimal => |d: bigdecimal::BigDecimal| number(&d.to_plain_string()))
        }
        "FLOAT" | "DOUBLE" => {
            decode!(row, i, f64 => |f: f64| Number::from_f64(f).map(Value::Number).unwrap_or(Value::Null))
        }
        "DATE" => {
            decode!(row, i, chrono::NaiveDate => |d: chrono::NaiveDate| Value::String(d.to_string()))
        }
        "TIME" => {
            decode!(row, i, chrono::NaiveTime => |t: chrono::NaiveTime| Value::String(t.to_string()))
        }
        "DATETIME" => {
            decode!(row, i, chrono::NaiveDateTime => |t: chrono::NaiveDateTime| Value::String(t.format("%Y-%m-%dT%H:%M:%S%.f").to_string()))
        }
        "TIMESTAMP" => {
            decode!(row, i, chrono::DateTime<chrono::Utc> => |t: chrono::DateTime<chrono::Utc>| Value::String(t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)))
        }
        "JSON" => decode!(row, i, Value => |v| v),
        // VARBINARY is also what text columns with a binary collation report:
        // valid UTF-8 stays text, other bytes become base64.
        t if t.contains("BLOB") || t.contains("BINARY") => {
            decode!(row, i, Vec<u8> => |b: Vec<u8>| match String::from_utf8(b) {
                Ok(s) => Value::String(s),
                Err(e) => Value::String(base64::engine::general_purpose::STANDARD.encode(e.into_bytes())),
            })
        }
        _ => decode!(row, i, String => Value::String),
    };
    v.ok_or_else(|| {
        format!(
            "column {} has a type the reader does not know ({ty})",
            row.column(i).name()
        )
    })
}

impl SqlSource {
    pub fn open(spec: &SourceSpec) -> Result<SqlSource, SourceError> {
        let dialect = match spec.kind {
            SourceKind::Sqlite => Dialect::Sqlite,
            SourceKind::Postgres => Dialect::Postgres,
            SourceKind::Mysql => Dialect::Mysql,
            other => {
                return Err(SourceError::Unsupported(
                    crate::mapping::kind_name(other).into(),
                ))
            }
        };
        let mut url = spec
            .url
            .clone()
            .ok_or_else(|| SourceError::Other("the SQL source has no url".into()))?;
        if dialect == Dialect::Sqlite {
            // A relative database path resolves against the mapping's folder.
            let path = url
                .trim_start_matches("sqlite://")
                .trim_start_matches("sqlite:");
            let (file, query) = path
                .split_once('?')
                .map_or((path, None), |(f, q)| (f, Some(q)));
            let p = std::path::Path::new(file);
            let full = if p.is_absolute() {
                p.to_path_buf()
            } else {
                spec.dir.join(p)
            };
            if !full.exists() {
                return Err(SourceError::Io {
                    path: full,
                    source: std::io::Error::new(
                        std::io::ErrorKind::NotFound,
                        "database file not found",
                    ),
                });
            }
            url = format!(
                "sqlite://{}{}",
                full.display(),
                query.map(|q| format!("?{q}")).unwrap_or_default()
            );
        }
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(err)?;
        Ok(SqlSource {
            spec: spec.clone(),
            dialect,
            url,
            rt: Some(rt),
            pool: None,
            keyset: super::Keyset::default(),
            counter: Arc::new(AtomicU64::new(0)),
            file: Arc::new(FileInfo::default()),
        })
    }

    fn password(&self) -> Result<Option<String>, SourceError> {
        match &self.spec.password_env {
            None => Ok(None),
            Some(var) => std::env::var(var).map(Some).map_err(|_| {
                SourceError::Other(format!(
                    "the environment variable {var} (password_env) is not set"
                ))
            }),
        }
    }

    fn connect(&mut self) -> Result<(), SourceError> {
        if self.pool.is_some() {
            return Ok(());
        }
        let url = self.url.clone();
        let password = self.password()?;
        let dialect = self.dialect;
        let rt = self
            .rt
            .as_ref()
            .ok_or_else(|| SourceError::Other("source closed".into()))?;
        let pool = on_rt(rt, async move {
            Ok::<_, sqlx::Error>(match dialect {
                Dialect::Sqlite => {
                    let o = sqlx::sqlite::SqliteConnectOptions::from_str(&url)?.read_only(true);
                    Pool::Sqlite(
                        sqlx::sqlite::SqlitePoolOptions::new()
                            .max_connections(1)
                            .connect_with(o)
                            .await?,
                    )
                }
                Dialect::Postgres => {
                    let mut o = sqlx::postgres::PgConnectOptions::from_str(&url)?
                        .application_name("cutover-source");
                    if let Some(p) = &password {
                        o = o.password(p);
                    }
                    Pool::Postgres(
                        sqlx::postgres::PgPoolOptions::new()
                            .max_connections(1)
                            .connect_with(o)
                            .await?,
                    )
                }
                Dialect::Mysql => {
                    let mut o = sqlx::mysql::MySqlConnectOptions::from_str(&url)?;
                    if let Some(p) = &password {
                        o = o.password(p);
                    }
                    Pool::Mysql(
                        sqlx::mysql::MySqlPoolOptions::new()
                            .max_connections(1)
                            .connect_with(o)
                            .await?,
                    )
                }
            })
        })
        .map_err(|e| {
            SourceError::Other(format!(
                "cannot connect to the source {}: {e}",
                crate::redact_url(&self.url)
            ))
        })?;
        self.pool = Some(pool);
        Ok(())
    }

    fn relation_sql(&self) -> String {
        match (&self.spec.table, &self.spec.query) {
            (Some(t), _) => format!("{} AS q", quote_table(self.dialect, t)),
            (None, Some(q)) => format!("({}) AS q", q.trim().trim_end_matches(';')),
            (None, None) => "(SELECT 1) AS q".into(),
        }
    }

    fn param(&self, n: usize) -> String {
        if self.dialect == Dialect::Postgres {
            format!("${n}")
        } else {
            "?".into()
        }
    }

    /// Keyset page: `WHERE a > ? OR (a = ? AND b > ?)`, as a list of binds in order.
    fn page_sql(&self, after: Option<&[Value]>, limit: usize) -> (String, Vec<Value>) {
        let keys: Vec<String> = self
            .spec
            .key
            .iter()
            .map(|k| format!("q.{}", quote_ident(self.dialect, k)))
            .collect();
        let mut binds = Vec::new();
        let mut sql = format!("SELECT * FROM {}", self.relation_sql());
        if let Some(after) = after {
            let mut ors = Vec::new();
            for i in 0..keys.len() {
                let mut ands = Vec::new();
                for (j, key) in keys.iter().enumerate().take(i) {
                    binds.push(after[j].clone());
                    ands.push(format!("{key} = {}", self.param(binds.len())));
                }
                binds.push(after[i].clone());
                ands.push(format!("{} > {}", keys[i], self.param(binds.len())));
                ors.push(format!("({})", ands.join(" AND ")));
            }
            sql.push_str(&format!(" WHERE {}", ors.join(" OR ")));
        }
        sql.push_str(&format!(" ORDER BY {} LIMIT {limit}", keys.join(", ")));
        (sql, binds)
    }

    fn fetch(
        &mut self,
        sql: String,
        binds: Vec<Value>,
    ) -> Result<Vec<Map<String, Value>>, SourceError> {
        self.connect()?;
        let pool = self
            .pool
            .as_ref()
            .ok_or_else(|| SourceError::Other("not connected".into()))?;
        macro_rules! run {
            ($pool:expr, $conv:ident) => {{
                let mut q = sqlx::query(&sql);
                for b in &binds {
                    q = match b {
                        Value::Number(n) if n.as_i64().is_some() => q.bind(n.as_i64()),
                        Value::Number(n) => q.bind(n.as_f64()),
                        Value::Bool(x) => q.bind(*x),
                        Value::String(s) => q.bind(s.clone()),
                        other => q.bind(other.to_string()),
                    };
                }
                let rows = q.fetch_all($pool).await.map_err(|e| e.to_string())?;
                let mut out = Vec::with_capacity(rows.len());
                for r in &rows {
                    let mut m = Map::new();
                    for (i, c) in r.columns().iter().enumerate() {
                        m.insert(c.name().to_string(), $conv(r, i)?);
                    }
                    out.push(m);
                }
                Ok::<_, String>(out)
            }};
        }
        let rt = self
            .rt
            .as_ref()
            .ok_or_else(|| SourceError::Other("source closed".into()))?;
        let res = match pool {
            Pool::Sqlite(p) => on_rt(rt, async { run!(p, sqlite_value) }),
            Pool::Postgres(p) => on_rt(rt, async { run!(p, pg_value) }),
            Pool::Mysql(p) => on_rt(rt, async { run!(p, mysql_value) }),
        };
        res.map_err(|e| SourceError::Other(format!("reading the source ({sql}): {e}")))
    }

    fn record(&self, row: Map<String, Value>) -> Result<RawRecord, SourceError> {
        let mut key = Vec::with_capacity(self.spec.key.len());
        for k in &self.spec.key {
            match row.get(k) {
                Some(v) => key.push(v.clone()),
                None => {
                    return Err(SourceError::Other(format!(
                        "the key column {k} is not among the source's columns ({})",
                        row.keys().cloned().collect::<Vec<_>>().join(", ")
                    )))
                }
            }
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

impl Drop for SqlSource {
    fn drop(&mut self) {
        if let Some(rt) = self.rt.take() {
            {
                let _inside = rt.enter();
                self.pool = None;
            }
            rt.shutdown_background();
        }
    }
}

impl Source for SqlSource {
    fn seek(&mut self, pos: &Position) -> Result<(), SourceError> {
        self.keyset.last = pos.key.clone();
        Ok(())
    }

    fn next_batch(&mut self, max: usize) -> Result<Vec<RawRecord>, SourceError> {
        if self.keyset.done {
            return Ok(Vec::new());
        }
        let max = max.max(1);
        let (sql, binds) = self.page_sql(self.keyset.last.as_deref(), max + 1);
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
            "{} {} {} key ({})",
            crate::mapping::kind_name(self.spec.kind),
            crate::redact_url(&self.url),
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
            "{} {} ({}), keyset on ({})",
            crate::mapping::kind_name(self.spec.kind),
            crate::redact_url(&self.url),
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
            .map(|(i, k)| format!("q.{} = {}", quote_ident(self.dialect, k), self.param(i + 1)))
            .collect();
        let sql = format!(
            "SELECT * FROM {} WHERE {}",
            self.relation_sql(),
            conds.join(" AND ")
        );
        let rows = self.fetch(sql, key.clone())?;
        rows.into_iter().next().map(|r| self.record(r)).transpose()
    }
}
