//! Why this file is over 600 lines: one property per parser of outside input, with the
//! generators they share; split by parser they would repeat the generators.
//! Property tests of the parsers of outside input: the JSON Lines reader, the
//! array/object splitter, DynamoDB JSON, the SQL Server connection spec (URLs
//! and ADO.NET strings) and `redact_url`. Random and mutated input (truncated,
//! bytes inserted or deleted, invalid UTF-8, deep nesting, huge numbers, braces
//! and quotes in ADO.NET values) must never panic or hang, and every error must
//! say where it is. `CUTOVER_PROPTEST_CASES=N` runs N cases per property.
//!
//! (Over 600 lines: one file for the properties of every outside-input parser
//! of the sources, with the generators they share.)

use super::file::splitter::{Container, Splitter};
use super::file::{dynamodb, FileSource};
use super::mssql::config::ConnectSpec;
use super::Source;
use crate::mapping::{KvFormat, SourceKind, SourceSpec};
use proptest::prelude::*;
use proptest::test_runner::Config as ProptestConfig;
use serde_json::{json, Value};
use std::io::{BufReader, Cursor};

/// `default` cases per property, or `CUTOVER_PROPTEST_CASES`.
fn config(default: u32) -> ProptestConfig {
    let cases = std::env::var("CUTOVER_PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default);
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

// ---------------------------------------------------------------------------
// Input generators

/// JSON text of any shape: escapes, non-ASCII, huge and odd numbers, nesting.
fn json_text() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        Just("null".to_string()),
        Just("true".to_string()),
        Just("false".to_string()),
        any::<i64>().prop_map(|n| n.to_string()),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| f.to_string()),
        "-?[1-9][0-9]{18,80}(\\.[0-9]{1,40})?([eE][+-]?[0-9]{1,6})?",
        any::<String>().prop_map(|s| serde_json::to_string(&s).unwrap_or_default()),
        Just("\"a\\\"b\\\\c\\u00e9\\ud83d\\ude00 ]},\"".to_string()),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(|v| format!("[{}]", v.join(", "))),
            prop::collection::vec(("[a-z\"{}\\[\\] ,:]{0,6}", inner), 0..6).prop_map(|v| {
                let members: Vec<String> = v
                    .into_iter()
                    .map(|(k, v)| format!("{}: {v}", serde_json::to_string(&k).unwrap_or_default()))
                    .collect();
                format!("{{{}}}", members.join(", "))
            }),
        ]
    })
}

/// One change to a document.
#[derive(Debug, Clone)]
enum Mutation {
    Truncate(prop::sample::Index),
    Insert(prop::sample::Index, u8),
    Delete(prop::sample::Index),
    /// A byte that is never valid UTF-8, or a lone lead byte.
    BadUtf8(prop::sample::Index, u8),
    /// A JSON delimiter where it may not belong.
    Delimiter(prop::sample::Index, u8),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        any::<prop::sample::Index>().prop_map(Mutation::Truncate),
        (any::<prop::sample::Index>(), any::<u8>()).prop_map(|(i, b)| Mutation::Insert(i, b)),
        any::<prop::sample::Index>().prop_map(Mutation::Delete),
        (
            any::<prop::sample::Index>(),
            prop::sample::select(vec![0xFFu8, 0xFE, 0xC3, 0xE2, 0x80, 0xF0])
        )
            .prop_map(|(i, b)| Mutation::BadUtf8(i, b)),
        (
            any::<prop::sample::Index>(),
            prop::sample::select(b"[]{}\",:\\\n ".to_vec())
        )
            .prop_map(|(i, b)| Mutation::Delimiter(i, b)),
    ]
}

fn mutate(mut doc: Vec<u8>, mutations: &[Mutation]) -> Vec<u8> {
    for m in mutations {
        let at = |i: &prop::sample::Index, len: usize| i.index(len + 1);
        match m {
            Mutation::Truncate(i) => {
                let n = at(i, doc.len());
                doc.truncate(n);
            }
            Mutation::Insert(i, b) | Mutation::BadUtf8(i, b) | Mutation::Delimiter(i, b) => {
                let n = at(i, doc.len());
                doc.insert(n, *b);
            }
            Mutation::Delete(i) if !doc.is_empty() => {
                let n = i.index(doc.len());
                doc.remove(n);
            }
            Mutation::Delete(_) => {}
        }
    }
    doc
}

