//! Compiled expressions and the built-in functions.
//!
//! [`compile`] turns a parsed [`Ast`] into an [`Expr`] once, at load time:
//! function names, arities, constant arguments (formats, regexes, maps) and path
//! roots are checked there, so evaluation only does the work.

use super::expr::{Arg, Ast, Seg};
use crate::record::FileInfo;
use bigdecimal::BigDecimal;
use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use regex::Regex;
use serde_json::{Map, Number, Value};
use sha2::{Digest, Sha256};
use std::borrow::Cow;
use std::str::FromStr;

/// What a compiled expression may refer to; checked at compile time.
#[derive(Debug, Clone, Default)]
pub struct Env {
    /// Inside a `for_each` table: `item` and `index` exist.
    pub in_for_each: bool,
    /// Names captured by the source's path pattern (`file.NAME`); `None` when the
    /// source has no files (SQL sources), so `file.*` can never exist.
    pub file_captures: Option<Vec<String>>,
}

/// The static type an expression produces, for load-time checks against columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Any,
    Int,
    Float,
    Decimal,
    Bool,
    Text,
    Date,
    Timestamp,
    Uuid,
    Array,
    Object,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Root {
    Key,
    Value,
    Item,
    Index,
    FilePath,
}

#[derive(Debug, Clone)]
pub enum Expr {
    Literal(Value),
    Path {
        root: Root,
        segs: Vec<Seg>,
    },
    /// `file.NAME`: a capture of the path pattern.
    Capture(String),
    Call(Box<Call>),
}

#[derive(Debug, Clone)]
pub struct Call {
    pub func: Func,
    pub args: Vec<Expr>,
}

#[derive(Debug, Clone)]
pub enum TimeFormat {
    /// ISO 8601 / RFC 3339 / RFC 2822 / common SQL forms; integers are epoch seconds.
    Auto,
    EpochSeconds,
    EpochMillis,
    Pattern(String),
}

#[derive(Debug, Clone)]
pub enum Func {
    Required,
    Default,
    Coalesce,
    Nullif,
    Int,
    Float,
    Decimal,
    Bool,
    Text,
    Json,
    Date(TimeFormat),
    Timestamp(TimeFormat),
    Uuid,
    Uuid5(uuid::Uuid),
    Sha256,
    /// `from_base64` / `from_hex`: decode text into bytes (an array of byte
    /// values, which a bytea/blob column stores as they are).
    FromBase64,
    FromHex,
    Trim,
    Lower,
    Upper,
    Replace,
    RegexReplace(Regex),
    Slug,
    Truncate(usize),
    Split,
    Concat,
    Format(Vec<String>),
    Map {
        table: Vec<(String, Expr)>,
        has_default: bool,
    },
    Object(Vec<String>),
    Len,
    Not,
    Eq,
    Ne,
    Gt,
    Lt,
    /// `lookup('mapping')`: the new key recorded by an earlier mapping.
    Lookup(String),
}

/// The names every function is known by, for "did you mean" hints.
pub const FUNCTION_NAMES: &[&str] = &[
    "required",
    "default",
    "coalesce",
    "nullif",
    "int",
    "float",
    "decimal",
    "bool",
    "text",
    "json",
    "date",
    "timestamp",
    "uuid",
    "uuid5",
    "sha256",
    "from_base64",
    "from_hex",
    "trim",
    "lower",
    "upper",
    "replace",
    "regex_replace",
    "slug",
    "truncate",
    "split",
    "concat",
    "format",
    "map",
    "object",
    "len",
    "not",
    "eq",
    "ne",
    "gt",
    "lt",
    "lookup",
];

/// A compile error; `at` is a byte offset in the expression.
#[derive(Debug, Clone)]
pub struct CompileError {
    pub at: usize,
    pub message: String,
    pub hint: Option<String>,
}

fn cerr(at: usize, message: impl Into<String>) -> CompileError {
    CompileError {
        at,
        message: message.into(),
        hint: None,
    }
}

/// The scope an expression is evaluated in: one record (and one element of `for_each`).
pub struct Scope<'a> {
    pub key: &'a Value,
    pub value: &'a Value,
    pub item: Option<&'a Value>,
    pub index: Option<usize>,
    pub file: &'a FileInfo,
    /// Resolves `lookup('mapping')`; `None` when the transform has no key map.
    pub lookup: Option<&'a dyn Lookup>,
}

/// Translates a legacy id through the key map of an earlier mapping.
pub trait Lookup: Sync {
    /// The new key, `Ok(None)` when the legacy key is not in the key map, `Err`
    /// when the key map could not be read (then [`Lookup::failure`] says so too).
    fn lookup(&self, mapping: &str, legacy_key: &str) -> Result<Option<Value>, String>;
    /// Fetch many keys at once before a batch is transformed.
    fn prefetch(&self, _mapping: &str, _legacy_keys: &[String]) {}
    /// A key map query that failed for good: the batch must not be written
    /// (its lookups could not be answered) and the run stops.
    fn failure(&self) -> Option<String> {
        None
    }
}

