//! Tests and comparisons: `len`, `not`, `eq`, `ne`, `gt`, `lt`.

use super::{no_constants, ArgShape, Eval, Function, Returns};
use crate::mapping::compile::Call;
use crate::mapping::eval::{loose_eq, owned, truthy, Out, Scope};
use crate::mapping::kind::Kind;
use crate::value::{as_text, parse_decimal, show};
use serde_json::Value;
use std::borrow::Cow;
use std::cmp::Ordering;

pub(super) const FUNCTIONS: &[Function] = &[
    Function {
        name: "len",
        min_args: 1,
        max_args: 1,
        shape: ArgShape::Positional,
        takes: &[Kind::Any],
        returns: Returns::Kind(Kind::Int),
        example: "value.items | len",
        check: no_constants,
        eval: Eval::Strict(len),
    },
    Function {
        name: "not",
        min_args: 1,
        max_args: 1,
        shape: ArgShape::Positional,
        takes: &[Kind::Any],
        returns: Returns::Kind(Kind::Bool),
        example: "value.deleted | not",
        check: no_constants,
        eval: Eval::Raw(not),
    },
    binary("eq", "value.kind | eq('user')", Eval::Raw(eq)),
    binary("ne", "value.kind | ne('system')", Eval::Raw(ne)),
    binary("gt", "value.age | gt(17)", Eval::Strict(gt)),
    binary("lt", "value.age | lt(130)", Eval::Strict(lt)),
];

/// A comparison of two values.
const fn binary(name: &'static str, example: &'static str, eval: Eval) -> Function {
    Function {
        name,
        min_args: 2,
        max_args: 2,
        shape: ArgShape::Positional,
        takes: &[Kind::Any, Kind::Any],
        returns: Returns::Kind(Kind::Bool),
        example,
        check: no_constants,
        eval,
    }
}

fn len<'a>(_: &'a Call, _: &Scope<'a>, v: Cow<'a, Value>) -> Out<'a> {
    match &*v {
        Value::Array(a) => owned(Value::from(a.len() as u64)),
        Value::String(t) => owned(Value::from(t.chars().count() as u64)),
        Value::Object(m) => owned(Value::from(m.len() as u64)),
        other => Err(format!("len() of {} (not an array or text)", show(other))),
    }
}

fn not<'a>(c: &'a Call, s: &Scope<'a>) -> Out<'a> {
    let v = c.arg(0, s)?;
    owned(Value::Bool(!truthy(&v)))
}

/// Both arguments compared with [`loose_eq`] (nulls included).
fn equal<'a>(c: &'a Call, s: &Scope<'a>) -> Result<bool, String> {
    let a = c.arg(0, s)?;
    let b = c.arg(1, s)?;
    Ok(loose_eq(&a, &b))
}

fn eq<'a>(c: &'a Call, s: &Scope<'a>) -> Out<'a> {
    owned(Value::Bool(equal(c, s)?))
}

fn ne<'a>(c: &'a Call, s: &Scope<'a>) -> Out<'a> {
    owned(Value::Bool(!equal(c, s)?))
}

/// Numbers by value, anything else by its text; null against null.
fn compare<'a>(c: &'a Call, s: &Scope<'a>, v: &Value, want: Ordering) -> Out<'a> {
    let other = c.arg(1, s)?;
    if other.is_null() {
        return owned(Value::Null);
    }
    let ord = match (parse_decimal(v), parse_decimal(&other)) {
        (Ok(a), Ok(b)) => a.cmp(&b),
        _ => as_text(v).cmp(&as_text(&other)),
    };
    owned(Value::Bool(ord == want))
}

fn gt<'a>(c: &'a Call, s: &Scope<'a>, v: Cow<'a, Value>) -> Out<'a> {
    compare(c, s, &v, Ordering::Greater)
}

fn lt<'a>(c: &'a Call, s: &Scope<'a>, v: Cow<'a, Value>) -> Out<'a> {
    compare(c, s, &v, Ordering::Less)
}