/// A document, maybe mutated: a few valid, most broken somewhere.
fn mutated(doc: impl Strategy<Value = String>) -> impl Strategy<Value = Vec<u8>> {
    (doc, prop::collection::vec(mutation(), 0..4)).prop_map(|(d, m)| mutate(d.into_bytes(), &m))
}

/// Nesting far deeper than any parser's recursion limit, closed or not.
fn deep() -> impl Strategy<Value = Vec<u8>> {
    (1usize..6000, any::<bool>(), any::<bool>()).prop_map(|(n, arrays, closed)| {
        let (open, close) = if arrays { (b'[', b']') } else { (b'{', b'}') };
        let mut doc = vec![b'['];
        for _ in 0..n {
            if !arrays {
                doc.extend_from_slice(b"{\"k\":");
            } else {
                doc.push(open);
            }
        }
        doc.push(b'1');
        if closed {
            doc.extend(std::iter::repeat_n(close, n));
            doc.push(b']');
        }
        doc
    })
}

// ---------------------------------------------------------------------------
// The array/object splitter

/// Split a whole input; `Err` is the error's text. Fails the case on a hang
/// (more members than the input has bytes, which no progress would give).
fn split_all(
    input: &[u8],
    kind: Container,
    cap: usize,
) -> (Vec<super::splitter::Member>, Option<String>) {
    let r = BufReader::with_capacity(cap, Cursor::new(input.to_vec()));
    let mut s = Splitter::new(r, kind);
    let mut out = Vec::new();
    for _ in 0..=input.len() + 2 {
        match s.next_member() {
            Ok(Some(m)) => out.push(m),
            Ok(None) => return (out, None),
            Err(e) => return (out, Some(e.to_string())),
        }
    }
    panic!("the splitter did not finish {} bytes", input.len());
}

/// The byte offset an error names (`malformed JSON at byte N: ...`).
fn error_offset(message: &str) -> Option<u64> {
    let rest = message.strip_prefix("malformed JSON at byte ")?;
    rest.split(':').next()?.parse().ok()
}

fn check_split(input: &[u8], kind: Container, cap: usize) -> Result<(), TestCaseError> {
    let (members, err) = split_all(input, kind, cap);
    let len = input.len() as u64;
    for (i, m) in members.iter().enumerate() {
        prop_assert!(m.start <= m.end && m.end <= len, "{m:?} in {len} bytes");
        prop_assert_eq!(m.index, i as u64);
        if kind == Container::Array {
            prop_assert_eq!(&input[m.start as usize..m.end as usize], &m.bytes[..]);
        }
    }
    if let Some(e) = err {
        let at = error_offset(&e);
        prop_assert!(at.is_some_and(|at| at <= len), "{e} (input of {len} bytes)");
    }
    Ok(())
}

proptest! {
    #![proptest_config(config(3000))]

    #[test]
    fn splitter_arrays_neither_panic_nor_hang(
        doc in mutated(prop::collection::vec(json_text(), 0..8).prop_map(|v| format!("[{}]", v.join(",")))),
        cap in 1usize..64,
    ) {
        check_split(&doc, Container::Array, cap)?;
    }

    #[test]
    fn splitter_objects_neither_panic_nor_hang(
        doc in mutated(json_text().prop_map(|v| format!("{{\"a\": {v}, \"b\": [{v}]}}"))),
        cap in 1usize..64,
    ) {
        check_split(&doc, Container::Object, cap)?;
    }

    #[test]
    fn splitter_survives_random_bytes_and_deep_nesting(
        doc in prop_oneof![prop::collection::vec(any::<u8>(), 0..256), deep()],
        cap in 1usize..64,
        object in any::<bool>(),
    ) {
        let kind = if object { Container::Object } else { Container::Array };
        check_split(&doc, kind, cap)?;
    }

    #[test]
    fn splitter_gives_every_element_of_a_valid_array(
        elems in prop::collection::vec(json_text(), 0..8),
        cap in 1usize..64,
    ) {
        let doc = format!(" [ {} ] ", elems.join(" ,\n"));
        let (members, err) = split_all(doc.as_bytes(), Container::Array, cap);
        prop_assert!(err.is_none(), "{err:?}");
        let got: Vec<String> = members
            .iter()
            .map(|m| String::from_utf8_lossy(&m.bytes).into_owned())
            .collect();
        prop_assert_eq!(got, elems);
    }
}

