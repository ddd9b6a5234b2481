//! Compiling a parsed expression ([`Ast`]) into an [`Expr`], once, at load time.
//!
//! Path roots are checked here; every call goes through the registry
//! ([`super::functions`]): the function's name, arity and argument shape are
//! checked here, then the function's own check folds its constant arguments
//! (formats, regexes, maps) into the call, so evaluation only does the work.

use super::expr::{Arg, Ast, Seg};
use super::functions::{self, ArgShape, Check, Function, State};
use serde_json::{Map, Value};

/// What a compiled expression may refer to; checked at compile time.
#[derive(Debug, Clone, Default)]
pub struct Env {
    /// Inside a `for_each` table: `item` and `index` exist.
    pub in_for_each: bool,
    /// Names captured by the source's path pattern (`file.NAME`); `None` when the
    /// source has no files (SQL sources), so `file.*` can never exist.
    pub file_captures: Option<Vec<String>>,
    /// Where `encrypt('VAR')` and `decrypt('VAR')` read their key.
    pub vars: Vars,
}

/// The environment variables the functions read at compile time (keys), so
/// that a missing or malformed key is a mapping error before anything runs.
/// The process environment, except in unit tests.
#[derive(Clone, Copy)]
pub struct Vars(pub fn(&str) -> Option<String>);

impl Default for Vars {
    fn default() -> Self {
        Vars(|name| std::env::var(name).ok())
    }
}

impl Vars {
    pub fn get(&self, name: &str) -> Option<String> {
        (self.0)(name)
    }
}

impl std::fmt::Debug for Vars {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Vars")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Root {
    Key,
    Value,
    Item,
    Index,
    FilePath,
}

#[derive(Debug, Clone)]
pub enum Expr {
    Literal(Value),
    Path {
        root: Root,
        segs: Vec<Seg>,
    },
    /// `file.NAME`: a capture of the path pattern.
    Capture(String),
    Call(Box<Call>),
}

/// A call of a built-in function.
#[derive(Clone)]
pub struct Call {
    pub func: &'static Function,
    /// The arguments evaluated at run time (a piped value first); the constant
    /// arguments the function's check folded are in `state`.
    pub args: Vec<Expr>,
    pub state: State,
}

impl std::fmt::Debug for Call {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Call")
            .field("func", &self.func.name)
            .field("args", &self.args)
            .field("state", &self.state)
            .finish()
    }
}

/// A compile error; `at` is a byte offset in the expression.
#[derive(Debug, Clone)]
pub struct CompileError {
    pub at: usize,
    pub message: String,
    pub hint: Option<String>,
}

pub(crate) fn cerr(at: usize, message: impl Into<String>) -> CompileError {
    CompileError {
        at,
        message: message.into(),
        hint: None,
    }
}

/// Compile a parsed expression.
pub fn compile(ast: &Ast, env: &Env) -> Result<Expr, CompileError> {
    match ast {
        Ast::Literal(v) => Ok(Expr::Literal(v.clone())),
        Ast::Dict(entries) => {
            let mut map = Map::new();
            for (k, v) in entries {
                match v {
                    Ast::Literal(lit) => {
                        map.insert(k.clone(), lit.clone());
                    }
                    _ => {
                        return Err(cerr(
                            0,
                            "a dictionary outside map() may only hold literal values",
                        ))
                    }
                }
            }
            Ok(Expr::Literal(Value::Object(map)))
        }
        Ast::Path { root, segs, at } => compile_path(root, segs, *at, env),
        Ast::Call {
            name,
            piped,
            args,
            at,
        } => compile_call(name, piped.as_deref(), args, *at, env),
    }
}

fn compile_path(root: &str, segs: &[Seg], at: usize, env: &Env) -> Result<Expr, CompileError> {
    let root = match root {
        "key" => Root::Key,
        "value" => Root::Value,
        "item" | "index" if !env.in_for_each => {
            return Err(CompileError {
                at,
                message: format!("`{root}` only exists inside a table with `for_each`"),
                hint: Some("add `for_each = \"value.some_array\"` to the table".into()),
            })
        }
        "item" => Root::Item,
        "index" => {
            if !segs.is_empty() {
                return Err(cerr(at, "`index` is a number and has no fields"));
            }
            Root::Index
        }
        "file" => {
            let captures = match &env.file_captures {
                Some(c) => c,
                None => {
                    return Err(CompileError {
                        at,
                        message: "`file` only exists for file sources (kv, json)".into(),
                        hint: None,
                    })
                }
            };
            return match segs {
                [Seg::Field(f)] if f == "path" => Ok(Expr::Path {
                    root: Root::FilePath,
                    segs: Vec::new(),
                }),
                [Seg::Field(f)] if captures.iter().any(|c| c == f) => Ok(Expr::Capture(f.clone())),
                [Seg::Field(f)] => Err(CompileError {
                    at,
                    message: format!(
                        "`file.{f}` is never set: the source path captures no `{{{f}}}`"
                    ),
                    hint: Some(if captures.is_empty() {
                        "the source path has no {name} captures; `file.path` is available".into()
                    } else {
                        format!(
                            "captured names are: {}; `file.path` is also available",
                            captures.join(", ")
                        )
                    }),
                }),
                _ => Err(cerr(
                    at,
                    "use `file.path` or `file.NAME` for a captured {NAME}",
                )),
            };
        }
        "true" | "false" | "null" => return Err(cerr(at, "a literal cannot have fields")),
        other => {
            let is_function = functions::find(other).is_some();
            return Err(CompileError {
                at,
                message: format!("unknown path root or value `{other}`"),
                hint: Some(if is_function {
                    format!("`{other}` is a function: write `{other}(...)` or `... | {other}`")
                } else {
                    "paths start with key, value, item, index or file; text literals are quoted: 'text'"
                        .into()
                }),
            });
        }
    };
    Ok(Expr::Path {
        root,
        segs: segs.to_vec(),
    })
}

