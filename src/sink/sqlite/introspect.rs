//! SQLite tables into typed columns: `pragma_table_info` and the unique indexes.

use super::SqliteTarget;
use crate::db::{ctx, Arg, Connector};
use crate::sink::{column_info, table_info, Introspect, TableInfo, TargetError};
use crate::value::ColumnType;
use async_trait::async_trait;

/// Map a declared SQLite type to the loader's column type.
pub fn column_type(declared: &str) -> ColumnType {
    let d = declared.to_ascii_uppercase();
    let args: Vec<u32> = d
        .find('(')
        .and_then(|i| d[i + 1..].split(')').next())
        .map(|a| a.split(',').filter_map(|x| x.trim().parse().ok()).collect())
        .unwrap_or_default();
    if d.contains("BOOL") {
        ColumnType::Bool
    } else if d.contains("DATETIME") || d.contains("TIMESTAMP") {
        ColumnType::Timestamp {
            tz: d.contains("TZ") || d.contains("WITH TIME ZONE"),
        }
    } else if d.starts_with("DATE") {
        ColumnType::Date
    } else if d.starts_with("TIME") {
        ColumnType::Time
    } else if d.contains("UUID") {
        ColumnType::Uuid
    } else if d.contains("JSON") {
        ColumnType::Json { binary: false }
    } else if d.contains("INT") {
        ColumnType::Integer {
            bits: if d.contains("SMALLINT") || d.contains("TINYINT") {
                16
            } else {
                64
            },
        }
    } else if d.contains("CHAR") || d.contains("CLOB") || d.contains("TEXT") {
        ColumnType::Text {
            max_len: args.first().copied(),
        }
    } else if d.contains("BLOB") {
        ColumnType::Bytes
    } else if d.contains("REAL") || d.contains("FLOA") || d.contains("DOUB") {
        ColumnType::Float
    } else if d.contains("DEC") || d.contains("NUMERIC") || d.contains("MONEY") {
        ColumnType::Decimal {
            precision: args.first().copied(),
            scale: args.get(1).copied(),
        }
    } else {
        ColumnType::Any
    }
}

#[async_trait]
impl Introspect for SqliteTarget {
    async fn describe_table(&self, table: &str) -> Result<Option<TableInfo>, TargetError> {
        let c = ctx("reading the table's columns");
        let mut db = self.pool.exec();
        let rows = db
            .fetch(
                "SELECT name, type AS declared, \"notnull\" = 0 AS nullable,
                        dflt_value IS NOT NULL AS has_default, pk
                 FROM pragma_table_info(?)",
                &[Arg::Text(table)],
            )
            .await
            .map_err(&c)?;
        if rows.is_empty() {
            return Ok(None);
        }
        let columns = rows
            .iter()
            .map(|r| column_info(r, column_type))
            .collect::<Result<Vec<_>, _>>()
            .map_err(&c)?;
        // The primary key first, then the unique indexes, each in column order.
        let keys = db
            .fetch(
                "SELECT '' AS idx, name AS col, 0 AS o, pk AS seq FROM pragma_table_info(?1) WHERE pk > 0
                 UNION ALL
                 SELECT l.name AS idx, i.name AS col, 1 AS o, i.seqno AS seq
                 FROM pragma_index_list(?1) l, pragma_index_info(l.name) i
                 WHERE l.\"unique\" = 1 AND i.name IS NOT NULL
                 ORDER BY o, idx, seq",
                &[Arg::Text(table)],
            )
            .await
            .map_err(&c)?;
        table_info(table, columns, &keys).map_err(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declared_types() {
        assert_eq!(column_type("INTEGER"), ColumnType::Integer { bits: 64 });
        assert_eq!(
            column_type("varchar(64)"),
            ColumnType::Text { max_len: Some(64) }
        );
        assert_eq!(
            column_type("NUMERIC(10,2)"),
            ColumnType::Decimal {
                precision: Some(10),
                scale: Some(2)
            }
        );
        assert_eq!(
            column_type("TIMESTAMP"),
            ColumnType::Timestamp { tz: false }
        );
        assert_eq!(column_type("DATE"), ColumnType::Date);
        assert_eq!(column_type("BOOLEAN"), ColumnType::Bool);
        assert_eq!(column_type(""), ColumnType::Any);
        assert_eq!(column_type("DOUBLE PRECISION"), ColumnType::Float);
    }
}
