//! JSON building: `object(legacy_id = value.Id, migrated_from = 'v2')`.

use super::{ArgShape, Check, Eval, Function, Returns, State};
use crate::mapping::compile::{Call, CompileError};
use crate::mapping::eval::{owned, Out, Scope};
use crate::mapping::kind::Kind;
use serde_json::{Map, Value};

pub(super) const FUNCTIONS: &[Function] = &[Function {
    name: "object",
    min_args: 0,
    max_args: usize::MAX,
    shape: ArgShape::Named,
    takes: &[Kind::Any],
    returns: Returns::Kind(Kind::Object),
    example: "object(legacy_id = value.Id, migrated_from = 'v2')",
    check: field_names,
    eval: Eval::Raw(object),
}];

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