/// Compile a parsed expression.
pub fn compile(ast: &Ast, env: &Env) -> Result<Expr, CompileError> {
    match ast {
        Ast::Literal(v) => Ok(Expr::Literal(v.clone())),
        Ast::Dict(entries) => {
            let mut map = Map::new();
            for (k, v) in entries {
                match v {
                    Ast::Literal(lit) => {
                        map.insert(k.clone(), lit.clone());
                    }
                    _ => {
                        return Err(cerr(
                            0,
                            "a dictionary outside map() may only hold literal values",
                        ))
                    }
                }
            }
            Ok(Expr::Literal(Value::Object(map)))
        }
        Ast::Path { root, segs, at } => compile_path(root, segs, *at, env),
        Ast::Call {
            name,
            piped,
            args,
            at,
        } => compile_call(name, piped.as_deref(), args, *at, env),
    }
}

fn compile_path(root: &str, segs: &[Seg], at: usize, env: &Env) -> Result<Expr, CompileError> {
    let root = match root {
        "key" => Root::Key,
        "value" => Root::Value,
        "item" | "index" if !env.in_for_each => {
            return Err(CompileError {
                at,
                message: format!("`{root}` only exists inside a table with `for_each`"),
                hint: Some("add `for_each = \"value.some_array\"` to the table".into()),
            })
        }
        "item" => Root::Item,
        "index" => {
            if !segs.is_empty() {
                return Err(cerr(at, "`index` is a number and has no fields"));
            }
            Root::Index
        }
        "file" => {
            let captures = match &env.file_captures {
                Some(c) => c,
                None => {
                    return Err(CompileError {
                        at,
                        message: "`file` only exists for file sources (kv, json)".into(),
                        hint: None,
                    })
                }
            };
            return match segs {
                [Seg::Field(f)] if f == "path" => Ok(Expr::Path {
                    root: Root::FilePath,
                    segs: Vec::new(),
                }),
                [Seg::Field(f)] if captures.iter().any(|c| c == f) => Ok(Expr::Capture(f.clone())),
                [Seg::Field(f)] => Err(CompileError {
                    at,
                    message: format!(
                        "`file.{f}` is never set: the source path captures no `{{{f}}}`"
                    ),
                    hint: Some(if captures.is_empty() {
                        "the source path has no {name} captures; `file.path` is available".into()
                    } else {
                        format!(
                            "captured names are: {}; `file.path` is also available",
                            captures.join(", ")
                        )
                    }),
                }),
                _ => Err(cerr(
                    at,
                    "use `file.path` or `file.NAME` for a captured {NAME}",
                )),
            };
        }
        "true" | "false" | "null" => unreachable_literal(at)?,
        other => {
            let is_function = FUNCTION_NAMES.contains(&other);
            return Err(CompileError {
                at,
                message: format!("unknown path root or value `{other}`"),
                hint: Some(if is_function {
                    format!("`{other}` is a function: write `{other}(...)` or `... | {other}`")
                } else {
                    "paths start with key, value, item, index or file; text literals are quoted: 'text'"
                        .into()
                }),
            });
        }
    };
    Ok(Expr::Path {
        root,
        segs: segs.to_vec(),
    })
}

fn unreachable_literal(at: usize) -> Result<Root, CompileError> {
    Err(cerr(at, "a literal cannot have fields"))
}

fn const_text(e: &Expr, at: usize, what: &str) -> Result<String, CompileError> {
    match e {
        Expr::Literal(Value::String(s)) => Ok(s.clone()),
        _ => Err(cerr(at, format!("{what} must be a quoted text literal"))),
    }
}

fn time_format(args: &[Expr], at: usize) -> Result<TimeFormat, CompileError> {
    match args.get(1) {
        None => Ok(TimeFormat::Auto),
        Some(e) => {
            let f = const_text(e, at, "the time format")?;
            Ok(match f.as_str() {
                "epoch" | "epoch_s" | "unix" => TimeFormat::EpochSeconds,
                "epoch_ms" | "unix_ms" => TimeFormat::EpochMillis,
                _ => {
                    if !f.contains('%') {
                        return Err(CompileError {
                            at,
                            message: format!("'{f}' is not a time format"),
                            hint: Some(
                                "use a strftime pattern such as '%d/%m/%Y %H:%M', or 'epoch' / 'epoch_ms'"
                                    .into(),
                            ),
                        });
                    }
                    TimeFormat::Pattern(f)
                }
            })
        }
    }
}

