//! Unit tests of the built-in functions: compile errors and evaluation results.

use super::Lookup;
use crate::mapping::compile::{compile, Env};
use crate::mapping::eval::Scope;
use crate::mapping::expr::parse;
use crate::record::FileInfo;
use serde_json::json;
use serde_json::Value;
use std::borrow::Cow;

/// The Fernet key of the spec's test vectors.
pub(crate) const TEST_KEY: &str = "cw_0x689RpI-jtRR7oE8h_eQsKImvJapLeSbXpwF4e4=";

/// The environment the tests compile in: `CUTOVER_TEST_KEY` holds [`TEST_KEY`],
/// `BAD_KEY` holds text that is no key, nothing else is set.
pub(crate) fn test_vars(name: &str) -> Option<String> {
    match name {
        "CUTOVER_TEST_KEY" => Some(TEST_KEY.into()),
        "BAD_KEY" => Some("not-a-key".into()),
        _ => None,
    }
}

pub(super) fn env() -> Env {
    Env {
        in_for_each: true,
        file_captures: Some(vec!["user_id".into()]),
        vars: crate::mapping::compile::Vars(test_vars),
    }
}

pub(super) fn eval_with(src: &str, value: Value) -> Result<Value, String> {
    let e = compile(&parse(src).unwrap(), &env()).map_err(|e| e.message)?;
    let file = FileInfo {
        path: "users/7/log.json".into(),
        captures: vec![("user_id".into(), "7".into())],
    };
    let key = json!("k1");
    let item = json!({"accountId": "a-1"});
    let scope = Scope {
        key: &key,
        value: &value,
        item: Some(&item),
        index: Some(3),
        file: &file,
        lookup: None,
    };
    e.eval(&scope).map(Cow::into_owned)
}

/// A key map of one mapping (`users`): legacy "1" → "u-1"; legacy "boom"
/// stands for a key map that cannot be read.
struct MockKeymap;

impl Lookup for MockKeymap {
    fn lookup(&self, mapping: &str, legacy_key: &str) -> Result<Option<Value>, String> {
        match (mapping, legacy_key) {
            (_, "boom") => Err("connection reset".into()),
            ("users", "1") => Ok(Some(json!("u-1"))),
            _ => Ok(None),
        }
    }
}

fn eval_lookup(src: &str, value: Value) -> Result<Value, String> {
    let e = compile(&parse(src).unwrap(), &env()).map_err(|e| e.message)?;
    let file = FileInfo::default();
    let key = json!("k");
    let scope = Scope {
        key: &key,
        value: &value,
        item: None,
        index: None,
        file: &file,
        lookup: Some(&MockKeymap),
    };
    e.eval(&scope).map(Cow::into_owned)
}

#[test]
fn binary_text_decodes_to_bytes() {
    assert_eq!(ev("'AP8Q' | from_base64"), json!([0, 255, 16]));
    assert_eq!(ev("'0x00ff10' | from_hex"), json!([0, 255, 16]));
    assert_eq!(ev("'\\x00FF10' | from_hex"), json!([0, 255, 16]));
    assert_eq!(ev("value.z | from_hex"), Value::Null);
    let bad = eval_with("'zz' | from_hex", json!({})).unwrap_err();
    assert!(bad.starts_with("'zz' is not hex"), "{bad}");
    let bad = eval_with("'***' | from_base64", json!({})).unwrap_err();
    assert!(bad.starts_with("'***' is not base64"), "{bad}");
    // A bytes column stores exactly those bytes.
    let v = crate::value::cast(&json!([0, 255, 16]), &crate::value::ColumnType::Bytes);
    assert_eq!(v, Ok(crate::value::SqlValue::Bytes(vec![0, 255, 16])));
}

