//! A validated, compiled mapping: the specs of its source, tables, checks and
//! key map, with the locations later checks (against the target) report at.

use super::config::{KvFormat, OnConflict, SourceKind};
use super::load::Diagnostic;
use super::Expr;
use std::path::PathBuf;

/// Where a piece of the mapping came from, to report later problems (missing
/// target columns, type mismatches) at the right line.
#[derive(Debug, Clone, Default)]
pub struct Loc {
    pub line: usize,
    pub column: usize,
}

#[derive(Debug, Clone)]
pub struct ColumnSpec {
    pub name: String,
    pub expr: Expr,
    pub text: String,
    pub loc: Loc,
}

#[derive(Debug, Clone)]
pub struct TableSpec {
    pub table: String,
    pub key: Vec<String>,
    pub on_conflict: OnConflict,
    pub for_each: Option<Expr>,
    pub filter: Option<Expr>,
    pub columns: Vec<ColumnSpec>,
    pub loc: Loc,
    pub key_loc: Loc,
    /// What happens to rows whose record is gone.
    pub deletes: DeletePolicy,
    pub max_deletes: MaxDeletes,
}

/// `deletes` of a table.
#[derive(Debug, Clone, PartialEq)]
pub enum DeletePolicy {
    Keep,
    Delete,
    /// Set `column` to `value` instead of deleting the row.
    Soft {
        column: String,
        value: SoftValue,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub enum SoftValue {
    /// The time of the pass (UTC).
    Now,
    Text(String),
    Int(i64),
    Float(f64),
    Bool(bool),
}

/// `max_deletes` of a table.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum MaxDeletes {
    /// A share of the table's rows (0.1 = 10 %).
    Share(f64),
    Count(u64),
}

impl Default for MaxDeletes {
    fn default() -> Self {
        MaxDeletes::Share(0.1)
    }
}

impl MaxDeletes {
    /// The most rows a pass may delete from a table of `rows` rows.
    pub fn limit(self, rows: i64) -> u64 {
        match self {
            MaxDeletes::Share(s) => (s * rows.max(0) as f64).floor() as u64,
            MaxDeletes::Count(n) => n,
        }
    }
}

impl std::fmt::Display for MaxDeletes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MaxDeletes::Share(s) => write!(f, "{}%", s * 100.0),
            MaxDeletes::Count(n) => write!(f, "{n}"),
        }
    }
}

impl TableSpec {
    /// Indexes of the key columns in `columns`.
    pub fn key_indexes(&self) -> Vec<usize> {
        self.key
            .iter()
            .filter_map(|k| self.columns.iter().position(|c| &c.name == k))
            .collect()
    }
}

/// The resolved source of a mapping (paths are absolute or relative to the CWD).
#[derive(Debug, Clone)]
pub struct SourceSpec {
    pub kind: SourceKind,
    pub path: Option<PathBuf>,
    /// The path as written in the mapping (for messages).
    pub path_text: Option<String>,
    pub format: KvFormat,
    pub key: Vec<String>,
    pub url: Option<String>,
    pub password_env: Option<String>,
    pub table: Option<String>,
    pub query: Option<String>,
    pub trust_server_certificate: bool,
    /// Delta passes: the watermark column and how to read it.
    pub watermark: Option<Watermark>,
    /// Set for one pass, never by the mapping file: a condition rows must meet
    /// (a delta pass's window), and how many leading `key` columns only order
    /// the pages (the watermark) without naming the record.
    pub filter: Option<String>,
    pub paging_prefix: usize,
    /// The mapping file's folder (relative SQLite source paths resolve against it).
    pub dir: PathBuf,
}

/// `[source] watermark`: delta passes read only rows whose watermark is at or
/// above the previous pass's high-water mark (minus `lookback`).
#[derive(Debug, Clone)]
pub struct Watermark {
    pub column: String,
    pub lookback: Option<Lookback>,
    pub nulls: Option<super::config::WatermarkNulls>,
    /// Where `watermark` is written (errors found when the source is read name it).
    pub loc: Loc,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookback {
    /// For time columns.
    Duration(std::time::Duration),
    /// For integer columns (sequences, rowversion).
    Count(i64),
}

#[derive(Debug, Clone)]
pub struct CheckSpec {
    pub name: String,
    pub sql: String,
    pub expect: serde_json::Value,
}

#[derive(Debug, Clone)]
pub struct KeymapSpec {
    pub legacy: Expr,
    pub new: Expr,
}

/// A validated, compiled mapping.
#[derive(Debug, Clone)]
pub struct Mapping {
    pub name: String,
    pub file: PathBuf,
    /// sha256 of the mapping file's bytes: a changed mapping refuses a blind resume.
    pub checksum: String,
    pub description: Option<String>,
    pub schema: Option<PathBuf>,
    pub source: SourceSpec,
    pub tables: Vec<TableSpec>,
    pub checks: Vec<CheckSpec>,
    /// Record fields replaced by "***" in error rows (and in their messages):
    /// the `redact` list, then the fields secret columns read (`*`: every
    /// element of an array; an empty path: the whole record).
    pub redact: Vec<Vec<String>>,
    /// Whether a column encrypts or hashes: records that cannot be read are
    /// then not kept in error rows (their raw text would show the clear text).
    pub secrets: bool,
    pub keymap: Option<KeymapSpec>,
    /// Whether runs keep the undo journal (`undo = false` turns it off).
    pub undo: bool,
    /// Whether passes keep record digests and skip the records read as before
    /// (`skip_unchanged = false` turns it off).
    pub skip_unchanged: bool,
}

impl Mapping {
    /// A diagnostic at a location of this mapping (for target-side checks).
    pub fn diagnostic(&self, loc: &Loc, message: String, hint: Option<String>) -> Diagnostic {
        Diagnostic {
            file: self.file.clone(),
            line: loc.line,
            column: loc.column,
            message,
            hint,
        }
    }
}

pub fn kind_name(k: SourceKind) -> &'static str {
    match k {
        SourceKind::Kv => "kv",
        SourceKind::Json => "json",
        SourceKind::Mssql => "mssql",
        SourceKind::Postgres => "postgres",
        SourceKind::Mysql => "mysql",
        SourceKind::Sqlite => "sqlite",
    }
}
