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

fn env() -> Env {
    Env {
        in_for_each: true,
        file_captures: Some(vec!["user_id".into()]),
        vars: crate::mapping::compile::Vars(test_vars),
    }
}

fn eval_with(src: &str, value: Value) -> Result<Value, String> {
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
         regex_replace, slug, truncate, split, concat, format, map, object, len, not, eq, ne, \
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

// ---- encrypt, decrypt, hash_password

/// Fernet's published vectors (github.com/fernet/spec: generate.json,
/// verify.json, invalid.json): (token, now, iv, src) and the invalid tokens.
const GENERATE: (&str, &str, [u8; 16], &str) = (
    "gAAAAAAdwJ6wAAECAwQFBgcICQoLDA0ODy021cpGVWKZ_eEwCGM4BLLF_5CV9dOPmrhuVUPgJobwOz7JcbmrR64jVmpU4IwqDA==",
    "1985-10-26T01:20:00-07:00",
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15],
    "hello",
);
const VERIFY_NOW: &str = "1985-10-26T01:20:01-07:00";
const INVALID: &[(&str, &str, &str)] = &[
    ("incorrect mac", "gAAAAAAdwJ6xAAECAwQFBgcICQoLDA0OD3HkMATM5lFqGaerZ-fWPAl1-szkFVzXTuGb4hR8AKtwcaX1YdykQUFBQUFBQUFBQQ==", VERIFY_NOW),
    ("too short", "gAAAAAAdwJ6xAAECAwQFBgcICQoLDA0OD3HkMATM5lFqGaerZ-fWPA==", VERIFY_NOW),
    ("invalid base64", "%%%%%%%%%%%%%AECAwQFBgcICQoLDA0OD3HkMATM5lFqGaerZ-fWPAl1-szkFVzXTuGb4hR8AKtwcaX1YdykRtfsH-p1YsUD2Q==", VERIFY_NOW),
    ("payload size not multiple of block size", "gAAAAAAdwJ6xAAECAwQFBgcICQoLDA0OD3HkMATM5lFqGaerZ-fWPOm73QeoCk9uGib28Xe5vz6oxq5nmxbx_v7mrfyudzUm", VERIFY_NOW),
    ("payload padding error", "gAAAAAAdwJ6xAAECAwQFBgcICQoLDA0ODz4LEpdELGQAad7aNEHbf-JkLPIpuiYRLQ3RtXatOYREu2FWke6CnJNYIbkuKNqOhw==", VERIFY_NOW),
    ("far-future TS (unacceptable clock skew)", "gAAAAAAdwStRAAECAwQFBgcICQoLDA0OD3HkMATM5lFqGaerZ-fWPAnja1xKYyhd-Y6mSkTOyTGJmw2Xc2a6kBd-iX9b_qXQcw==", VERIFY_NOW),
    ("expired TTL", "gAAAAAAdwJ6xAAECAwQFBgcICQoLDA0OD3HkMATM5lFqGaerZ-fWPAl1-szkFVzXTuGb4hR8AKtwcaX1YdykRtfsH-p1YsUD2Q==", "1985-10-26T01:21:31-07:00"),
    ("incorrect IV (causes padding error)", "gAAAAAAdwJ6xBQECAwQFBgcICQoLDA0OD3HkMATM5lFqGaerZ-fWPAkLhFLHpGtDBRLRTZeUfWgHSv49TF2AUEZ1TIvcZjK1zQ==", VERIFY_NOW),
];

fn epoch(rfc3339: &str) -> u64 {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .unwrap()
        .timestamp() as u64
}

/// A Fernet token built from its parts by the spec: 0x80, time, IV,
/// AES-128-CBC(PKCS7) with the key's second half, HMAC-SHA256 with its first.
fn token_from_parts(key: &str, now: u64, iv: &[u8; 16], src: &[u8]) -> String {
    use aes::cipher::{BlockEncryptMut, KeyIvInit};
    use base64::Engine;
    use hmac::Mac;
    let key = base64::engine::general_purpose::URL_SAFE
        .decode(key)
        .unwrap();
    let ct = cbc::Encryptor::<aes::Aes128>::new_from_slices(&key[16..], iv)
        .unwrap()
        .encrypt_padded_vec_mut::<aes::cipher::block_padding::Pkcs7>(src);
    let mut t = vec![0x80];
    t.extend_from_slice(&now.to_be_bytes());
    t.extend_from_slice(iv);
    t.extend_from_slice(&ct);
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&key[..16]).unwrap();
    mac.update(&t);
    t.extend_from_slice(&mac.finalize().into_bytes());
    base64::engine::general_purpose::URL_SAFE.encode(t)
}

