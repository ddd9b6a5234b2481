//! Source readers. Each streams [`RawRecord`]s in bounded batches from a resumable
//! [`Position`]; decoding the bytes into a [`Record`] ([`RawRecord::decode`]) is CPU
//! work that the pipeline runs on rayon.

pub mod dynamodb;
pub mod files;
pub mod mssql;
pub mod split;
pub mod sql;

use crate::mapping::{KvFormat, Mapping, SourceKind};
use crate::record::{FileInfo, Position, Record};
use bytes::Bytes;
use serde_json::Value;
use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("no files match {pattern}")]
    NoFiles { pattern: String },
    #[error("{path}: {message}")]
    Format { path: PathBuf, message: String },
    #[error("source kind '{0}' is not supported by this build")]
    Unsupported(String),
    #[error(transparent)]
    Sql(#[from] sql::SqlError),
    #[error("keyset pagination on ({columns}): the key column {column} is NULL {place}; a keyset key must be NOT NULL and unique: name such columns in [source] key, or leave the NULL rows out in a `query`")]
    NullKey {
        columns: String,
        column: String,
        place: String,
    },
    #[error("{0}")]
    Other(String),
}

/// The keyset state shared by the SQL sources: the last key read and whether the
/// source is exhausted.
#[derive(Debug, Default)]
pub(crate) struct Keyset {
    pub last: Option<Vec<Value>>,
    pub done: bool,
}

impl Keyset {
    /// Take one page read with `WHERE key > last ORDER BY key` and one row ahead
    /// (`page` holds up to `max + 1` rows) and return its first `max` rows.
    ///
    /// Keyset pagination only works when the key is unique and the server orders and
    /// compares it consistently: with `WHERE key > last`, a key shared by two rows at a
    /// page boundary would skip the second row silently. The row read ahead makes that
    /// visible: equal neighbouring keys, or a page that repeats the last key, stop the
    /// run with an error naming the key. So does a NULL in a key column: `key > last`
    /// is never true for it, and where the server sorts NULLs is its own choice.
    pub fn advance(
        &mut self,
        columns: &[String],
        mut page: Vec<RawRecord>,
        max: usize,
        counter: &AtomicU64,
    ) -> Result<Vec<RawRecord>, SourceError> {
        let mut prev = self.last.as_deref();
        for r in &page {
            let key = r.position.key.as_deref();
            if let Some(i) = key.and_then(|k| k.iter().position(Value::is_null)) {
                return Err(SourceError::NullKey {
                    columns: columns.join(", "),
                    column: columns.get(i).cloned().unwrap_or_else(|| i.to_string()),
                    place: match prev {
                        Some(p) => format!("in the row after key {}", Value::Array(p.to_vec())),
                        None => "in the first row read".into(),
                    },
                });
            }
            if key.is_some() && key == prev {
                return Err(SourceError::Other(format!(
                    "keyset pagination on ({}) found the key {} on more than one row: the \
                     source's key must be unique (a shared key would skip rows at page \
                     boundaries); name unique columns in [source] key",
                    columns.join(", "),
                    serde_json::to_string(&key).unwrap_or_default()
                )));
            }
            prev = key;
        }
        self.done = page.len() <= max;
        page.truncate(max);
        if let Some(last) = page.last() {
            self.last = last.position.key.clone();
        }
        counter.fetch_add(page.len() as u64, std::sync::atomic::Ordering::Relaxed);
        Ok(page)
    }
}

/// How the bytes of a raw record are decoded. The bytes are a slice of a buffer
/// the reader shares among the records of a batch (one allocation per batch,
/// not per line).
#[derive(Debug, Clone)]
pub enum Payload {
    /// A JSON Lines `{"key": ..., "value": ...}` line.
    KvLine(Bytes),
    /// A `"key": value` member of a top-level object.
    KvMember(Bytes),
    /// A DynamoDB-JSON export line; the key attributes name the record.
    Dynamo(Bytes, Arc<Vec<String>>),
    /// A JSON document or array element; keyed by its label.
    Doc(Bytes),
    /// Already decoded (SQL sources).
    Decoded(Box<Decoded>),
}

