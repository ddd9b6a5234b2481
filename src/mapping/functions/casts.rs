//! Casts: `int`, `float`, `decimal`, `bool`, `text`, `json` (exact: numbers
//! never pass through f64 unless asked for with `float`).

use super::{no_constants, ArgShape, Eval, Function, Returns};
use crate::mapping::compile::Call;
use crate::mapping::eval::{owned, Out, Scope};
use crate::mapping::kind::Kind;
use crate::value::{as_text, decimal_value, parse_bool, parse_decimal, parse_float, parse_int};
use serde_json::Value;
use std::borrow::Cow;

pub(super) const FUNCTIONS: &[Function] = &[
    cast("int", Kind::Int, "value.pageId | int", int),
    cast("float", Kind::Float, "value.score | float", float),
    cast("decimal", Kind::Decimal, "value.amount | decimal", decimal),
    cast("bool", Kind::Bool, "value.active | bool", boolean),
    cast("text", Kind::Text, "value.id | text", text),
    cast("json", Kind::Text, "value.settings | json", json),
];

/// A cast: one argument of any kind, null in null out.
const fn cast(
    name: &'static str,
    to: Kind,
    example: &'static str,
    eval: for<'a> fn(&'a Call, &Scope<'a>, Cow<'a, Value>) -> Out<'a>,
) -> Function {
    Function {
        name,
        min_args: 1,
        max_args: 1,
        shape: ArgShape::Positional,
        takes: &[Kind::Any],
        returns: Returns::Kind(to),
        example,
        check: no_constants,
        eval: Eval::Strict(eval),
    }
}

fn int<'a>(_: &'a Call, _: &Scope<'a>, v: Cow<'a, Value>) -> Out<'a> {
    owned(Value::from(parse_int(&v)?))
}

fn float<'a>(_: &'a Call, _: &Scope<'a>, v: Cow<'a, Value>) -> Out<'a> {
    let f = parse_float(&v)?;
    owned(
        serde_json::Number::from_f64(f)
            .map(Value::Number)
            .unwrap_or(Value::Null),
    )
}

fn decimal<'a>(_: &'a Call, _: &Scope<'a>, v: Cow<'a, Value>) -> Out<'a> {
    owned(decimal_value(&parse_decimal(&v)?))
}

fn boolean<'a>(_: &'a Call, _: &Scope<'a>, v: Cow<'a, Value>) -> Out<'a> {
    owned(Value::Bool(parse_bool(&v)?))
}

fn text<'a>(_: &'a Call, _: &Scope<'a>, v: Cow<'a, Value>) -> Out<'a> {
    match &*v {
        Value::String(_) => Ok(v),
        other => owned(Value::String(as_text(other))),
    }
}

fn json<'a>(_: &'a Call, _: &Scope<'a>, v: Cow<'a, Value>) -> Out<'a> {
    owned(Value::String(v.to_string()))
}
