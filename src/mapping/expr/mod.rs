//! The expression language: `term | function | function(args) ...`.
//!
//! Parsed once per column into an [`Ast`] ([`lexer`], then [`parser`]);
//! [`super::compile`] compiles the AST into an evaluator. Grammar:
//!
//! ```text
//! expr    := primary ( '|' IDENT [ '(' args ')' ] )*
//! primary := literal | dict | path | IDENT '(' args ')' | '(' expr ')'
//! path    := ROOT ( '.' IDENT | '[' INT ']' | '[' STRING ']' )*
//! args    := [ arg ( ',' arg )* ]     arg := [ IDENT '=' ] expr
//! literal := 'text' | "text" | number | true | false | null
//! dict    := '{' [ literal ':' expr ( ',' literal ':' expr )* ] '}'
//! ```

mod ast;
mod lexer;
mod parser;

pub use ast::{Arg, Ast, Seg};
pub use lexer::SyntaxError;
pub use parser::{parse, MAX_DEPTH};
