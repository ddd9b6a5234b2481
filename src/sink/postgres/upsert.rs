//! PostgreSQL writes: one `INSERT ... SELECT FROM UNNEST($1::int8[], ...) ON
//! CONFLICT ... DO UPDATE ... WHERE (...) IS DISTINCT FROM (...)` per table per
//! batch, binding one array per column (no placeholder limit, one round trip);
//! `RETURNING (xmax = 0)` tells inserted rows from updated ones.

use super::error::{classify, db};
use super::{CopyTables, PgTarget};
use crate::db::{pg_text, DbFailure, Exec};
use crate::dialect::{quote_ident, quote_table, Dialect};
use crate::sink::{BatchTx, TargetError, UpsertCount, Write};
use crate::transform::BoundTable;
use crate::value::{ColumnType, SqlValue};
use async_trait::async_trait;
use sqlx::{Postgres, Row, Transaction};

/// How a column's values travel: a typed array, or text cast on the server.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Wire {
    Int,
    Float,
    Bool,
    Bytes,
    Uuid,
    Text,
}

pub(super) fn wire(ty: &ColumnType) -> Wire {
    match ty {
        ColumnType::Integer { .. } | ColumnType::Unsigned { .. } => Wire::Int,
        ColumnType::Float => Wire::Float,
        ColumnType::Bool => Wire::Bool,
        ColumnType::Bytes => Wire::Bytes,
        ColumnType::Uuid => Wire::Uuid,
        _ => Wire::Text,
    }
}

pub struct PgTx {
    pub(super) tx: Transaction<'static, Postgres>,
    pub(super) copy_tables: CopyTables,
}

/// The upsert statement of a table (arrays of any length).
pub fn upsert_sql(table: &BoundTable) -> String {
    let d = Dialect::Postgres;
    let t = quote_table(d, &table.spec.table);
    let cols: Vec<String> = table.column_names().map(|c| quote_ident(d, c)).collect();
    let mut arrays = Vec::new();
    let mut select = Vec::new();
    for (i, ty) in table.types.iter().enumerate() {
        let n = i + 1;
        let (arr, cast) = match wire(ty) {
            Wire::Int => ("int8[]", None),
            Wire::Float => ("float8[]", None),
            Wire::Bool => ("bool[]", None),
            Wire::Bytes => ("bytea[]", None),
            Wire::Uuid => ("uuid[]", None),
            Wire::Text => ("text[]", table.declared.get(i).cloned()),
        };
        arrays.push(format!("${n}::{arr}"));
        select.push(match cast {
            Some(c) if !c.is_empty() && c != "text" => format!("u._{n}::{c}"),
            _ => format!("u._{n}"),
        });
    }
    let aliases: Vec<String> = (1..=cols.len()).map(|n| format!("_{n}")).collect();
    let mut sql = format!(
        "INSERT INTO {t} AS t ({}) SELECT {} FROM UNNEST({}) AS u({})",
        cols.join(", "),
        select.join(", "),
        arrays.join(", "),
        aliases.join(", ")
    );
    // json has no equality operator: compare its text.
    let side = |prefix: &str, non_key: &[(usize, &String)]| -> String {
        non_key
            .iter()
            .map(|(i, c)| match table.types[*i] {
                ColumnType::Json { binary: false } => format!("{prefix}.{c}::text"),
                _ => format!("{prefix}.{c}"),
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    sql.push_str(&crate::sink::on_conflict(d, table, &cols, |nk| {
        format!(
            "({}) IS DISTINCT FROM ({})",
            side("t", nk),
            side("excluded", nk)
        )
    }));
    sql.push_str(" RETURNING (xmax = 0) AS inserted");
    sql
}

#[async_trait]
impl BatchTx for PgTx {
    fn exec(&mut self) -> &mut dyn Exec {
        &mut self.tx
    }

    async fn upsert(
        &mut self,
        table: &BoundTable,
        rows: &[&[SqlValue]],
    ) -> Result<UpsertCount, DbFailure> {
        let copy = self
            .copy_tables
            .lock()
            .is_ok_and(|t| t.contains(&table.spec.table));
        if copy && !rows.is_empty() && self.try_copy(table, rows).await? {
            let n = rows.len() as u64;
            return Ok(UpsertCount {
                changed: n,
                inserted: Some(n),
            });
        }
        let sql = upsert_sql(table);
        let mut q = sqlx::query(&sql);
        for (i, ty) in table.types.iter().enumerate() {
            q = match wire(ty) {
                Wire::Int => q.bind(
                    rows.iter()
                        .map(|r| match &r[i] {
                            SqlValue::Int(v) => Some(*v),
                            _ => None,
                        })
                        .collect::<Vec<Option<i64>>>(),
                ),
                Wire::Float => q.bind(
                    rows.iter()
                        .map(|r| match &r[i] {
                            SqlValue::Float(v) => Some(*v),
                            SqlValue::Int(v) => Some(*v as f64),
                            _ => None,
                        })
                        .collect::<Vec<Option<f64>>>(),
                ),
                Wire::Bool => q.bind(
                    rows.iter()
                        .map(|r| match &r[i] {
                            SqlValue::Bool(v) => Some(*v),
                            _ => None,
                        })
                        .collect::<Vec<Option<bool>>>(),
                ),
                Wire::Bytes => q.bind(
                    rows.iter()
                        .map(|r| match &r[i] {
                            SqlValue::Bytes(v) => Some(v.clone()),
                            SqlValue::Null => None,
                            other => other.to_text().map(String::into_bytes),
                        })
                        .collect::<Vec<Option<Vec<u8>>>>(),
                ),
                Wire::Uuid => q.bind(
                    rows.iter()
                        .map(|r| match &r[i] {
                            SqlValue::Uuid(v) => Some(*v),
                            _ => None,
                        })
                        .collect::<Vec<Option<uuid::Uuid>>>(),
                ),
                Wire::Text => q.bind(
                    rows.iter()
                        .map(|r| pg_text(&r[i]))
                        .collect::<Vec<Option<String>>>(),
                ),
            };
        }
        let out = q.fetch_all(&mut *self.tx).await.map_err(|e| classify(&e))?;
        let inserted = out
            .iter()
            .filter(|r| r.try_get::<bool, _>(0).unwrap_or(false))
            .count() as u64;
        Ok(UpsertCount {
            changed: out.len() as u64,
            inserted: Some(inserted),
        })
    }

    async fn commit(self: Box<Self>) -> Result<(), DbFailure> {
        self.tx.commit().await.map_err(|e| classify(&e))
    }
}

#[async_trait]
impl Write for PgTarget {
    fn upsert_sql(&self, table: &BoundTable, _rows: usize) -> String {
        upsert_sql(table)
    }

    async fn begin(&self) -> Result<Box<dyn BatchTx>, TargetError> {
        let tx = self
            .pool
            .begin()
            .await
            .map_err(db("starting a batch transaction"))?;
        Ok(Box::new(PgTx {
            tx,
            copy_tables: self.copy_tables.clone(),
        }))
    }
}