#[test]
fn encrypt_makes_tokens_of_the_fernet_spec() {
    use base64::Engine;
    let (token, now, iv, src) = GENERATE;
    // The construction above is the spec's: it gives the published token.
    assert_eq!(
        token_from_parts(TEST_KEY, epoch(now), &iv, src.as_bytes()),
        token
    );
    // encrypt() gives exactly that construction with its own time and a random IV.
    let before = chrono::Utc::now().timestamp() as u64;
    let a = eval_with(
        "value.pw | encrypt('CUTOVER_TEST_KEY')",
        json!({"pw": "hunter2 é"}),
    )
    .unwrap();
    let b = eval_with(
        "value.pw | encrypt('CUTOVER_TEST_KEY')",
        json!({"pw": "hunter2 é"}),
    )
    .unwrap();
    assert_ne!(a, b, "a fresh IV on every call");
    let raw = base64::engine::general_purpose::URL_SAFE
        .decode(a.as_str().unwrap())
        .unwrap();
    let at = u64::from_be_bytes(raw[1..9].try_into().unwrap());
    let iv: [u8; 16] = raw[9..25].try_into().unwrap();
    assert!(at >= before && at <= before + 5, "{at} vs {before}");
    assert_eq!(
        token_from_parts(TEST_KEY, at, &iv, "hunter2 é".as_bytes()),
        a.as_str().unwrap()
    );
    // decrypt() reads it back; numbers are encrypted as their digits; null stays null.
    let back = eval_with("value.t | decrypt('CUTOVER_TEST_KEY')", json!({ "t": a })).unwrap();
    assert_eq!(back, json!("hunter2 é"));
    let n = eval_with(
        "value.n | encrypt('CUTOVER_TEST_KEY') | decrypt('CUTOVER_TEST_KEY')",
        json!({"n": 1234}),
    )
    .unwrap();
    assert_eq!(n, json!("1234"));
    assert_eq!(
        eval_with("value.x | encrypt('CUTOVER_TEST_KEY')", json!({})).unwrap(),
        Value::Null
    );
}

#[test]
fn fernet_verify_and_invalid_vectors() {
    let f = fernet::Fernet::new(TEST_KEY).unwrap();
    let (token, _, _, src) = GENERATE;
    assert_eq!(
        f.decrypt_at_time(token, Some(60), epoch(VERIFY_NOW))
            .unwrap(),
        src.as_bytes()
    );
    for (what, bad, now) in INVALID {
        assert!(
            f.decrypt_at_time(bad, Some(60), epoch(now)).is_err(),
            "{what}"
        );
    }
    // decrypt() itself: the verify vector, and a token that is not one.
    assert_eq!(
        eval_with(
            "value.t | decrypt('CUTOVER_TEST_KEY')",
            json!({ "t": token })
        )
        .unwrap(),
        json!("hello")
    );
    let e = eval_with(
        "value.t | decrypt('CUTOVER_TEST_KEY')",
        json!({"t": INVALID[0].1}),
    )
    .unwrap_err();
    assert_eq!(
        e,
        "the value is not a Fernet token of the key in CUTOVER_TEST_KEY"
    );
}

#[test]
fn keys_come_from_the_environment_and_are_checked_at_compile_time() {
    let err = |src: &str| compile(&parse(src).unwrap(), &env()).unwrap_err();
    let e = err("value.pw | encrypt('NO_SUCH_KEY')");
    assert_eq!(
        e.message,
        "environment variable NO_SUCH_KEY is not set: encrypt() reads its Fernet key from it"
    );
    assert!(e.hint.unwrap().contains("Fernet.generate_key()"));
    let e = err("value.pw | decrypt('BAD_KEY')");
    assert!(
        e.message
            .starts_with("environment variable BAD_KEY does not hold a Fernet key"),
        "{}",
        e.message
    );
    // A key written into the mapping is refused, and not repeated.
    let e = err(&format!("value.pw | encrypt('{TEST_KEY}')"));
    assert!(e.message.contains("not the key itself"), "{}", e.message);
    assert!(!e.message.contains(TEST_KEY) && !e.hint.unwrap().contains(TEST_KEY));
    let e = err("value.pw | encrypt('my key')");
    assert!(
        e.message.contains("is not an environment variable name"),
        "{}",
        e.message
    );
    let e = err("value.pw | encrypt(value.k)");
    assert!(
        e.message.contains("must be a quoted text literal"),
        "{}",
        e.message
    );
}