#[test]
fn lookup_found_missing_default_and_failure() {
    let found = eval_lookup("value.owner | lookup('users')", json!({"owner": 1}));
    assert_eq!(found, Ok(json!("u-1")));
    let missing = eval_lookup("value.owner | lookup('users')", json!({"owner": 2}));
    assert_eq!(
        missing,
        Err("legacy id 2 was not found in the key map of mapping 'users'".to_string())
    );
    // A missing id with a default is the default; null passes through.
    let dflt = eval_lookup(
        "value.owner | lookup('users') | default('nobody')",
        json!({"owner": 2}),
    );
    assert_eq!(dflt, Ok(json!("nobody")));
    let co = eval_lookup(
        "coalesce(value.owner | lookup('users'), value.other | lookup('users'))",
        json!({"owner": 2, "other": "1"}),
    );
    assert_eq!(co, Ok(json!("u-1")));
    assert_eq!(
        eval_lookup("value.owner | lookup('users')", json!({})),
        Ok(Value::Null)
    );
    // A key map that cannot be read is not "not found", even with a default.
    let failed = eval_lookup(
        "value.owner | lookup('users') | default('nobody')",
        json!({"owner": "boom"}),
    );
    assert_eq!(failed, Err("connection reset".to_string()));
}

fn ev(src: &str) -> Value {
    eval_with(
        src,
        json!({"a": {"b": [10, 20]}, "n": "42", "s": " Hello World ", "z": null, "d": 12.50}),
    )
    .unwrap()
}

#[test]
fn paths_and_roots() {
    assert_eq!(ev("value.a.b[1]"), json!(20));
    assert_eq!(ev("value.a.missing.x"), Value::Null);
    assert_eq!(ev("key"), json!("k1"));
    assert_eq!(ev("item.accountId"), json!("a-1"));
    assert_eq!(ev("index"), json!(3));
    assert_eq!(ev("file.user_id"), json!("7"));
    assert_eq!(ev("file.path"), json!("users/7/log.json"));
}

#[test]
fn casts_are_exact() {
    assert_eq!(ev("value.n | int"), json!(42));
    assert_eq!(ev("'9007199254740993' | int"), json!(9007199254740993i64));
    assert_eq!(
        ev("'12345678901234567890.123456789' | decimal").to_string(),
        "12345678901234567890.123456789"
    );
    assert_eq!(
        eval_with("value | decimal", serde_json::from_str("12.50").unwrap())
            .unwrap()
            .to_string(),
        "12.50"
    );
    assert_eq!(
        eval_with("value | int", json!("12a")).unwrap_err(),
        "'12a' is not an integer"
    );
    assert_eq!(
        eval_with("value | int", json!(1.5)).unwrap_err(),
        "1.5 is not a whole number"
    );
    assert_eq!(ev("'yes' | bool"), json!(true));
    assert_eq!(ev("value.a | json"), json!("{\"b\":[10,20]}"));
    assert_eq!(ev("value.a.b[0] | text"), json!("10"));
}

#[test]
fn null_handling() {
    assert_eq!(ev("value.z | int"), Value::Null);
    assert_eq!(ev("value.z | default(7)"), json!(7));
    assert_eq!(ev("coalesce(value.z, value.missing, 'x')"), json!("x"));
    assert_eq!(ev("0 | nullif(0)"), Value::Null);
    assert_eq!(ev("value.n | nullif('0')"), json!("42"));
    let e = eval_with("value.hash | required", json!({})).unwrap_err();
    assert_eq!(e, "required value value.hash is missing or null");
}