// ---------------------------------------------------------------------------
// The JSON Lines reader and the kv/json file sources

fn spec_for(path: &std::path::Path, kind: SourceKind, format: KvFormat) -> SourceSpec {
    SourceSpec {
        filter: None,
        paging_prefix: 0,
        watermark: None,
        kind,
        path: Some(path.to_path_buf()),
        path_text: Some(path.display().to_string()),
        format,
        key: vec!["id".into()],
        url: None,
        password_env: None,
        table: None,
        query: None,
        trust_server_certificate: false,
        dir: path.parent().map(|p| p.to_path_buf()).unwrap_or_default(),
    }
}

/// Read every record of `source` in batches of `batch` and decode it; a read
/// error is returned as its text. Checks that each decode error names the
/// record with `label(position)`.
fn read_all(
    source: &mut FileSource,
    batch: usize,
    limit: usize,
    label: impl Fn(&crate::record::Position) -> String,
) -> Result<Result<usize, String>, TestCaseError> {
    let mut n = 0;
    for _ in 0..=limit + 1 {
        let records = match source.next_batch(batch) {
            Ok(r) => r,
            Err(e) => return Ok(Err(e.to_string())),
        };
        if records.is_empty() {
            return Ok(Ok(n));
        }
        for r in records {
            n += 1;
            if let Err(e) = r.decode() {
                prop_assert_eq!(&e.key, &label(&r.position));
                prop_assert!(!e.message.is_empty());
            }
        }
    }
    Err(TestCaseError::fail(format!(
        "the reader did not finish {limit} bytes"
    )))
}

/// A JSON Lines dump: `{"key", "value"}` lines, some not.
fn kv_lines() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            3 => (json_text(), json_text()).prop_map(|(k, v)| format!("{{\"key\": {k}, \"value\": {v}}}")),
            1 => json_text(),
            1 => Just("   ".to_string()),
        ],
        0..8,
    )
    .prop_map(|lines| lines.join("\n"))
}

proptest! {
    // Fewer cases: each writes a file and opens a source (about 5 ms).
    #![proptest_config(config(1000))]

    #[test]
    fn jsonl_reader_names_the_line_of_every_bad_record(
        doc in prop_oneof![mutated(kv_lines()), prop::collection::vec(any::<u8>(), 0..200)],
        crlf in any::<bool>(),
        batch in 1usize..6,
    ) {
        let dir = tempfile::tempdir().map_err(|e| TestCaseError::fail(e.to_string()))?;
        let path = dir.path().join("dump.jsonl");
        let doc = if crlf { String::from_utf8_lossy(&doc).replace('\n', "\r\n").into_bytes() } else { doc };
        std::fs::write(&path, &doc).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let spec = spec_for(&path, SourceKind::Kv, KvFormat::Jsonl);
        let mut source = FileSource::open(&spec).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let lines = doc.split(|&b| b == b'\n').count() as u64;
        let read = read_all(&mut source, batch, doc.len(), |p| {
            format!("dump.jsonl:line {}", p.line)
        })?;
        prop_assert!(read.is_ok(), "{read:?}");
        // Every position is a line of the file.
        prop_assert!(read.unwrap_or(0) as u64 <= lines);
    }

    #[test]
    fn kv_object_and_json_array_readers_name_the_member_or_the_file(
        doc in prop_oneof![
            mutated(json_text().prop_map(|v| format!("{{\"a\": {v}, \"b\": {v}}}"))),
            mutated(prop::collection::vec(json_text(), 0..6).prop_map(|v| format!("[{}]", v.join(",")))),
            deep(),
        ],
        batch in 1usize..6,
    ) {
        let dir = tempfile::tempdir().map_err(|e| TestCaseError::fail(e.to_string()))?;
        let object = doc.iter().find(|c| !c.is_ascii_whitespace()) == Some(&b'{');
        let (name, kind, format) = if object {
            ("dump.json", SourceKind::Kv, KvFormat::Object)
        } else {
            ("doc.json", SourceKind::Json, KvFormat::Jsonl)
        };
        let path = dir.path().join(name);
        std::fs::write(&path, &doc).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let spec = spec_for(&path, kind, format);
        let mut source = FileSource::open(&spec).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let starts_array = doc.iter().find(|c| !c.is_ascii_whitespace()) == Some(&b'[');
        let read = read_all(&mut source, batch, doc.len(), |p| {
            if object || starts_array {
                format!("{name}[{}]", p.line)
            } else {
                name.to_string()
            }
        })?;
        if let Err(e) = read {
            // A document that does not split: the file and the byte.
            prop_assert!(e.contains(name) && e.contains("at byte"), "{e}");
        }
    }
}