/// A record a SQL source has decoded already. The row is kept as compact JSON
/// text, not as a tree: a batch's records stay in memory until it is written
/// (for the error rows of records the database rejects), and a tree of a row
/// takes about three times the room of its text.
#[derive(Debug, Clone)]
pub struct Decoded {
    pub key: String,
    pub key_value: Value,
    json: Bytes,
}

impl Decoded {
    /// `json`: the row as a JSON object's text ([`Decoded::json_of`]).
    pub fn new(key: String, key_value: Value, json: Vec<u8>) -> Decoded {
        Decoded {
            key,
            key_value,
            json: Bytes::from(json),
        }
    }

    /// The JSON text of a row.
    pub fn json_of(row: serde_json::Map<String, Value>) -> Vec<u8> {
        // Serializing a Value cannot fail (its keys are strings); should it ever,
        // the empty text fails the record's decoding, loudly.
        serde_json::to_vec(&Value::Object(row)).unwrap_or_default()
    }
}

/// How a record is named when it cannot be decoded (and, for documents, always):
/// built from its file and position when asked for, not stored per record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Label {
    /// `PATH:line N` (JSON Lines; N is `position.line`).
    Line,
    /// `PATH[i]` (array element or object member; i is `position.line`).
    Member,
    /// `PATH` (a whole document).
    Document,
    /// The decoded key (SQL sources).
    Key,
}

/// A record as read, before decoding.
#[derive(Debug, Clone)]
pub struct RawRecord {
    pub position: Position,
    pub next: Position,
    pub file: Arc<FileInfo>,
    /// Names the record when it cannot be decoded: see [`RawRecord::label`].
    pub label: Label,
    pub payload: Payload,
}

/// A record that could not be decoded: becomes a `read` error row.
#[derive(Debug, Clone)]
pub struct DecodeError {
    pub key: String,
    pub position: Position,
    pub message: String,
    /// The raw text (or value) of the record.
    pub record: Value,
}

fn parse_json(bytes: &[u8]) -> Result<Value, String> {
    serde_json::from_slice(bytes).map_err(|e| format!("invalid JSON: {e}"))
}

fn raw_text(bytes: &[u8]) -> Value {
    let s = String::from_utf8_lossy(bytes);
    let s = s.trim_end();
    if s.len() > 4096 {
        let mut cut = 4096;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        Value::String(format!("{}...", &s[..cut]))
    } else {
        Value::String(s.to_string())
    }
}

/// The text form of a key value: strings as they are, anything else as JSON.
pub fn key_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

impl RawRecord {
    /// The record's name when it cannot be decoded: `PATH:line N`, `PATH[i]`,
    /// `PATH`, or the key of a SQL row.
    pub fn label(&self) -> String {
        let path = &self.file.path;
        match self.label {
            Label::Line => format!("{path}:line {}", self.position.line),
            Label::Member => format!("{path}[{}]", self.position.line),
            Label::Document => path.clone(),
            Label::Key => match &self.payload {
                Payload::Decoded(d) => d.key.clone(),
                _ => path.clone(),
            },
        }
    }

