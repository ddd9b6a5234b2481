//! The parsed form of an expression.

use serde_json::Value;

/// A segment of a path after its root.
#[derive(Debug, Clone, PartialEq)]
pub enum Seg {
    Field(String),
    Index(usize),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Ast {
    Literal(Value),
    Dict(Vec<(String, Ast)>),
    /// A path: its root word (`key`, `value`, `item`, `index`, `file`) and segments.
    Path {
        root: String,
        segs: Vec<Seg>,
        at: usize,
    },
    /// A call; a pipe `a | f(b)` is parsed as `f` with `piped = Some(a)`.
    Call {
        name: String,
        piped: Option<Box<Ast>>,
        args: Vec<Arg>,
        at: usize,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Arg {
    pub name: Option<String>,
    pub value: Ast,
}
