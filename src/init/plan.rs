//! What `init` writes, before it is spelled as files: the target [`Schema`]
//! (tables in load order, with their converted columns, keys, foreign keys and
//! indexes) and one [`Job`] per mapping file. Built from a SQL catalog
//! ([`super::relational`]) or from sampled documents ([`super::infer`]), written
//! by [`super::ddl`] and [`super::mappings`].

use super::catalog::Default;
use super::types::TargetType;
use crate::dialect::Dialect;

#[derive(Debug, Clone)]
pub struct TargetColumn {
    pub name: String,
    pub ty: TargetType,
    pub nullable: bool,
    pub default: Option<Default>,
    /// The comment after the column: the source type and what changed.
    pub comment: Option<String>,
}

/// A primary key, unique constraint or index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetKey {
    pub name: String,
    pub columns: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetFk {
    pub name: String,
    pub columns: Vec<String>,
    pub ref_table: String,
    pub ref_columns: Vec<String>,
    pub on_delete: String,
    pub on_update: String,
}

#[derive(Debug, Clone)]
pub struct TargetTable {
    pub name: String,
    /// Comment lines above the CREATE TABLE (without `-- `).
    pub comments: Vec<String>,
    pub columns: Vec<TargetColumn>,
    pub primary_key: Option<TargetKey>,
    pub uniques: Vec<TargetKey>,
    pub foreign_keys: Vec<TargetFk>,
    pub indexes: Vec<TargetKey>,
}

/// The target schema, tables in load order (parents first).
#[derive(Debug, Clone)]
pub struct Schema {
    pub dialect: Dialect,
    pub tables: Vec<TargetTable>,
}

/// One `columns.NAME = "expression"` line.
#[derive(Debug, Clone)]
pub struct JobColumn {
    pub name: String,
    pub expr: String,
    pub comment: Option<String>,
}

#[derive(Debug, Clone)]
pub struct JobTable {
    /// Comment lines above `[[tables]]`.
    pub comments: Vec<String>,
    pub table: String,
    /// The conflict key; empty when the user has to choose it (the comments say why).
    pub key: Vec<String>,
    pub for_each: Option<String>,
    pub columns: Vec<JobColumn>,
}

/// A `[[checks]]` entry.
#[derive(Debug, Clone)]
pub struct Check {
    pub name: String,
    pub sql: String,
    pub expect: u64,
}

/// A value of `[source]`.
#[derive(Debug, Clone)]
pub enum SourceValue {
    Text(String),
    List(Vec<String>),
}

/// One mapping file.
#[derive(Debug, Clone)]
pub struct Job {
    /// The file name without `.toml`, numbered in load order (`03_media_type`).
    pub file_stem: String,
    pub name: String,
    pub description: String,
    /// Comment lines at the top of the file.
    pub comments: Vec<String>,
    /// `[source]` fields in order, each with comment lines above it.
    pub source: Vec<(String, SourceValue, Vec<String>)>,
    pub tables: Vec<JobTable>,
    pub checks: Vec<Check>,
    /// Comment lines above the checks.
    pub check_comments: Vec<String>,
}

/// Everything `init` writes, and what it tells the user at the end.
#[derive(Debug, Clone)]
pub struct Plan {
    pub schema: Schema,
    pub jobs: Vec<Job>,
    /// Columns written as text for want of a conversion, and other things to
    /// fix by hand (`table.column: why`).
    pub todos: Vec<String>,
    /// Things worth knowing that need no edit (self-references, dropped FKs).
    pub notes: Vec<String>,
    /// The environment variable the mappings read the source password from.
    pub password_env: Option<String>,
    /// What was read, for the first line of every generated file.
    pub origin: String,
}

/// A job name from any text: letters, digits, `_`, `-`, `.`; the rest `_`.
pub fn job_name(text: &str) -> String {
    let s: String = text
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.is_empty() {
        "init".into()
    } else {
        s
    }
}

/// A file-name part from a table name: snake case, ASCII letters, digits and `_`.
pub fn file_part(text: &str) -> String {
    let s: String = heck::ToSnakeCase::to_snake_case(text)
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    if s.is_empty() {
        "table".into()
    } else {
        s
    }
}

/// `NN_` prefixes wide enough for `n` files: `01`..`11`, `001`..`120`.
pub fn numbered(i: usize, n: usize, stem: &str) -> String {
    let width = n.to_string().len().max(2);
    format!("{:0width$}_{stem}", i + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_of_jobs_and_files() {
        assert_eq!(job_name("chinook sqlite/artist"), "chinook_sqlite_artist");
        assert_eq!(file_part("InvoiceLine"), "invoice_line");
        assert_eq!(file_part("Order Détails"), "order_d_tails");
        assert_eq!(numbered(0, 11, "artist"), "01_artist");
        assert_eq!(numbered(9, 120, "x"), "010_x");
    }
}