// ---------------------------------------------------------------------------
// DynamoDB JSON

/// A plain value a DynamoDB item can hold, and its DynamoDB JSON.
fn dynamo_value() -> impl Strategy<Value = (Value, Value)> {
    let leaf = prop_oneof![
        any::<String>().prop_map(|s| (json!(s), json!({ "S": s }))),
        "-?[1-9][0-9]{0,40}".prop_map(|n| {
            let v: Value = serde_json::from_str(&n).unwrap_or(Value::Null);
            (v, json!({ "N": n }))
        }),
        any::<bool>().prop_map(|b| (json!(b), json!({ "BOOL": b }))),
        Just((Value::Null, json!({"NULL": true}))),
        Just((json!("aGk="), json!({"B": "aGk="}))),
    ];
    leaf.prop_recursive(4, 32, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(|v| {
                let (plain, typed): (Vec<_>, Vec<_>) = v.into_iter().unzip();
                (Value::Array(plain), json!({ "L": typed }))
            }),
            prop::collection::btree_map("[a-z]{1,6}", inner, 0..5).prop_map(|m| {
                let mut plain = serde_json::Map::new();
                let mut typed = serde_json::Map::new();
                for (k, (p, t)) in m {
                    plain.insert(k.clone(), p);
                    typed.insert(k, t);
                }
                (Value::Object(plain), json!({ "M": typed }))
            }),
        ]
    })
}

/// A wrong attribute value.
fn bad_attr() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(json!({"X": 1})),
        Just(json!({"N": "12abc"})),
        Just(json!({"N": 12})),
        Just(json!({"B": "not base64!"})),
        Just(json!({"S": "a", "N": "1"})),
        Just(json!({})),
        Just(json!("plain")),
        Just(json!({"L": {"S": "x"}})),
        Just(json!({"SS": ["a", 1]})),
        Just(json!({"BOOL": "yes"})),
    ]
}

proptest! {
    #![proptest_config(config(3000))]

    #[test]
    fn dynamodb_items_unwrap_to_their_plain_values(
        attrs in prop::collection::btree_map("[a-z]{1,6}", dynamo_value(), 0..6),
        id in "[a-z0-9]{1,8}",
    ) {
        let mut plain = serde_json::Map::new();
        let mut typed = serde_json::Map::new();
        plain.insert("id".into(), json!(id));
        typed.insert("id".into(), json!({ "S": id }));
        for (k, (p, t)) in attrs {
            plain.insert(format!("a_{k}"), p);
            typed.insert(format!("a_{k}"), t);
        }
        let line = json!({ "Item": typed }).to_string();
        let (key, key_value, value) = dynamodb::decode_item(line.as_bytes(), &["id".to_string()])
            .map_err(|(m, _)| TestCaseError::fail(m))?;
        prop_assert_eq!(key, id.clone());
        prop_assert_eq!(key_value, json!(id));
        prop_assert_eq!(value, Value::Object(plain));
    }

    #[test]
    fn a_bad_dynamodb_attribute_is_named_by_its_path(
        outer in "[a-z]{1,6}",
        inner in "[a-z]{1,6}",
        nested in any::<bool>(),
        bad in bad_attr(),
    ) {
        let attr = if nested { json!({ "M": { inner.clone(): bad } }) } else { bad };
        let line = json!({ "Item": { "id": {"S": "1"}, outer.clone(): attr } }).to_string();
        let err = dynamodb::decode_item(line.as_bytes(), &["id".to_string()]);
        let (message, _) = match err {
            Ok(v) => return Err(TestCaseError::fail(format!("accepted {v:?}"))),
            Err(e) => e,
        };
        let want = if nested {
            format!("attribute `{outer}`: attribute `{inner}`: ")
        } else {
            format!("attribute `{outer}`: ")
        };
        prop_assert!(message.starts_with(&want), "{message}");
    }

    #[test]
    fn dynamodb_lines_of_any_shape_are_errors_not_panics(
        doc in prop_oneof![
            mutated(dynamo_value().prop_map(|(_, t)| json!({"Item": {"id": {"S": "k"}, "v": t}}).to_string())),
            mutated(json_text()),
            deep(),
        ],
    ) {
        if let Err((message, _)) = dynamodb::decode_item(&doc, &["id".to_string()]) {
            prop_assert!(!message.is_empty());
        }
    }
}

