//! Binary: `from_base64` / `from_hex` decode text into bytes (an array of byte
//! values, which a bytea/blob column stores as they are).

use super::{no_constants, ArgShape, Eval, Function, Returns};
use crate::mapping::compile::Call;
use crate::mapping::eval::{owned, Out, Scope};
use crate::mapping::kind::Kind;
use crate::value::show;
use serde_json::Value;
use std::borrow::Cow;

pub(super) const FUNCTIONS: &[Function] = &[
    Function {
        name: "from_base64",
        min_args: 1,
        max_args: 1,
        shape: ArgShape::Positional,
        takes: &[Kind::Text],
        returns: Returns::Kind(Kind::Array),
        example: "value.avatar | from_base64",
        check: no_constants,
        eval: Eval::Strict(from_base64),
    },
    Function {
        name: "from_hex",
        min_args: 1,
        max_args: 1,
        shape: ArgShape::Positional,
        takes: &[Kind::Text],
        returns: Returns::Kind(Kind::Array),
        example: "value.digest | from_hex",
        check: no_constants,
        eval: Eval::Strict(from_hex),
    },
];

fn from_base64<'a>(_: &'a Call, _: &Scope<'a>, v: Cow<'a, Value>) -> Out<'a> {
    use base64::Engine;
    let t = decodable(&v)?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(t)
        .map_err(|e| format!("{} is not base64: {e}", show(&v)))?;
    owned(bytes_value(bytes))
}

fn from_hex<'a>(_: &'a Call, _: &Scope<'a>, v: Cow<'a, Value>) -> Out<'a> {
    let t = decodable(&v)?;
    let h = t
        .strip_prefix("0x")
        .or_else(|| t.strip_prefix("\\x"))
        .unwrap_or(t);
    let bytes = hex::decode(h).map_err(|e| format!("{} is not hex: {e}", show(&v)))?;
    owned(bytes_value(bytes))
}

/// The trimmed text to decode; anything else is an error.
fn decodable(v: &Value) -> Result<&str, String> {
    match v {
        Value::String(t) => Ok(t.trim()),
        _ => Err(format!("{} is not text to decode", show(v))),
    }
}

fn bytes_value(bytes: Vec<u8>) -> Value {
    Value::Array(bytes.into_iter().map(Value::from).collect())
}