#[test]
fn hash_password_gives_phc_strings_that_verify() {
    use argon2::password_hash::{PasswordHash, PasswordVerifier};
    let h = eval_with(
        "value.pw | hash_password('argon2id')",
        json!({"pw": "correct horse"}),
    )
    .unwrap();
    let h = h.as_str().unwrap().to_string();
    assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
    let parsed = PasswordHash::new(&h).unwrap();
    assert!(argon2::Argon2::default()
        .verify_password(b"correct horse", &parsed)
        .is_ok());
    assert!(argon2::Argon2::default()
        .verify_password(b"correct horsE", &parsed)
        .is_err());
    let again = eval_with(
        "value.pw | hash_password('argon2id')",
        json!({"pw": "correct horse"}),
    )
    .unwrap();
    assert_ne!(again.as_str().unwrap(), h, "a fresh salt on every call");

    let h = eval_with(
        "value.pw | hash_password('argon2id', 'm=8192,t=3,p=2')",
        json!({"pw": "pw"}),
    )
    .unwrap();
    assert!(
        h.as_str()
            .unwrap()
            .starts_with("$argon2id$v=19$m=8192,t=3,p=2$"),
        "{h}"
    );

    let b = eval_with(
        "value.pw | hash_password('bcrypt', 'cost=4')",
        json!({"pw": "correct horse"}),
    )
    .unwrap();
    let b = b.as_str().unwrap();
    assert!(b.starts_with("$2b$04$") && b.len() == 60, "{b}");
    assert!(bcrypt::verify("correct horse", b).unwrap());
    assert!(!bcrypt::verify("correct horsE", b).unwrap());
    let b = eval_with("value.pw | hash_password('bcrypt')", json!({"pw": "x"})).unwrap();
    assert!(b.as_str().unwrap().starts_with("$2b$12$"), "{b}");
    let e = eval_with(
        "value.pw | hash_password('bcrypt', 'cost=4')",
        json!({"pw": "p".repeat(73)}),
    )
    .unwrap_err();
    assert!(
        e.starts_with("bcrypt takes at most 72 bytes") && !e.contains("ppp"),
        "{e}"
    );

    let err = |src: &str| compile(&parse(src).unwrap(), &env()).unwrap_err().message;
    assert_eq!(
        err("value.pw | hash_password('md5')"),
        "hash_password: unknown algorithm 'md5'"
    );
    assert_eq!(
        err("value.pw | hash_password('bcrypt', 'cost=3')"),
        "hash_password: bcrypt cost 3 is not from 4 to 31"
    );
    assert_eq!(
        err("value.pw | hash_password('argon2id', 'm=19456,x=2')"),
        "hash_password: unknown argon2id parameter 'x'"
    );
    assert!(err("value.pw | hash_password('argon2id', 'm=1')")
        .starts_with("hash_password: argon2id parameters m=1,t=2,p=1:"));
}

#[test]
fn stored_values_open_to_their_clear_text() {
    use super::Secret;
    let secret = |src: &str| {
        let e = compile(&parse(src).unwrap(), &env()).unwrap();
        super::secret_of(&e).unwrap().1.clone()
    };
    let f = secret("value.pw | encrypt('CUTOVER_TEST_KEY')");
    let t = f.protect("s3cret").unwrap();
    assert!(f.opens(&t, "s3cret"));
    assert!(!f.opens(&t, "s3cret "));
    assert!(!f.opens("not a token", "s3cret"));
    // The spec's token opens with its key.
    assert!(f.opens(GENERATE.0, "hello"));

    // The reference implementation's argon2id hash of "password" (RFC 9106
    // parameters m=65536, t=2, p=1, salt "somesalt") opens with those costs only.
    let reference =
        "$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc";
    let a = secret("value.pw | hash_password('argon2id', 'm=65536,t=2,p=1')");
    assert!(a.opens(reference, "password"));
    assert!(!a.opens(reference, "passwore"));
    let other_costs = secret("value.pw | hash_password('argon2id')");
    assert!(
        !other_costs.opens(reference, "password"),
        "other costs: made again"
    );
    let own = other_costs.protect("pw").unwrap();
    assert!(other_costs.opens(&own, "pw"));

    // A `$2b$` hash made by Python's bcrypt.
    let python = "$2b$04$EGdrhbKUv8Oc9vGiXX0HQOxSg445d458Muh7DAHskb6QbtCvdxcie";
    let b = secret("value.pw | hash_password('bcrypt', 'cost=4')");
    assert!(b.opens(python, "correctbatteryhorsestapler"));
    assert!(!b.opens(python, "correctbatteryhorsestaple"));
    assert!(
        !secret("value.pw | hash_password('bcrypt')").opens(python, "correctbatteryhorsestapler")
    );
    assert!(matches!(*b, Secret::Bcrypt { cost: 4 }));
    // Never the key in a debug print.
    assert_eq!(format!("{f:?}"), "encrypt('CUTOVER_TEST_KEY')");
}