// ---------------------------------------------------------------------------
// SQL Server connection specs

/// Text of the characters ADO.NET strings and URLs are made of.
fn conn_text() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            8 => prop::sample::select(
                b"abcSERVER=;,{}\"' :@/?%&\\.19tcpuseridpassworddatabaseencrypttrue"
                    .iter()
                    .map(|&b| char::from(b))
                    .collect::<Vec<_>>()
            ),
            1 => any::<char>(),
        ],
        0..80,
    )
    .prop_map(|c| c.into_iter().collect())
}

/// A password: printable ASCII (the ADO.NET lexer takes no other), with the
/// characters that need quoting, and a marker that nothing else contains.
fn password() -> impl Strategy<Value = String> {
    "[ -|~]{0,16}".prop_map(|p| format!("S3CR{p}T"))
}

const URL_KEEP: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~";

fn pct(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if URL_KEEP.contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn ado_or_url() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        mutated((password(), 0u16..=65535).prop_map(|(p, port)| format!(
            "server=tcp:h,{port};user id=u;password={{{}}};database=d;encrypt=true",
            p.replace('}', "")
        ))),
        mutated(
            (password(), 0u16..=65535)
                .prop_map(|(p, port)| format!("mssql://u:{}@h:{port}/db?encrypt=true", pct(&p)))
        ),
        conn_text().prop_map(String::into_bytes),
        conn_text().prop_map(|t| format!("mssql://{t}").into_bytes()),
    ]
}

proptest! {
    #![proptest_config(config(3000))]

    #[test]
    fn connection_specs_are_parsed_or_refused_never_a_panic(
        text in ado_or_url(),
        trust in any::<bool>(),
    ) {
        let text = String::from_utf8_lossy(&text);
        match ConnectSpec::parse(&text, trust) {
            Ok(spec) => {
                // Building tiberius's Config must not panic either (it does on
                // trust_cert with trust_cert_ca).
                let _ = spec.config();
                let shown = spec.display();
                prop_assert!(shown.starts_with("mssql://"), "{shown}");
                if let Some(p) = spec.password.as_deref().filter(|p| p.len() > 3) {
                    prop_assert!(!shown.contains(p), "{shown}");
                }
            }
            Err(e) => {
                let e = e.to_string();
                prop_assert!(e.starts_with("SQL Server url: "), "{e}");
            }
        }
    }

    #[test]
    fn ado_passwords_in_braces_come_back_exactly(
        p in password().prop_map(|p| p.replace('}', "")),
        user in "[a-z]{1,8}",
        port in 1u16..=65535,
    ) {
        let s = format!("Server=tcp:db.example,{port};User ID={user};Password={{{p}}};Database=legacy");
        let spec = ConnectSpec::parse(&s, false).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(spec.password.as_deref(), Some(p.as_str()));
        prop_assert_eq!(spec.user.as_deref(), Some(user.as_str()));
        prop_assert_eq!(spec.port, Some(port));
        prop_assert!(!spec.display().contains("S3CR"));
        let shown = format!("{:?}", spec);
        prop_assert!(!shown.contains("S3CR"));
    }

    #[test]
    fn url_passwords_are_percent_decoded_exactly_and_never_shown(
        p in prop_oneof![password(), any::<String>().prop_map(|s| format!("S3CR{s}T"))],
        user in "[a-z]{1,8}",
        db in "[a-z]{0,8}",
        port in 1u16..=65535,
    ) {
        let url = format!("mssql://{user}:{}@db.example:{port}/{db}?encrypt=DANGER_PLAINTEXT", pct(&p));
        let spec = ConnectSpec::parse(&url, false).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(spec.password.as_deref(), Some(p.as_str()));
        prop_assert!(!spec.display().contains("S3CR"));
        prop_assert!(!crate::redact_url(&url).contains("S3CR"), "{}", crate::redact_url(&url));
        // A broken escape in the password: named, and the password not shown.
        let broken = url.replacen("S3CR", "S3CR%z", 1);
        let e = ConnectSpec::parse(&broken, false).map(|_| ()).map_err(|e| e.to_string());
        prop_assert!(e.as_ref().is_err_and(|e| e.contains("password") && !e.contains("S3CR")), "{e:?}");
    }

    #[test]
    fn bad_ado_values_name_their_key(
        key in prop::sample::select(vec!["encrypt", "TrustServerCertificate", "Integrated Security"]),
        value in "[a-z0-9]{1,8}".prop_filter("not a boolean", |v| !matches!(v.as_str(), "true" | "false" | "yes" | "no" | "sspi")),
        port in "[0-9]{0,3}[a-z!][0-9]{0,3}",
    ) {
        let e = ConnectSpec::parse(&format!("server=h,1433;{key}={value}"), false)
            .map(|_| ()).map_err(|e| e.to_string());
        prop_assert!(e.as_ref().is_err_and(|e| e.contains(&format!("{key}={value}"))), "{e:?}");
        let e = ConnectSpec::parse(&format!("server=h,{port};user id=u"), false)
            .map(|_| ()).map_err(|e| e.to_string());
        prop_assert!(e.as_ref().is_err_and(|e| e.contains(&format!("port '{port}'"))), "{e:?}");
    }
}

