//! Loading a mapping file: TOML into [`MappingConfig`], validated and compiled
//! into a [`Mapping`], every problem a [`Diagnostic`] at `file:line:column`.

use super::config::{KvFormat, MappingConfig, SourceKind};
use super::spec::{
    kind_name, CheckSpec, ColumnSpec, KeymapSpec, Loc, Mapping, SourceSpec, TableSpec,
};
use super::{compile, expr, protect, Env, Expr};
use sha2::{Digest, Sha256};
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use toml::Spanned;

mod passes;

/// One problem in a mapping file, located.
#[derive(Debug, Clone)]
pub struct Diagnostic {
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
    pub message: String,
    pub hint: Option<String>,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file.display(),
            self.line,
            self.column,
            self.message
        )?;
        if let Some(h) = &self.hint {
            write!(f, "\n  hint: {h}")?;
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MappingError {
    #[error("cannot read mapping {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}", .0.iter().map(|d| d.to_string()).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<Diagnostic>),
}

impl MappingError {
    pub fn diagnostics(&self) -> &[Diagnostic] {
        match self {
            MappingError::Invalid(d) => d,
            MappingError::Read { .. } => &[],
        }
    }
}

struct Ctx<'a> {
    file: &'a Path,
    text: &'a str,
    diags: Vec<Diagnostic>,
}

impl Ctx<'_> {
    fn loc(&self, offset: usize) -> Loc {
        let mut offset = offset.min(self.text.len());
        while !self.text.is_char_boundary(offset) {
            offset -= 1;
        }
        let before = &self.text[..offset];
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        Loc { line, column }
    }

    fn push(&mut self, span: Range<usize>, message: impl Into<String>, hint: Option<String>) {
        let loc = self.loc(span.start);
        self.diags.push(Diagnostic {
            file: self.file.to_path_buf(),
            line: loc.line,
            column: loc.column,
            message: message.into(),
            hint,
        });
    }

    /// Report a misplaced secret function at the expression's string.
    fn protect(&mut self, s: &Spanned<String>, problem: Option<protect::Problem>) {
        if let Some((message, hint)) = problem {
            self.push(s.span(), message, hint);
        }
    }

    /// Parse and compile an expression held in a TOML string at `span`.
    fn expr(&mut self, s: &Spanned<String>, env: &Env, what: &str) -> Option<Expr> {
        let span = s.span();
        // The expression starts after the opening quote(s) of the TOML string.
        let raw = &self.text[span.clone()];
        let quote = if raw.starts_with("\"\"\"") || raw.starts_with("'''") {
            3
        } else {
            usize::from(raw.starts_with('"') || raw.starts_with('\''))
        };
        let base = span.start + quote;
        // Offsets of errors are in the unescaped text; map them back to the file.
        let content = raw.get(quote..).unwrap_or_default();
        let basic = raw.starts_with('"');
        let at = |o: usize| base + raw_offset(content, basic, o);
        let ast = match expr::parse(s.get_ref()) {
            Ok(a) => a,
            Err(e) => {
                self.push(
                    at(e.at)..at(e.at),
                    format!("{what}: syntax error: {}", e.message),
                    None,
                );
                return None;
            }
        };
        match compile::compile(&ast, env) {
            Ok(e) => Some(e),
            Err(e) => {
                self.push(at(e.at)..at(e.at), format!("{what}: {}", e.message), e.hint);
                None
            }
        }
    }
}

/// The byte offset in the raw text of a TOML string's content (after its
/// opening quotes) of byte `unescaped` of its value: escapes (`\\`, `\u00e9`,
/// a line-ending backslash) are longer in the file than in the value.
fn raw_offset(raw: &str, basic: bool, unescaped: usize) -> usize {
    if !basic {
        return unescaped.min(raw.len());
    }
    let mut out = 0usize;
    let mut chars = raw.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if out >= unescaped {
            return i;
        }
        if c != '\\' {
            out += c.len_utf8();
            continue;
        }
        match chars.next() {
            Some((_, 'u')) | Some((_, 'U')) => {
                let n = if raw[i + 1..].starts_with('u') { 4 } else { 8 };
                let hex: String = (0..n)
                    .filter_map(|_| chars.next().map(|(_, h)| h))
                    .collect();
                out += u32::from_str_radix(&hex, 16)
                    .ok()
                    .and_then(char::from_u32)
                    .map_or(1, char::len_utf8);
            }
            Some((_, '\n' | '\r' | ' ' | '\t')) => {
                // A line-ending backslash eats the whitespace that follows.
                while chars.peek().is_some_and(|(_, w)| w.is_whitespace()) {
                    chars.next();
                }
            }
            Some(_) => out += 1,
            None => return raw.len(),
        }
    }
    raw.len()
}

