//! The parser: tokens into an [`Ast`], with a nesting limit ([`MAX_DEPTH`]).

use super::ast::{Arg, Ast, Seg};
use super::lexer::{Lexer, SyntaxError, Tok};
use serde_json::Value;

/// How deeply an expression may nest: parentheses, call arguments, dictionary
/// values and `|` steps each add a level. Compiling, typing, evaluating and
/// dropping an expression recurse once per level, so a limit keeps a hostile or
/// broken mapping from overflowing the stack (a 2 MiB worker thread's in a debug
/// build overflowed past about 200 levels); real expressions use a handful.
pub const MAX_DEPTH: usize = 128;

struct Parser {
    toks: Vec<(Tok, usize)>,
    pos: usize,
    end: usize,
    /// The levels of nesting open at `pos` (see [`MAX_DEPTH`]).
    depth: usize,
}

/// Parse one expression.
pub fn parse(src: &str) -> Result<Ast, SyntaxError> {
    let toks = Lexer::run(src)?;
    if toks.is_empty() {
        return Err(SyntaxError {
            at: 0,
            message: "empty expression".into(),
        });
    }
    let mut p = Parser {
        toks,
        pos: 0,
        end: src.len(),
        depth: 0,
    };
    let ast = p.expr()?;
    if let Some((t, at)) = p.toks.get(p.pos) {
        return Err(SyntaxError {
            at: *at,
            message: format!("unexpected {} after the expression", describe(t)),
        });
    }
    Ok(ast)
}

