//! SQLite writes: multi-row `INSERT ... ON CONFLICT DO UPDATE ... WHERE` changed,
//! prepared and cached, sized under the bind limit; several batches share a
//! transaction and their tracking rows are written once when it commits.

use super::error::{classify, db};
use super::SqliteTarget;
use crate::db::{DbFailure, Exec};
use crate::dialect::{quote_ident, quote_table, Dialect};
use crate::sink::{BatchTx, TargetError, UpsertCount, Write};
use crate::tracking::{batch, Progress};
use crate::transform::BoundTable;
use crate::value::SqlValue;
use async_trait::async_trait;
use sqlx::{Sqlite, Transaction};

/// SQLite's bind limit (SQLITE_MAX_VARIABLE_NUMBER) since 3.32.
pub(super) const MAX_BINDS: usize = 32_766;
/// Rows per statement: large enough to amortise the call, small enough to keep
/// the prepared statement cache effective.
const ROWS_PER_STATEMENT: usize = 1000;

pub struct SqliteTx {
    tx: Transaction<'static, Sqlite>,
    /// Progress of the batches written since the transaction began, saved once
    /// when it commits: several batches share a transaction on SQLite, and each
    /// tracking write would otherwise touch (and journal) the same pages again.
    pending: Option<Progress>,
}

/// Add a batch's progress to what the open transaction already holds.
fn merge_progress(acc: &mut Progress, p: &Progress) {
    acc.read += p.read;
    acc.written += p.written;
    acc.filtered += p.filtered;
    acc.failed += p.failed;
    for (t, w, u, i) in &p.tables {
        match acc.tables.iter_mut().find(|a| &a.0 == t) {
            Some(a) => {
                a.1 += w;
                a.2 += u;
                a.3 = match (a.3, i) {
                    (Some(x), Some(y)) => Some(x + y),
                    (x, None) => x,
                    (None, y) => *y,
                };
            }
            None => acc.tables.push((t.clone(), *w, *u, *i)),
        }
    }
    if p.position.is_some() {
        acc.position = p.position.clone();
        acc.records_committed = p.records_committed;
    }
    acc.samples.extend(p.samples.iter().cloned());
}

/// Records per savepoint on SQLite: its sub-journal holds a copy of every page
/// a savepoint touches, in memory (about 4 KiB per record with random keys).
const SAVEPOINT_RECORDS: usize = 1000;

#[async_trait]
impl BatchTx for SqliteTx {
    fn exec(&mut self) -> &mut dyn Exec {
        &mut self.tx
    }

    fn savepoint_records(&self) -> usize {
        SAVEPOINT_RECORDS
    }

    async fn upsert(
        &mut self,
        table: &BoundTable,
        rows: &[&[SqlValue]],
    ) -> Result<UpsertCount, DbFailure> {
        let ncols = table.spec.columns.len().max(1);
        let per = ROWS_PER_STATEMENT.min(MAX_BINDS / ncols).max(1);
        let mut changed = 0;
        let mut full_sql: Option<String> = None;
        for chunk in rows.chunks(per) {
            let sql = if chunk.len() == per {
                full_sql
                    .get_or_insert_with(|| upsert_sql(table, per))
                    .clone()
            } else {
                upsert_sql(table, chunk.len())
            };
            let mut q = sqlx::query(&sql);
            for row in chunk {
                for v in row.iter() {
                    q = crate::db::bind_sqlite(q, v);
                }
            }
            let r = q.execute(&mut *self.tx).await.map_err(|e| classify(&e))?;
            changed += r.rows_affected();
        }
        Ok(UpsertCount {
            changed,
            inserted: None,
        })
    }

    async fn save_progress(&mut self, p: &Progress) -> Result<(), DbFailure> {
        match &mut self.pending {
            Some(acc) => merge_progress(acc, p),
            None => self.pending = Some(p.clone()),
        }
        Ok(())
    }

    async fn commit(mut self: Box<Self>) -> Result<(), DbFailure> {
        if let Some(p) = self.pending.take() {
            batch::save_progress(&mut self.tx, &p).await?;
        }
        self.tx.commit().await.map_err(|e| classify(&e))
    }
}

/// The upsert statement of a table for `n` rows.
pub fn upsert_sql(table: &BoundTable, n: usize) -> String {
    let d = Dialect::Sqlite;
    let t = quote_table(d, &table.spec.table);
    let cols: Vec<String> = table.column_names().map(|c| quote_ident(d, c)).collect();
    let one = format!("({})", vec!["?"; cols.len()].join(","));
    let mut sql = format!(
        "INSERT INTO {t} ({}) VALUES {}",
        cols.join(", "),
        vec![one.as_str(); n].join(",")
    );
    sql.push_str(&crate::sink::on_conflict(d, table, &cols, |nk| {
        nk.iter()
            .map(|(_, c)| format!("{t}.{c} IS NOT excluded.{c}"))
            .collect::<Vec<_>>()
            .join(" OR ")
    }));
    sql
}

#[async_trait]
impl Write for SqliteTarget {
    fn upsert_sql(&self, table: &BoundTable, rows: usize) -> String {
        upsert_sql(table, rows)
    }

    async fn begin(&self) -> Result<Box<dyn BatchTx>, TargetError> {
        let tx = self
            .pool
            .begin()
            .await
            .map_err(db("starting a batch transaction"))?;
        Ok(Box::new(SqliteTx { tx, pending: None }))
    }
}
