//! The compiled mapping applied to a batch of records: rows per table, or one
//! error for the record. Runs on rayon; never panics on bad data.

use crate::mapping::eval::{follow, truthy, Scope};
use crate::mapping::functions::{secret_of, Lookup};
use crate::mapping::Mapping;
use crate::record::{FileInfo, Position, Record};
use crate::source::RawRecord;
use crate::value::{cast, SqlValue};
use rayon::prelude::*;
use serde_json::Value;
use std::fmt;
use std::sync::Arc;

pub use digested::Digests;

mod bound;
mod digested;
mod error;
mod redact;
pub use bound::BoundTable;
pub use error::{ErrorRow, Stage};
pub use redact::redact;

/// What became of a record.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// Rows to write: (table index, values in column order). May be empty.
    Rows {
        rows: Vec<(usize, Vec<SqlValue>)>,
        /// The clear text of each secret column value in `rows` (never written:
        /// the writer keeps a stored value that still opens to it).
        secrets: Vec<SecretCell>,
        /// The record as read (its bytes, not the parsed tree: memory stays small),
        /// decoded again only if the database rejects it.
        original: Option<Arc<RawRecord>>,
        /// (legacy key, new key) for the key map.
        keymap: Option<(String, String)>,
    },
    /// A declared `filter` excluded it from every table.
    Filtered,
    /// Boxed: rare, and an outcome travels with every record of a batch.
    Failed(Box<ErrorRow>),
    /// Read exactly as the pass that last wrote it read it (its digest is in
    /// the pass's [`Digests`], at `at`): not decoded, nothing to write.
    Unchanged { at: usize },
}

/// The clear text of a secret column (`encrypt`, `hash_password`) in a row.
#[derive(Clone)]
pub struct SecretCell {
    /// Index of the row in [`Outcome::Rows`]'s `rows`.
    pub row: usize,
    /// Index of the column in the table.
    pub col: usize,
    pub clear: String,
}

impl fmt::Debug for SecretCell {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretCell(row {}, col {}, ***)", self.row, self.col)
    }
}

#[derive(Debug, Clone)]
pub struct Transformed {
    pub key: String,
    pub position: Position,
    pub next: Position,
    pub outcome: Outcome,
    /// The record's digest, when the pass keeps digests.
    pub digest: Option<u64>,
}

impl Transformed {
    /// The record as read, when it is kept (records with rows to write).
    pub fn original(&self) -> Option<&RawRecord> {
        match &self.outcome {
            Outcome::Rows { original, .. } => original.as_deref(),
            _ => None,
        }
    }

    /// The name the record had before it decoded (`FILE:line N`), if kept.
    pub fn label(&self) -> Option<String> {
        self.original().map(RawRecord::label)
    }
}

/// The key map behind `lookup()` could not be read.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct LookupFailed(pub String);

/// The compiled, bound mapping.
pub struct Transformer {
    pub tables: Vec<BoundTable>,
    mapping: Arc<Mapping>,
    /// `table.column` of every secret column (their error messages are masked).
    secret_columns: Vec<String>,
    digests: Option<Arc<Digests>>,
}

impl Transformer {
    pub fn new(mapping: Arc<Mapping>, tables: Vec<BoundTable>) -> Self {
        let secret_columns = tables
            .iter()
            .flat_map(|t| {
                t.spec
                    .columns
                    .iter()
                    .filter(|c| secret_of(&c.expr).is_some())
                    .map(|c| format!("{}.{}", t.spec.table, c.name))
            })
            .collect();
        Transformer {
            tables,
            mapping,
            secret_columns,
            digests: None,
        }
    }

    /// Compute each record's digest, and skip the records whose digest is known.
    pub fn with_digests(mut self, digests: Arc<Digests>) -> Self {
        self.digests = Some(digests);
        self
    }

    pub fn digests(&self) -> Option<&Arc<Digests>> {
        self.digests.as_ref()
    }

    pub fn mapping(&self) -> &Mapping {
        &self.mapping
    }