fn describe(t: &Tok) -> String {
    match t {
        Tok::Ident(s) => format!("word '{s}'"),
        Tok::Str(s) => format!("string '{s}'"),
        Tok::Num(s) => format!("number {s}"),
        Tok::Sym(c) => format!("'{c}'"),
    }
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|(t, _)| t)
    }

    fn at(&self) -> usize {
        self.toks.get(self.pos).map(|(_, a)| *a).unwrap_or(self.end)
    }

    fn eat_sym(&mut self, c: char) -> bool {
        if self.peek() == Some(&Tok::Sym(c)) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect_sym(&mut self, c: char) -> Result<(), SyntaxError> {
        if self.eat_sym(c) {
            Ok(())
        } else {
            Err(self.err(format!("expected '{c}'")))
        }
    }

    fn err(&self, what: String) -> SyntaxError {
        let found = match self.toks.get(self.pos) {
            Some((t, _)) => describe(t),
            None => "the end".into(),
        };
        SyntaxError {
            at: self.at(),
            message: format!("{what}, found {found}"),
        }
    }

    /// Open one more level of nesting, or fail past [`MAX_DEPTH`].
    fn nest(&mut self) -> Result<(), SyntaxError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(SyntaxError {
                at: self.at(),
                message: format!(
                    "the expression nests deeper than {MAX_DEPTH} levels (parentheses, calls, dictionaries and '|' steps)"
                ),
            });
        }
        Ok(())
    }

    fn expr(&mut self) -> Result<Ast, SyntaxError> {
        let outer = self.depth;
        let ast = self.pipeline();
        self.depth = outer;
        ast
    }

    fn pipeline(&mut self) -> Result<Ast, SyntaxError> {
        self.nest()?;
        let mut left = self.primary()?;
        while self.eat_sym('|') {
            self.nest()?;
            let at = self.at();
            let name = match self.peek() {
                Some(Tok::Ident(n)) => n.clone(),
                _ => return Err(self.err("expected a function name after '|'".into())),
            };
            self.pos += 1;
            let args = if self.eat_sym('(') {
                self.args()?
            } else {
                Vec::new()
            };
            left = Ast::Call {
                name,
                piped: Some(Box::new(left)),
                args,
                at,
            };
        }
        Ok(left)
    }

    fn args(&mut self) -> Result<Vec<Arg>, SyntaxError> {
        let mut args = Vec::new();
        if self.eat_sym(')') {
            return Ok(args);
        }
        loop {
            let name = match (self.toks.get(self.pos), self.toks.get(self.pos + 1)) {
                (Some((Tok::Ident(n), _)), Some((Tok::Sym('='), _))) => {
                    let n = n.clone();
                    self.pos += 2;
                    Some(n)
                }
                _ => None,
            };
            let value = self.expr()?;
            args.push(Arg { name, value });
            if self.eat_sym(')') {
                return Ok(args);
            }
            if !self.eat_sym(',') {
                return Err(self.err("expected ',' or ')' in the argument list".into()));
            }
        }
    }

    fn primary(&mut self) -> Result<Ast, SyntaxError> {
        let at = self.at();
        let tok = match self.peek() {
            Some(t) => t.clone(),
            None => return Err(self.err("expected a value".into())),
        };
        match tok {
            Tok::Str(s) => {
                self.pos += 1;
                Ok(Ast::Literal(Value::String(s)))
            }
            Tok::Num(n) => {
                self.pos += 1;
                let num: serde_json::Number =
                    serde_json::from_str(&n).map_err(|_| SyntaxError {
                        at,
                        message: format!("'{n}' is not a number"),
                    })?;
                Ok(Ast::Literal(Value::Number(num)))
            }
            Tok::Sym('(') => {
                self.pos += 1;
                let e = self.expr()?;
                self.expect_sym(')')?;
                Ok(e)
            }
            Tok::Sym('{') => {
                self.pos += 1;
                let mut entries = Vec::new();
                if !self.eat_sym('}') {
                    loop {
                        let key = match self.peek() {
                            Some(Tok::Str(s)) | Some(Tok::Ident(s)) | Some(Tok::Num(s)) => {
                                s.clone()
                            }
                            _ => return Err(self.err("expected a key in the dictionary".into())),
                        };
                        self.pos += 1;
                        self.expect_sym(':')?;
                        let v = self.expr()?;
                        entries.push((key, v));
                        if self.eat_sym('}') {
                            break;
                        }
                        if !self.eat_sym(',') {
                            return Err(self.err("expected ',' or '}' in the dictionary".into()));
                        }
                    }
                }
                Ok(Ast::Dict(entries))
            }
            Tok::Ident(word) => {
                self.pos += 1;
                match word.as_str() {
                    "true" => return Ok(Ast::Literal(Value::Bool(true))),
                    "false" => return Ok(Ast::Literal(Value::Bool(false))),
                    "null" => return Ok(Ast::Literal(Value::Null)),
                    _ => {}
                }
                if self.eat_sym('(') {
                    let args = self.args()?;
                    return Ok(Ast::Call {
                        name: word,
                        piped: None,
                        args,
                        at,
                    });
                }
                let mut segs = Vec::new();
                loop {
                    if self.eat_sym('.') {
                        match self.peek() {
                            Some(Tok::Ident(f)) | Some(Tok::Num(f)) => {
                                segs.push(Seg::Field(f.clone()));
                                self.pos += 1;
                            }
                            _ => return Err(self.err("expected a field name after '.'".into())),
                        }
                    } else if self.eat_sym('[') {
                        match self.peek() {
                            Some(Tok::Num(n)) => {
                                let i = n.parse::<usize>().map_err(|_| SyntaxError {
                                    at: self.at(),
                                    message: format!("'{n}' is not an array index"),
                                })?;
                                segs.push(Seg::Index(i));
                            }
                            Some(Tok::Str(s)) => segs.push(Seg::Field(s.clone())),
                            _ => {
                                return Err(
                                    self.err("expected an index or a quoted field name".into())
                                )
                            }
                        }
                        self.pos += 1;
                        self.expect_sym(']')?;
                    } else {
                        break;
                    }
                }
                Ok(Ast::Path {
                    root: word,
                    segs,
                    at,
                })
            }
            Tok::Sym(_) => Err(self.err("expected a value".into())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_paths_pipes_and_calls() {
        let ast = parse("value.a.b[0].c | default(0) | int").unwrap();
        match ast {
            Ast::Call { name, piped, .. } => {
                assert_eq!(name, "int");
                assert!(matches!(*piped.unwrap(), Ast::Call { ref name, .. } if name == "default"));
            }
            other => panic!("{other:?}"),
        }
        let ast = parse("object(legacy_id = value.Id, migrated_from = 'v2')").unwrap();
        match ast {
            Ast::Call { args, .. } => {
                assert_eq!(args.len(), 2);
                assert_eq!(args[0].name.as_deref(), Some("legacy_id"));
            }
            other => panic!("{other:?}"),
        }
        let ast = parse("value.s | map({'Draft': 'draft', 'Sent': 'sent'}, 'x')").unwrap();
        assert!(matches!(ast, Ast::Call { .. }));
        assert_eq!(
            parse("value['odd key'][2]").unwrap(),
            Ast::Path {
                root: "value".into(),
                segs: vec![Seg::Field("odd key".into()), Seg::Index(2)],
                at: 0
            }
        );
        match parse("-1.5e3").unwrap() {
            Ast::Literal(v) => assert_eq!(v.to_string(), "-1.5e+3"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn reports_where_syntax_breaks() {
        let e = parse("value.a | ").unwrap_err();
        assert!(e.message.contains("function name"), "{e}");
        let e = parse("concat(value.a, 'x'").unwrap_err();
        assert!(e.message.contains("expected ',' or ')'"), "{e}");
        let e = parse("'open").unwrap_err();
        assert!(e.message.contains("unterminated"), "{e}");
        let e = parse("value.a value.b").unwrap_err();
        assert_eq!(e.at, 8);
    }

    /// Regression (found by the property tests): deep nesting overflowed the
    /// stack of a 2 MiB thread in compile/eval/drop; it is a syntax error now.
    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        let run = |src: String| {
            std::thread::Builder::new()
                .stack_size(2 << 20)
                .spawn(move || parse(&src).map(|_| ()))
                .unwrap()
                .join()
                .unwrap()
        };
        let n = 10_000;
        for src in [
            format!("{}value{}", "(".repeat(n), ")".repeat(n)),
            format!("value{}", " | trim".repeat(n)),
            format!("{}'x'{}", "concat(".repeat(n), ")".repeat(n)),
            format!(
                "value | {}'a'{}",
                "map({'k': ".repeat(n),
                ", 'd')".repeat(n)
            ),
            format!("{}1{}", "{'k': ".repeat(n), "}".repeat(n)),
            "(".repeat(n),
        ] {
            let e = run(src.clone()).unwrap_err();
            assert!(e.message.contains("nests deeper than 128 levels"), "{e}");
            assert!(e.at < src.len());
        }
        // Up to the limit nests as before.
        assert!(run(format!("value{}", " | trim".repeat(MAX_DEPTH - 1))).is_ok());
        let parens = MAX_DEPTH - 1;
        assert!(run(format!("{}value{}", "(".repeat(parens), ")".repeat(parens))).is_ok());
        assert!(run(format!("value{}", " | trim".repeat(MAX_DEPTH))).is_err());
    }
}