// ---------------------------------------------------------------------------
// redact_url

/// A password an URL can carry unencoded: anything printable but `@` (a raw
/// `@` followed by a `/` makes the URL ambiguous; drivers read it as the host).
fn raw_url_password() -> impl Strategy<Value = String> {
    "[!-?A-~]{0,12}".prop_map(|p| format!("S3CR{p}T"))
}

proptest! {
    #![proptest_config(config(3000))]

    #[test]
    fn redact_url_never_panics(text in prop_oneof![conn_text(), any::<String>()]) {
        let _ = crate::redact_url(&text);
        let _ = crate::redact_url(&format!("postgres://{text}"));
    }

    #[test]
    fn a_password_never_survives_redaction(
        scheme in prop::sample::select(vec!["postgres", "postgresql", "mysql", "mariadb", "mssql", "sqlserver"]),
        user in "[a-z]{1,8}",
        p in prop_oneof![raw_url_password(), any::<String>().prop_map(|s| pct(&format!("S3CR{s}T")))],
        host in "[a-z0-9.]{1,12}",
        port in prop::option::of(1u16..=65535),
        db in "[a-z]{0,8}",
        params in prop::collection::vec(("[a-z_]{1,8}", "[a-z0-9]{0,6}"), 0..3),
        in_query in prop::sample::select(vec!["", "password", "PassWord", "sslpassword", "pwd"]),
        query_pw in "[!-%'-~]{0,12}".prop_map(|p| format!("S3CR{p}T")),
    ) {
        let port = port.map(|p| format!(":{p}")).unwrap_or_default();
        let mut query: Vec<String> = params.iter().map(|(k, v)| format!("{k}={v}")).collect();
        if !in_query.is_empty() {
            // Anything but `&`, which ends the parameter.
            query.push(format!("{in_query}={query_pw}"));
        }
        let q = if query.is_empty() { String::new() } else { format!("?{}", query.join("&")) };
        let url = format!("{scheme}://{user}:{p}@{host}{port}/{db}{q}");
        let red = crate::redact_url(&url);
        prop_assert!(!red.contains("S3CR"), "{url} -> {red}");
        prop_assert!(red.starts_with(&format!("{scheme}://{user}:***@{host}")), "{url} -> {red}");
        // Without user info, the query's password is hidden all the same.
        let url = format!("{scheme}://{host}{port}/{db}{q}");
        let red = crate::redact_url(&url);
        prop_assert!(!red.contains("S3CR"), "{url} -> {red}");
        // ADO.NET: the password key in any case, braced or quoted values.
        let value = if p.contains('}') { format!("\"{}\"", p.replace('"', "\"\"")) } else { format!("{{{p}}}") };
        let ado = format!("Server=tcp:{host},1433;User ID={user};{};Database={db}",
            if in_query.is_empty() { format!("Password={value}") } else { format!("{in_query}={value}") });
        let red = crate::redact_url(&ado);
        prop_assert!(!red.contains("S3CR"), "{ado} -> {red}");
    }
}
