//! Why this file is over 600 lines: the properties share one corpus of mappings and
//! one bounded runner (2 MiB stack, time limit); split, each part would repeat them.
//! Property tests of the parsers of outside input in the mapping area: mapping
//! files ([`Mapping::from_str`], [`Mapping::load`]) and expressions (the lexer
//! and parser of [`super::expr`], [`compile`], and evaluation of what compiles).
//!
//! Inputs: random text, random TOML-ish and expression-ish token soup,
//! mutations (deleted, duplicated, swapped, replaced and inserted characters or
//! bytes, truncation) of the shipped mappings under `mappings/`, of the mappings
//! the tests write (string literals of `tests/it/*.rs` and `src/**/*.rs` that hold
//! a `[[tables]]`) and of valid expressions, and very long and deeply nested input.
//!
//! Properties: no panic, no hang (every case runs on a thread with a 2 MiB stack,
//! the size of a tokio or rayon worker's, and must finish within [`LIMIT`]),
//! and every error says where it is: a mapping error carries `file:line:column`
//! inside the file, an expression error a byte offset inside the expression (on
//! a character boundary).
//!
//! `CUTOVER_PROPTEST_CASES=N` runs N cases per property instead of the defaults.
//!
//! (Over 600 lines on purpose: one test module whose strategies, corpus and
//! properties share their helpers; it is the guard of the mapping refactor and
//! is kept in one file so it can be read, and run, as one.)

use super::compile::{compile, Env};
use super::eval::Scope;
use super::expr::parse;
use super::{Mapping, MappingError};
use crate::record::FileInfo;
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::OnceLock;
use std::time::Duration;

/// The time one case may take (a debug build on a busy machine).
const LIMIT: Duration = Duration::from_secs(10);

/// The configuration of a property: `default_cases` cases, or
/// `CUTOVER_PROPTEST_CASES` when it is set; no failure files are written.
fn config(default_cases: u32) -> Config {
    let cases = std::env::var("CUTOVER_PROPTEST_CASES")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default_cases);
    Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    }
}

/// Run one property over a strategy.
fn check<S: Strategy>(
    default_cases: u32,
    strategy: S,
    property: impl Fn(S::Value) -> Result<(), TestCaseError>,
) where
    S::Value: std::fmt::Debug,
{
    let mut runner = TestRunner::new(config(default_cases));
    if let Err(e) = runner.run(&strategy, property) {
        panic!("{e}");
    }
}

/// Run `f` on a 2 MiB stack; a panic, or not finishing within [`LIMIT`], fails
/// the case. `f` returns the reason a property does not hold.
fn bounded(
    what: &str,
    f: impl FnOnce() -> Result<(), String> + Send + 'static,
) -> Result<(), TestCaseError> {
    let (tx, rx) = mpsc::channel();
    std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(move || {
            let _ = tx.send(f());
        })
        .map_err(|e| TestCaseError::fail(format!("cannot start a thread: {e}")))?;
    let short: String = what.chars().take(300).collect();
    match rx.recv_timeout(LIMIT) {
        Ok(Ok(())) => Ok(()),
        Ok(Err(reason)) => Err(TestCaseError::fail(format!("{reason}\n  input: {short:?}"))),
        Err(RecvTimeoutError::Timeout) => Err(TestCaseError::fail(format!(
            "did not finish within {LIMIT:?}\n  input: {short:?}"
        ))),
        Err(RecvTimeoutError::Disconnected) => {
            Err(TestCaseError::fail(format!("panicked\n  input: {short:?}")))
        }
    }
}

// ---------------------------------------------------------------------------
// Expressions

