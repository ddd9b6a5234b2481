//! The mapping file as written (TOML), before validation. Parsing never touches
//! the network or the file system beyond reading the mapping itself.

use indexmap::IndexMap;
use serde::Deserialize;
use toml::Spanned;

/// One mapping file = one job: one source, one or more target tables.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MappingConfig {
    /// Unique job name: keys the checkpoint, the run lock and the error rows.
    pub name: Spanned<String>,
    /// Free text shown by `plan`.
    #[serde(default)]
    pub description: Option<String>,
    /// Folder of sqlx migrations applied to the target before loading.
    #[serde(default)]
    pub schema: Option<Spanned<String>>,
    pub source: SourceConfig,
    #[serde(default)]
    pub tables: Vec<TableConfig>,
    /// Post-load checks run by `verify`.
    #[serde(default)]
    pub checks: Vec<CheckConfig>,
    /// Record fields (dotted paths under `value`) replaced by "***" in error rows.
    #[serde(default)]
    pub redact: Vec<String>,
    /// Record the legacy id → new id of each record for later `lookup()`s.
    #[serde(default)]
    pub keymap: Option<KeymapConfig>,
    /// Keep the undo journal (before-images of the rows each run changes), so
    /// that `cutover undo` can take a run back. `false` for huge one-way loads.
    #[serde(default = "yes")]
    pub undo: bool,
    /// Keep each record's digest, so that a later pass skips the records read
    /// exactly as before. `false`: every pass transforms and sends every record.
    #[serde(default = "yes")]
    pub skip_unchanged: bool,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    Kv,
    Json,
    Mssql,
    Postgres,
    Mysql,
    Sqlite,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum KvFormat {
    /// `{"key": ..., "value": ...}` per line.
    #[default]
    Jsonl,
    /// One JSON object of key → value, streamed member by member.
    Object,
    /// A DynamoDB S3 export folder (manifest-files.json + gzipped DynamoDB JSON).
    Dynamodb,
}

/// `[source]`: flat on purpose so every field keeps its file:line.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    pub kind: Spanned<SourceKind>,
    /// kv / json: a file, a folder (dynamodb) or a path pattern with `{name}` and `*`.
    #[serde(default)]
    pub path: Option<Spanned<String>>,
    /// kv: jsonl | object | dynamodb.
    #[serde(default)]
    pub format: Option<Spanned<KvFormat>>,
    /// dynamodb: the key attributes; SQL: the ordered unique key for keyset paging.
    #[serde(default)]
    pub key: Option<Vec<String>>,
    /// SQL sources: connection URL (or ADO.NET string for mssql).
    #[serde(default)]
    pub url: Option<String>,
    /// SQL sources: environment variable holding the password.
    #[serde(default)]
    pub password_env: Option<String>,
    /// SQL sources: a table to read.
    #[serde(default)]
    pub table: Option<String>,
    /// SQL sources: a query to read (wrapped as a subquery).
    #[serde(default)]
    pub query: Option<String>,
    /// mssql: trust the server certificate without validation.
    #[serde(default)]
    pub trust_server_certificate: Option<bool>,
    /// SQL sources: a column that grows on every insert and update; after a
    /// succeeded pass, the next pass reads only rows at or above its high-water mark.
    #[serde(default)]
    pub watermark: Option<Spanned<String>>,
    /// How far behind the previous high-water mark a delta pass starts reading:
    /// a duration (`"10m"`) for time columns, an integer for integer columns.
    #[serde(default)]
    pub lookback: Option<Spanned<toml::Value>>,
    /// Rows whose watermark is NULL: read on every pass (`include`) or never (`exclude`).
    #[serde(default)]
    pub watermark_nulls: Option<Spanned<WatermarkNulls>>,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum WatermarkNulls {
    Include,
    Exclude,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum OnConflict {
    /// Update the row's other columns (only when something differs).
    #[default]
    Update,
    /// Keep the existing row.
    Ignore,
    /// A conflicting key is a load error for the record.
    Fail,
}

/// `[[tables]]`: one target table fed by the source.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableConfig {
    pub table: Spanned<String>,
    /// Conflict key of the upsert: a PRIMARY KEY or UNIQUE constraint of the table.
    pub key: Spanned<Vec<String>>,
    #[serde(default)]
    pub on_conflict: OnConflict,
    /// One row per element of this array (bound as `item`, position as `index`).
    #[serde(default)]
    pub for_each: Option<Spanned<String>>,
    /// Rows only for records (or elements) where this is true.
    #[serde(default)]
    pub filter: Option<Spanned<String>>,
    pub columns: IndexMap<String, Spanned<String>>,
    /// Rows this mapping wrote whose record a later complete pass no longer
    /// produces: `keep` (the default), `delete`, or `soft` (set `soft_delete`).
    #[serde(default)]
    pub deletes: Option<Spanned<Deletes>>,
    /// With `deletes = "soft"`: the column set on such rows and its value
    /// (`"now()"`, a string, a number or a boolean).
    #[serde(default)]
    pub soft_delete: Option<Spanned<SoftDeleteConfig>>,
    /// The most rows one pass may delete from this table: `"1%"` of its rows or
    /// a count (default `"10%"`); `run --allow-deletes N` lets a pass delete up to N.
    #[serde(default)]
    pub max_deletes: Option<Spanned<toml::Value>>,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum Deletes {
    #[default]
    Keep,
    Delete,
    Soft,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SoftDeleteConfig {
    pub column: String,
    pub value: toml::Value,
}

/// `[[checks]]`: a SQL query on the target whose single value must equal `expect`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckConfig {
    pub name: String,
    pub sql: String,
    #[serde(default)]
    pub expect: Option<toml::Value>,
}

/// `[keymap]`: the legacy id and the new id of each record, for `lookup()`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeymapConfig {
    pub legacy: Spanned<String>,
    pub new: Spanned<String>,
}
