//! `cutover retry`: reload only the records that have unresolved error rows,
//! reading each again from the source at its stored position.

use super::{bind, RunError, RunOptions};
use crate::mapping::functions::Lookup;
use crate::mapping::Mapping;
use crate::record::Position;
use crate::sink::{write_batch, LockOutcome, Target};
use crate::source::{self, RawRecord, Source, SourceError};
use crate::tracking::{ErrorFilter, Holder, NewRun, Progress, RunStatus};
use crate::transform::{BoundTable, Transformer};
use std::collections::BTreeMap;
use std::sync::Arc;
use tracing::warn;

/// What `cutover retry` did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RetrySummary {
    pub mapping: String,
    pub run_id: i64,
    /// Distinct records with unresolved errors.
    pub records: i64,
    /// Now loaded (their errors resolved).
    pub loaded: i64,
    pub filtered: i64,
    /// Failed again (a new error row each).
    pub failed: i64,
    /// Their stored position no longer points at a record of the source.
    pub not_found: Vec<String>,
    pub first_errors: Vec<String>,
}

/// Reload only the records that have unresolved error rows, reading each again
/// from the source at its stored position. Works after the mapping changed (that
/// is the point); the checkpoint does not move.
pub async fn retry_mapping(
    target: &dyn Target,
    mapping: Arc<Mapping>,
    opts: &RunOptions,
) -> Result<RetrySummary, RunError> {
    if let Some(dir) = &mapping.schema {
        target.migrate(dir).await?;
    }
    let tables = bind(target, &mapping).await?;
    target.ensure_tracking().await?;
    let name = mapping.name.clone();
    let mut source = source::open(&mapping).map_err(|source| RunError::Source {
        mapping: name.clone(),
        source,
    })?;
    let me = Holder::me(None);
    if let LockOutcome::Held(holder) = target.try_lock(&name, &me).await? {
        return Err(RunError::Locked {
            mapping: name,
            holder,
        });
    }
    let result = retry_locked(target, &mapping, tables, source.as_mut(), opts).await;
    if let Err(e) = target.unlock(&name).await {
        warn!(target: super::LOG_TARGET, mapping = %name, "could not release the run lock: {e}");
    }
    result
}

/// The records to retry: the latest stored position of each record key with
/// unresolved errors, in source order, and the keys stored without one.
async fn failed_records(
    target: &dyn Target,
    name: &str,
) -> Result<(Vec<(String, Position)>, Vec<String>), RunError> {
    let errors = target
        .store()
        .errors(&ErrorFilter {
            mapping: Some(name.to_string()),
            unresolved_only: true,
            ..Default::default()
        })
        .await?;
    let mut latest: BTreeMap<String, (i64, Option<Position>)> = BTreeMap::new();
    for e in &errors {
        let pos = e.position.as_deref().and_then(Position::from_json);
        let entry = latest
            .entry(e.record_key.clone())
            .or_insert((e.id, pos.clone()));
        if e.id >= entry.0 {
            *entry = (e.id, pos);
        }
    }
    let mut not_found = Vec::new();
    let mut todo: Vec<(String, Position)> = Vec::new();
    for (k, (_, p)) in latest {
        match p {
            Some(p) => todo.push((k, p)),
            None => not_found.push(k),
        }
    }
    todo.sort_by_key(|a| (a.1.file, a.1.offset));
    Ok((todo, not_found))
}

async fn retry_locked(
    target: &dyn Target,
    mapping: &Arc<Mapping>,
    tables: Vec<BoundTable>,
    source: &mut dyn Source,
    opts: &RunOptions,
) -> Result<RetrySummary, RunError> {
    let name = mapping.name.clone();
    let (todo, not_found) = failed_records(target, &name).await?;
    let options =
        serde_json::json!({"retry": true, "records": todo.len(), "target": target.display_url()});
    let run_id = target
        .store()
        .start_run(&NewRun::here(mapping, &options))
        .await?;
    let mut summary = RetrySummary {
        mapping: name.clone(),
        run_id,
        records: (todo.len() + not_found.len()) as i64,
        loaded: 0,
        filtered: 0,
        failed: 0,
        not_found,
        first_errors: Vec::new(),
    };
    // From here on the run row exists: however the retry ends, it says so.
    match reload(target, mapping, tables, source, opts, &todo, &mut summary).await {
        Ok(()) => {
            let message = format!(
                "retry of {} records: {} loaded, {} failed again",
                summary.records, summary.loaded, summary.failed
            );
            target
                .store()
                .finish_run(run_id, RunStatus::Succeeded, Some(&message))
                .await?;
            Ok(summary)
        }
        Err(e) => {
            if let Err(f) = target
                .store()
                .finish_run(run_id, RunStatus::Failed, Some(&e.to_string()))
                .await
            {
                warn!(target: super::LOG_TARGET, mapping = %name, run_id, "could not record that the retry failed: {f}");
            }
            Err(e)
        }
    }
}

/// Read the records at their positions and write them again, batch by batch.
async fn reload(
    target: &dyn Target,
    mapping: &Arc<Mapping>,
    tables: Vec<BoundTable>,
    source: &mut dyn Source,
    opts: &RunOptions,
    todo: &[(String, Position)],
    summary: &mut RetrySummary,
) -> Result<(), RunError> {
    let name = mapping.name.clone();
    let src_err = |source| RunError::Source {
        mapping: name.clone(),
        source,
    };
    let mut raw: Vec<RawRecord> = Vec::new();
    for (key, pos) in todo {
        match source.read_at(pos).map_err(src_err)? {
            // The record there must be the one that failed: by its key, or by
            // its label when it could not be decoded then (or now). After an
            // edit that moved records, the position points elsewhere.
            Some(r) if r.label() == *key || matches!(r.decode(), Ok(rec) if rec.key == *key) => {
                raw.push(r)
            }
            _ => summary.not_found.push(key.clone()),
        }
    }
    let transformer = Transformer::new(mapping.clone(), tables);
    let lookup = match transformer.lookups().is_empty() {
        true => None,
        false => Some(crate::keymap::KeymapLookup::connect(target.url())?),
    };
    let mut chunks = Vec::new();
    while !raw.is_empty() {
        let rest = raw.split_off(raw.len().min(opts.batch_size.max(1)));
        chunks.push(std::mem::replace(&mut raw, rest));
    }
    for chunk in chunks {
        let batch = transformer
            .run_batch(chunk, lookup.as_ref().map(|l| l as &dyn Lookup))
            .map_err(|e| src_err(SourceError::Other(format!("lookup(): {e}"))))?;
        let mut progress = Progress {
            run_id: summary.run_id,
            pass_id: summary.run_id,
            mapping: name.clone(),
            position: None,
            mapping_checksum: mapping.checksum.clone(),
            ..Default::default()
        };
        let mut tx = target.begin().await?;
        let res = write_batch(
            tx.as_mut(),
            &transformer.tables,
            &|t, m| transformer.load_error(t, m),
            &batch,
            &mut progress,
            true,
        )
        .await?;
        tx.commit()
            .await
            .map_err(|f| f.into_target("committing the retry"))?;
        summary.loaded += res.written;
        summary.filtered += res.filtered;
        summary.failed += res.failed;
        for e in res
            .errors
            .iter()
            .take(10usize.saturating_sub(summary.first_errors.len()))
        {
            summary.first_errors.push(format!(
                "{}: {}{}",
                e.record_key,
                e.column
                    .as_deref()
                    .map(|c| format!("{c}: "))
                    .unwrap_or_default(),
                e.message
            ));
        }
    }
    Ok(())
}