    /// Decode and transform a batch in parallel, keeping the order. Legacy ids the
    /// batch looks up are fetched from the key map in one query first.
    ///
    /// `Err` when the key map could not be read: the batch's lookups have no
    /// answer, so none of it may be written.
    pub fn run_batch(
        &self,
        raw: Vec<RawRecord>,
        lookup: Option<&dyn Lookup>,
    ) -> Result<Vec<Transformed>, LookupFailed> {
        if let (Some(d), None) = (&self.digests, lookup) {
            return Ok(self.run_digested(raw, d));
        }
        let Some(l) = lookup else {
            // One pass: each parsed tree is dropped as soon as its record is done.
            return Ok(raw
                .into_par_iter()
                .map(|r| match r.decode() {
                    Ok(rec) => self.record(rec, None, Some(Arc::new(r))),
                    Err(e) => self.read_error(*e, r.next.clone()),
                })
                .collect());
        };
        let out = self.run_with_lookup(raw, l);
        match l.failure() {
            Some(f) => Err(LookupFailed(f)),
            None => Ok(out),
        }
    }

    fn run_with_lookup(&self, raw: Vec<RawRecord>, lookup: &dyn Lookup) -> Vec<Transformed> {
        let decoded: Vec<(RawRecord, Result<Record, Box<crate::source::DecodeError>>)> = raw
            .into_par_iter()
            .map(|r| {
                let d = r.decode();
                (r, d)
            })
            .collect();
        self.prefetch(&decoded, lookup);
        let lookup = Some(lookup);
        decoded
            .into_par_iter()
            .map(|(r, d)| match d {
                Ok(rec) => self.record(rec, lookup, Some(Arc::new(r))),
                Err(e) => self.read_error(*e, r.next.clone()),
            })
            .collect()
    }

    fn read_error(&self, e: crate::source::DecodeError, next: Position) -> Transformed {
        Transformed {
            key: e.key.clone(),
            position: e.position.clone(),
            next,
            outcome: Outcome::Failed(Box::new(ErrorRow {
                record_key: e.key,
                position: e.position,
                stage: Stage::Read,
                column: None,
                message: e.message,
                record: self.unreadable(e.record),
            })),
            digest: None,
        }
    }

    /// Every `lookup(...)` of the mapping: (mapping it reads, argument).
    pub fn lookups(&self) -> Vec<(&str, &crate::mapping::Expr)> {
        let mut out = Vec::new();
        for t in &self.tables {
            for c in &t.spec.columns {
                out.extend(c.expr.lookups());
            }
            if let Some(f) = &t.spec.filter {
                out.extend(f.lookups());
            }
        }
        out
    }

    fn prefetch(
        &self,
        decoded: &[(RawRecord, Result<Record, Box<crate::source::DecodeError>>)],
        l: &dyn Lookup,
    ) {
        let mut wanted: std::collections::BTreeMap<&str, Vec<String>> = Default::default();
        for (mapping, arg) in self.lookups() {
            for (_, d) in decoded {
                let Ok(rec) = d else { continue };
                let scope = Scope {
                    key: &rec.key_value,
                    value: &rec.value,
                    item: None,
                    index: None,
                    file: &rec.file,
                    lookup: None,
                };
                if let Ok(v) = arg.eval(&scope) {
                    if !v.is_null() {
                        wanted
                            .entry(mapping)
                            .or_default()
                            .push(crate::mapping::functions::as_text(&v));
                    }
                }
            }
        }
        for (mapping, keys) in wanted {
            l.prefetch(mapping, &keys);
        }
    }

    /// Transform one record.
    pub fn record(
        &self,
        rec: Record,
        lookup: Option<&dyn Lookup>,
        original: Option<Arc<RawRecord>>,
    ) -> Transformed {
        let outcome = match self.rows_of(&rec, lookup) {
            Ok(o) => o,
            Err((column, message)) => {
                let (message, record) = self.redacted(&rec.value, &message, column.as_deref());
                Outcome::Failed(Box::new(ErrorRow {
                    record_key: rec.key.clone(),
                    position: rec.position.clone(),
                    stage: Stage::Transform,
                    column,
                    message,
                    record,
                }))
            }
        };
        let outcome = match outcome {
            Outcome::Rows {
                rows,
                secrets,
                keymap,
                ..
            } => Outcome::Rows {
                rows,
                secrets,
                keymap,
                original,
            },
            other => other,
        };
        Transformed {
            key: rec.key,
            position: rec.position,
            next: rec.next,
            outcome,
            digest: None,
        }
    }

