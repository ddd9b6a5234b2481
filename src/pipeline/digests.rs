//! The digests a pass skips records by (see `tracking::digests`).

use super::{RunError, RunOptions};
use crate::mapping::Mapping;
use crate::sink::Target;
use std::sync::Arc;
use tracing::{info, warn};

/// The digests of a pass: none for mappings with `lookup()` (a record's rows
/// also depend on the key map, not only on the record) or `skip_unchanged =
/// false`. The known ones are loaded for a full pass, unless every record must
/// be written again: `--full`, or a table of the mapping is empty (cleared
/// since: a skipped record would leave it so).
pub(super) async fn digests_for(
    target: &dyn Target,
    mapping: &Mapping,
    opts: &RunOptions,
    name: &str,
    pass_id: i64,
    delta: bool,
) -> Result<Option<Arc<crate::transform::Digests>>, RunError> {
    use crate::tracking::digests;
    let lookups = mapping.tables.iter().any(|t| {
        t.columns.iter().any(|c| !c.expr.lookups().is_empty())
            || t.filter.as_ref().is_some_and(|f| !f.lookups().is_empty())
    });
    if lookups || !mapping.skip_unchanged {
        return Ok(None);
    }
    let mut known = digests::DigestSet::default();
    // A delta pass reads only rows that changed: nothing to skip there, and
    // the digests of the whole table are not worth loading.
    if !opts.full && !delta {
        let c = crate::db::ctx("reading the records' digests");
        let mut db = target.exec();
        known = digests::load(&mut *db, name).await.map_err(&c)?;
        if !known.is_empty() {
            for t in &mapping.tables {
                let sql = format!(
                    "SELECT 1 AS one FROM {} LIMIT 1",
                    crate::dialect::quote_table(target.dialect(), &t.table)
                );
                if db.fetch_one(&sql, &[]).await.map_err(&c)?.is_none() {
                    warn!(target: super::LOG_TARGET, mapping = %name, table = %t.table, "the table is empty although records were written to it before: every record is written again");
                    known = digests::DigestSet::default();
                    break;
                }
            }
        }
    }
    let mut processed = std::collections::HashSet::new();
    if !known.is_empty() {
        info!(target: super::LOG_TARGET, mapping = %name, records = known.len(), "records read exactly as before are skipped");
        // A resumed pass: the records its earlier runs processed.
        let mut db = target.exec();
        processed = digests::processed(&mut *db, name, pass_id)
            .await
            .map_err(crate::db::ctx("reading the records' digests"))?;
    }
    Ok(Some(Arc::new(crate::transform::Digests {
        seed: digests::seed(&transformation(mapping)),
        with_path: reads_file(mapping),
        known,
        processed: std::sync::Mutex::new(processed),
    })))
}

/// What a mapping makes of a record, as text: its tables (columns, filters,
/// `for_each`, keys, policies), redaction, key map and how its source decodes
/// records, but not where the source is. A mapping pointed at a newer dump, or
/// at a copy of the legacy database, keeps its digests; any other change to the
/// mapping (or a cutover build that compiles it differently) writes every
/// record again.
fn transformation(m: &Mapping) -> String {
    format!(
        "{:?}|{:?}|{:?}|{}|{:?}|{:?}|{:?}",
        m.tables, m.redact, m.keymap, m.secrets, m.source.kind, m.source.format, m.source.key
    )
}

/// Whether an expression of the mapping reads the record's file (`file.path`
/// or a capture of the path pattern): the path is then part of each record.
fn reads_file(m: &Mapping) -> bool {
    use crate::mapping::{Expr, Root};
    m.tables.iter().any(|t| {
        t.columns
            .iter()
            .map(|c| &c.expr)
            .chain(t.filter.iter())
            .chain(t.for_each.iter())
            .flat_map(|e| e.reads())
            .any(|e| {
                matches!(
                    e,
                    Expr::Capture(_)
                        | Expr::Path {
                            root: Root::FilePath,
                            ..
                        }
                )
            })
    })
}
