//! The registry of built-in functions: one [`Function`] entry per function, in
//! the file of its family. An entry holds everything about its function: name,
//! arity, argument shape and kinds, result kind, an example, the compile-time
//! check of its constant arguments and its evaluator. Adding a function is
//! adding its entry to its family's `FUNCTIONS`.
//!
//! The order of the families below (and of the entries in each) is the order
//! of the names in hints ("functions are: ...") and breaks ties between
//! "did you mean" candidates.

mod bytes;
mod casts;
mod choices;
mod ids;
mod json;
mod logic;
mod lookup;
mod nulls;
mod secrets;
mod text;
mod time;

#[cfg(test)]
mod secrets_tests;
#[cfg(test)]
pub(crate) mod tests;

pub use lookup::Lookup;
pub use secrets::{protects, secret_of, Secret, ARGON2_DEFAULT, BCRYPT_DEFAULT};
// The text form and the message rendering of values, named here by callers of
// the functions (the transform's messages) as well.
pub use crate::value::{as_text, show};
pub(crate) use lookup::mapping_of as lookup_mapping;

use super::compile::{cerr, Call, CompileError, Env, Expr};
use super::eval::{Out, Scope};
use super::expr::Ast;
use super::kind::Kind;
use serde_json::Value;
use std::any::Any;
use std::borrow::Cow;
use std::sync::Arc;

/// Every family's entries, in hint order.
const FAMILIES: &[&[Function]] = &[
    nulls::FUNCTIONS,
    casts::FUNCTIONS,
    time::FUNCTIONS,
    ids::FUNCTIONS,
    secrets::FUNCTIONS,
    bytes::FUNCTIONS,
    text::FUNCTIONS,
    choices::FUNCTIONS,
    json::FUNCTIONS,
    logic::FUNCTIONS,
    lookup::FUNCTIONS,
];

/// A built-in function.
pub struct Function {
    pub name: &'static str,
    /// Arity, counting a piped value; `max_args == usize::MAX`: any number.
    pub min_args: usize,
    pub max_args: usize,
    /// How the arguments are written.
    pub shape: ArgShape,
    /// The kind each argument is read as (the last one repeats for a variadic
    /// function). Documentation: arguments are converted at run time, not
    /// checked against these at load time.
    pub takes: &'static [Kind],
    /// The kind of the result, for checks against the target column.
    pub returns: Returns,
    /// A typical use; the hint of shape errors (`object` without names, `map`
    /// without a dictionary), and every example compiles (a unit test).
    pub example: &'static str,
    /// The compile-time check: folds the constant arguments (formats, regexes,
    /// maps) into the call's [`State`], removing them from the run-time arguments.
    pub check: fn(&mut Check<'_>) -> Result<State, CompileError>,
    pub eval: Eval,
}

/// How a function's arguments are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArgShape {
    /// Positional; a piped value is the first argument.
    Positional,
    /// Positional, but a piped value is the second argument, after the first
    /// written one (`format`'s template).
    PipedSecond,
    /// Positional plus one dictionary literal, handed to the check (`map`).
    Dict,
    /// Named only (`object(a = ...)`); never after `|`.
    Named,
}

/// The static kind of a call's result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Returns {
    Kind(Kind),
    /// The kind of the first argument.
    FirstArg,
    /// The kind shared by every argument (nulls aside), else `Any`.
    Common,
}

/// How a call is evaluated.
#[derive(Clone, Copy)]
pub enum Eval {
    /// The function sees nulls: it evaluates its own arguments.
    Raw(for<'a> fn(&'a Call, &Scope<'a>) -> Out<'a>),
    /// A null first argument gives null without calling the function; otherwise
    /// it gets the first argument evaluated.
    Strict(for<'a> fn(&'a Call, &Scope<'a>, Cow<'a, Value>) -> Out<'a>),
}

/// What a function's check works on.
pub struct Check<'c> {
    pub name: &'static str,
    /// Where the call is in the expression (byte offset), for errors.
    pub at: usize,
    pub env: &'c Env,
    /// The compiled arguments, a piped value included; the check removes the
    /// constants it folds, and may add expressions (a map's values).
    pub args: Vec<Expr>,
    /// The dictionary of an [`ArgShape::Dict`] function.
    pub dict: Option<&'c [(String, Ast)]>,
    /// The argument names of an [`ArgShape::Named`] function.
    pub names: Vec<String>,
}

impl Check<'_> {
    /// Argument `i` as a quoted text literal; `what` names it in the error.
    pub fn const_text(&self, i: usize, what: &str) -> Result<String, CompileError> {
        match self.args.get(i) {
            Some(Expr::Literal(Value::String(s))) => Ok(s.clone()),
            _ => Err(cerr(
                self.at,
                format!("{what} must be a quoted text literal"),
            )),
        }
    }
}

/// The constants a function's check folded into a call (a regex, a format, a
/// map's keys...), of a type of the function's own choosing.
#[derive(Clone, Default)]
pub struct State(Option<Arc<dyn Any + Send + Sync>>);

impl State {
    pub fn new<T: Any + Send + Sync>(v: T) -> State {
        State(Some(Arc::new(v)))
    }

    pub fn get<T: Any>(&self) -> Option<&T> {
        self.0.as_deref().and_then(|v| v.downcast_ref::<T>())
    }
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "State(..)"
        } else {
            "State"
        })
    }
}

/// The check of a function without constant arguments.
pub fn no_constants(_: &mut Check<'_>) -> Result<State, CompileError> {
    Ok(State::default())
}

/// Every built-in function, in hint order.
pub fn all() -> impl Iterator<Item = &'static Function> {
    FAMILIES.iter().flat_map(|f| f.iter())
}

/// The names of every built-in function, in hint order.
pub fn names() -> impl Iterator<Item = &'static str> {
    all().map(|f| f.name)
}

/// The registry entry of a function name.
pub fn find(name: &str) -> Option<&'static Function> {
    all().find(|f| f.name == name)
}

/// Levenshtein distance, for "did you mean" hints.
pub fn strsim(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur.push((prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}
