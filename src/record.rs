//! The unit that flows through the pipeline: a [`Record`] read from a source, with
//! its human-facing key and its resumable [`Position`].

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt;
use std::sync::Arc;

/// An ordered, resumable cursor into a source.
///
/// For file sources it is the file's index in the sorted file list, the byte offset
/// inside the (decompressed) file, and the record's ordinal (1-based line number for
/// JSON Lines, 0-based element index for arrays). SQL sources keep the last key.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    /// Index of the file in the source's sorted file list.
    #[serde(default)]
    pub file: u32,
    /// Byte offset in the (decompressed) file.
    #[serde(default)]
    pub offset: u64,
    /// Line number (JSON Lines) or element index (arrays) of the record.
    #[serde(default)]
    pub line: u64,
    /// For keyset-paginated SQL sources: the key values of the last record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<Vec<Value>>,
}

impl Position {
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    pub fn from_json(text: &str) -> Option<Position> {
        serde_json::from_str(text).ok()
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.key {
            Some(k) => write!(f, "key {}", Value::Array(k.clone())),
            None => write!(
                f,
                "file #{} byte {} record {}",
                self.file, self.offset, self.line
            ),
        }
    }
}

/// What a source knows about the file a record came from (`file.path`, `file.NAME`).
#[derive(Debug, Default, Clone)]
pub struct FileInfo {
    /// The path relative to the source's base folder, with `/` separators.
    pub path: String,
    /// Names captured by `{name}` segments of the path pattern.
    pub captures: Vec<(String, String)>,
}

impl FileInfo {
    pub fn capture(&self, name: &str) -> Option<&str> {
        self.captures
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A decoded record: `key` names it for humans and for `retry`, `value` is the data.
#[derive(Debug, Clone)]
pub struct Record {
    /// The record key as text: the KV key, the key attributes, `PATH:line N`.
    pub key: String,
    /// The `key` root of expressions (the KV key as JSON).
    pub key_value: Value,
    pub value: Value,
    /// Where the record starts (stored with its error rows).
    pub position: Position,
    /// Where reading resumes after this record (the checkpoint once committed).
    pub next: Position,
    pub file: Arc<FileInfo>,
}
