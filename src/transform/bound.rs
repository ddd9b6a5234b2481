//! A table of the mapping bound to the target: its column types resolved.

use crate::mapping::TableSpec;
use crate::value::ColumnType;

/// A table of the mapping with its target column types resolved.
#[derive(Debug, Clone)]
pub struct BoundTable {
    pub spec: TableSpec,
    pub types: Vec<ColumnType>,
    /// The target's declared type of each column (for casts in SQL).
    pub declared: Vec<String>,
    /// Whether each column accepts NULL.
    pub nullable: Vec<bool>,
    /// Indexes of the key columns in `spec.columns`.
    pub key_idx: Vec<usize>,
    /// The undo journal's shadow table, when the run keeps a journal.
    pub journal: Option<std::sync::Arc<crate::tracking::journal::Shadow>>,
}

impl BoundTable {
    pub fn name(&self) -> &str {
        &self.spec.table
    }

    pub fn column_names(&self) -> impl Iterator<Item = &str> {
        self.spec.columns.iter().map(|c| c.name.as_str())
    }

    /// The key of a row as text (all columns, in column order), in the normal
    /// form of [`crate::value::norm`]: a row written and the same row read back
    /// have the same key.
    pub fn row_key(&self, row: &[Option<String>]) -> String {
        self.key_idx
            .iter()
            .map(|&i| {
                crate::value::norm(&self.types[i], row.get(i).and_then(|c| c.as_deref()))
                    .unwrap_or_default()
            })
            .collect::<Vec<_>>()
            .join("\u{1f}")
    }
}