#[test]
fn text_functions() {
    assert_eq!(ev("value.s | trim | lower"), json!("hello world"));
    assert_eq!(ev("value.s | trim | upper"), json!("HELLO WORLD"));
    assert_eq!(ev("value.s | trim | slug"), json!("hello-world"));
    assert_eq!(ev("'Crème Brûlée Co' | slug"), json!("creme-brulee-co"));
    assert_eq!(
        ev("value.s | trim | replace('World', 'There')"),
        json!("Hello There")
    );
    assert_eq!(ev("'a1b22' | regex_replace('[0-9]+', '#')"), json!("a#b#"));
    assert_eq!(ev("'abcdef' | truncate(3)"), json!("abc"));
    assert_eq!(ev("'a,b' | split(',')"), json!(["a", "b"]));
    assert_eq!(ev("concat('x', '-', value.n)"), json!("x-42"));
    assert_eq!(ev("value.n | concat('!')"), json!("42!"));
    assert_eq!(
        ev("value.n | format('n={} of {}', 'y')"),
        json!("n=42 of y")
    );
    assert_eq!(ev("value.a.b | len"), json!(2));
    assert_eq!(ev("value.z | not"), json!(true));
    assert_eq!(ev("value.n | eq(42)"), json!(false));
    assert_eq!(ev("value.n | int | eq(42)"), json!(true));
    assert_eq!(ev("value.n | gt(9)"), json!(true));
    assert_eq!(ev("value.n | lt(9)"), json!(false));
    assert_eq!(ev("value.s | ne('x')"), json!(true));
    assert_eq!(
        ev("'abc' | sha256"),
        json!("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    );
}

#[test]
fn choices_ids_and_objects() {
    assert_eq!(
        ev("'Draft' | map({'Draft': 'draft'}, 'submitted')"),
        json!("draft")
    );
    assert_eq!(
        ev("'Other' | map({'Draft': 'draft'}, 'submitted')"),
        json!("submitted")
    );
    let e = eval_with("value | map({'A': 'a', 'B': 'b'})", json!("C")).unwrap_err();
    assert_eq!(e, "'C' is not one of the mapped values (A, B)");
    let a = ev("value.n | uuid5('pliers')");
    assert_eq!(a, ev("value.n | uuid5('pliers')"));
    assert_ne!(a, ev("value.s | uuid5('pliers')"));
    assert_eq!(
        ev("'0E984725-C51C-4BF4-9960-E1C80E27ABA0' | uuid"),
        json!("0e984725-c51c-4bf4-9960-e1c80e27aba0")
    );
    assert_eq!(
        ev("object(legacy_id = value.n | int, migrated_from = 'v2')"),
        json!({"legacy_id": 42, "migrated_from": "v2"})
    );
}

#[test]
fn dates_and_timestamps() {
    assert_eq!(ev("'2024-05-04' | date"), json!("2024-05-04"));
    assert_eq!(ev("'04/05/2024' | date('%d/%m/%Y')"), json!("2024-05-04"));
    assert_eq!(
        ev("'Sat, 04 May 2024 04:44:31 GMT' | timestamp"),
        json!("2024-05-04T04:44:31Z")
    );
    assert_eq!(
        ev("'2024-05-04 04:44:31' | timestamp"),
        json!("2024-05-04T04:44:31")
    );
    assert_eq!(
        ev("1714797871000 | timestamp('epoch_ms')"),
        json!("2024-05-04T04:44:31Z")
    );
    assert_eq!(ev("1714797871 | timestamp"), json!("2024-05-04T04:44:31Z"));
    assert_eq!(
        ev("'31/12/2023 23:59' | timestamp('%d/%m/%Y %H:%M')"),
        json!("2023-12-31T23:59:00")
    );
    let e = eval_with("value | timestamp", json!("yesterday")).unwrap_err();
    assert!(e.contains("'yesterday' is not a timestamp"), "{e}");
}

#[test]
fn compile_errors_name_the_problem() {
    let c = |src: &str, env: &Env| compile(&parse(src).unwrap(), env).unwrap_err();
    let e = c("value.a | integer", &env());
    assert_eq!(e.message, "unknown function `integer`");
    assert_eq!(e.hint.as_deref(), Some("did you mean `int`?"));
    let e = c("item.x", &Env::default());
    assert!(e
        .message
        .contains("only exists inside a table with `for_each`"));
    let e = c("file.org_id", &env());
    assert!(e.message.contains("file.org_id"), "{}", e.message);
    let e = c("vaule.x", &env());
    assert!(e.message.contains("unknown path root"));
    let e = c("value.x | truncate('a')", &env());
    assert!(e.message.contains("whole number"));
    let e = c("value.x | regex_replace('(', 'y')", &env());
    assert!(e.message.contains("invalid regex"));
    let e = c("format('{} {}', value.a)", &env());
    assert!(e.message.contains("2 placeholder"));
    let e = c("value.a | default", &env());
    assert!(e.message.contains("default() takes 2"));
}

#[test]
fn registry_names_in_hint_order() {
    // The order of hints ("functions are: ...") and of "did you mean" ties.
    let names: Vec<&str> = super::names().collect();
    assert_eq!(
        names.join(", "),
        "required, default, coalesce, nullif, int, float, decimal, bool, text, json, date, \
         timestamp, uuid, uuid5, sha256, encrypt, decrypt, hash_password, from_base64, from_hex, trim, lower, upper, replace, \
         regex_replace, slug, truncate, split, concat, format, map, object, entries, len, not, eq, ne, \
         gt, lt, lookup"
    );
    let e = compile(&parse("value.a | zzzzzzzzzz").unwrap(), &env()).unwrap_err();
    assert_eq!(e.hint, Some(format!("functions are: {}", names.join(", "))));
}

#[test]
fn registry_entries_are_consistent_and_their_examples_compile() {
    let mut seen = std::collections::HashSet::new();
    for f in super::all() {
        assert!(seen.insert(f.name), "{} is registered twice", f.name);
        assert!(f.min_args <= f.max_args, "{}", f.name);
        assert!(!f.takes.is_empty(), "{}: no argument kinds", f.name);
        if f.max_args != usize::MAX {
            assert_eq!(
                f.takes.len(),
                f.max_args,
                "{}: one kind per argument",
                f.name
            );
        }
        assert!(f.example.contains(f.name), "{}: {}", f.name, f.example);
        let ast = parse(f.example).unwrap_or_else(|e| panic!("{}: {e}", f.example));
        let e = compile(&ast, &env()).unwrap_or_else(|e| panic!("{}: {}", f.example, e.message));
        match e {
            crate::mapping::Expr::Call(c) => assert_eq!(c.func.name, f.name),
            other => panic!("{}: {other:?}", f.example),
        }
    }
}

#[test]
fn kinds_come_from_the_registry() {
    use crate::mapping::Kind;
    let k = |src: &str| compile(&parse(src).unwrap(), &env()).unwrap().kind();
    assert_eq!(k("value.a | int"), Kind::Int);
    assert_eq!(k("value.a | len"), Kind::Int);
    assert_eq!(k("value.a | date"), Kind::Date);
    assert_eq!(k("value.a | uuid5('x')"), Kind::Uuid);
    assert_eq!(k("value.a | split(',')"), Kind::Array);
    assert_eq!(k("value.a | format('{}!')"), Kind::Text);
    assert_eq!(k("value.a | int | required"), Kind::Int);
    assert_eq!(k("value.a | int | default(0)"), Kind::Int);
    assert_eq!(k("value.a | int | default(null)"), Kind::Int);
    assert_eq!(k("value.a | int | default('x')"), Kind::Any);
    assert_eq!(k("value.a | map({'a': 1})"), Kind::Any);
    assert_eq!(k("object(a = 1)"), Kind::Object);
    assert_eq!(k("index"), Kind::Int);
}

#[test]
fn map_values_and_lookups_are_walked() {
    let e = compile(
        &parse("value.s | map({'a': value.x | lookup('users')}, value.y | lookup('orgs'))")
            .unwrap(),
        &env(),
    )
    .unwrap();
    let found: Vec<&str> = e.lookups().into_iter().map(|(m, _)| m).collect();
    assert_eq!(found, vec!["orgs", "users"]);
}

#[test]
fn entries_turn_an_object_into_key_value_pairs() {
    assert_eq!(
        eval_with(
            "value.d | entries",
            json!({"d": {"W-2": {"v": 1}, "W-1": null}})
        )
        .unwrap(),
        json!([{"key": "W-2", "value": {"v": 1}}, {"key": "W-1", "value": null}])
    );
    assert_eq!(
        eval_with("value.x | entries", json!({})).unwrap(),
        Value::Null
    );
    assert_eq!(
        eval_with("value.d | entries", json!({"d": [1]})).unwrap_err(),
        "entries expects an object, found [1]"
    );
}
