//! Text: `trim`, `lower`, `upper`, `replace`, `regex_replace`, `slug`,
//! `truncate`, `split`, `concat`, `format`. The regex, the length of
//! `truncate` and the template of `format` are constants checked at load time.

use super::{no_constants, ArgShape, Check, Eval, Function, Returns, State};
use crate::mapping::compile::{cerr, Call, CompileError, Expr};
use crate::mapping::eval::{owned, Out, Scope};
use crate::mapping::kind::Kind;
use crate::value::as_text;
use regex::Regex;
use serde_json::Value;
use std::borrow::Cow;

pub(super) const FUNCTIONS: &[Function] = &[
    unary("trim", "value.name | trim", trim),
    unary("lower", "value.email | lower", lower),
    unary("upper", "value.code | upper", upper),
    Function {
        name: "replace",
        min_args: 3,
        max_args: 3,
        shape: ArgShape::Positional,
        takes: &[Kind::Text, Kind::Text, Kind::Text],
        returns: Returns::Kind(Kind::Text),
        example: "value.phone | replace(' ', '')",
        check: no_constants,
        eval: Eval::Strict(replace),
    },
    Function {
        name: "regex_replace",
        min_args: 3,
        max_args: 3,
        shape: ArgShape::Positional,
        takes: &[Kind::Text, Kind::Text, Kind::Text],
        returns: Returns::Kind(Kind::Text),
        example: "value.sku | regex_replace('[^0-9]+', '')",
        check: regex,
        eval: Eval::Strict(regex_replace),
    },
    unary("slug", "value.title | slug", slug),
    Function {
        name: "truncate",
        min_args: 2,
        max_args: 2,
        shape: ArgShape::Positional,
        takes: &[Kind::Text, Kind::Int],
        returns: Returns::Kind(Kind::Text),
        example: "value.title | truncate(80)",
        check: length,
        eval: Eval::Strict(truncate),
    },
    Function {
        name: "split",
        min_args: 2,
        max_args: 2,
        shape: ArgShape::Positional,
        takes: &[Kind::Text, Kind::Text],
        returns: Returns::Kind(Kind::Array),
        example: "value.tags | split(',')",
        check: no_constants,
        eval: Eval::Strict(split),
    },
    Function {
        name: "concat",
        min_args: 1,
        max_args: usize::MAX,
        shape: ArgShape::Positional,
        takes: &[Kind::Text],
        returns: Returns::Kind(Kind::Text),
        example: "concat(value.first, ' ', value.last)",
        check: no_constants,
        eval: Eval::Raw(concat),
    },
    Function {
        name: "format",
        min_args: 1,
        max_args: usize::MAX,
        shape: ArgShape::PipedSecond,
        takes: &[Kind::Text, Kind::Any],
        returns: Returns::Kind(Kind::Text),
        example: "value.n | format('INV-{}')",
        check: template,
        eval: Eval::Raw(format),
    },
];

/// A function of one text argument, null in null out.
const fn unary(
    name: &'static str,
    example: &'static str,
    eval: for<'a> fn(&'a Call, &Scope<'a>, Cow<'a, Value>) -> Out<'a>,
) -> Function {
    Function {
        name,
        min_args: 1,
        max_args: 1,
        shape: ArgShape::Positional,
        takes: &[Kind::Text],
        returns: Returns::Kind(Kind::Text),
        example,
        check: no_constants,
        eval: Eval::Strict(eval),
    }
}

/// Apply `f` to the text form of `v`.
pub(super) fn text_fn<'a>(v: &Value, f: impl FnOnce(&str) -> String) -> Out<'a> {
    owned(Value::String(f(&as_text(v))))
}

fn trim<'a>(_: &'a Call, _: &Scope<'a>, v: Cow<'a, Value>) -> Out<'a> {
    text_fn(&v, |t| t.trim().to_string())
}

fn lower<'a>(_: &'a Call, _: &Scope<'a>, v: Cow<'a, Value>) -> Out<'a> {
    text_fn(&v, str::to_lowercase)
}

fn upper<'a>(_: &'a Call, _: &Scope<'a>, v: Cow<'a, Value>) -> Out<'a> {
    text_fn(&v, str::to_uppercase)
}

