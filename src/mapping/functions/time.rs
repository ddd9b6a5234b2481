//! Time: `date` and `timestamp`, with an optional constant format
//! (`'%d/%m/%Y'`, `'epoch'`, `'epoch_ms'`) checked at load time.

use super::{ArgShape, Check, Eval, Function, Returns, State};
use crate::mapping::compile::{Call, CompileError};
use crate::mapping::eval::{owned, Out, Scope};
use crate::mapping::kind::Kind;
use crate::value::{parse_date, parse_instant, TimeFormat};
use serde_json::Value;
use std::borrow::Cow;

pub(super) const FUNCTIONS: &[Function] = &[
    Function {
        name: "date",
        min_args: 1,
        max_args: 2,
        shape: ArgShape::Positional,
        takes: &[Kind::Any, Kind::Text],
        returns: Returns::Kind(Kind::Date),
        example: "value.born | date('%d/%m/%Y')",
        check: time_format,
        eval: Eval::Strict(date),
    },
    Function {
        name: "timestamp",
        min_args: 1,
        max_args: 2,
        shape: ArgShape::Positional,
        takes: &[Kind::Any, Kind::Text],
        returns: Returns::Kind(Kind::Timestamp),
        example: "value.createdAt | timestamp('epoch_ms')",
        check: time_format,
        eval: Eval::Strict(timestamp),
    },
];

/// The optional second argument: a constant time format.
fn time_format(c: &mut Check<'_>) -> Result<State, CompileError> {
    let fmt = match c.args.get(1) {
        None => TimeFormat::Auto,
        Some(_) => {
            let f = c.const_text(1, "the time format")?;
            match f.as_str() {
                "epoch" | "epoch_s" | "unix" => TimeFormat::EpochSeconds,
                "epoch_ms" | "unix_ms" => TimeFormat::EpochMillis,
                _ => {
                    if !f.contains('%') {
                        return Err(CompileError {
                            at: c.at,
                            message: format!("'{f}' is not a time format"),
                            hint: Some(
                                "use a strftime pattern such as '%d/%m/%Y %H:%M', or 'epoch' / 'epoch_ms'"
                                    .into(),
                            ),
                        });
                    }
                    TimeFormat::Pattern(f)
                }
            }
        }
    };
    c.args.truncate(1);
    Ok(State::new(fmt))
}

fn date<'a>(c: &'a Call, _: &Scope<'a>, v: Cow<'a, Value>) -> Out<'a> {
    let fmt = c.state::<TimeFormat>()?;
    owned(Value::String(
        parse_date(&v, fmt)?.format("%Y-%m-%d").to_string(),
    ))
}

fn timestamp<'a>(c: &'a Call, _: &Scope<'a>, v: Cow<'a, Value>) -> Out<'a> {
    let fmt = c.state::<TimeFormat>()?;
    owned(parse_instant(&v, fmt)?.to_value())
}
