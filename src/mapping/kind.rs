//! Type inference: the static [`Kind`] an expression produces, for load-time
//! checks against the target columns. A call's kind comes from its registry
//! entry ([`super::functions::Returns`]).

use super::compile::{Expr, Root};
use super::functions::Returns;
use serde_json::Value;

/// The static type an expression produces, for load-time checks against columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Any,
    Int,
    Float,
    Decimal,
    Bool,
    Text,
    Date,
    Timestamp,
    Uuid,
    Array,
    Object,
}

impl Expr {
    /// The static type the expression produces.
    pub fn kind(&self) -> Kind {
        match self {
            Expr::Literal(v) => kind_of(v),
            Expr::Path {
                root: Root::Index, ..
            } => Kind::Int,
            Expr::Path {
                root: Root::FilePath,
                ..
            }
            | Expr::Capture(_) => Kind::Text,
            Expr::Path { .. } => Kind::Any,
            Expr::Call(c) => match c.func.returns {
                Returns::Kind(k) => k,
                Returns::FirstArg => c.args.first().map_or(Kind::Any, Expr::kind),
                Returns::Common => {
                    let first = c.args.first().map_or(Kind::Any, Expr::kind);
                    if c.args.iter().all(|a| a.kind() == first || is_null_lit(a)) {
                        first
                    } else {
                        Kind::Any
                    }
                }
            },
        }
    }
}

fn is_null_lit(e: &Expr) -> bool {
    matches!(e, Expr::Literal(Value::Null))
}

fn kind_of(v: &Value) -> Kind {
    match v {
        Value::Null => Kind::Any,
        Value::Bool(_) => Kind::Bool,
        Value::Number(n) => {
            if n.is_i64() || n.is_u64() {
                Kind::Int
            } else {
                Kind::Decimal
            }
        }
        Value::String(_) => Kind::Text,
        Value::Array(_) => Kind::Array,
        Value::Object(_) => Kind::Object,
    }
}