/// Names captured by `{name}` segments of a path pattern.
pub fn pattern_captures(pattern: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = pattern;
    while let Some(i) = rest.find('{') {
        match rest[i..].find('}') {
            Some(j) => {
                out.push(rest[i + 1..i + j].to_string());
                rest = &rest[i + j + 1..];
            }
            None => break,
        }
    }
    out
}

impl Mapping {
    /// Read, validate and compile a mapping file.
    pub fn load(file: &Path) -> Result<Mapping, MappingError> {
        let text = std::fs::read_to_string(file).map_err(|source| MappingError::Read {
            path: file.to_path_buf(),
            source,
        })?;
        Self::from_str(file, &text)
    }

    /// Validate and compile mapping text; `file` locates it (relative paths).
    pub fn from_str(file: &Path, text: &str) -> Result<Mapping, MappingError> {
        Self::from_str_with(file, text, compile::Vars::default())
    }

    /// [`Mapping::from_str`] with the keys of `encrypt()`/`decrypt()` read from `vars`.
    pub fn from_str_with(
        file: &Path,
        text: &str,
        vars: compile::Vars,
    ) -> Result<Mapping, MappingError> {
        let mut cx = Ctx {
            file,
            text,
            diags: Vec::new(),
        };
        let cfg: MappingConfig = match toml::from_str(text) {
            Ok(c) => c,
            Err(e) => {
                let span = e.span().unwrap_or(0..0);
                cx.push(span, e.message().trim().to_string(), None);
                return Err(MappingError::Invalid(cx.diags));
            }
        };
        let dir = file.parent().unwrap_or(Path::new(".")).to_path_buf();
        let checksum = hex::encode(Sha256::digest(text.as_bytes()));

        let name = cfg.name.get_ref().trim().to_string();
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        {
            cx.push(
                cfg.name.span(),
                format!("mapping name '{name}' must be letters, digits, '_', '-' or '.'"),
                None,
            );
        }

        // Source.
        let src = &cfg.source;
        let kind = *src.kind.get_ref();
        let source_span = src.kind.span();
        let path_text = src.path.as_ref().map(|p| p.get_ref().clone());
        let path = path_text.as_ref().map(|p| dir.join(p));
        let format = src
            .format
            .as_ref()
            .map(|f| *f.get_ref())
            .unwrap_or_default();
        let mut file_captures = None;
        match kind {
            SourceKind::Kv | SourceKind::Json => {
                match &src.path {
                    None => cx.push(
                        source_span.clone(),
                        format!("source kind '{}' needs `path`", kind_name(kind)),
                        None,
                    ),
                    Some(p) => file_captures = Some(pattern_captures(p.get_ref())),
                }
                if kind == SourceKind::Json {
                    if let Some(f) = &src.format {
                        cx.push(
                            f.span(),
                            "`format` is for kv sources; a json source is read by file extension",
                            None,
                        );
                    }
                }
                if kind == SourceKind::Kv && format == KvFormat::Dynamodb && src.key.is_none() {
                    cx.push(
                        source_span.clone(),
                        "a dynamodb source needs `key = [\"attribute\", ...]`, the table's key attributes",
                        None,
                    );
                }
            }
            _ => {
                if src.url.is_none() {
                    cx.push(
                        source_span.clone(),
                        format!("source kind '{}' needs `url`", kind_name(kind)),
                        None,
                    );
                }
                if src.table.is_none() == src.query.is_none() {
                    cx.push(
                        source_span.clone(),
                        "a SQL source needs exactly one of `table` or `query`",
                        None,
                    );
                }
                if src.key.as_ref().is_none_or(|k| k.is_empty()) {
                    cx.push(
                        source_span.clone(),
                        "a SQL source needs `key = [\"Col\", ...]`, an ordered unique key for keyset pagination",
                        None,
                    );
                }
            }
        }
        let watermark = passes::watermark(&mut cx, src, kind);
        let source = SourceSpec {
            filter: None,
            paging_prefix: 0,
            watermark,
            kind,
            path,
            path_text,
            format,
            key: src.key.clone().unwrap_or_default(),
            url: src.url.clone(),
            password_env: src.password_env.clone(),
            table: src.table.clone(),
            query: src.query.clone(),
            trust_server_certificate: src.trust_server_certificate.unwrap_or(false),
            dir: dir.clone(),
        };

        if cfg.tables.is_empty() {
            cx.push(0..0, "the mapping has no [[tables]]", None);
        }
        let mut tables = Vec::new();
        for t in &cfg.tables {
            let env = Env {
                in_for_each: t.for_each.is_some(),
                file_captures: file_captures.clone(),
                vars,
            };
            let outer = Env {
                in_for_each: false,
                file_captures: file_captures.clone(),
                vars,
            };
            let tname = t.table.get_ref().clone();
            let for_each = t.for_each.as_ref().and_then(|f| {
                let e = cx.expr(f, &outer, &format!("{tname}.for_each"))?;
                cx.protect(f, protect::elsewhere(&e, "in for_each"));
                Some(e)
            });
            let filter = t.filter.as_ref().and_then(|f| {
                let e = cx.expr(f, &env, &format!("{tname}.filter"))?;
                cx.protect(f, protect::elsewhere(&e, "in a filter"));
                Some(e)
            });
            if t.columns.is_empty() {
                cx.push(
                    t.table.span(),
                    format!("table {tname} has no columns"),
                    None,
                );
            }
            let mut columns = Vec::new();
            for (cname, e) in &t.columns {
                let loc = cx.loc(e.span().start);
                if let Some(expr) = cx.expr(e, &env, &format!("{tname}.{cname}")) {
                    let is_key = t.key.get_ref().contains(cname);
                    cx.protect(e, protect::column(&expr, is_key));
                    columns.push(ColumnSpec {
                        name: cname.clone(),
                        expr,
                        text: e.get_ref().clone(),
                        loc,
                    });
                }
            }
            if t.key.get_ref().is_empty() {
                cx.push(
                    t.key.span(),
                    format!("table {tname}: `key` must name at least one column"),
                    Some("name the columns that identify a row, a PRIMARY KEY or UNIQUE constraint of the table (for a source table without one, `cutover init` lists the candidates in the comment above)".into()),
                );
            }
            for k in t.key.get_ref() {
                if !t.columns.contains_key(k) {
                    cx.push(
                        t.key.span(),
                        format!("table {tname}: key column `{k}` has no `columns.{k}` expression"),
                        Some("every key column must be written by the mapping".into()),
                    );
                }
            }
            let loc = cx.loc(t.table.span().start);
            let key_loc = cx.loc(t.key.span().start);
            let (deletes, max_deletes) = passes::deletions(&mut cx, t);
            tables.push(TableSpec {
                deletes,
                max_deletes,
                table: tname,
                key: t.key.get_ref().clone(),
                on_conflict: t.on_conflict,
                for_each,
                filter,
                columns,
                loc,
                key_loc,
            });
        }

        let keymap = cfg.keymap.as_ref().and_then(|k| {
            let env = Env {
                in_for_each: false,
                file_captures: file_captures.clone(),
                vars,
            };
            let legacy = cx.expr(&k.legacy, &env, "keymap.legacy")?;
            cx.protect(&k.legacy, protect::elsewhere(&legacy, "in the key map"));
            let new = cx.expr(&k.new, &env, "keymap.new")?;
            cx.protect(&k.new, protect::elsewhere(&new, "in the key map"));
            Some(KeymapSpec { legacy, new })
        });

        let checks = cfg
            .checks
            .iter()
            .map(|c| CheckSpec {
                name: c.name.clone(),
                sql: c.sql.clone(),
                expect: c
                    .expect
                    .as_ref()
                    .and_then(|e| serde_json::to_value(e).ok())
                    .unwrap_or(serde_json::Value::from(0)),
            })
            .collect();

        if !cx.diags.is_empty() {
            return Err(MappingError::Invalid(cx.diags));
        }
        let protected: Vec<Vec<String>> =
            tables.iter().flat_map(protect::protected_paths).collect();
        let secrets = tables.iter().any(|t| {
            t.columns
                .iter()
                .any(|c| super::functions::secret_of(&c.expr).is_some())
        });
        Ok(Mapping {
            name,
            file: file.to_path_buf(),
            checksum,
            description: cfg.description.clone(),
            schema: cfg.schema.as_ref().map(|s| dir.join(s.get_ref())),
            source,
            tables,
            checks,
            redact: cfg
                .redact
                .iter()
                .map(|r| {
                    r.trim_start_matches("value.")
                        .split('.')
                        .map(str::to_string)
                        .collect()
                })
                .chain(protected)
                .collect(),
            secrets,
            keymap,
            undo: cfg.undo,
            skip_unchanged: cfg.skip_unchanged,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mapping::OnConflict;

    const GOOD: &str = r#"
name = "forge_signatures"

[source]
kind = "kv"
path = "signature.jsonl"

[[tables]]
table = "contract"
key = ["hash"]
columns.hash = "value.hash | required"
columns.page_id = "value.pageId | int"

[[tables]]
table = "signature"
for_each = "value.signatures"
key = ["contract_hash", "account_id"]
on_conflict = "ignore"
columns.contract_hash = "value.hash"
columns.account_id = "item.accountId | required"
"#;

    #[test]
    fn loads_a_good_mapping() {
        let m = Mapping::from_str(Path::new("m/forge.toml"), GOOD).unwrap();
        assert_eq!(m.name, "forge_signatures");
        assert_eq!(m.tables.len(), 2);
        assert_eq!(m.tables[1].on_conflict, OnConflict::Ignore);
        assert_eq!(
            m.source.path.as_deref(),
            Some(Path::new("m/signature.jsonl"))
        );
        assert_eq!(m.tables[0].columns[1].loc.line, 12);
        assert_eq!(m.checksum.len(), 64);
    }

    #[test]
    fn error_columns_count_escapes_as_written() {
        // `\\` and `\u00e9` are longer in the file than in the expression; the
        // column is that of `bogus` in the file, and no offset lands inside `é`.
        for expr in [
            r"'\\\\\\\\' | concat('éééééééééé') | bogus",
            r"'\u00e9\\d' | concat('éééé') | bogus",
            r"'\u00e9\u00e9\u00e9' | bogus",
        ] {
            let line = format!("columns.page_id = \"{expr}\"");
            let bad = GOOD.replace("columns.page_id = \"value.pageId | int\"", &line);
            let err = Mapping::from_str(Path::new("forge.toml"), &bad).unwrap_err();
            let d = &err.diagnostics()[0];
            let want = line[..line.find("bogus").unwrap()].chars().count() + 1;
            assert_eq!((d.line, d.column), (12, want), "{line}");
        }
    }

    #[test]
    fn errors_have_file_line_and_hint() {
        let bad = GOOD.replace("value.pageId | int", "value.pageId | integer");
        let err = Mapping::from_str(Path::new("forge.toml"), &bad).unwrap_err();
        let d = &err.diagnostics()[0];
        assert_eq!((d.line, d.column), (12, 35));
        assert_eq!(d.message, "contract.page_id: unknown function `integer`");
        assert_eq!(d.hint.as_deref(), Some("did you mean `int`?"));
        assert!(err
            .to_string()
            .starts_with("forge.toml:12:35: contract.page_id"));

        let bad = GOOD.replace(
            "columns.account_id = \"item.accountId | required\"",
            "columns.x = \"item.accountId\"",
        );
        let err = Mapping::from_str(Path::new("forge.toml"), &bad).unwrap_err();
        assert!(
            err.to_string()
                .contains("key column `account_id` has no `columns.account_id`"),
            "{err}"
        );

        let bad = GOOD.replace(
            "columns.page_id = \"value.pageId | int\"",
            "columns.page_id = \"item.x\"",
        );
        let err = Mapping::from_str(Path::new("forge.toml"), &bad).unwrap_err();
        assert!(
            err.to_string()
                .contains("`item` only exists inside a table with `for_each`"),
            "{err}"
        );

        let bad = GOOD.replace("on_conflict = \"ignore\"", "on_conflict = \"replace\"");
        let err = Mapping::from_str(Path::new("forge.toml"), &bad).unwrap_err();
        assert!(err.to_string().starts_with("forge.toml:18:15:"), "{err}");
        assert!(err.to_string().contains("replace"), "{err}");

        let bad = GOOD.replace("kind = \"kv\"", "kind = \"kv\"\nbogus = 1");
        let err = Mapping::from_str(Path::new("forge.toml"), &bad).unwrap_err();
        assert!(err.to_string().contains("bogus"), "{err}");
    }

    /// Regression (found by the property tests): a deeply nested expression
    /// overflowed the stack; it is a located error now.
    #[test]
    fn deep_expressions_are_located_errors() {
        let deep = format!("value{}", " | trim".repeat(5000));
        let bad = GOOD.replace("value.pageId | int", &deep);
        let err = Mapping::from_str(Path::new("forge.toml"), &bad).unwrap_err();
        let d = &err.diagnostics()[0];
        assert_eq!(d.line, 12);
        assert!(
            d.message.starts_with(
                "contract.page_id: syntax error: the expression nests deeper than 128 levels"
            ),
            "{}",
            d.message
        );
    }

    #[test]
    fn captures_of_patterns() {
        assert_eq!(
            pattern_captures("data/users/{user_id}/x-{kind}.json"),
            vec!["user_id".to_string(), "kind".to_string()]
        );
    }
}
