//! The evaluator: a compiled [`Expr`] in the [`Scope`] of one record. A call
//! runs its registry entry's evaluator ([`super::functions::Eval`]).

use super::compile::{Call, Expr, Root};
use super::expr::Seg;
use super::functions::{Eval, Lookup};
use crate::record::FileInfo;
use crate::value::parse_decimal;
use serde_json::Value;
use std::borrow::Cow;

/// The result of evaluating an expression; an `Err` is the reason for a record error.
pub type Out<'a> = Result<Cow<'a, Value>, String>;

pub(crate) static NULL: Value = Value::Null;

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

/// Equality for `eq`, `ne` and `nullif`: numbers compare by value (`1.0 = 1`).
pub(crate) fn loose_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (parse_decimal(a), parse_decimal(b)) {
            (Ok(p), Ok(q)) => p == q,
            _ => x == y,
        },
        _ => a == b,
    }
}

pub(crate) fn owned(v: Value) -> Out<'static> {
    Ok(Cow::Owned(v))
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

impl Call {
    fn eval<'a>(&'a self, s: &Scope<'a>) -> Out<'a> {
        match self.func.eval {
            // Null-aware functions see nulls: they evaluate their own arguments.
            Eval::Raw(f) => f(self, s),
            Eval::Strict(f) => {
                let v = self.arg(0, s)?;
                if v.is_null() {
                    return owned(Value::Null);
                }
                f(self, s, v)
            }
        }
    }

    /// Argument `i` evaluated; null when the call has no such argument.
    pub(crate) fn arg<'a>(&'a self, i: usize, s: &Scope<'a>) -> Out<'a> {
        match self.args.get(i) {
            Some(a) => a.eval(s),
            None => Ok(Cow::Borrowed(&NULL)),
        }
    }

    /// The constant the function's check folded into the call, or an internal error
    /// (a call is only built by its own check, so this does not happen).
    pub(crate) fn state<T: std::any::Any>(&self) -> Result<&T, String> {
        self.state.get::<T>().ok_or_else(|| {
            format!(
                "internal error: {}() was compiled without its constant argument",
                self.func.name
            )
        })
    }
}