/// Valid expressions to mutate (the registry's examples are added to these).
const EXPRESSIONS: &[&str] = &[
    "value.a | int | default(0)",
    "value.a.b[0].c | default(0) | int",
    "value['odd key'][2] | text",
    "key",
    "item.accountId | required",
    "index",
    "file.user_id",
    "file.path | lower",
    "-1.5e3",
    "'it\\'s' | trim",
    "\"double\" | upper",
    "null | default(true)",
    "coalesce(value.z, value.missing, 'x')",
    "value.n | format('n={} of {}', 'y')",
    "value.s | map({'Draft': 'draft', 'Sent': 'sent'}, 'x')",
    "value.s | map({1: value.a | int, 'b': null})",
    "object(legacy_id = value.Id | int, migrated_from = 'v2', nested = object(a = 1))",
    "value.owner | lookup('users') | default('nobody')",
    "'a1b22' | regex_replace('[0-9]+', '#')",
    "'\\d+' | regex_replace('\\\\d', 'x')",
    "'31/12/2023 23:59' | timestamp('%d/%m/%Y %H:%M')",
    "1714797871000 | timestamp('epoch_ms')",
    "value.d | date('%d/%m/%Y')",
    "value.n | uuid5('pliers') | text",
    "'AP8Q' | from_base64",
    "'0x00ff10' | from_hex | len",
    "concat(value.first, ' ', value.last) | truncate(10)",
    "value.tags | split(',') | len | gt(2) | not",
    "eq(value.a, 1.0)",
    "(value.a | trim) | lower",
    "value.price | decimal | nullif(0)",
];

fn expressions() -> &'static [String] {
    static ALL: OnceLock<Vec<String>> = OnceLock::new();
    ALL.get_or_init(|| {
        let mut all: Vec<String> = EXPRESSIONS.iter().map(|s| s.to_string()).collect();
        all.extend(super::functions::all().map(|f| f.example.to_string()));
        all
    })
}

/// Tokens of the expression language, for token soup.
const TOKENS: &[&str] = &[
    "value",
    "key",
    "item",
    "index",
    "file",
    "path",
    "user_id",
    ".",
    "a",
    "b",
    "[",
    "]",
    "0",
    "1",
    "-2.5",
    "1e400",
    "99999999999999999999",
    "|",
    "(",
    ")",
    ",",
    "=",
    "{",
    "}",
    ":",
    "'x'",
    "'{}'",
    "'%d/%m/%Y'",
    "'epoch'",
    "'('",
    "\"q\"",
    "true",
    "null",
    "int",
    "text",
    "default",
    "coalesce",
    "required",
    "map",
    "object",
    "format",
    "concat",
    "lookup",
    "'users'",
    "regex_replace",
    "truncate",
    "date",
    "timestamp",
    "uuid5",
    "split",
    "not",
    "eq",
    "gt",
    " ",
    "  ",
    "é",
    "\\",
];

/// One edit of a text; the indexes are taken modulo the length at that point.
#[derive(Debug, Clone)]
enum Edit {
    Delete(Index, usize),
    Duplicate(Index, usize),
    Swap(Index, Index),
    Replace(Index, char),
    Insert(Index, char),
    Truncate(Index),
}

fn edit() -> impl Strategy<Value = Edit> {
    let ch = prop_oneof![
        3 => proptest::char::range(' ', '~'),
        1 => any::<char>(),
        1 => prop::sample::select(vec!['\n', '"', '\'', '\\', '{', '}', '[', ']', '|', '=', 'é', '\u{0}']),
    ];
    prop_oneof![
        (any::<Index>(), 1..8usize).prop_map(|(i, n)| Edit::Delete(i, n)),
        (any::<Index>(), 1..16usize).prop_map(|(i, n)| Edit::Duplicate(i, n)),
        (any::<Index>(), any::<Index>()).prop_map(|(i, j)| Edit::Swap(i, j)),
        (any::<Index>(), ch.clone()).prop_map(|(i, c)| Edit::Replace(i, c)),
        (any::<Index>(), ch).prop_map(|(i, c)| Edit::Insert(i, c)),
        any::<Index>().prop_map(Edit::Truncate),
    ]
}

/// Apply edits to a sequence (characters of a text, or bytes of a file).
fn apply<T: Clone>(mut s: Vec<T>, edits: &[Edit], from_char: impl Fn(char) -> Vec<T>) -> Vec<T> {
    for e in edits {
        let len = s.len();
        let at = |i: &Index| if len == 0 { 0 } else { i.index(len) };
        match e {
            Edit::Delete(i, n) if len > 0 => {
                let a = at(i);
                s.drain(a..(a + n).min(len));
            }
            Edit::Duplicate(i, n) if len > 0 => {
                let a = at(i);
                let piece: Vec<T> = s[a..(a + n).min(len)].to_vec();
                s.splice(a..a, piece);
            }
            Edit::Swap(i, j) if len > 0 => s.swap(at(i), at(j)),
            Edit::Replace(i, c) if len > 0 => {
                let a = at(i);
                s.splice(a..a + 1, from_char(*c));
            }
            Edit::Insert(i, c) => {
                let a = if len == 0 { 0 } else { i.index(len + 1) };
                s.splice(a..a, from_char(*c));
            }
            Edit::Truncate(i) if len > 0 => s.truncate(at(i)),
            _ => {}
        }
    }
    s
}