fn compile_call(
    name: &str,
    piped: Option<&Ast>,
    args: &[Arg],
    at: usize,
    env: &Env,
) -> Result<Expr, CompileError> {
    let func = functions::find(name);
    let shape = func.map_or(ArgShape::Positional, |f| f.shape);
    // object(name = expr, ...) keeps the names; every other function takes positional args.
    if let (ArgShape::Named, Some(func)) = (shape, func) {
        if piped.is_some() {
            return Err(cerr(at, format!("{name}(...) cannot be used after '|'")));
        }
        let mut names = Vec::new();
        let mut exprs = Vec::new();
        for a in args {
            let n = a.name.clone().ok_or_else(|| CompileError {
                at,
                message: format!("every argument of {name}() needs a name"),
                hint: Some(func.example.into()),
            })?;
            names.push(n);
            exprs.push(compile(&a.value, env)?);
        }
        return finish(func, at, env, exprs, None, names);
    }
    if let Some(a) = args.iter().find(|a| a.name.is_some()) {
        return Err(cerr(
            at,
            format!(
                "{name}() takes no named arguments (`{} = ...`)",
                a.name.as_deref().unwrap_or("")
            ),
        ));
    }
    let mut list: Vec<Expr> = Vec::with_capacity(args.len() + 1);
    let piped_expr = match piped {
        Some(p) => Some(compile(p, env)?),
        None => None,
    };
    let mut dict = None;
    if shape == ArgShape::PipedSecond {
        // format(template, args...): a piped value fills the first placeholder.
        let mut it = args.iter();
        if let Some(t) = it.next() {
            list.push(compile(&t.value, env)?);
        }
        if let Some(p) = piped_expr {
            list.push(p);
        }
        for a in it {
            list.push(compile(&a.value, env)?);
        }
    } else {
        if let Some(p) = piped_expr {
            list.push(p);
        }
        for a in args {
            if shape == ArgShape::Dict {
                if let Ast::Dict(d) = &a.value {
                    // The first dictionary is the function's table, compiled by its check.
                    dict = dict.or(Some(d.as_slice()));
                    continue;
                }
            }
            list.push(compile(&a.value, env)?);
        }
    }
    let Some(func) = func else {
        return Err(unknown_function(name, at));
    };
    if shape == ArgShape::Dict && dict.is_none() {
        return Err(CompileError {
            at,
            message: format!("{name}() needs a dictionary"),
            hint: Some(func.example.into()),
        });
    }
    let n = list.len();
    if n < func.min_args || n > func.max_args {
        let (min, max) = (func.min_args, func.max_args);
        let expected = if min == max {
            format!("{min}")
        } else if max == usize::MAX {
            format!("at least {min}")
        } else {
            format!("{min} to {max}")
        };
        return Err(CompileError {
            at,
            message: format!(
                "{name}() takes {expected} argument(s) counting a piped value, got {n}"
            ),
            hint: None,
        });
    }
    finish(func, at, env, list, dict, Vec::new())
}

/// Run the function's own check (constant arguments) and build the call.
fn finish(
    func: &'static Function,
    at: usize,
    env: &Env,
    args: Vec<Expr>,
    dict: Option<&[(String, Ast)]>,
    names: Vec<String>,
) -> Result<Expr, CompileError> {
    let mut check = Check {
        name: func.name,
        at,
        env,
        args,
        dict,
        names,
    };
    let state = (func.check)(&mut check)?;
    Ok(Expr::Call(Box::new(Call {
        func,
        args: check.args,
        state,
    })))
}

fn unknown_function(name: &str, at: usize) -> CompileError {
    let names: Vec<&str> = functions::names().collect();
    let best = names
        .iter()
        .map(|f| (functions::strsim(name, f), *f))
        .min_by_key(|(d, _)| *d);
    CompileError {
        at,
        message: format!("unknown function `{name}`"),
        hint: Some(match best {
            Some((d, f)) if d <= 2 => format!("did you mean `{f}`?"),
            _ if name.starts_with("int") => "did you mean `int`?".to_string(),
            _ => format!("functions are: {}", names.join(", ")),
        }),
    }
}

impl Expr {
    /// Every `lookup('mapping')` this expression uses, with its argument.
    pub fn lookups(&self) -> Vec<(&str, &Expr)> {
        let mut out = Vec::new();
        self.walk(&mut |e| {
            if let Expr::Call(c) = e {
                if let (Some(m), Some(a)) = (functions::lookup_mapping(c), c.args.first()) {
                    out.push((m, a));
                }
            }
        });
        out
    }

    /// Every call in this expression, outermost first.
    pub fn calls(&self) -> Vec<&Call> {
        let mut out = Vec::new();
        self.walk(&mut |e| {
            if let Expr::Call(c) = e {
                out.push(&**c);
            }
        });
        out
    }

    /// Every part of this expression that reads the record: paths and captures.
    pub fn reads(&self) -> Vec<&Expr> {
        let mut out = Vec::new();
        self.walk(&mut |e| {
            if matches!(e, Expr::Path { .. } | Expr::Capture(_)) {
                out.push(e);
            }
        });
        out
    }

    fn walk<'s>(&'s self, f: &mut dyn FnMut(&'s Expr)) {
        f(self);
        if let Expr::Call(c) = self {
            for a in &c.args {
                a.walk(f);
            }
        }
    }
}