fn compile_call(
    name: &str,
    piped: Option<&Ast>,
    args: &[Arg],
    at: usize,
    env: &Env,
) -> Result<Expr, CompileError> {
    // object(name = expr, ...) keeps the names; every other function takes positional args.
    if name == "object" {
        if piped.is_some() {
            return Err(cerr(at, "object(...) cannot be used after '|'"));
        }
        let mut names = Vec::new();
        let mut exprs = Vec::new();
        for a in args {
            let n = a.name.clone().ok_or_else(|| CompileError {
                at,
                message: "every argument of object() needs a name".into(),
                hint: Some("object(legacy_id = value.Id, migrated_from = 'v2')".into()),
            })?;
            names.push(n);
            exprs.push(compile(&a.value, env)?);
        }
        return Ok(Expr::Call(Box::new(Call {
            func: Func::Object(names),
            args: exprs,
        })));
    }
    if let Some(a) = args.iter().find(|a| a.name.is_some()) {
        return Err(cerr(
            at,
            format!(
                "{name}() takes no named arguments (`{} = ...`)",
                a.name.as_deref().unwrap_or("")
            ),
        ));
    }
    let mut list: Vec<Expr> = Vec::with_capacity(args.len() + 1);
    let piped_expr = match piped {
        Some(p) => Some(compile(p, env)?),
        None => None,
    };
    if name == "format" {
        // format(template, args...): a piped value fills the first placeholder.
        let mut it = args.iter();
        if let Some(t) = it.next() {
            list.push(compile(&t.value, env)?);
        }
        if let Some(p) = piped_expr {
            list.push(p);
        }
        for a in it {
            list.push(compile(&a.value, env)?);
        }
    } else {
        if let Some(p) = piped_expr {
            list.push(p);
        }
        for a in args {
            if name == "map" {
                if let Ast::Dict(_) = a.value {
                    continue; // compiled separately below
                }
            }
            list.push(compile(&a.value, env)?);
        }
    }
    let n = list.len();
    let arity = |min: usize, max: usize| -> Result<(), CompileError> {
        if n < min || n > max {
            let expected = if min == max {
                format!("{min}")
            } else if max == usize::MAX {
                format!("at least {min}")
            } else {
                format!("{min} to {max}")
            };
            return Err(CompileError {
                at,
                message: format!(
                    "{name}() takes {expected} argument(s) counting a piped value, got {n}"
                ),
                hint: None,
            });
        }
        Ok(())
    };
    let func = match name {
        "required" => {
            arity(1, 1)?;
            Func::Required
        }
        "default" => {
            arity(2, 2)?;
            Func::Default
        }
        "coalesce" => {
            arity(1, usize::MAX)?;
            Func::Coalesce
        }
        "nullif" => {
            arity(2, 2)?;
            Func::Nullif
        }
        "int" => {
            arity(1, 1)?;
            Func::Int
        }
        "float" => {
            arity(1, 1)?;
            Func::Float
        }
        "decimal" => {
            arity(1, 1)?;
            Func::Decimal
        }
        "bool" => {
            arity(1, 1)?;
            Func::Bool
        }
        "text" => {
            arity(1, 1)?;
            Func::Text
        }
        "json" => {
            arity(1, 1)?;
            Func::Json
        }
        "date" => {
            arity(1, 2)?;
            Func::Date(time_format(&list, at)?)
        }
        "timestamp" => {
            arity(1, 2)?;
            Func::Timestamp(time_format(&list, at)?)
        }
        "uuid" => {
            arity(1, 1)?;
            Func::Uuid
        }
        "uuid5" => {
            arity(2, 2)?;
            let ns = const_text(&list[1], at, "the uuid5 namespace")?;
            let ns = uuid::Uuid::parse_str(&ns)
                .unwrap_or_else(|_| uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, ns.as_bytes()));
            Func::Uuid5(ns)
        }
        "sha256" => {
            arity(1, 1)?;
            Func::Sha256
        }
        "from_base64" => {
            arity(1, 1)?;
            Func::FromBase64
        }
        "from_hex" => {
            arity(1, 1)?;
            Func::FromHex
        }
        "trim" => {
            arity(1, 1)?;
            Func::Trim
        }
        "lower" => {
            arity(1, 1)?;
            Func::Lower
        }
        "upper" => {
            arity(1, 1)?;
            Func::Upper
        }
        "replace" => {
            arity(3, 3)?;
            Func::Replace
        }
        "regex_replace" => {
            arity(3, 3)?;
            let pat = const_text(&list[1], at, "the regex pattern")?;
            let re = Regex::new(&pat).map_err(|e| CompileError {
                at,
                message: format!("invalid regex '{pat}': {e}"),
                hint: None,
            })?;
            Func::RegexReplace(re)
        }
        "slug" => {
            arity(1, 1)?;
            Func::Slug
        }
        "truncate" => {
            arity(2, 2)?;
            match &list[1] {
                Expr::Literal(Value::Number(n)) if n.as_u64().is_some() => {
                    Func::Truncate(n.as_u64().unwrap_or(0) as usize)
                }
                _ => return Err(cerr(at, "truncate(n) needs a whole number literal")),
            }
        }
        "split" => {
            arity(2, 2)?;
            Func::Split
        }
        "concat" => {
            arity(1, usize::MAX)?;
            Func::Concat
        }
        "format" => {
            arity(1, usize::MAX)?;
            let tmpl = const_text(&list[0], at, "the format template")?;
            let pieces: Vec<String> = tmpl.split("{}").map(str::to_string).collect();
            if pieces.len() - 1 != n - 1 {
                return Err(CompileError {
                    at,
                    message: format!(
                        "format template '{tmpl}' has {} placeholder(s) but {} value(s) are given",
                        pieces.len() - 1,
                        n - 1
                    ),
                    hint: Some("a piped value fills the first {}".into()),
                });
            }
            Func::Format(pieces)
        }
        "map" => {
            let dict = args.iter().find_map(|a| match &a.value {
                Ast::Dict(d) => Some(d),
                _ => None,
            });
            let dict = dict.ok_or_else(|| CompileError {
                at,
                message: "map() needs a dictionary".into(),
                hint: Some("value.status | map({'Draft': 'draft'}, 'submitted')".into()),
            })?;
            arity(1, 2)?;
            let mut table = Vec::new();
            for (k, v) in dict {
                table.push((k.clone(), compile(v, env)?));
            }
            Func::Map {
                table,
                has_default: n == 2,
            }
        }
        "len" => {
            arity(1, 1)?;
            Func::Len
        }
        "not" => {
            arity(1, 1)?;
            Func::Not
        }
        "eq" | "ne" | "gt" | "lt" => {
            arity(2, 2)?;
            match name {
                "eq" => Func::Eq,
                "ne" => Func::Ne,
                "gt" => Func::Gt,
                _ => Func::Lt,
            }
        }
        "lookup" => {
            arity(2, 2)?;
            Func::Lookup(const_text(&list[1], at, "the mapping name of lookup()")?)
        }
        other => {
            let best = FUNCTION_NAMES
                .iter()
                .map(|f| (strsim(other, f), *f))
                .min_by_key(|(d, _)| *d);
            return Err(CompileError {
                at,
                message: format!("unknown function `{other}`"),
                hint: Some(match best {
                    Some((d, f)) if d <= 2 => format!("did you mean `{f}`?"),
                    _ if other.starts_with("int") => "did you mean `int`?".to_string(),
                    _ => format!("functions are: {}", FUNCTION_NAMES.join(", ")),
                }),
            });
        }
    };
    // Constant arguments that were folded into the function are dropped.
    let args = match &func {
        Func::Date(_)
        | Func::Timestamp(_)
        | Func::Uuid5(_)
        | Func::Truncate(_)
        | Func::Lookup(_) => {
            list.truncate(1);
            list
        }
        Func::RegexReplace(_) => {
            list.remove(1);
            list
        }
        Func::Format(_) => {
            list.remove(0);
            list
        }
        _ => list,
    };
    Ok(Expr::Call(Box::new(Call { func, args })))
}

