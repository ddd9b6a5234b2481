//! Unit tests of the transform: rows per table, errors per record.

use super::*;
use crate::mapping::Mapping;
use crate::value::ColumnType;
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
            journal: None,
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

const SECRET: &str = r#"
name = "creds"
[source]
kind = "json"
path = "data/users/{user_id}/creds.json"
[[tables]]
table = "user_credentials"
key = ["user_id"]
columns.user_id = "key"
columns.username = "value.username | required"
columns.password = "value.password | trim | encrypt('CUTOVER_TEST_KEY')"
columns.pin = "value.pin | int | hash_password('bcrypt', 'cost=4')"
[[tables]]
table = "logins"
for_each = "value.logins"
key = ["user_id", "site"]
columns.user_id = "key"
columns.site = "item.site"
columns.secret = "item.secret | encrypt('CUTOVER_TEST_KEY')"
"#;

fn secret_tr() -> Transformer {
    secret_tr_of(SECRET)
}

fn secret_tr_of(mapping: &str) -> Transformer {
    let text = ColumnType::Text { max_len: None };
    let m = Mapping::from_str_with(
        Path::new("t.toml"),
        mapping,
        crate::mapping::compile::Vars(crate::mapping::functions::tests::test_vars),
    )
    .unwrap();
    let tables = m
        .tables
        .iter()
        .map(|t| BoundTable {
            key_idx: t.key_indexes(),
            journal: None,
            spec: t.clone(),
            declared: vec![String::new(); t.columns.len()],
            nullable: vec![true; t.columns.len()],
            types: vec![text.clone(); t.columns.len()],
        })
        .collect();
    Transformer::new(Arc::new(m), tables)
}

#[test]
fn secret_columns_keep_their_clear_text_beside_the_row() {
    let tr = secret_tr();
    assert_eq!(
        tr.mapping().redact,
        vec![
            vec!["password".to_string()],
            vec!["pin".to_string()],
            vec!["logins".to_string(), "*".into(), "secret".into()]
        ]
    );
    let t = tr.record(
        rec(
            "u1",
            json!({"username": "bob", "password": " pw1 ", "pin": 1234,
                   "logins": [{"site": "a", "secret": "sa"}, {"site": "b"}]}),
        ),
        None,
        None,
    );
    let Outcome::Rows { rows, secrets, .. } = t.outcome else {
        panic!("{:?}", t.outcome)
    };
    let cells: Vec<(usize, usize, &str)> = secrets
        .iter()
        .map(|c| (c.row, c.col, c.clear.as_str()))
        .collect();
    // Row 0 (user_credentials): password (trimmed) and pin; row 1: the first
    // login; the second login's secret is null, so it has no clear text.
    assert_eq!(cells, vec![(0, 2, "pw1"), (0, 3, "1234"), (1, 2, "sa")]);
    let SqlValue::Text(token) = &rows[0].1[2] else {
        panic!("{:?}", rows[0].1)
    };
    assert!(token.starts_with("gAAAAA"), "{token}");
    assert!(matches!(&rows[0].1[3], SqlValue::Text(h) if h.starts_with("$2b$04$")));
    assert_eq!(rows[2].1[2], SqlValue::Null);
    assert!(!format!("{secrets:?}").contains("pw1"));
}

#[test]
fn secret_values_appear_in_no_error_row() {
    let tr = secret_tr();
    // The pin fails its cast: the message names the column, not the value;
    // the record shows "***" for every secret field.
    let t = tr.record(
        rec(
            "u2",
            json!({"username": "amy", "password": "Tr0ub4dor", "pin": "12a4x",
                   "logins": [{"site": "a", "secret": "pocket"}]}),
        ),
        None,
        None,
    );
    let Outcome::Failed(e) = t.outcome else {
        panic!("{:?}", t.outcome)
    };
    assert_eq!(e.column.as_deref(), Some("user_credentials.pin"));
    assert_eq!(e.message, "'***' is not an integer");
    assert_eq!(e.record["pin"], json!("***"));
    assert_eq!(e.record["password"], json!("***"));
    assert_eq!(e.record["logins"][0]["secret"], json!("***"));
    assert_eq!(e.record["username"], json!("amy"));
    let all = format!("{e:?}");
    for clear in ["12a4x", "Tr0ub4dor", "pocket"] {
        assert!(!all.contains(clear), "{clear} in {all}");
    }
    // A failure in another column that shows a secret field's value.
    let tr2 = secret_tr_of(&SECRET.replace("value.username | required", "value.password | int"));
    let t = tr2.record(rec("u3", json!({"password": "hunter2"})), None, None);
    let Outcome::Failed(e) = t.outcome else {
        panic!("{:?}", t.outcome)
    };
    assert_eq!(e.message, "'***' is not an integer");
}

#[test]
fn secret_functions_only_as_the_last_step_of_a_column() {
    let load = |text: &str| {
        Mapping::from_str_with(
            Path::new("t.toml"),
            text,
            crate::mapping::compile::Vars(crate::mapping::functions::tests::test_vars),
        )
        .map(|_| ())
        .unwrap_err()
        .to_string()
    };
    let e = load(&SECRET.replace(
        "value.password | trim | encrypt('CUTOVER_TEST_KEY')",
        "value.password | encrypt('CUTOVER_TEST_KEY') | trim",
    ));
    assert!(
        e.contains("t.toml:11:")
            && e.contains("encrypt() can only be the last step of a column's expression"),
        "{e}"
    );
    let e = load(&SECRET.replace(
        "columns.user_id = \"key\"\ncolumns.username",
        "columns.user_id = \"key | encrypt('CUTOVER_TEST_KEY')\"\ncolumns.username",
    ));
    assert!(e.contains("cannot give a key column"), "{e}");
    let e = load(&SECRET.replace("item.secret | encrypt", "file.user_id | encrypt"));
    assert!(
        e.contains("cannot come from the record key or the file name"),
        "{e}"
    );
    let e = load(&SECRET.replace(
        "for_each = \"value.logins\"",
        "for_each = \"value.logins\"\nfilter = \"item.secret | hash_password('bcrypt')\"",
    ));
    assert!(
        e.contains(
            "hash_password() can only be the last step of a column's expression, not in a filter"
        ),
        "{e}"
    );
    let e = load(&SECRET.replace(
        "encrypt('CUTOVER_TEST_KEY')\"\ncolumns.pin",
        "encrypt('NOT_SET_ANYWHERE')\"\ncolumns.pin",
    ));
    assert!(
        e.contains("t.toml:11:") && e.contains("environment variable NOT_SET_ANYWHERE is not set"),
        "{e}"
    );
}
