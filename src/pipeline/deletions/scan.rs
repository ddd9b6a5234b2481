//! The key scans of a pass that carries deletions: the record keys the source
//! holds now, read apart from the pass itself.

use super::key_hash;
use crate::dialect::{quote_ident, quote_table, Dialect};
use crate::mapping::{Mapping, SourceKind, SourceSpec};
use crate::pipeline::{summary::RunSummary, RunError};
use crate::source::{self, Payload, RawRecord};
use std::collections::HashSet;

/// The record keys of a source read in full, for a resumed pass that skipped
/// unchanged records: SQL sources by their key columns, files by reading every
/// record again (a record known by its digest is not decoded).
pub(super) async fn all_keys(
    mapping: &Mapping,
    summary: &RunSummary,
) -> Result<HashSet<u64>, RunError> {
    if matches!(
        mapping.source.kind,
        SourceKind::Mssql | SourceKind::Mysql | SourceKind::Postgres | SourceKind::Sqlite
    ) {
        return source_keys(mapping).await;
    }
    let Some(seen) = summary.seen.clone() else {
        return Ok(HashSet::new());
    };
    scan(mapping.source.clone(), &mapping.name, move |r, keys| {
        let d = &seen.digests;
        match d.known.find(r.digest(d.seed, d.with_path)) {
            Some(at) => keys.insert(d.known.key_at(at)),
            None => match r.decode() {
                Ok(rec) => keys.insert(key_hash(&rec.key)),
                Err(e) => keys.insert(key_hash(&e.key)),
            },
        };
    })
    .await
}

/// The record keys the source holds now: its key columns only.
pub(super) async fn source_keys(mapping: &Mapping) -> Result<HashSet<u64>, RunError> {
    let mut spec = mapping.source.clone();
    let relation = match (&spec.table, &spec.query) {
        (Some(t), _) => match spec.kind {
            SourceKind::Mssql => source::mssql::quote(t),
            SourceKind::Mysql => quote_table(Dialect::Mysql, t),
            SourceKind::Postgres => quote_table(Dialect::Postgres, t),
            _ => quote_table(Dialect::Sqlite, t),
        },
        (None, Some(q)) => format!("({}) AS k", q.trim().trim_end_matches(';')),
        (None, None) => String::new(),
    };
    let cols: Vec<String> = spec
        .key
        .iter()
        .map(|k| match spec.kind {
            SourceKind::Mssql => source::mssql::quote(k),
            SourceKind::Mysql => quote_ident(Dialect::Mysql, k),
            SourceKind::Postgres => quote_ident(Dialect::Postgres, k),
            _ => quote_ident(Dialect::Sqlite, k),
        })
        .collect();
    spec.query = Some(format!("SELECT {} FROM {relation}", cols.join(", ")));
    spec.table = None;
    spec.watermark = None;
    spec.filter = None;
    spec.paging_prefix = 0;
    scan(spec, &mapping.name, |r, keys| {
        if let Payload::Decoded(d) = &r.payload {
            keys.insert(key_hash(&d.key));
        }
    })
    .await
}

/// Every record of `spec`, read on a blocking thread; `add` puts its key in.
async fn scan(
    spec: SourceSpec,
    mapping: &str,
    add: impl Fn(&RawRecord, &mut HashSet<u64>) + Send + 'static,
) -> Result<HashSet<u64>, RunError> {
    let res = tokio::task::spawn_blocking(move || -> Result<HashSet<u64>, source::SourceError> {
        let mut src = source::open_spec(&spec)?;
        let mut keys = HashSet::new();
        loop {
            let batch = src.next_batch(10_000)?;
            if batch.is_empty() {
                break;
            }
            for r in &batch {
                add(r, &mut keys);
            }
        }
        Ok(keys)
    })
    .await
    .map_err(|e| RunError::PassRefused {
        mapping: mapping.to_string(),
        reason: format!("the key scan of the source stopped: {e}"),
    })?;
    res.map_err(|e| RunError::Source {
        mapping: mapping.to_string(),
        source: e,
    })
}