/// Levenshtein distance, for "did you mean" hints.
pub fn strsim(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur.push((prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

impl Expr {
    /// Every `lookup('mapping')` this expression uses, with its argument.
    pub fn lookups(&self) -> Vec<(&str, &Expr)> {
        let mut out = Vec::new();
        self.walk(&mut |e| {
            if let Expr::Call(c) = e {
                if let (Func::Lookup(m), Some(a)) = (&c.func, c.args.first()) {
                    out.push((m.as_str(), a));
                }
            }
        });
        out
    }

    fn walk<'s>(&'s self, f: &mut dyn FnMut(&'s Expr)) {
        f(self);
        if let Expr::Call(c) = self {
            for a in &c.args {
                a.walk(f);
            }
            if let Func::Map { table, .. } = &c.func {
                for (_, e) in table {
                    e.walk(f);
                }
            }
        }
    }

    /// The static type the expression produces.
    pub fn kind(&self) -> Kind {
        match self {
            Expr::Literal(v) => kind_of(v),
            Expr::Path {
                root: Root::Index, ..
            } => Kind::Int,
            Expr::Path {
                root: Root::FilePath,
                ..
            }
            | Expr::Capture(_) => Kind::Text,
            Expr::Path { .. } => Kind::Any,
            Expr::Call(c) => match &c.func {
                Func::Int | Func::Len => Kind::Int,
                Func::Not | Func::Eq | Func::Ne | Func::Gt | Func::Lt => Kind::Bool,
                Func::Float => Kind::Float,
                Func::Decimal => Kind::Decimal,
                Func::Bool => Kind::Bool,
                Func::Date(_) => Kind::Date,
                Func::Timestamp(_) => Kind::Timestamp,
                Func::Uuid | Func::Uuid5(_) => Kind::Uuid,
                Func::Split | Func::FromBase64 | Func::FromHex => Kind::Array,
                Func::Object(_) => Kind::Object,
                Func::Text
                | Func::Json
                | Func::Sha256
                | Func::Trim
                | Func::Lower
                | Func::Upper
                | Func::Replace
                | Func::RegexReplace(_)
                | Func::Slug
                | Func::Truncate(_)
                | Func::Concat
                | Func::Format(_) => Kind::Text,
                Func::Required | Func::Nullif => c.args.first().map_or(Kind::Any, Expr::kind),
                Func::Default | Func::Coalesce => {
                    let first = c.args.first().map_or(Kind::Any, Expr::kind);
                    if c.args.iter().all(|a| a.kind() == first || is_null_lit(a)) {
                        first
                    } else {
                        Kind::Any
                    }
                }
                Func::Map { .. } | Func::Lookup(_) => Kind::Any,
            },
        }
    }
}

fn is_null_lit(e: &Expr) -> bool {
    matches!(e, Expr::Literal(Value::Null))
}

fn kind_of(v: &Value) -> Kind {
    match v {
        Value::Null => Kind::Any,
        Value::Bool(_) => Kind::Bool,
        Value::Number(n) => {
            if n.is_i64() || n.is_u64() {
                Kind::Int
            } else {
                Kind::Decimal
            }
        }
        Value::String(_) => Kind::Text,
        Value::Array(_) => Kind::Array,
        Value::Object(_) => Kind::Object,
    }
}

// ---------------------------------------------------------------------------
// Evaluation

type Out<'a> = Result<Cow<'a, Value>, String>;

static NULL: Value = Value::Null;

/// Follow path segments; a missing step gives null.
pub fn follow<'a>(mut v: &'a Value, segs: &[Seg]) -> &'a Value {
    for s in segs {
        v = match (s, v) {
            (Seg::Field(f), Value::Object(m)) => m.get(f).unwrap_or(&NULL),
            (Seg::Index(i), Value::Array(a)) => a.get(*i).unwrap_or(&NULL),
            _ => &NULL,
        };
    }
    v
}

/// Short rendering of a value for error messages.
pub fn show(v: &Value) -> String {
    let s = match v {
        Value::String(s) => format!("'{s}'"),
        other => other.to_string(),
    };
    if s.chars().count() > 60 {
        let cut: String = s.chars().take(57).collect();
        format!("{cut}...")
    } else {
        s
    }
}

/// The text form of a scalar (strings as is, numbers as digits, JSON otherwise).
pub fn as_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn number_from_str(s: &str) -> Option<Number> {
    serde_json::from_str::<Number>(s).ok()
}

/// Parse an exact decimal (number digits or text) without passing through f64.
pub fn parse_decimal(v: &Value) -> Result<BigDecimal, String> {
    let text = match v {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.trim().to_string(),
        other => return Err(format!("{} is not a number", show(other))),
    };
    let text = text.trim_start_matches('+');
    BigDecimal::from_str(text).map_err(|_| format!("{} is not a decimal number", show(v)))
}

pub fn decimal_value(d: &BigDecimal) -> Value {
    let s = d.to_plain_string();
    match number_from_str(&s) {
        Some(n) => Value::Number(n),
        None => Value::String(s),
    }
}

/// An integer from a JSON number or text, exact for every i64.
pub fn parse_int(v: &Value) -> Result<i64, String> {
    match v {
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                return Ok(i);
            }
            let d = parse_decimal(v)?;
            if d.is_integer() {
                let s = d.with_scale(0).to_plain_string();
                return s
                    .parse::<i64>()
                    .map_err(|_| format!("{} is out of the 64-bit integer range", show(v)));
            }
            Err(format!("{} is not a whole number", show(v)))
        }
        Value::String(s) => {
            let t = s.trim();
            if let Ok(i) = t.parse::<i64>() {
                return Ok(i);
            }
            match BigDecimal::from_str(t) {
                Ok(d) if d.is_integer() => d
                    .with_scale(0)
                    .to_plain_string()
                    .parse::<i64>()
                    .map_err(|_| format!("{} is out of the 64-bit integer range", show(v))),
                Ok(_) => Err(format!("{} is not a whole number", show(v))),
                Err(_) => Err(format!("{} is not an integer", show(v))),
            }
        }
        Value::Bool(b) => Ok(i64::from(*b)),
        other => Err(format!("{} is not an integer", show(other))),
    }
}