fn edit_text(s: &str, edits: &[Edit]) -> String {
    apply(s.chars().collect(), edits, |c| vec![c])
        .into_iter()
        .collect()
}

fn edit_bytes(s: &[u8], edits: &[Edit]) -> Vec<u8> {
    apply(s.to_vec(), edits, |c| c.to_string().into_bytes())
}

/// Very long or deeply nested expressions.
fn deep_expression() -> impl Strategy<Value = String> {
    (0..9u8, 1..4000usize).prop_map(|(shape, n)| match shape {
        0 => format!("{}value{}", "(".repeat(n), ")".repeat(n)),
        1 => format!("value{}", " | trim".repeat(n)),
        2 => format!("{}'x'{}", "concat(".repeat(n), ")".repeat(n)),
        3 => format!(
            "value | {}'a'{}",
            "map({'k': ".repeat(n),
            ", 'd')".repeat(n)
        ),
        4 => format!("{}1{}", "{'k': ".repeat(n), "}".repeat(n)),
        5 => format!("value{}", ".a[0]".repeat(n)),
        6 => format!("'{}'", "é\\\\".repeat(n)),
        7 => "(".repeat(n),
        _ => format!("{}value", "object(a = ".repeat(n)),
    })
}

fn any_expression() -> impl Strategy<Value = String> {
    let soup = prop::collection::vec(prop::sample::select(TOKENS.to_vec()), 0..40)
        .prop_map(|t| t.concat());
    let mutated = (
        prop::sample::select(expressions().to_vec()),
        prop::collection::vec(edit(), 1..5),
    )
        .prop_map(|(s, e)| edit_text(&s, &e));
    prop_oneof![
        3 => mutated,
        3 => soup,
        2 => "[a-z_.|(),'\"\\[\\]{}:= 0-9%\\\\-]{0,80}",
        1 => prop::collection::vec(any::<char>(), 0..80).prop_map(String::from_iter),
        1 => deep_expression(),
    ]
}

/// The environments an expression is compiled in.
fn envs() -> [Env; 3] {
    [
        Env::default(),
        Env {
            in_for_each: true,
            file_captures: Some(vec!["user_id".into()]),
            vars: crate::mapping::compile::Vars(crate::mapping::functions::tests::test_vars),
        },
        Env {
            in_for_each: false,
            file_captures: Some(Vec::new()),
            ..Env::default()
        },
    ]
}

/// Parse, compile and evaluate one expression; the reason a property fails.
fn expression_holds(src: &str) -> Result<(), String> {
    let inside = |at: usize, what: &str, message: &str| {
        if at <= src.len() && src.is_char_boundary(at) {
            Ok(())
        } else {
            Err(format!(
                "{what} error at byte {at}, outside the input of {} bytes or inside a character: {message}",
                src.len()
            ))
        }
    };
    let ast = match parse(src) {
        Ok(a) => a,
        Err(e) => {
            if e.message.is_empty() {
                return Err("a syntax error without a message".into());
            }
            return inside(e.at, "syntax", &e.message);
        }
    };
    let value = json!({"a": {"b": [10, 20]}, "n": "42", "s": " Hello ", "z": null, "tags": "x,y"});
    let item = json!({"accountId": "a-1"});
    let key = json!("k1");
    let file = FileInfo {
        path: "users/7/log.json".into(),
        captures: vec![("user_id".into(), "7".into())],
    };
    for env in envs() {
        match compile(&ast, &env) {
            Err(e) => inside(e.at, "compile", &e.message)?,
            Ok(expr) => {
                let _ = expr.kind();
                let _ = expr.lookups();
                let scope = Scope {
                    key: &key,
                    value: &value,
                    item: Some(&item),
                    index: Some(3),
                    file: &file,
                    lookup: None,
                };
                let _ = expr.eval(&scope);
            }
        }
    }
    Ok(())
}

