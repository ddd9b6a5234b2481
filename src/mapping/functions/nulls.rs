//! Nulls: `required`, `default`, `coalesce`, `nullif`.

use super::{lookup, no_constants, ArgShape, Eval, Function, Returns};
use crate::mapping::compile::{Call, Expr, Root};
use crate::mapping::eval::{loose_eq, owned, Out, Scope};
use crate::mapping::expr::Seg;
use crate::mapping::kind::Kind;
use serde_json::Value;
use std::borrow::Cow;

pub(super) const FUNCTIONS: &[Function] = &[
    Function {
        name: "required",
        min_args: 1,
        max_args: 1,
        shape: ArgShape::Positional,
        takes: &[Kind::Any],
        returns: Returns::FirstArg,
        example: "value.hash | required",
        check: no_constants,
        eval: Eval::Raw(required),
    },
    Function {
        name: "default",
        min_args: 2,
        max_args: 2,
        shape: ArgShape::Positional,
        takes: &[Kind::Any, Kind::Any],
        returns: Returns::Common,
        example: "value.deletedAt | default(0)",
        check: no_constants,
        eval: Eval::Raw(first_not_null),
    },
    Function {
        name: "coalesce",
        min_args: 1,
        max_args: usize::MAX,
        shape: ArgShape::Positional,
        takes: &[Kind::Any],
        returns: Returns::Common,
        example: "coalesce(value.nick, value.name, 'anonymous')",
        check: no_constants,
        eval: Eval::Raw(first_not_null),
    },
    Function {
        name: "nullif",
        min_args: 2,
        max_args: 2,
        shape: ArgShape::Positional,
        takes: &[Kind::Any, Kind::Any],
        returns: Returns::FirstArg,
        example: "value.parent | nullif(0)",
        check: no_constants,
        eval: Eval::Strict(nullif),
    },
];

fn required<'a>(c: &'a Call, s: &Scope<'a>) -> Out<'a> {
    let v = c.arg(0, s)?;
    if v.is_null() {
        Err(c
            .args
            .first()
            .map_or_else(|| "required value is null".to_string(), describe_missing))
    } else {
        Ok(v)
    }
}

/// `default` and `coalesce`: the first argument that is not null.
fn first_not_null<'a>(c: &'a Call, s: &Scope<'a>) -> Out<'a> {
    for a in &c.args {
        // `lookup(...) | default(x)`: an id missing from the key map
        // is null here, so the default applies.
        let v = match a {
            Expr::Call(l) if lookup::mapping_of(l).is_some() => lookup::resolve(l, s, true)?,
            _ => a.eval(s)?,
        };
        if !v.is_null() {
            return Ok(v);
        }
    }
    owned(Value::Null)
}

fn nullif<'a>(c: &'a Call, s: &Scope<'a>, v: Cow<'a, Value>) -> Out<'a> {
    let other = c.arg(1, s)?;
    if loose_eq(&v, &other) {
        owned(Value::Null)
    } else {
        Ok(v)
    }
}

fn describe_missing(e: &Expr) -> String {
    match e {
        Expr::Path { root, segs } => {
            let mut p = match root {
                Root::Key => "key".to_string(),
                Root::Value => "value".to_string(),
                Root::Item => "item".to_string(),
                Root::Index => "index".to_string(),
                Root::FilePath => "file.path".to_string(),
            };
            for s in segs {
                match s {
                    Seg::Field(f) => {
                        p.push('.');
                        p.push_str(f);
                    }
                    Seg::Index(i) => p.push_str(&format!("[{i}]")),
                }
            }
            format!("required value {p} is missing or null")
        }
        _ => "required value is null".to_string(),
    }
}
