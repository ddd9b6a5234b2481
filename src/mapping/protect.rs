//! Where `encrypt()` and `hash_password()` may be used, and which fields of a
//! record their clear text comes from (redacted from error rows like `redact`).
//!
//! A secret column is one whose expression ends in one of them
//! (`value.password | trim | encrypt('KEY')`): only there can the writer keep
//! the value an earlier run stored (the clear text travels beside the row), so
//! anywhere else they are a mapping error. A key column cannot be one (every
//! call gives another value), and the clear text cannot come from the record
//! key or the file name, which error rows and logs show.

use super::compile::{Expr, Root};
use super::expr::Seg;
use super::functions::{protects, secret_of};
use super::spec::TableSpec;

/// What a problem says: message and hint.
pub(super) type Problem = (String, Option<String>);

const LAST_STEP: &str =
    "write it as the last step of a column: columns.password = \"value.password | encrypt('KEY')\"";

/// A problem with the secret functions in a column's expression.
pub(super) fn column(e: &Expr, is_key: bool) -> Option<Problem> {
    let Some((arg, secret)) = secret_of(e) else {
        return elsewhere(e, "inside another function");
    };
    let name = secret.describe();
    if is_key {
        return Some((
            format!("{name} cannot give a key column: every call gives another value, so no rerun would find the row again"),
            Some("key the table on the legacy id and keep the secret in another column".into()),
        ));
    }
    if arg.calls().iter().any(|c| protects(c)) {
        return Some((
            format!("{name} of a value that is already encrypted or hashed"),
            None,
        ));
    }
    for r in arg.reads() {
        let hidden = match r {
            Expr::Path { root, .. } => matches!(root, Root::Key | Root::FilePath),
            _ => true,
        };
        if hidden {
            return Some((
                format!("{name}: the clear text cannot come from the record key or the file name, which error rows and logs show"),
                Some("encrypt a field of `value` or `item`".into()),
            ));
        }
    }
    None
}

/// A problem when an expression that is not a column's whole value (a filter,
/// `for_each`, the key map, or inside another call) uses a secret function.
pub(super) fn elsewhere(e: &Expr, place: &str) -> Option<Problem> {
    let c = e.calls().into_iter().find(|c| protects(c))?;
    Some((
        format!(
            "{}() can only be the last step of a column's expression, not {place}",
            c.func.name
        ),
        Some(LAST_STEP.into()),
    ))
}

/// The record fields a table's secret columns read, as redact paths under
/// `value` (`*` stands for every element of an array; an empty path for the
/// whole record, when an `item` comes from a computed `for_each`).
pub(super) fn protected_paths(t: &TableSpec) -> Vec<Vec<String>> {
    let each: Option<Vec<String>> = match &t.for_each {
        Some(Expr::Path {
            root: Root::Value,
            segs,
        }) => Some(names(segs)),
        _ => None,
    };
    let mut out = Vec::new();
    for c in &t.columns {
        let Some((arg, _)) = secret_of(&c.expr) else {
            continue;
        };
        for r in arg.reads() {
            match r {
                Expr::Path {
                    root: Root::Value,
                    segs,
                } => out.push(names(segs)),
                Expr::Path {
                    root: Root::Item,
                    segs,
                } => out.push(match &each {
                    Some(base) => {
                        let mut p = base.clone();
                        p.push("*".into());
                        p.extend(names(segs));
                        p
                    }
                    None => Vec::new(),
                }),
                _ => {}
            }
        }
    }
    out
}

/// Path segments as redact steps: an array index stands for every element.
fn names(segs: &[Seg]) -> Vec<String> {
    segs.iter()
        .map(|s| match s {
            Seg::Field(f) => f.clone(),
            Seg::Index(_) => "*".into(),
        })
        .collect()
}
