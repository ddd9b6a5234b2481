//! MySQL tables into typed columns: `information_schema.columns` (with
//! unsigned and 24-bit integers, enums, JSON check constraints) and the keys.

use super::MySqlTarget;
use crate::db::{ctx, Arg, Connector};
use crate::dialect::{quote_ident, Dialect};
use crate::sink::{column_info, table_info, Introspect, TableInfo, TargetError};
use crate::value::ColumnType;
use async_trait::async_trait;

/// Map `information_schema.columns.column_type` to the loader's column type.
pub fn column_type(declared: &str) -> ColumnType {
    let d = declared.to_ascii_lowercase();
    let base = d.split(['(', ' ']).next().unwrap_or("");
    let args: Vec<u32> = d
        .find('(')
        .and_then(|i| d[i + 1..].split(')').next())
        .map(|a| a.split(',').filter_map(|x| x.trim().parse().ok()).collect())
        .unwrap_or_default();
    let unsigned = d.contains("unsigned");
    match base {
        "tinyint" if args.first() == Some(&1) => ColumnType::Bool,
        "bool" | "boolean" => ColumnType::Bool,
        "tinyint" | "smallint" | "mediumint" | "int" | "integer" | "bigint" => {
            let bits = match base {
                "tinyint" => 8,
                "smallint" => 16,
                "mediumint" => 24,
                "bigint" => 64,
                _ => 32,
            };
            if unsigned {
                ColumnType::Unsigned { bits }
            } else {
                ColumnType::Integer { bits }
            }
        }
        "decimal" | "numeric" => ColumnType::Decimal {
            precision: args.first().copied(),
            scale: args.get(1).copied(),
        },
        "float" | "double" | "real" => ColumnType::Float,
        "char" | "varchar" => ColumnType::Text {
            max_len: args.first().copied(),
        },
        "tinytext" => ColumnType::Text { max_len: Some(255) },
        "text" | "mediumtext" | "longtext" => ColumnType::Text { max_len: None },
        "date" => ColumnType::Date,
        "datetime" | "timestamp" => ColumnType::Timestamp { tz: false },
        "time" => ColumnType::Time,
        "json" => ColumnType::Json { binary: false },
        "binary" | "varbinary" | "blob" | "tinyblob" | "mediumblob" | "longblob" => {
            ColumnType::Bytes
        }
        "enum" => ColumnType::Enum(
            declared
                .find('(')
                .map(|i| enum_labels(&declared[i + 1..]))
                .unwrap_or_default(),
        ),
        _ => ColumnType::Any,
    }
}

/// The labels of `enum('a','b,c','It''s')` as `information_schema` writes them
/// (after the opening parenthesis): quoted, a quote doubled inside a label, and
/// commas only between labels.
fn enum_labels(list: &str) -> Vec<String> {
    let mut labels = Vec::new();
    let mut chars = list.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\'' {
            continue; // a comma, a blank or the closing parenthesis
        }
        let mut label = String::new();
        while let Some(c) = chars.next() {
            if c == '\'' {
                if chars.peek() == Some(&'\'') {
                    chars.next();
                    label.push('\'');
                    continue;
                }
                break;
            }
            label.push(c);
        }
        labels.push(label);
    }
    labels
}

#[async_trait]
impl Introspect for MySqlTarget {
    async fn describe_table(&self, table: &str) -> Result<Option<TableInfo>, TargetError> {
        let c = ctx("reading the table's columns");
        let (schema, name) = match table.split_once('.') {
            Some((s, t)) => (Some(s), t),
            None => (None, table),
        };
        let args = [Arg::OptText(schema), Arg::Text(name)];
        let mut db = self.pool.exec();
        let rows = db
            .fetch(
                "SELECT CAST(column_name AS CHAR) AS name, CAST(column_type AS CHAR) AS declared,
                        is_nullable = 'YES' AS nullable,
                        (column_default IS NOT NULL OR extra LIKE '%auto_increment%' OR extra LIKE '%GENERATED%') AS has_default
                 FROM information_schema.columns
                 WHERE table_schema = COALESCE(?, DATABASE()) AND table_name = ?
                 ORDER BY ordinal_position",
                &args,
            )
            .await
            .map_err(&c)?;
        if rows.is_empty() {
            return Ok(None);
        }
        let mut columns = rows
            .iter()
            .map(|r| column_info(r, column_type))
            .collect::<Result<Vec<_>, _>>()
            .map_err(&c)?;
        // MariaDB's JSON is LONGTEXT with a CHECK (json_valid(`col`)); MySQL
        // reports `json` itself (and has no TABLE_NAME here: the query fails).
        let checks: Vec<String> = db
            .fetch(
                "SELECT CAST(check_clause AS CHAR) AS c FROM information_schema.check_constraints
                 WHERE constraint_schema = COALESCE(?, DATABASE()) AND table_name = ?",
                &args,
            )
            .await
            .map(|rows| rows.iter().filter_map(|r| r.text("c").ok()).collect())
            .unwrap_or_default();
        for col in columns.iter_mut() {
            let valid = format!("json_valid({})", quote_ident(Dialect::Mysql, &col.name));
            if matches!(col.ty, ColumnType::Text { max_len: None })
                && checks
                    .iter()
                    .any(|k| k.to_ascii_lowercase().contains(&valid.to_ascii_lowercase()))
            {
                col.ty = ColumnType::Json { binary: false };
            }
        }
        let keys = db
            .fetch(
                "SELECT CAST(index_name AS CHAR) AS idx, CAST(column_name AS CHAR) AS col
                 FROM information_schema.statistics
                 WHERE table_schema = COALESCE(?, DATABASE()) AND table_name = ? AND non_unique = 0
                 ORDER BY index_name = 'PRIMARY' DESC, index_name, seq_in_index",
                &args,
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
        assert_eq!(column_type("int(11)"), ColumnType::Integer { bits: 32 });
        assert_eq!(
            column_type("int(10) unsigned"),
            ColumnType::Unsigned { bits: 32 }
        );
        assert_eq!(column_type("tinyint(4)"), ColumnType::Integer { bits: 8 });
        assert_eq!(
            column_type("mediumint(8) unsigned"),
            ColumnType::Unsigned { bits: 24 }
        );
        assert_eq!(
            column_type("bigint(20) unsigned"),
            ColumnType::Unsigned { bits: 64 }
        );
        assert_eq!(column_type("tinyint(1)"), ColumnType::Bool);
        assert_eq!(
            column_type("varchar(64)"),
            ColumnType::Text { max_len: Some(64) }
        );
        assert_eq!(
            column_type("decimal(12,2)"),
            ColumnType::Decimal {
                precision: Some(12),
                scale: Some(2)
            }
        );
        assert_eq!(
            column_type("enum('Draft','It''s')"),
            ColumnType::Enum(vec!["Draft".into(), "It's".into()])
        );
        // Regression: a label holding a comma (or a quote and a comma) is one label.
        assert_eq!(
            column_type("enum('a,b','c','It''s, ok','')"),
            ColumnType::Enum(vec![
                "a,b".into(),
                "c".into(),
                "It's, ok".into(),
                String::new()
            ])
        );
        assert_eq!(
            column_type("datetime(3)"),
            ColumnType::Timestamp { tz: false }
        );
    }
}