    /// Decode into a record; the error names the record and says why.
    pub fn decode(&self) -> Result<Record, Box<DecodeError>> {
        let fail = |message: String, record: Value| {
            Box::new(DecodeError {
                key: self.label(),
                position: self.position.clone(),
                message,
                record,
            })
        };
        let (key, key_value, value) = match &self.payload {
            Payload::KvLine(bytes) => {
                let v = parse_json(bytes).map_err(|m| fail(m, raw_text(bytes)))?;
                match v {
                    Value::Object(mut m) if m.contains_key("key") && m.contains_key("value") => {
                        let key_value = m.shift_remove("key").unwrap_or(Value::Null);
                        let value = m.shift_remove("value").unwrap_or(Value::Null);
                        if key_value.is_null() {
                            return Err(fail(
                                "the line's \"key\" is null".into(),
                                serde_json::json!({"key": null, "value": value}),
                            ));
                        }
                        (key_text(&key_value), key_value, value)
                    }
                    other => {
                        return Err(fail(
                            "the line is JSON but not a {\"key\": ..., \"value\": ...} pair".into(),
                            other,
                        ))
                    }
                }
            }
            Payload::KvMember(bytes) => {
                let mut wrapped = Vec::with_capacity(bytes.len() + 2);
                wrapped.push(b'{');
                wrapped.extend_from_slice(bytes);
                wrapped.push(b'}');
                let v = parse_json(&wrapped).map_err(|m| fail(m, raw_text(bytes)))?;
                match v {
                    Value::Object(m) => match m.into_iter().next() {
                        Some((k, v)) => (k.clone(), Value::String(k), v),
                        None => return Err(fail("empty member".into(), Value::Null)),
                    },
                    other => return Err(fail("not an object member".into(), other)),
                }
            }
            Payload::Dynamo(bytes, key_attrs) => {
                let v = parse_json(bytes).map_err(|m| fail(m, raw_text(bytes)))?;
                let value = dynamodb::unwrap_line(v.clone()).map_err(|m| fail(m, v.clone()))?;
                let image = value
                    .get("Keys")
                    .or_else(|| value.get("NewImage"))
                    .unwrap_or(&value);
                let parts: Vec<Value> = key_attrs
                    .iter()
                    .map(|a| image.get(a).cloned().unwrap_or(Value::Null))
                    .collect();
                if let Some(missing) = key_attrs.iter().zip(&parts).find(|(_, p)| p.is_null()) {
                    return Err(fail(
                        format!("the item has no key attribute `{}`", missing.0),
                        value.clone(),
                    ));
                }
                let (key, key_value) = if parts.len() == 1 {
                    (key_text(&parts[0]), parts[0].clone())
                } else {
                    let text = key_attrs
                        .iter()
                        .zip(&parts)
                        .map(|(a, p)| format!("{a}={}", key_text(p)))
                        .collect::<Vec<_>>()
                        .join(",");
                    (text, Value::Array(parts))
                };
                (key, key_value, value)
            }
            Payload::Doc(bytes) => {
                let v = parse_json(bytes).map_err(|m| fail(m, raw_text(bytes)))?;
                let label = self.label();
                (label.clone(), Value::String(label), v)
            }
            Payload::Decoded(d) => {
                let v = parse_json(&d.json).map_err(|m| fail(m, raw_text(&d.json)))?;
                (d.key.clone(), d.key_value.clone(), v)
            }
        };
        Ok(Record {
            key,
            key_value,
            value,
            position: self.position.clone(),
            next: self.next.clone(),
            file: self.file.clone(),
        })
    }
}

/// A streaming source.
pub trait Source: Send {
    /// Continue after `pos` (the `next` of the last committed record).
    fn seek(&mut self, pos: &Position) -> Result<(), SourceError>;
    /// Up to `max` records; an empty batch means the end.
    fn next_batch(&mut self, max: usize) -> Result<Vec<RawRecord>, SourceError>;
    /// Total size in bytes when known (progress and ETA).
    fn total_bytes(&self) -> Option<u64>;
    /// Bytes consumed so far (shared with the progress bar).
    fn bytes_counter(&self) -> Arc<AtomicU64>;
    /// Identity of the input (sizes and modification times): a changed source
    /// refuses a blind resume.
    fn fingerprint(&self) -> String;
    /// What is being read, for logs.
    fn describe(&self) -> String;
    /// Read again the one record that starts at `pos` (for `cutover retry`).
    fn read_at(&mut self, pos: &Position) -> Result<Option<RawRecord>, SourceError>;
}

/// Open the source of a mapping.
pub fn open(mapping: &Mapping) -> Result<Box<dyn Source>, SourceError> {
    let spec = &mapping.source;
    match spec.kind {
        SourceKind::Kv if spec.format == KvFormat::Dynamodb => Ok(Box::new(dynamodb::open(spec)?)),
        SourceKind::Kv | SourceKind::Json => Ok(Box::new(files::FileSource::open(spec)?)),
        SourceKind::Sqlite | SourceKind::Postgres | SourceKind::Mysql => {
            Ok(Box::new(sql::SqlSource::open(spec)?))
        }
        SourceKind::Mssql => Ok(Box::new(mssql::MssqlSource::open(spec)?)),
    }
}