    fn rows_of(
        &self,
        rec: &Record,
        lookup: Option<&dyn Lookup>,
    ) -> Result<Outcome, (Option<String>, String)> {
        let file: &FileInfo = &rec.file;
        let base = Scope {
            key: &rec.key_value,
            value: &rec.value,
            item: None,
            index: None,
            file,
            lookup,
        };
        let mut made = Made::default();
        let mut filtered_any = false;
        for (ti, t) in self.tables.iter().enumerate() {
            let spec = &t.spec;
            let elements: Vec<Option<(&Value, usize)>> = match &spec.for_each {
                None => vec![None],
                Some(fe) => {
                    let v = fe
                        .eval(&base)
                        .map_err(|m| (Some(format!("{}.for_each", spec.table)), m))?;
                    match &*v {
                        Value::Null => Vec::new(),
                        Value::Array(_) => {
                            // Re-borrow from the record so elements live long enough.
                            let arr = match fe_path_value(fe, &base) {
                                Some(Value::Array(a)) => a,
                                _ => {
                                    // A computed array (e.g. split()) is evaluated per element below.
                                    return self.rows_computed(
                                        ti,
                                        t,
                                        rec,
                                        &v,
                                        &base,
                                        lookup,
                                        made,
                                        filtered_any,
                                    );
                                }
                            };
                            arr.iter().enumerate().map(|(i, e)| Some((e, i))).collect()
                        }
                        other => {
                            return Err((
                                Some(format!("{}.for_each", spec.table)),
                                format!(
                                    "for_each expects an array, found {}",
                                    crate::mapping::functions::show(other)
                                ),
                            ))
                        }
                    }
                }
            };
            for el in elements {
                let scope = Scope {
                    item: el.map(|(e, _)| e),
                    index: el.map(|(_, i)| i),
                    ..base_clone(&base)
                };
                match self.row(t, &scope)? {
                    Some(r) => made.push(ti, r),
                    None => filtered_any = true,
                }
            }
        }
        self.finish(rec, &base, made, filtered_any)
    }

    #[allow(clippy::too_many_arguments)]
    fn rows_computed(
        &self,
        from: usize,
        _t: &BoundTable,
        rec: &Record,
        arr: &Value,
        base: &Scope<'_>,
        lookup: Option<&dyn Lookup>,
        mut made: Made,
        mut filtered_any: bool,
    ) -> Result<Outcome, (Option<String>, String)> {
        // Slow path for computed arrays: own the array, then continue with the
        // remaining tables as rows_of does.
        let owned = arr.clone();
        for (ti, t) in self.tables.iter().enumerate().skip(from) {
            let elements: Vec<(Value, usize)> = if ti == from {
                owned
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
                    .into_iter()
                    .enumerate()
                    .map(|(i, e)| (e, i))
                    .collect()
            } else if let Some(fe) = &t.spec.for_each {
                match fe
                    .eval(base)
                    .map_err(|m| (Some(format!("{}.for_each", t.spec.table)), m))?
                    .into_owned()
                {
                    Value::Null => Vec::new(),
                    Value::Array(a) => a.into_iter().enumerate().map(|(i, e)| (e, i)).collect(),
                    other => {
                        return Err((
                            Some(format!("{}.for_each", t.spec.table)),
                            format!(
                                "for_each expects an array, found {}",
                                crate::mapping::functions::show(&other)
                            ),
                        ))
                    }
                }
            } else {
                match self.row(t, &base_clone(base))? {
                    Some(r) => made.push(ti, r),
                    None => filtered_any = true,
                }
                continue;
            };
            for (e, i) in &elements {
                let scope = Scope {
                    item: Some(e),
                    index: Some(*i),
                    ..base_clone(base)
                };
                match self.row(t, &scope)? {
                    Some(r) => made.push(ti, r),
                    None => filtered_any = true,
                }
            }
        }
        let _ = lookup;
        self.finish(rec, base, made, filtered_any)
    }

