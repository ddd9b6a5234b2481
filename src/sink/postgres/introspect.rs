//! PostgreSQL tables into typed columns: `pg_attribute` with `format_type()`,
//! enum labels, keys, and whether a table may take COPY (empty, no rules, no
//! GENERATED ALWAYS identity).

use super::PgTarget;
use crate::db::{ctx, Arg, Connector};
use crate::dialect::{quote_table, Dialect};
use crate::sink::{column_info, table_info, Introspect, TableInfo, TargetError};
use crate::value::ColumnType;
use async_trait::async_trait;

/// Map `format_type()` output to the loader's column type.
pub fn column_type(declared: &str, typtype: &str, enum_values: Option<Vec<String>>) -> ColumnType {
    if typtype == "e" {
        return ColumnType::Enum(enum_values.unwrap_or_default());
    }
    let d = declared.to_ascii_lowercase();
    let args: Vec<u32> = d
        .find('(')
        .and_then(|i| d[i + 1..].split(')').next())
        .map(|a| a.split(',').filter_map(|x| x.trim().parse().ok()).collect())
        .unwrap_or_default();
    let base = d.split('(').next().unwrap_or("").trim();
    match base {
        "smallint" => ColumnType::Integer { bits: 16 },
        "integer" => ColumnType::Integer { bits: 32 },
        "bigint" => ColumnType::Integer { bits: 64 },
        "numeric" => ColumnType::Decimal {
            precision: args.first().copied(),
            scale: args.get(1).copied(),
        },
        "real" | "double precision" => ColumnType::Float,
        "boolean" => ColumnType::Bool,
        "character varying" | "character" => ColumnType::Text {
            max_len: args.first().copied(),
        },
        "text" | "citext" | "name" => ColumnType::Text { max_len: None },
        "date" => ColumnType::Date,
        _ if d.starts_with("timestamp") => ColumnType::Timestamp {
            tz: d.contains("with time zone"),
        },
        _ if d.starts_with("time") => ColumnType::Time,
        "uuid" => ColumnType::Uuid,
        "json" => ColumnType::Json { binary: false },
        "jsonb" => ColumnType::Json { binary: true },
        "bytea" => ColumnType::Bytes,
        _ => ColumnType::Any,
    }
}

#[async_trait]
impl Introspect for PgTarget {
    async fn describe_table(&self, table: &str) -> Result<Option<TableInfo>, TargetError> {
        let c = ctx("reading the table's columns");
        let qualified = quote_table(Dialect::Postgres, table);
        let mut db = self.pool.exec();
        let rows = db
            .fetch(
                "SELECT a.attname::text AS name, format_type(a.atttypid, a.atttypmod) AS declared,
                        NOT a.attnotnull AS nullable,
                        (a.atthasdef OR a.attidentity <> '' OR a.attgenerated <> '') AS has_default,
                        t.typtype::text AS typtype,
                        CASE WHEN t.typtype = 'e' THEN
                          (SELECT array_to_json(array_agg(e.enumlabel::text ORDER BY e.enumsortorder))::text
                           FROM pg_enum e WHERE e.enumtypid = t.oid)
                        END AS enum_values
                 FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
                 WHERE a.attrelid = to_regclass(?) AND a.attnum > 0 AND NOT a.attisdropped
                 ORDER BY a.attnum",
                &[Arg::Text(&qualified)],
            )
            .await
            .map_err(&c)?;
        if rows.is_empty() {
            return Ok(None);
        }
        let mut columns = Vec::with_capacity(rows.len());
        for r in &rows {
            let typtype = r.text("typtype").map_err(&c)?;
            let labels: Option<Vec<String>> = r
                .opt_text("enum_values")
                .map_err(&c)?
                .map(|j| serde_json::from_str(&j).unwrap_or_default());
            columns.push(
                column_info(r, |declared| {
                    column_type(declared, &typtype, labels.clone())
                })
                .map_err(&c)?,
            );
        }
        let keys = db
            .fetch(
                "SELECT i.indexrelid::text AS idx, a.attname::text AS col
                 FROM pg_index i
                 CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
                 JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
                 WHERE i.indrelid = to_regclass(?) AND i.indisunique AND i.indpred IS NULL
                 ORDER BY i.indisprimary DESC, i.indexrelid, k.ord",
                &[Arg::Text(&qualified)],
            )
            .await
            .map_err(&c)?;
        // An empty table takes its first batches by COPY (see the module docs),
        // unless it has rewrite rules, which COPY does not apply, or GENERATED
        // ALWAYS identity columns, which COPY writes where an INSERT refuses to.
        let empty = db
            .fetch_one(
                &format!(
                    "SELECT NOT EXISTS (SELECT 1 FROM {qualified})
                       AND NOT EXISTS (SELECT 1 FROM pg_rewrite WHERE ev_class = to_regclass(?))
                       AND NOT EXISTS (SELECT 1 FROM pg_attribute
                                       WHERE attrelid = to_regclass(?) AND attidentity = 'a') AS empty"
                ),
                &[Arg::Text(&qualified), Arg::Text(&qualified)],
            )
            .await
            .ok()
            .flatten()
            .and_then(|r| r.bool("empty").ok())
            .unwrap_or(false);
        if let Ok(mut t) = self.copy_tables.lock() {
            if empty {
                t.insert(table.to_string());
            } else {
                t.remove(table);
            }
        }
        table_info(table, columns, &keys).map_err(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declared_types() {
        assert_eq!(
            column_type("integer", "b", None),
            ColumnType::Integer { bits: 32 }
        );
        assert_eq!(
            column_type("numeric(10,2)", "b", None),
            ColumnType::Decimal {
                precision: Some(10),
                scale: Some(2)
            }
        );
        assert_eq!(
            column_type("character varying(64)", "b", None),
            ColumnType::Text { max_len: Some(64) }
        );
        assert_eq!(
            column_type("timestamp with time zone", "b", None),
            ColumnType::Timestamp { tz: true }
        );
        assert_eq!(
            column_type("time without time zone", "b", None),
            ColumnType::Time
        );
        assert_eq!(
            column_type("jsonb", "b", None),
            ColumnType::Json { binary: true }
        );
        assert_eq!(
            column_type("mood", "e", Some(vec!["sad".into()])),
            ColumnType::Enum(vec!["sad".into()])
        );
    }
}