fn slug<'a>(_: &'a Call, _: &Scope<'a>, v: Cow<'a, Value>) -> Out<'a> {
    text_fn(&v, |t| slug::slugify(t))
}

fn replace<'a>(c: &'a Call, s: &Scope<'a>, v: Cow<'a, Value>) -> Out<'a> {
    let from = c.arg(1, s)?;
    let from = as_text(&from);
    let to = c.arg(2, s)?;
    let to = as_text(&to);
    text_fn(&v, |t| t.replace(&from, &to))
}

/// The constant pattern of `regex_replace`.
fn regex(c: &mut Check<'_>) -> Result<State, CompileError> {
    let pat = c.const_text(1, "the regex pattern")?;
    let re = Regex::new(&pat).map_err(|e| CompileError {
        at: c.at,
        message: format!("invalid regex '{pat}': {e}"),
        hint: None,
    })?;
    c.args.remove(1);
    Ok(State::new(re))
}

fn regex_replace<'a>(c: &'a Call, s: &Scope<'a>, v: Cow<'a, Value>) -> Out<'a> {
    let re = c.state::<Regex>()?;
    let to = c.arg(1, s)?;
    let to = as_text(&to);
    text_fn(&v, |t| re.replace_all(t, to.as_str()).into_owned())
}

/// The constant length of `truncate`, in characters.
struct Length(usize);

fn length(c: &mut Check<'_>) -> Result<State, CompileError> {
    let n = match c.args.get(1) {
        Some(Expr::Literal(Value::Number(n))) if n.as_u64().is_some() => {
            n.as_u64().unwrap_or(0) as usize
        }
        _ => return Err(cerr(c.at, "truncate(n) needs a whole number literal")),
    };
    c.args.truncate(1);
    Ok(State::new(Length(n)))
}

fn truncate<'a>(c: &'a Call, _: &Scope<'a>, v: Cow<'a, Value>) -> Out<'a> {
    let Length(n) = c.state::<Length>()?;
    text_fn(&v, |t| t.chars().take(*n).collect())
}

fn split<'a>(c: &'a Call, s: &Scope<'a>, v: Cow<'a, Value>) -> Out<'a> {
    let sep = c.arg(1, s)?;
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

/// Every argument evaluated; `None` when all are null (the result is null).
fn values<'a>(c: &'a Call, s: &Scope<'a>) -> Result<Option<Vec<Cow<'a, Value>>>, String> {
    let vals: Vec<Cow<'a, Value>> = c.args.iter().map(|a| a.eval(s)).collect::<Result<_, _>>()?;
    Ok(if vals.iter().all(|v| v.is_null()) {
        None
    } else {
        Some(vals)
    })
}

fn concat<'a>(c: &'a Call, s: &Scope<'a>) -> Out<'a> {
    let Some(vals) = values(c, s)? else {
        return owned(Value::Null);
    };
    let mut out = String::new();
    for v in &vals {
        out.push_str(&as_text(v));
    }
    owned(Value::String(out))
}

/// The template of `format`, cut at its `{}` placeholders.
struct Pieces(Vec<String>);

fn template(c: &mut Check<'_>) -> Result<State, CompileError> {
    let tmpl = c.const_text(0, "the format template")?;
    let pieces: Vec<String> = tmpl.split("{}").map(str::to_string).collect();
    let n = c.args.len();
    if pieces.len() - 1 != n - 1 {
        return Err(CompileError {
            at: c.at,
            message: format!(
                "format template '{tmpl}' has {} placeholder(s) but {} value(s) are given",
                pieces.len() - 1,
                n - 1
            ),
            hint: Some("a piped value fills the first {}".into()),
        });
    }
    c.args.remove(0);
    Ok(State::new(Pieces(pieces)))
}

fn format<'a>(c: &'a Call, s: &Scope<'a>) -> Out<'a> {
    let Pieces(pieces) = c.state::<Pieces>()?;
    let Some(vals) = values(c, s)? else {
        return owned(Value::Null);
    };
    let mut out = String::new();
    for (i, p) in pieces.iter().enumerate() {
        out.push_str(p);
        if let Some(v) = vals.get(i) {
            out.push_str(&as_text(v));
        }
    }
    owned(Value::String(out))
}
