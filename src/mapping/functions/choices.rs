//! Choices: `map({'Draft': 'draft'}, 'otherwise')`.

use super::{ArgShape, Check, Eval, Function, Returns, State};
use crate::mapping::compile::{compile, Call, CompileError};
use crate::mapping::eval::{Out, Scope};
use crate::mapping::kind::Kind;
use crate::value::{as_text, show};
use serde_json::Value;
use std::borrow::Cow;

pub(super) const FUNCTIONS: &[Function] = &[Function {
    name: "map",
    min_args: 1,
    max_args: 2,
    shape: ArgShape::Dict,
    takes: &[Kind::Text, Kind::Any],
    returns: Returns::Kind(Kind::Any),
    example: "value.status | map({'Draft': 'draft'}, 'submitted')",
    check: table,
    eval: Eval::Strict(map),
}];

/// The keys of the dictionary; its values are compiled into the call's
/// arguments, after the mapped value and the default.
struct Table {
    keys: Vec<String>,
    has_default: bool,
}

impl Table {
    /// The argument index of the value of the first key.
    fn first_value(&self) -> usize {
        1 + usize::from(self.has_default)
    }
}

fn table(c: &mut Check<'_>) -> Result<State, CompileError> {
    let has_default = c.args.len() == 2;
    let mut keys = Vec::new();
    for (k, v) in c.dict.unwrap_or_default() {
        keys.push(k.clone());
        let e = compile(v, c.env)?;
        c.args.push(e);
    }
    Ok(State::new(Table { keys, has_default }))
}

fn map<'a>(c: &'a Call, s: &Scope<'a>, v: Cow<'a, Value>) -> Out<'a> {
    let t = c.state::<Table>()?;
    let k = as_text(&v);
    if let Some(i) = t.keys.iter().position(|key| *key == k) {
        return c.arg(t.first_value() + i, s);
    }
    if t.has_default {
        return c.arg(1, s);
    }
    Err(format!(
        "{} is not one of the mapped values ({})",
        show(&v),
        t.keys.join(", ")
    ))
}