    fn finish(
        &self,
        rec: &Record,
        base: &Scope<'_>,
        made: Made,
        filtered_any: bool,
    ) -> Result<Outcome, (Option<String>, String)> {
        if made.rows.is_empty() && filtered_any {
            return Ok(Outcome::Filtered);
        }
        let keymap = match &self.mapping.keymap {
            None => None,
            Some(k) => {
                let legacy = k
                    .legacy
                    .eval(base)
                    .map_err(|m| (Some("keymap.legacy".into()), m))?;
                let new = k
                    .new
                    .eval(base)
                    .map_err(|m| (Some("keymap.new".into()), m))?;
                if legacy.is_null() || new.is_null() {
                    return Err((
                        Some("keymap".into()),
                        format!(
                            "the key map needs a legacy and a new key (record {})",
                            rec.key
                        ),
                    ));
                }
                Some((
                    crate::source::key_text(&legacy),
                    crate::source::key_text(&new),
                ))
            }
        };
        Ok(Outcome::Rows {
            rows: made.rows,
            secrets: made.secrets,
            original: None,
            keymap,
        })
    }

    /// One row of a table in a scope; `None` when the filter excludes it.
    fn row(
        &self,
        t: &BoundTable,
        scope: &Scope<'_>,
    ) -> Result<Option<Row>, (Option<String>, String)> {
        let spec = &t.spec;
        if let Some(f) = &spec.filter {
            let v = f
                .eval(scope)
                .map_err(|m| (Some(format!("{}.filter", spec.table)), m))?;
            if !truthy(&v) {
                return Ok(None);
            }
        }
        let mut out = Vec::with_capacity(spec.columns.len());
        let mut clear = Vec::new();
        for (c, ty) in spec.columns.iter().zip(&t.types) {
            let col = || Some(format!("{}.{}", spec.table, c.name));
            let v = match secret_of(&c.expr) {
                // A secret column: its clear text is kept beside the row.
                Some((arg, secret)) => {
                    let v = arg.eval(scope).map_err(|m| (col(), m))?;
                    if v.is_null() {
                        v
                    } else {
                        let text = crate::value::as_text(&v);
                        let stored = secret.protect(&text).map_err(|m| (col(), m))?;
                        clear.push((out.len(), text));
                        std::borrow::Cow::Owned(Value::String(stored))
                    }
                }
                None => c.expr.eval(scope).map_err(|m| (col(), m))?,
            };
            let sv = cast(&v, ty).map_err(|m| (col(), m))?;
            if sv.is_null() && t.key_idx.iter().any(|&k| spec.columns[k].name == c.name) {
                return Err((col(), format!("key column {} is null", c.name)));
            }
            if sv.is_null() && t.nullable.get(out.len()) == Some(&false) {
                return Err((
                    col(),
                    format!("the column is NOT NULL but `{}` gave null", c.text),
                ));
            }
            out.push(sv);
        }
        Ok(Some((out, clear)))
    }
}

/// A row and the clear text of its secret columns (column index, text).
type Row = (Vec<SqlValue>, Vec<(usize, String)>);

/// The rows a record makes so far, with the clear text of their secret columns.
#[derive(Default)]
struct Made {
    rows: Vec<(usize, Vec<SqlValue>)>,
    secrets: Vec<SecretCell>,
}

impl Made {
    fn push(&mut self, table: usize, (values, clear): Row) {
        let row = self.rows.len();
        self.secrets.extend(
            clear
                .into_iter()
                .map(|(col, clear)| SecretCell { row, col, clear }),
        );
        self.rows.push((table, values));
    }
}

fn base_clone<'a>(s: &Scope<'a>) -> Scope<'a> {
    Scope {
        key: s.key,
        value: s.value,
        item: s.item,
        index: s.index,
        file: s.file,
        lookup: s.lookup,
    }
}

/// When `for_each` is a plain path, the array borrowed from the record.
fn fe_path_value<'a>(fe: &crate::mapping::Expr, s: &Scope<'a>) -> Option<&'a Value> {
    use crate::mapping::compile::{Expr, Root};
    match fe {
        Expr::Path {
            root: Root::Value,
            segs,
        } => Some(follow(s.value, segs)),
        Expr::Path {
            root: Root::Key,
            segs,
        } => Some(follow(s.key, segs)),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