pub fn parse_float(v: &Value) -> Result<f64, String> {
    let f = match v {
        Value::Number(n) => n.as_f64().or_else(|| n.to_string().parse::<f64>().ok()),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    };
    match f {
        Some(f) if f.is_finite() => Ok(f),
        _ => Err(format!("{} is not a number", show(v))),
    }
}

pub fn parse_bool(v: &Value) -> Result<bool, String> {
    match v {
        Value::Bool(b) => Ok(*b),
        Value::Number(n) => match n.to_string().as_str() {
            "0" => Ok(false),
            "1" => Ok(true),
            _ => Err(format!("{} is not a boolean (0 or 1)", show(v))),
        },
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "t" | "yes" | "y" | "1" | "on" => Ok(true),
            "false" | "f" | "no" | "n" | "0" | "off" => Ok(false),
            _ => Err(format!("{} is not a boolean", show(v))),
        },
        other => Err(format!("{} is not a boolean", show(other))),
    }
}

/// A point in time that may or may not carry an offset.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Instant {
    Naive(NaiveDateTime),
    Zoned(DateTime<chrono::FixedOffset>),
}

impl Instant {
    pub fn naive_utc(&self) -> NaiveDateTime {
        match self {
            Instant::Naive(n) => *n,
            Instant::Zoned(z) => z.naive_utc(),
        }
    }

    pub fn to_value(&self) -> Value {
        Value::String(match self {
            Instant::Naive(n) => n.format("%Y-%m-%dT%H:%M:%S%.f").to_string(),
            Instant::Zoned(z) => z.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
        })
    }
}

