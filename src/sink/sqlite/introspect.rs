//! SQLite tables into typed columns: `pragma_table_info` and the unique indexes.

use super::error::db;
use super::SqliteTarget;
use crate::sink::{ColumnInfo, Introspect, TableInfo, TargetError};
use crate::value::ColumnType;
use async_trait::async_trait;
use sqlx::Row;

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
        let ctx = "reading the table's columns";
        let rows =
            sqlx::query("SELECT name, type, \"notnull\", dflt_value, pk FROM pragma_table_info(?)")
                .bind(table)
                .fetch_all(&self.pool)
                .await
                .map_err(db(ctx))?;
        if rows.is_empty() {
            return Ok(None);
        }
        let mut columns = Vec::new();
        let mut pk: Vec<(i64, String)> = Vec::new();
        for r in &rows {
            let name: String = r.try_get("name").map_err(db(ctx))?;
            let declared: String = r.try_get("type").map_err(db(ctx))?;
            let notnull: i64 = r.try_get("notnull").map_err(db(ctx))?;
            let dflt: Option<String> = r.try_get("dflt_value").map_err(db(ctx))?;
            let pkn: i64 = r.try_get("pk").map_err(db(ctx))?;
            if pkn > 0 {
                pk.push((pkn, name.clone()));
            }
            columns.push(ColumnInfo {
                ty: column_type(&declared),
                name,
                declared,
                nullable: notnull == 0,
                has_default: dflt.is_some(),
            });
        }
        pk.sort();
        let mut unique_keys = Vec::new();
        if !pk.is_empty() {
            unique_keys.push(pk.into_iter().map(|(_, n)| n).collect());
        }
        let idx = sqlx::query("SELECT name, \"unique\" FROM pragma_index_list(?)")
            .bind(table)
            .fetch_all(&self.pool)
            .await
            .map_err(db(ctx))?;
        for r in idx {
            let unique: i64 = r.try_get("unique").map_err(db(ctx))?;
            if unique == 0 {
                continue;
            }
            let name: String = r.try_get("name").map_err(db(ctx))?;
            let cols = sqlx::query("SELECT name FROM pragma_index_info(?) ORDER BY seqno")
                .bind(&name)
                .fetch_all(&self.pool)
                .await
                .map_err(db(ctx))?;
            let cols: Vec<String> = cols
                .iter()
                .filter_map(|c| c.try_get::<Option<String>, _>("name").ok().flatten())
                .collect();
            unique_keys.push(cols);
        }
        Ok(Some(TableInfo {
            name: table.to_string(),
            columns,
            unique_keys,
        }))
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
