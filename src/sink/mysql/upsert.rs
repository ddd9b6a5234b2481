//! MySQL writes: multi-row `INSERT ... ON DUPLICATE KEY UPDATE c = VALUES(c)`
//! sized under the 65,535-placeholder limit; a count of the keys that exist
//! beforehand tells inserted rows from updated and unchanged ones.

use super::error::{classify, db};
use super::MySqlTarget;
use crate::db::{DbFailure, Exec};
use crate::dialect::{quote_ident, quote_table, Dialect};
use crate::mapping::OnConflict;
use crate::sink::{BatchTx, TargetError, UpsertCount, Write};
use crate::transform::BoundTable;
use crate::value::SqlValue;
use async_trait::async_trait;
use sqlx::mysql::MySql;
use sqlx::Transaction;

/// The protocol's placeholder limit per statement.
pub(super) const MAX_BINDS: usize = 65_535;
const ROWS_PER_STATEMENT: usize = 1000;

/// The upsert statement of a table for `n` rows.
pub fn upsert_sql(table: &BoundTable, n: usize) -> String {
    let d = Dialect::Mysql;
    let t = quote_table(d, &table.spec.table);
    let cols: Vec<String> = table.column_names().map(|c| quote_ident(d, c)).collect();
    let one = format!("({})", vec!["?"; cols.len()].join(","));
    let mut sql = format!(
        "INSERT INTO {t} ({}) VALUES {}",
        cols.join(", "),
        vec![one.as_str(); n].join(",")
    );
    let non_key: Vec<&String> = cols
        .iter()
        .enumerate()
        .filter(|(i, _)| !table.key_idx.contains(i))
        .map(|(_, c)| c)
        .collect();
    match table.spec.on_conflict {
        OnConflict::Fail => {}
        OnConflict::Update if !non_key.is_empty() => {
            let set: Vec<String> = non_key
                .iter()
                .map(|c| format!("{c} = VALUES({c})"))
                .collect();
            sql.push_str(&format!(" ON DUPLICATE KEY UPDATE {}", set.join(", ")));
        }
        // A no-op update keeps the existing row (INSERT IGNORE would also hide
        // truncation and other data errors).
        _ => {
            let k = quote_ident(d, &table.spec.key[0]);
            sql.push_str(&format!(" ON DUPLICATE KEY UPDATE {k} = {k}"));
        }
    }
    sql
}

/// `SELECT COUNT(*)` of the rows whose keys already exist (to tell inserts from
/// updates and unchanged rows: the affected-rows count alone cannot).
fn existing_sql(table: &BoundTable, n: usize) -> String {
    let d = Dialect::Mysql;
    let t = quote_table(d, &table.spec.table);
    let key: Vec<String> = table.spec.key.iter().map(|k| quote_ident(d, k)).collect();
    let one = if key.len() == 1 {
        "?".to_string()
    } else {
        format!("({})", vec!["?"; key.len()].join(","))
    };
    let lhs = if key.len() == 1 {
        key[0].clone()
    } else {
        format!("({})", key.join(", "))
    };
    format!(
        "SELECT COUNT(*) FROM {t} WHERE {lhs} IN ({})",
        vec![one.as_str(); n].join(",")
    )
}

pub struct MySqlTx {
    tx: Transaction<'static, MySql>,
}

#[async_trait]
impl BatchTx for MySqlTx {
    fn exec(&mut self) -> &mut dyn Exec {
        &mut self.tx
    }

    async fn upsert(
        &mut self,
        table: &BoundTable,
        rows: &[&[SqlValue]],
    ) -> Result<UpsertCount, DbFailure> {
        let ncols = table.spec.columns.len().max(1);
        let per = ROWS_PER_STATEMENT.min(MAX_BINDS / ncols).max(1);
        let (mut inserted, mut updated) = (0u64, 0u64);
        for chunk in rows.chunks(per) {
            let n = chunk.len() as u64;
            let existing = if table.spec.on_conflict == OnConflict::Fail {
                0
            } else {
                let sql = existing_sql(table, chunk.len());
                let mut q = sqlx::query_scalar::<_, i64>(&sql);
                for row in chunk {
                    for &k in &table.key_idx {
                        q = match &row[k] {
                            SqlValue::Int(i) => q.bind(*i),
                            other => q.bind(other.to_text()),
                        };
                    }
                }
                q.fetch_one(&mut *self.tx).await.map_err(|e| classify(&e))? as u64
            };
            let sql = upsert_sql(table, chunk.len());
            let mut q = sqlx::query(&sql);
            for row in chunk {
                for v in row.iter() {
                    q = crate::db::bind_mysql(q, v);
                }
            }
            let affected = q
                .execute(&mut *self.tx)
                .await
                .map_err(|e| classify(&e))?
                .rows_affected();
            // With CLIENT_FOUND_ROWS: 1 per insert, 2 per update, 1 per unchanged row.
            let ins = n.saturating_sub(existing);
            inserted += ins;
            updated += affected.saturating_sub(n).min(existing);
        }
        Ok(UpsertCount {
            changed: inserted + updated,
            inserted: Some(inserted),
        })
    }

    async fn commit(self: Box<Self>) -> Result<(), DbFailure> {
        self.tx.commit().await.map_err(|e| classify(&e))
    }
}

#[async_trait]
impl Write for MySqlTarget {
    fn upsert_sql(&self, table: &BoundTable, rows: usize) -> String {
        upsert_sql(table, rows)
    }

    async fn begin(&self) -> Result<Box<dyn BatchTx>, TargetError> {
        let tx = self
            .pool
            .begin()
            .await
            .map_err(db("starting a batch transaction"))?;
        Ok(Box::new(MySqlTx { tx }))
    }
}
