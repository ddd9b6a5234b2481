//! The per-record error rows a pass keeps, and the stage each failed in.

use crate::record::Position;
use serde_json::Value;
use std::fmt;

/// Where in the flow a record failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Read,
    Transform,
    Load,
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Stage::Read => "read",
            Stage::Transform => "transform",
            Stage::Load => "load",
        })
    }
}

/// One per-record error, as stored in `cutover_errors`.
#[derive(Debug, Clone)]
pub struct ErrorRow {
    pub record_key: String,
    pub position: Position,
    pub stage: Stage,
    /// `table.column` the error is about, when it is about one.
    pub column: Option<String>,
    pub message: String,
    /// The record as JSON (redacted).
    pub record: Value,
}
