//! Source readers. Each streams [`RawRecord`]s in bounded batches from a resumable
//! [`Position`]; decoding the bytes into a [`Record`] ([`RawRecord::decode`]) is CPU
//! work that the pipeline runs on rayon.

pub mod file;
pub mod keyset;
pub mod mssql;
#[cfg(test)]
mod proptests;
pub mod sql;
pub mod window;

pub use file::{dynamodb, expand, splitter, FileSource};

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

    /// The row as JSON text.
    pub fn row_json(&self) -> &[u8] {
        &self.json
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

pub(crate) fn parse_json(bytes: &[u8]) -> Result<Value, String> {
    serde_json::from_slice(bytes).map_err(|e| format!("invalid JSON: {e}"))
}

pub(crate) fn raw_text(bytes: &[u8]) -> Value {
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

    /// A 64-bit digest of what the mapping sees of this record before it is
    /// decoded: its bytes (which hold its key), its name where the name is its
    /// key (JSON documents and array elements: the file's path and index), and
    /// the file's path when `with_path` (the mapping reads `file.*`). A dump
    /// renamed or moved keeps its digests otherwise. `seed` stands for the
    /// mapping's transformation, so a changed mapping changes every digest.
    /// xxh3's output is fixed by its specification: digests written by one
    /// build are read by the next.
    pub fn digest(&self, seed: u64, with_path: bool) -> u64 {
        let mut h = xxhash_rust::xxh3::Xxh3::with_seed(seed);
        if with_path {
            h.update(self.file.path.as_bytes());
            h.update(&[0]);
        }
        match &self.payload {
            Payload::KvLine(b) => {
                h.update(b"l");
                h.update(b);
            }
            Payload::KvMember(b) => {
                h.update(b"m");
                h.update(b);
            }
            Payload::Dynamo(b, attrs) => {
                h.update(b"d");
                for a in attrs.iter() {
                    h.update(a.as_bytes());
                    h.update(&[0]);
                }
                h.update(b);
            }
            Payload::Doc(b) => {
                h.update(b"j");
                h.update(self.label().as_bytes());
                h.update(&[0]);
                h.update(b);
            }
            Payload::Decoded(d) => {
                h.update(b"s");
                h.update(d.key.as_bytes());
                h.update(&[0]);
                h.update(&d.json);
            }
        }
        h.digest()
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
            Payload::KvLine(bytes) => file::kv::decode_line(bytes).map_err(|(m, r)| fail(m, r))?,
            Payload::KvMember(bytes) => {
                file::kv::decode_member(bytes).map_err(|(m, r)| fail(m, r))?
            }
            Payload::Dynamo(bytes, key_attrs) => {
                dynamodb::decode_item(bytes, key_attrs).map_err(|(m, r)| fail(m, r))?
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
    /// How many records the source holds from where it stands (`cutover report
    /// --production-source`); by default counted by reading them all, without
    /// decoding.
    fn count(&mut self) -> Result<u64, SourceError> {
        count_by_reading(self)
    }
}

/// Count records by reading them through to the end (nothing is decoded).
pub fn count_by_reading<S: Source + ?Sized>(s: &mut S) -> Result<u64, SourceError> {
    let mut n = 0u64;
    loop {
        let batch = s.next_batch(10_000)?;
        if batch.is_empty() {
            return Ok(n);
        }
        n += batch.len() as u64;
    }
}

/// Open the source of a mapping.
pub fn open(mapping: &Mapping) -> Result<Box<dyn Source>, SourceError> {
    open_spec(&mapping.source)
}

/// A source of a spec (a mapping's, or one rewritten for a pass).
pub fn open_spec(spec: &crate::mapping::SourceSpec) -> Result<Box<dyn Source>, SourceError> {
    match spec.kind {
        SourceKind::Kv if spec.format == KvFormat::Dynamodb => Ok(Box::new(dynamodb::open(spec)?)),
        SourceKind::Kv | SourceKind::Json => Ok(Box::new(FileSource::open(spec)?)),
        SourceKind::Sqlite | SourceKind::Postgres | SourceKind::Mysql => {
            Ok(Box::new(sql::open(spec)?))
        }
        SourceKind::Mssql => Ok(Box::new(mssql::open(spec)?)),
    }
}
