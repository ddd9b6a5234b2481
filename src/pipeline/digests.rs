//! The digests a pass skips records by (see `tracking::digests`).

use super::{RunError, RunOptions};
use crate::mapping::Mapping;
use crate::sink::Target;
use std::sync::Arc;
use tracing::{info, warn};

/// The digests of a pass: none for mappings with `lookup()` (a record's rows
/// also depend on the key map, not only on the record); the known ones are
/// loaded unless every record must be written again: `--full`, or a table of
/// the mapping is empty (cleared since: a skipped record would leave it so).
pub(super) async fn digests_for(
    target: &dyn Target,
    mapping: &Mapping,
    opts: &RunOptions,
    name: &str,
    pass_id: i64,
) -> Result<Option<Arc<crate::transform::Digests>>, RunError> {
    use crate::tracking::digests;
    let lookups = mapping.tables.iter().any(|t| {
        t.columns.iter().any(|c| !c.expr.lookups().is_empty())
            || t.filter.as_ref().is_some_and(|f| !f.lookups().is_empty())
    });
    if lookups {
        return Ok(None);
    }
    let mut known = digests::DigestSet::default();
    if !opts.full {
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
        seed: digests::seed(&mapping.checksum),
        known,
        processed: std::sync::Mutex::new(processed),
    })))
}
