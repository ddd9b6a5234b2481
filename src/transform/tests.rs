//! Unit tests of the transform: rows per table, errors per record.

use super::*;
use crate::mapping::Mapping;
use serde_json::json;
use std::path::Path;

fn transformer(text: &str, types: Vec<Vec<ColumnType>>) -> Transformer {
    let m = Arc::new(Mapping::from_str(Path::new("t.toml"), text).unwrap());
    let tables = m
        .tables
        .iter()
        .zip(types)
        .map(|(t, ty)| BoundTable {
            key_idx: t.key_indexes(),
            spec: t.clone(),
            declared: vec![String::new(); ty.len()],
            nullable: vec![true; ty.len()],
            types: ty,
        })
        .collect();
    Transformer::new(m, tables)
}

fn rec(key: &str, value: Value) -> Record {
    Record {
        key: key.into(),
        key_value: json!(key),
        value,
        position: Position::default(),
        next: Position::default(),
        file: Arc::new(FileInfo::default()),
    }
}

const M: &str = r#"
name = "t"
redact = ["secret"]
[source]
kind = "kv"
path = "x.jsonl"
[[tables]]
table = "contract"
key = ["hash"]
filter = "value.deleted | not"
columns.hash = "value.hash | required"
columns.page = "value.page"
[[tables]]
table = "signature"
for_each = "value.sigs"
key = ["hash", "account"]
columns.hash = "value.hash"
columns.account = "item.a | required"
columns.n = "index"
"#;

fn tr() -> Transformer {
    let int = ColumnType::Integer { bits: 64 };
    let text = ColumnType::Text { max_len: None };
    transformer(
        M,
        vec![
            vec![text.clone(), int.clone()],
            vec![text.clone(), text, int],
        ],
    )
}

#[test]
fn rows_per_table_and_for_each() {
    let t = tr().record(
        rec(
            "k1",
            json!({"hash": "h", "page": "7", "sigs": [{"a": "x"}, {"a": "y"}]}),
        ),
        None,
        None,
    );
    match t.outcome {
        Outcome::Rows { rows, .. } => {
            assert_eq!(rows.len(), 3);
            assert_eq!(
                rows[0],
                (0, vec![SqlValue::Text("h".into()), SqlValue::Int(7)])
            );
            assert_eq!(rows[2].1[1], SqlValue::Text("y".into()));
            assert_eq!(rows[2].1[2], SqlValue::Int(1));
        }
        other => panic!("{other:?}"),
    }
    // for_each over null: no rows, no error.
    let t = tr().record(rec("k2", json!({"hash": "h", "sigs": null})), None, None);
    assert!(matches!(t.outcome, Outcome::Rows { ref rows, .. } if rows.len() == 1));
}

#[test]
fn bad_records_fail_whole_naming_column() {
    let t = tr().record(
        rec("k3", json!({"hash": "h", "page": "7x", "secret": "pw"})),
        None,
        None,
    );
    match t.outcome {
        Outcome::Failed(e) => {
            assert_eq!(e.column.as_deref(), Some("contract.page"));
            assert_eq!(e.message, "'7x' is not an integer");
            assert_eq!(e.stage, Stage::Transform);
            assert_eq!(e.record["secret"], json!("***"));
        }
        other => panic!("{other:?}"),
    }
    let t = tr().record(
        rec("k4", json!({"hash": "h", "sigs": {"a": 1}})),
        None,
        None,
    );
    match t.outcome {
        Outcome::Failed(e) => {
            assert_eq!(e.column.as_deref(), Some("signature.for_each"));
            assert!(
                e.message.starts_with("for_each expects an array"),
                "{}",
                e.message
            );
        }
        other => panic!("{other:?}"),
    }
    let t = tr().record(
        rec("k5", json!({"hash": "h", "sigs": [{"b": 1}]})),
        None,
        None,
    );
    assert!(
        matches!(t.outcome, Outcome::Failed(ref e) if e.message == "required value item.a is missing or null")
    );
}

#[test]
fn filter_excludes() {
    let t = tr().record(rec("k6", json!({"hash": "h", "deleted": true})), None, None);
    assert!(matches!(t.outcome, Outcome::Filtered), "{:?}", t.outcome);
}
