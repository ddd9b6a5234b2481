//! Identity: `uuid` (normalise), `uuid5(namespace)` (deterministic new ids),
//! `sha256`.

use super::text::text_fn;
use super::{no_constants, ArgShape, Check, Eval, Function, Returns, State};
use crate::mapping::compile::{Call, CompileError};
use crate::mapping::eval::{owned, Out, Scope};
use crate::mapping::kind::Kind;
use crate::value::{as_text, show};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::borrow::Cow;

pub(super) const FUNCTIONS: &[Function] = &[
    Function {
        name: "uuid",
        min_args: 1,
        max_args: 1,
        shape: ArgShape::Positional,
        takes: &[Kind::Text],
        returns: Returns::Kind(Kind::Uuid),
        example: "value.guid | uuid",
        check: no_constants,
        eval: Eval::Strict(uuid),
    },
    Function {
        name: "uuid5",
        min_args: 2,
        max_args: 2,
        shape: ArgShape::Positional,
        takes: &[Kind::Text, Kind::Text],
        returns: Returns::Kind(Kind::Uuid),
        example: "value.Id | uuid5('pliers.forms')",
        check: namespace,
        eval: Eval::Strict(uuid5),
    },
    Function {
        name: "sha256",
        min_args: 1,
        max_args: 1,
        shape: ArgShape::Positional,
        takes: &[Kind::Text],
        returns: Returns::Kind(Kind::Text),
        example: "value.email | sha256",
        check: no_constants,
        eval: Eval::Strict(sha256),
    },
];

/// The constant namespace of `uuid5`: a UUID, or any text hashed into one.
fn namespace(c: &mut Check<'_>) -> Result<State, CompileError> {
    let ns = c.const_text(1, "the uuid5 namespace")?;
    let ns = uuid::Uuid::parse_str(&ns)
        .unwrap_or_else(|_| uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, ns.as_bytes()));
    c.args.truncate(1);
    Ok(State::new(ns))
}

fn uuid<'a>(_: &'a Call, _: &Scope<'a>, v: Cow<'a, Value>) -> Out<'a> {
    let t = as_text(&v);
    let u = uuid::Uuid::parse_str(t.trim()).map_err(|_| format!("{} is not a UUID", show(&v)))?;
    owned(Value::String(u.hyphenated().to_string()))
}

fn uuid5<'a>(c: &'a Call, _: &Scope<'a>, v: Cow<'a, Value>) -> Out<'a> {
    let ns = c.state::<uuid::Uuid>()?;
    owned(Value::String(
        uuid::Uuid::new_v5(ns, as_text(&v).as_bytes())
            .hyphenated()
            .to_string(),
    ))
}

fn sha256<'a>(_: &'a Call, _: &Scope<'a>, v: Cow<'a, Value>) -> Out<'a> {
    text_fn(&v, |t| hex::encode(Sha256::digest(t.as_bytes())))
}
