//! Foreign-key remap: `lookup('mapping')` turns a legacy id into the new id
//! recorded by an earlier mapping, through a [`Lookup`] (the key map).

use super::{ArgShape, Check, Eval, Function, Returns, State};
use crate::mapping::compile::{Call, CompileError};
use crate::mapping::eval::{owned, Out, Scope};
use crate::mapping::kind::Kind;
use crate::value::{as_text, show};
use serde_json::Value;

pub(super) const FUNCTIONS: &[Function] = &[Function {
    name: "lookup",
    min_args: 2,
    max_args: 2,
    shape: ArgShape::Positional,
    takes: &[Kind::Any, Kind::Text],
    returns: Returns::Kind(Kind::Any),
    example: "value.OwnerId | lookup('users')",
    check: target,
    eval: Eval::Raw(lookup),
}];

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

/// The mapping whose key map a `lookup` reads.
struct Target(String);

fn target(c: &mut Check<'_>) -> Result<State, CompileError> {
    let mapping = c.const_text(1, "the mapping name of lookup()")?;
    c.args.truncate(1);
    Ok(State::new(Target(mapping)))
}

/// The mapping a call reads the key map of, when it is a `lookup`.
pub(crate) fn mapping_of(c: &Call) -> Option<&str> {
    c.state.get::<Target>().map(|t| t.0.as_str())
}

fn lookup<'a>(c: &'a Call, s: &Scope<'a>) -> Out<'a> {
    resolve(c, s, false)
}

/// `lookup('mapping')`: null passes through; a legacy id missing from the key
/// map is an error, or null when `lenient` (inside `default`/`coalesce`).
pub(super) fn resolve<'a>(c: &'a Call, s: &Scope<'a>, lenient: bool) -> Out<'a> {
    let Some(mapping) = mapping_of(c) else {
        return owned(Value::Null);
    };
    let v = c.arg(0, s)?;
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