const NAIVE_FORMATS: &[&str] = &[
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%dT%H:%M",
    "%Y-%m-%d %H:%M",
    "%Y/%m/%d %H:%M:%S",
];

/// Parse a timestamp: ISO 8601 / RFC 3339, RFC 2822, SQL forms, a date alone.
pub fn parse_instant(v: &Value, fmt: &TimeFormat) -> Result<Instant, String> {
    let epoch = |secs: i64, nanos: u32| -> Result<Instant, String> {
        Utc.timestamp_opt(secs, nanos)
            .single()
            .map(|t| Instant::Zoned(t.fixed_offset()))
            .ok_or_else(|| format!("{} is out of the timestamp range", show(v)))
    };
    match (fmt, v) {
        (TimeFormat::EpochMillis, _) => {
            let ms = parse_int(v).map_err(|_| format!("{} is not epoch milliseconds", show(v)))?;
            epoch(
                ms.div_euclid(1000),
                (ms.rem_euclid(1000) * 1_000_000) as u32,
            )
        }
        (TimeFormat::EpochSeconds, _) | (TimeFormat::Auto, Value::Number(_)) => {
            let d = parse_decimal(v).map_err(|_| format!("{} is not epoch seconds", show(v)))?;
            let secs = parse_int(&decimal_value(
                &d.with_scale_round(0, bigdecimal::RoundingMode::Floor),
            ))?;
            let frac = (d - BigDecimal::from(secs)) * BigDecimal::from(1_000_000_000);
            let nanos = parse_int(&decimal_value(&frac.with_scale(0))).unwrap_or(0);
            epoch(secs, nanos as u32)
        }
        (TimeFormat::Pattern(p), Value::String(s)) => {
            let s = s.trim();
            if let Ok(z) = DateTime::parse_from_str(s, p) {
                return Ok(Instant::Zoned(z));
            }
            if let Ok(n) = NaiveDateTime::parse_from_str(s, p) {
                return Ok(Instant::Naive(n));
            }
            if let Ok(d) = NaiveDate::parse_from_str(s, p) {
                return Ok(Instant::Naive(d.and_time(NaiveTime::MIN)));
            }
            Err(format!("{} does not match the format '{p}'", show(v)))
        }
        (TimeFormat::Auto, Value::String(s)) => {
            let s = s.trim();
            if let Ok(z) = DateTime::parse_from_rfc3339(s) {
                return Ok(Instant::Zoned(z));
            }
            if let Ok(z) = DateTime::parse_from_rfc2822(s) {
                return Ok(Instant::Zoned(z));
            }
            for f in NAIVE_FORMATS {
                if let Ok(n) = NaiveDateTime::parse_from_str(s, f) {
                    return Ok(Instant::Naive(n));
                }
            }
            for f in ["%Y-%m-%d %H:%M:%S%.f%#z", "%Y-%m-%dT%H:%M:%S%.f%#z"] {
                if let Ok(z) = DateTime::parse_from_str(s, f) {
                    return Ok(Instant::Zoned(z));
                }
            }
            if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
                return Ok(Instant::Naive(d.and_time(NaiveTime::MIN)));
            }
            Err(format!(
                "{} is not a timestamp (expected ISO 8601 such as 2024-05-04T04:44:31Z)",
                show(v)
            ))
        }
        (_, other) => Err(format!("{} is not a timestamp", show(other))),
    }
}

pub fn parse_date(v: &Value, fmt: &TimeFormat) -> Result<NaiveDate, String> {
    if let (TimeFormat::Auto, Value::String(s)) = (fmt, v) {
        if let Ok(d) = NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d") {
            return Ok(d);
        }
    }
    if let (TimeFormat::Pattern(p), Value::String(s)) = (fmt, v) {
        if let Ok(d) = NaiveDate::parse_from_str(s.trim(), p) {
            return Ok(d);
        }
    }
    parse_instant(v, fmt)
        .map(|i| match i {
            Instant::Naive(n) => n.date(),
            Instant::Zoned(z) => z.date_naive(),
        })
        .map_err(|e| e.replace("is not a timestamp", "is not a date"))
}

/// Truthiness for `filter` and `not`: null, false, 0, '' and [] are false.
pub fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(_) => parse_decimal(v).map_or(true, |d| !bigdecimal::Zero::is_zero(&d)),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(_) => true,
    }
}

fn loose_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (parse_decimal(a), parse_decimal(b)) {
            (Ok(p), Ok(q)) => p == q,
            _ => x == y,
        },
        _ => a == b,
    }
}

impl Expr {
    /// Evaluate in a scope. An `Err` is the reason for a record error.
    pub fn eval<'a>(&'a self, s: &Scope<'a>) -> Out<'a> {
        match self {
            Expr::Literal(v) => Ok(Cow::Borrowed(v)),
            Expr::Path { root, segs } => Ok(match root {
                Root::Key => Cow::Borrowed(follow(s.key, segs)),
                Root::Value => Cow::Borrowed(follow(s.value, segs)),
                Root::Item => Cow::Borrowed(follow(s.item.unwrap_or(&NULL), segs)),
                Root::Index => Cow::Owned(s.index.map_or(Value::Null, |i| Value::from(i as u64))),
                Root::FilePath => Cow::Owned(Value::String(s.file.path.clone())),
            }),
            Expr::Capture(name) => Ok(Cow::Owned(
                s.file
                    .capture(name)
                    .map_or(Value::Null, |v| Value::String(v.to_string())),
            )),
            Expr::Call(c) => c.eval(s),
        }
    }
}