#[test]
fn expressions_never_panic_and_errors_point_inside() {
    check(4000, any_expression(), |src| {
        bounded(&src.clone(), move || expression_holds(&src))
    });
}

#[test]
fn valid_expressions_compile() {
    // The unmutated seeds hold (and compile), so mutations start from real input.
    for src in expressions() {
        let ast = parse(src).unwrap_or_else(|e| panic!("{src}: {e}"));
        let env = &envs()[1];
        compile(&ast, env).unwrap_or_else(|e| panic!("{src}: {}", e.message));
        expression_holds(src).unwrap();
    }
}

// ---------------------------------------------------------------------------
// Mapping files

/// The repository's mappings: the shipped ones and the ones the tests write.
fn mappings() -> &'static [(PathBuf, String)] {
    static ALL: OnceLock<Vec<(PathBuf, String)>> = OnceLock::new();
    ALL.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut out = Vec::new();
        let mut files = Vec::new();
        walk(&root.join("mappings"), &mut files);
        for f in files
            .iter()
            .filter(|f| f.extension().is_some_and(|e| e == "toml"))
        {
            if let Ok(t) = std::fs::read_to_string(f) {
                out.push((f.clone(), t));
            }
        }
        let mut sources = Vec::new();
        walk(&root.join("tests"), &mut sources);
        walk(&root.join("src"), &mut sources);
        let this = root.join("src/mapping/proptests.rs");
        let rust = sources
            .iter()
            .filter(|f| f.extension().is_some_and(|e| e == "rs") && **f != this);
        for f in rust {
            if let Ok(t) = std::fs::read_to_string(f) {
                for m in string_literals(&t) {
                    if m.contains("[[tables]]") {
                        out.push((f.with_extension("toml"), m));
                    }
                }
            }
        }
        out
    })
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            walk(&p, out);
        } else {
            out.push(p);
        }
    }
}

/// The string literals of Rust source (raw `r#"..."#` and plain `"..."` with
/// the common escapes undone), roughly: enough to collect mapping texts.
fn string_literals(src: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = src;
    while let Some(i) = rest.find('"') {
        let raw = rest[..i].ends_with("r#");
        rest = &rest[i + 1..];
        if raw {
            if let Some(j) = rest.find("\"#") {
                out.push(rest[..j].to_string());
                rest = &rest[j + 2..];
            }
            continue;
        }
        let mut s = String::new();
        let mut chars = rest.char_indices();
        let mut end = rest.len();
        while let Some((k, c)) = chars.next() {
            match c {
                '"' => {
                    end = k + 1;
                    break;
                }
                '\\' => match chars.next() {
                    Some((_, 'n')) => s.push('\n'),
                    Some((_, 't')) => s.push('\t'),
                    Some((_, '\n')) => {}
                    Some((_, o)) => s.push(o),
                    None => {}
                },
                o => s.push(o),
            }
        }
        out.push(s);
        rest = &rest[end.min(rest.len())..];
    }
    out
}

/// Pieces of TOML-ish lines, for line soup.
const LINES: &[&str] = &[
    "name = \"t\"",
    "name = \"bad name!\"",
    "description = \"d\"",
    "schema = \"schema\"",
    "redact = [\"secret\", \"a.b\"]",
    "[source]",
    "kind = \"kv\"",
    "kind = \"json\"",
    "kind = \"postgres\"",
    "kind = \"bogus\"",
    "path = \"data/{user_id}/x.jsonl\"",
    "format = \"dynamodb\"",
    "url = \"postgres://h/db\"",
    "table = \"t\"",
    "query = \"select 1\"",
    "key = [\"id\"]",
    "key = []",
    "[[tables]]",
    "for_each = \"value.items\"",
    "filter = \"value.deleted | not\"",
    "on_conflict = \"ignore\"",
    "on_conflict = \"replace\"",
    "columns.id = \"value.id | required\"",
    "columns.n = \"item.n | int\"",
    "columns.x = 'file.user_id'",
    "columns.y = \"\"\"value.a\n| trim\"\"\"",
    "columns.z = \"value.s | map({'A': 'a'})\"",
    "columns.w = \"'\\u00e9' | bogus\"",
    "[keymap]",
    "legacy = \"value.id\"",
    "new = \"value.id | uuid5('x')\"",
    "[[checks]]",
    "sql = \"select 1\"",
    "expect = 1",
    "x = [[1], {a = 2}]",
    "a.b.c = 1",
    "= 1",
    "[",
    "\"",
    "'''",
    "# comment",
    "",
];

