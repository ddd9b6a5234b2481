//! Which pass a run makes. A mapping with a `watermark` reads everything on its
//! first pass (and with `--full`) and records the high-water mark taken at the
//! pass's start; after a succeeded pass, the next run is a delta pass over the
//! window `[previous mark - lookback, new mark]`. A resumed run keeps the kind
//! and window of the pass it resumes. A changed mapping file makes a full pass
//! (rows must be rewritten with the new expressions).

use super::resume::Resume;
use super::{RunError, RunOptions};
use crate::mapping::{Diagnostic, Mapping, MappingError, SourceSpec, Watermark};
use crate::sink::Target;
use crate::source::window::{self, Probe, Window};
use crate::tracking::passes::{PassKind, PassRow};
use tracing::info;

/// The pass a run makes, and the source spec that reads it.
#[derive(Debug, Clone)]
pub(super) struct Plan {
    /// `run_id` is filled in once the run row exists.
    pub row: PassRow,
    /// Set for a delta pass: the spec reading only its window.
    pub spec: Option<SourceSpec>,
}

fn at(mapping: &Mapping, w: &Watermark, message: String, hint: Option<&str>) -> RunError {
    RunError::Mapping(MappingError::Invalid(vec![Diagnostic {
        file: mapping.file.clone(),
        line: w.loc.line,
        column: w.loc.column,
        message,
        hint: hint.map(str::to_string),
    }]))
}

async fn probe(
    mapping: &Mapping,
    w: &Watermark,
    prev: Option<&serde_json::Value>,
) -> Result<Probe, RunError> {
    let spec = mapping.source.clone();
    let prev = prev.cloned();
    let res = tokio::task::spawn_blocking(move || window::probe(&spec, prev.as_ref()))
        .await
        .map_err(|e| RunError::PassRefused {
            mapping: mapping.name.clone(),
            reason: format!("reading the watermark stopped: {e}"),
        })?;
    let p = res.map_err(|e| {
        at(
            mapping,
            w,
            format!(
                "watermark '{}': the source cannot give its high-water mark: {e}",
                w.column
            ),
            Some("the watermark must be a column of the source that can be ordered: an integer, a time or a rowversion"),
        )
    })?;
    if p.nulls > 0 && w.nulls.is_none() {
        return Err(at(
            mapping,
            w,
            format!(
                "watermark '{}' is NULL in {} rows of the source: say whether a delta pass reads them",
                w.column, p.nulls
            ),
            Some("add watermark_nulls = \"include\" (read them on every pass) or \"exclude\" (never)"),
        ));
    }
    Ok(p)
}

/// Decide the pass. Reads the source's high-water mark where there is a watermark.
pub(super) async fn decide(
    target: &dyn Target,
    mapping: &Mapping,
    opts: &RunOptions,
    resume: Option<&Resume>,
) -> Result<Plan, RunError> {
    let full = |w: Option<&Watermark>, p: Option<Probe>| PassRow {
        run_id: 0,
        pass_id: 0,
        kind: PassKind::Full,
        watermark: w.map(|w| w.column.clone()),
        low: None,
        high_key: p.as_ref().and_then(|p| p.high_key.clone()),
        high: p.and_then(|p| p.high),
        mapping_checksum: mapping.checksum.clone(),
    };
    let Some(w) = &mapping.source.watermark else {
        // A resumed pass goes on under the id of the run that started it.
        if let Some((run, _)) = resume {
            if let Some(p) = target.store().pass_of(run.id).await? {
                return Ok(Plan {
                    row: PassRow { run_id: 0, ..p },
                    spec: None,
                });
            }
        }
        return Ok(Plan {
            row: full(None, None),
            spec: None,
        });
    };
    let windowed = |row: PassRow| -> Result<Plan, RunError> {
        let spec = match row.kind {
            PassKind::Full => None,
            PassKind::Delta => Some(
                window::windowed(
                    &mapping.source,
                    &Window {
                        low: row.low.clone(),
                        high: row.high.clone(),
                        nulls: w.nulls,
                    },
                )
                .map_err(|e| RunError::Source {
                    mapping: mapping.name.clone(),
                    source: e,
                })?,
            ),
        };
        Ok(Plan { row, spec })
    };
    if let Some((run, _)) = resume {
        if let Some(p) = target.store().pass_of(run.id).await? {
            return windowed(PassRow { run_id: 0, ..p });
        }
    }
    let last = if opts.full || opts.restart {
        None
    } else {
        target
            .store()
            .last_succeeded_pass(&mapping.name)
            .await?
            .filter(|p| p.watermark.as_deref() == Some(w.column.as_str()) && p.high.is_some())
    };
    let Some(last) = last else {
        let p = probe(mapping, w, None).await?;
        return windowed(full(Some(w), Some(p)));
    };
    if last.mapping_checksum != mapping.checksum {
        info!(target: super::LOG_TARGET, mapping = %mapping.name, "the mapping file changed since the last succeeded pass: a full pass");
        let p = probe(mapping, w, None).await?;
        return windowed(full(Some(w), Some(p)));
    }
    let prev = last.high.clone().unwrap_or_default();
    let mut p = probe(mapping, w, Some(&prev)).await?;
    if p.backwards {
        // The row that held the mark is gone: the newest rows were deleted, and
        // nothing newer than the mark exists. Still there: the column was reset.
        let deleted = match &last.high_key {
            Some(k) => {
                let spec = mapping.source.clone();
                let k = k.clone();
                tokio::task::spawn_blocking(move || window::row_exists(&spec, &k))
                    .await
                    .ok()
                    .and_then(Result::ok)
                    .map(|exists| !exists)
                    .unwrap_or(false)
            }
            None => false,
        };
        if deleted {
            info!(target: super::LOG_TARGET, mapping = %mapping.name, "the rows at the high-water mark were deleted; the mark stays where it was");
            p.high = Some(prev.clone());
            p.high_key = last.high_key.clone();
            p.backwards = false;
        }
    }
    if p.backwards {
        return Err(RunError::PassRefused {
            mapping: mapping.name.clone(),
            reason: format!(
                "the high-water mark of watermark '{}' went backwards: run {} read up to {prev}, the source's highest value is now {} (was the column reset, or a backup restored?). A delta pass would miss rows; run with --full to read everything again",
                w.column,
                last.run_id,
                p.high.as_ref().map_or("NULL".to_string(), |v| v.to_string())
            ),
        });
    }
    let low = window::minus(&prev, w.lookback).map_err(|m| at(mapping, w, m, None))?;
    windowed(PassRow {
        run_id: 0,
        pass_id: 0,
        kind: PassKind::Delta,
        watermark: Some(w.column.clone()),
        low: Some(low),
        high_key: p.high_key.clone().or(last.high_key.clone()),
        high: p.high.or(Some(prev)),
        mapping_checksum: mapping.checksum.clone(),
    })
}