fn owned(v: Value) -> Out<'static> {
    Ok(Cow::Owned(v))
}

fn text_fn<'a>(v: &Value, f: impl FnOnce(&str) -> String) -> Out<'a> {
    owned(Value::String(f(&as_text(v))))
}

impl Call {
    /// `lookup('mapping')`: null passes through; a legacy id missing from the key
    /// map is an error, or null when `lenient` (inside `default`/`coalesce`).
    fn lookup<'a>(&'a self, s: &Scope<'a>, lenient: bool) -> Out<'a> {
        let Func::Lookup(mapping) = &self.func else {
            return owned(Value::Null);
        };
        let v = self.args[0].eval(s)?;
        if v.is_null() {
            return owned(Value::Null);
        }
        let legacy = as_text(&v);
        let found = match s.lookup {
            Some(l) => l.lookup(mapping, &legacy)?,
            None => None,
        };
        match found {
            Some(new) => owned(new),
            None if lenient => owned(Value::Null),
            None => Err(format!(
                "legacy id {} was not found in the key map of mapping '{mapping}'",
                show(&v)
            )),
        }
    }

    fn eval<'a>(&'a self, s: &Scope<'a>) -> Out<'a> {
        // Null-aware functions first: they see nulls.
        match &self.func {
            Func::Required => {
                let v = self.args[0].eval(s)?;
                return if v.is_null() {
                    Err(describe_missing(&self.args[0]))
                } else {
                    Ok(v)
                };
            }
            Func::Default | Func::Coalesce => {
                for a in &self.args {
                    // `lookup(...) | default(x)`: an id missing from the key map
                    // is null here, so the default applies.
                    let v = match a {
                        Expr::Call(c) if matches!(c.func, Func::Lookup(_)) => c.lookup(s, true)?,
                        _ => a.eval(s)?,
                    };
                    if !v.is_null() {
                        return Ok(v);
                    }
                }
                return owned(Value::Null);
            }
            Func::Lookup(_) => return self.lookup(s, false),
            Func::Object(names) => {
                let mut m = Map::new();
                for (n, a) in names.iter().zip(&self.args) {
                    m.insert(n.clone(), a.eval(s)?.into_owned());
                }
                return owned(Value::Object(m));
            }
            Func::Not => {
                let v = self.args[0].eval(s)?;
                return owned(Value::Bool(!truthy(&v)));
            }
            Func::Eq | Func::Ne => {
                let a = self.args[0].eval(s)?;
                let b = self.args[1].eval(s)?;
                let eq = loose_eq(&a, &b);
                return owned(Value::Bool(if matches!(self.func, Func::Eq) {
                    eq
                } else {
                    !eq
                }));
            }
            Func::Concat | Func::Format(_) => {
                let vals: Vec<Cow<'a, Value>> = self
                    .args
                    .iter()
                    .map(|a| a.eval(s))
                    .collect::<Result<_, _>>()?;
                if vals.iter().all(|v| v.is_null()) {
                    return owned(Value::Null);
                }
                let mut out = String::new();
                match &self.func {
                    Func::Format(pieces) => {
                        for (i, p) in pieces.iter().enumerate() {
                            out.push_str(p);
                            if let Some(v) = vals.get(i) {
                                out.push_str(&as_text(v));
                            }
                        }
                    }
                    _ => {
                        for v in &vals {
                            out.push_str(&as_text(v));
                        }
                    }
                }
                return owned(Value::String(out));
            }
            _ => {}
        }
        let v = self.args[0].eval(s)?;
        if v.is_null() {
            return owned(Value::Null);
        }
        let arg = |i: usize| -> Out<'a> {
            match self.args.get(i) {
                Some(a) => a.eval(s),
                None => Ok(Cow::Borrowed(&NULL)),
            }
        };
        match &self.func {
            Func::Nullif => {
                let other = arg(1)?;
                if loose_eq(&v, &other) {
                    owned(Value::Null)
                } else {
                    Ok(v)
                }
            }
            Func::Int => owned(Value::from(parse_int(&v)?)),
            Func::Float => {
                let f = parse_float(&v)?;
                owned(
                    serde_json::Number::from_f64(f)
                        .map(Value::Number)
                        .unwrap_or(Value::Null),
                )
            }
            Func::Decimal => owned(decimal_value(&parse_decimal(&v)?)),
            Func::Bool => owned(Value::Bool(parse_bool(&v)?)),
            Func::Text => match &*v {
                Value::String(_) => Ok(v),
                other => owned(Value::String(as_text(other))),
            },
            Func::Json => owned(Value::String(v.to_string())),
            Func::Date(fmt) => owned(Value::String(
                parse_date(&v, fmt)?.format("%Y-%m-%d").to_string(),
            )),
            Func::Timestamp(fmt) => owned(parse_instant(&v, fmt)?.to_value()),
            Func::Uuid => {
                let t = as_text(&v);
                let u = uuid::Uuid::parse_str(t.trim())
                    .map_err(|_| format!("{} is not a UUID", show(&v)))?;
                owned(Value::String(u.hyphenated().to_string()))
            }
            Func::Uuid5(ns) => owned(Value::String(
                uuid::Uuid::new_v5(ns, as_text(&v).as_bytes())
                    .hyphenated()
                    .to_string(),
            )),
            Func::Sha256 => text_fn(&v, |t| hex::encode(Sha256::digest(t.as_bytes()))),
            Func::FromBase64 | Func::FromHex => {
                let Value::String(t) = &*v else {
                    return Err(format!("{} is not text to decode", show(&v)));
                };
                let t = t.trim();
                let bytes = if matches!(self.func, Func::FromHex) {
                    let h = t
                        .strip_prefix("0x")
                        .or_else(|| t.strip_prefix("\\x"))
                        .unwrap_or(t);
                    hex::decode(h).map_err(|e| format!("{} is not hex: {e}", show(&v)))?
                } else {
                    use base64::Engine;
                    base64::engine::general_purpose::STANDARD
                        .decode(t)
                        .map_err(|e| format!("{} is not base64: {e}", show(&v)))?
                };
                owned(Value::Array(bytes.into_iter().map(Value::from).collect()))
            }
            Func::Trim => text_fn(&v, |t| t.trim().to_string()),
            Func::Lower => text_fn(&v, str::to_lowercase),
            Func::Upper => text_fn(&v, str::to_uppercase),
            Func::Replace => {
                let from = arg(1)?;
                let from = as_text(&from);
                let to = arg(2)?;
                let to = as_text(&to);
                text_fn(&v, |t| t.replace(&from, &to))
            }
            Func::RegexReplace(re) => {
                let to = arg(1)?;
                let to = as_text(&to);
                text_fn(&v, |t| re.replace_all(t, to.as_str()).into_owned())
            }
            Func::Slug => text_fn(&v, |t| slug::slugify(t)),
            Func::Truncate(n) => text_fn(&v, |t| t.chars().take(*n).collect()),
            Func::Split => {
                let sep = arg(1)?;
                let sep = as_text(&sep);
                let t = as_text(&v);
                let parts: Vec<Value> = if sep.is_empty() {
                    t.chars().map(|c| Value::String(c.to_string())).collect()
                } else {
                    t.split(sep.as_str())
                        .map(|p| Value::String(p.to_string()))
                        .collect()
                };
                owned(Value::Array(parts))
            }
            Func::Map { table, has_default } => {
                let k = as_text(&v);
                if let Some((_, e)) = table.iter().find(|(key, _)| *key == k) {
                    return e.eval(s);
                }
                if *has_default {
                    return arg(1);
                }
                let known: Vec<&str> = table.iter().map(|(k, _)| k.as_str()).collect();
                Err(format!(
                    "{} is not one of the mapped values ({})",
                    show(&v),
                    known.join(", ")
                ))
            }
            Func::Len => match &*v {
                Value::Array(a) => owned(Value::from(a.len() as u64)),
                Value::String(t) => owned(Value::from(t.chars().count() as u64)),
                Value::Object(m) => owned(Value::from(m.len() as u64)),
                other => Err(format!("len() of {} (not an array or text)", show(other))),
            },
            Func::Gt | Func::Lt => {
                let other = arg(1)?;
                if other.is_null() {
                    return owned(Value::Null);
                }
                let ord = match (parse_decimal(&v), parse_decimal(&other)) {
                    (Ok(a), Ok(b)) => a.cmp(&b),
                    _ => as_text(&v).cmp(&as_text(&other)),
                };
                let want = if matches!(self.func, Func::Gt) {
                    std::cmp::Ordering::Greater
                } else {
                    std::cmp::Ordering::Less
                };
                owned(Value::Bool(ord == want))
            }
            Func::Lookup(_)
            | Func::Not
            | Func::Eq
            | Func::Ne
            | Func::Required
            | Func::Default
            | Func::Coalesce
            | Func::Object(_)
            | Func::Concat
            | Func::Format(_) => Ok(v),
        }
    }
}

fn describe_missing(e: &Expr) -> String {
    match e {
        Expr::Path { root, segs } => {
            let mut p = match root {
                Root::Key => "key".to_string(),
                Root::Value => "value".to_string(),
                Root::Item => "item".to_string(),
                Root::Index => "index".to_string(),
                Root::FilePath => "file.path".to_string(),
            };
            for s in segs {
                match s {
                    Seg::Field(f) => {
                        p.push('.');
                        p.push_str(f);
                    }
                    Seg::Index(i) => p.push_str(&format!("[{i}]")),
                }
            }
            format!("required value {p} is missing or null")
        }
        _ => "required value is null".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mapping::expr::parse;
    use serde_json::json;

    fn env() -> Env {
        Env {
            in_for_each: true,
            file_captures: Some(vec!["user_id".into()]),
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
}