fn toml_soup() -> impl Strategy<Value = String> {
    let line = prop_oneof![
        8 => prop::sample::select(LINES.to_vec()).prop_map(str::to_string),
        2 => any_expression().prop_map(|e| format!("columns.e = {}", toml_quote(&e))),
        1 => prop::collection::vec(any::<char>(), 0..40).prop_map(String::from_iter),
    ];
    prop::collection::vec(line, 0..30).prop_map(|l| l.join("\n"))
}

/// A TOML basic string holding `s`.
fn toml_quote(s: &str) -> String {
    let mut out = String::from('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Deeply nested or very long TOML.
fn deep_toml() -> impl Strategy<Value = String> {
    (0..7u8, 1..4000usize).prop_map(|(shape, n)| match shape {
        0 => format!("x = {}{}", "[".repeat(n), "]".repeat(n)),
        1 => format!("x = {}1{}", "{a = ".repeat(n), "}".repeat(n)),
        2 => format!("{}a = 1", "a.".repeat(n)),
        3 => format!("[{}a]\nb = 1", "a.".repeat(n)),
        4 => format!("x = {}", "[".repeat(n)),
        5 => {
            let base = mappings().first().map_or("", |(_, t)| t.as_str());
            format!("{base}\n{}", "columns.c = \"value\"\n".repeat(n / 10 + 1))
        }
        _ => format!("name = \"{}\"", "é".repeat(n)),
    })
}

fn mapping_text() -> impl Strategy<Value = String> {
    let corpus = mappings()
        .iter()
        .map(|(_, t)| t.clone())
        .collect::<Vec<_>>();
    let corpus = if corpus.is_empty() {
        vec![String::new()]
    } else {
        corpus
    };
    let mutated = (
        prop::sample::select(corpus),
        prop::collection::vec(edit(), 1..6),
    )
        .prop_map(|(s, e)| edit_text(&s, &e));
    prop_oneof![
        5 => mutated,
        3 => toml_soup(),
        1 => deep_toml(),
        1 => prop::collection::vec(any::<char>(), 0..200).prop_map(String::from_iter),
    ]
}

/// Where a diagnostic points must be inside `text`: its line exists and its
/// column is at most one past that line's end.
fn diagnostics_hold(file: &Path, text: &str, err: &MappingError) -> Result<(), String> {
    let diags = match err {
        MappingError::Invalid(d) => d,
        MappingError::Read { .. } => return Err(format!("unexpected read error: {err}")),
    };
    if diags.is_empty() {
        return Err("an invalid mapping without a diagnostic".into());
    }
    for d in diags {
        if d.file != file {
            return Err(format!(
                "diagnostic names {} instead of {}",
                d.file.display(),
                file.display()
            ));
        }
        let line = text.split('\n').nth(d.line.wrapping_sub(1));
        let fits = line.is_some_and(|l| d.column >= 1 && d.column <= l.chars().count() + 1);
        if !fits {
            return Err(format!(
                "diagnostic {}:{} is outside the text: {d}",
                d.line, d.column
            ));
        }
        let prefix = format!("{}:{}:{}: ", file.display(), d.line, d.column);
        if !d.to_string().starts_with(&prefix) || d.message.is_empty() {
            return Err(format!("diagnostic does not start with {prefix:?}: {d}"));
        }
    }
    Ok(())
}

#[test]
fn mapping_text_never_panics_and_errors_have_file_line_column() {
    check(2500, mapping_text(), |text| {
        bounded(&text.clone(), move || {
            let file = Path::new("maps/m.toml");
            match Mapping::from_str(file, &text) {
                Ok(_) => Ok(()),
                Err(e) => diagnostics_hold(file, &text, &e),
            }
        })
    });
}

/// A repository mapping that loads, with one column's expression replaced: the text, the
/// (1-based) line of that column and the expression.
fn expression_in_mapping() -> impl Strategy<Value = (String, usize, String)> {
    let corpus: Vec<String> = mappings()
        .iter()
        .filter(|(p, t)| {
            t.lines().any(|l| l.starts_with("columns.")) && Mapping::from_str(p, t).is_ok()
        })
        .map(|(_, t)| t.clone())
        .collect();
    (
        prop::sample::select(corpus),
        any::<Index>(),
        any_expression(),
        any::<bool>(),
    )
        .prop_map(|(text, which, expr, literal)| {
            let lines: Vec<&str> = text.split('\n').collect();
            let columns: Vec<usize> = (0..lines.len())
                .filter(|i| lines[*i].starts_with("columns."))
                .collect();
            let at = columns[which.index(columns.len())];
            let name = lines[at]
                .split('=')
                .next()
                .unwrap_or("columns.x ")
                .trim_end();
            let quoted = if literal && !expr.chars().any(|c| c == '\'' || c.is_control()) {
                format!("'{expr}'")
            } else {
                toml_quote(&expr)
            };
            let mut out: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
            out[at] = format!("{name} = {quoted}");
            (out.join("\n"), at + 1, expr)
        })
}

#[test]
fn expression_errors_in_a_mapping_point_at_their_line() {
    check(1500, expression_in_mapping(), |(text, line, expr)| {
        bounded(&expr.clone(), move || {
            let file = Path::new("maps/m.toml");
            let Err(e) = Mapping::from_str(file, &text) else {
                return Ok(());
            };
            diagnostics_hold(file, &text, &e)?;
            // A syntax error of the expression is reported on its line, at the
            // column of the offending character as written in the file.
            if let Err(syntax) = parse(&expr) {
                let written = text.split('\n').nth(line - 1).unwrap_or_default();
                let open = written.find(" = ").map_or(0, |i| i + 3);
                let before = &expr[..syntax.at];
                let escaped: usize = if written[open..].starts_with('\'') {
                    before.chars().count()
                } else {
                    before
                        .chars()
                        .map(|c| toml_quote(&c.to_string()).chars().count() - 2)
                        .sum()
                };
                let column = written[..open].chars().count() + 1 + escaped + 1;
                let found = e.diagnostics().iter().any(|d| {
                    (d.line, d.column) == (line, column) && d.message.contains("syntax error")
                });
                if !found {
                    return Err(format!(
                        "no syntax error at {line}:{column} ({}): {e}",
                        syntax.message
                    ));
                }
            }
            Ok(())
        })
    });
}

#[test]
fn mapping_files_never_panic_and_errors_name_the_file() {
    let dir = std::env::temp_dir().join(format!("cutover-proptest-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temporary directory");
    let corpus: Vec<Vec<u8>> = mappings()
        .iter()
        .map(|(_, t)| t.clone().into_bytes())
        .collect();
    let strategy = (
        prop::sample::select(corpus),
        prop::collection::vec(edit(), 1..6),
        prop::collection::vec(any::<u8>(), 0..4),
    )
        .prop_map(|(s, e, junk)| {
            let mut b = edit_bytes(&s, &e);
            b.extend(junk);
            b
        });
    let n = std::sync::atomic::AtomicUsize::new(0);
    check(300, strategy, |bytes| {
        let file = dir.join(format!(
            "m{}.toml",
            n.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        std::fs::write(&file, &bytes).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let shown = String::from_utf8_lossy(&bytes).into_owned();
        let f = file.clone();
        let r = bounded(&shown, move || match Mapping::load(&f) {
            Ok(_) => Ok(()),
            // Only bytes that are not UTF-8 make a file unreadable; the error names the file.
            Err(e @ MappingError::Read { .. }) => {
                if std::str::from_utf8(&bytes).is_ok()
                    || !e.to_string().contains(&*f.to_string_lossy())
                {
                    Err(format!("unexpected read error: {e}"))
                } else {
                    Ok(())
                }
            }
            Err(e) => diagnostics_hold(&f, &String::from_utf8_lossy(&bytes), &e),
        });
        let _ = std::fs::remove_file(&file);
        r
    });
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_corpus_is_the_repository_s_mappings() {
    let all = mappings();
    assert!(
        all.iter()
            .filter(|(p, _)| p.starts_with(Path::new(env!("CARGO_MANIFEST_DIR")).join("mappings")))
            .count()
            >= 20
    );
    assert!(
        all.iter()
            .any(|(p, _)| p.to_string_lossy().contains("tests")),
        "no mapping from tests/"
    );
    // A shipped mapping loads as it is.
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("mappings/forge_signatures.toml");
    Mapping::load(&shipped).unwrap();
}
