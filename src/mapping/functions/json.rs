//! JSON building: `object(legacy_id = value.Id, migrated_from = 'v2')`, and
//! `entries` (an object as an array of `{key, value}`, for `for_each` over the
//! members of an object keyed by id).

use super::{no_constants, ArgShape, Check, Eval, Function, Returns, State};
use crate::mapping::compile::{Call, CompileError};
use crate::mapping::eval::{owned, Out, Scope};
use crate::mapping::kind::Kind;
use crate::value::show;
use serde_json::{Map, Value};
use std::borrow::Cow;

pub(super) const FUNCTIONS: &[Function] = &[
    Function {
        name: "object",
        min_args: 0,
        max_args: usize::MAX,
        shape: ArgShape::Named,
        takes: &[Kind::Any],
        returns: Returns::Kind(Kind::Object),
        example: "object(legacy_id = value.Id, migrated_from = 'v2')",
        check: field_names,
        eval: Eval::Raw(object),
    },
    Function {
        name: "entries",
        min_args: 1,
        max_args: 1,
        shape: ArgShape::Positional,
        takes: &[Kind::Object],
        returns: Returns::Kind(Kind::Array),
        example: "value.dispenserData | entries",
        check: no_constants,
        eval: Eval::Strict(entries),
    },
];

/// `{"a": 1, "b": 2}` → `[{"key": "a", "value": 1}, {"key": "b", "value": 2}]`,
/// in the document's order.
fn entries<'a>(_: &'a Call, _: &Scope<'a>, v: Cow<'a, Value>) -> Out<'a> {
    match v.into_owned() {
        Value::Object(m) => owned(Value::Array(
            m.into_iter()
                .map(|(k, v)| {
                    let mut e = Map::new();
                    e.insert("key".into(), Value::String(k));
                    e.insert("value".into(), v);
                    Value::Object(e)
                })
                .collect(),
        )),
        other => Err(format!("entries expects an object, found {}", show(&other))),
    }
}

/// The names of the fields, one per argument.
struct Names(Vec<String>);

fn field_names(c: &mut Check<'_>) -> Result<State, CompileError> {
    Ok(State::new(Names(std::mem::take(&mut c.names))))
}

fn object<'a>(c: &'a Call, s: &Scope<'a>) -> Out<'a> {
    let Names(names) = c.state::<Names>()?;
    let mut m = Map::new();
    for (n, a) in names.iter().zip(&c.args) {
        m.insert(n.clone(), a.eval(s)?.into_owned());
    }
    owned(Value::Object(m))
}
