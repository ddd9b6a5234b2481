//! What error rows may show of a record: the redacted fields (the mapping's
//! `redact` list and the fields its secret columns read) replaced by "***" in
//! the record, and their values taken out of the messages.

use super::{Transformed, Transformer};
use crate::source::RawRecord;
use serde_json::Value;

const MASK: &str = "***";

/// Replace the redacted fields (paths under `value`; `*` steps into every
/// element of an array; an empty path is the whole record) with "***".
pub fn redact(mut v: Value, paths: &[Vec<String>]) -> Value {
    for p in paths {
        redact_at(&mut v, p);
    }
    v
}

fn redact_at(v: &mut Value, path: &[String]) {
    let Some((first, rest)) = path.split_first() else {
        *v = Value::String(MASK.into());
        return;
    };
    match v {
        Value::Array(a) if first == "*" => a.iter_mut().for_each(|e| redact_at(e, rest)),
        Value::Object(m) => {
            if let Some(x) = m.get_mut(first) {
                redact_at(x, rest);
            }
        }
        _ => {}
    }
}

/// The texts of the values at the redacted fields (every scalar under them).
pub fn values_at(v: &Value, paths: &[Vec<String>]) -> Vec<String> {
    let mut out = Vec::new();
    for p in paths {
        collect(v, p, &mut out);
    }
    // Longest first, so that a value containing another is taken out whole.
    out.sort_by_key(|s| std::cmp::Reverse(s.len()));
    out.dedup();
    out
}

fn collect(v: &Value, path: &[String], out: &mut Vec<String>) {
    match (path.split_first(), v) {
        (None, Value::String(s)) if !s.is_empty() => out.push(s.clone()),
        (None, Value::Number(n)) => out.push(n.to_string()),
        (None, Value::Array(a)) => a.iter().for_each(|e| collect(e, path, out)),
        (None, Value::Object(m)) => m.values().for_each(|e| collect(e, path, out)),
        (Some((f, rest)), Value::Array(a)) if f == "*" => {
            a.iter().for_each(|e| collect(e, rest, out))
        }
        (Some((f, rest)), Value::Object(m)) => {
            if let Some(x) = m.get(f) {
                collect(x, rest, out);
            }
        }
        _ => {}
    }
}

/// A message with every occurrence of the given values taken out: as written,
/// JSON-escaped (a value inside a shown object), and the first characters a
/// shortened value (`'abc...`) shows.
pub fn scrub(message: &str, values: &[String]) -> String {
    let mut m = message.to_string();
    for v in values {
        let escaped = serde_json::to_string(v).unwrap_or_default();
        let escaped = escaped.trim_matches('"').to_string();
        let mut forms = vec![v.clone(), escaped];
        for f in forms.clone() {
            if f.chars().count() > 56 {
                forms.push(f.chars().take(56).collect());
            }
        }
        for f in forms {
            if !f.is_empty() && m.contains(&f) {
                m = m.replace(&f, MASK);
            }
        }
    }
    m
}

/// A message with every quoted value (`'...'`, as messages show values) masked:
/// for errors in a secret column, where a value shown may be the clear text
/// after an earlier step changed it (`value.password | trim | int`).
pub fn mask_quoted(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(i) = rest.find('\'') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        match after.find('\'') {
            Some(j) => {
                out.push('\'');
                out.push_str(MASK);
                out.push('\'');
                rest = &after[j + 1..];
            }
            None => {
                // A shortened value has no closing quote: mask to the end.
                out.push('\'');
                out.push_str(MASK);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

impl Transformer {
    /// The message and the record of a `load` error row: the record decoded
    /// again, both redacted.
    pub fn load_error(&self, t: &Transformed, message: &str) -> (String, Value) {
        match t.original().map(RawRecord::decode) {
            Some(Ok(rec)) => self.redacted(&rec.value, message, None),
            Some(Err(e)) => (message.to_string(), self.unreadable(e.record)),
            None => (message.to_string(), Value::Null),
        }
    }

    /// A message and record with the redacted fields taken out; `column`: the
    /// `table.column` the message is about.
    pub(super) fn redacted(
        &self,
        value: &Value,
        message: &str,
        column: Option<&str>,
    ) -> (String, Value) {
        let paths = &self.mapping.redact;
        if paths.is_empty() {
            return (message.to_string(), value.clone());
        }
        let mut m = scrub(message, &values_at(value, paths));
        if column.is_some_and(|c| self.secret_columns.iter().any(|s| s == c)) {
            m = mask_quoted(&m);
        }
        (m, redact(value.clone(), paths))
    }

    /// The raw text of a record that could not be read, unless the mapping has
    /// secret columns (the text would show their clear text).
    pub(super) fn unreadable(&self, raw: Value) -> Value {
        match self.mapping.secrets {
            true => Value::String(
                "(not kept: the mapping encrypts or hashes fields of its records)".into(),
            ),
            false => raw,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn p(s: &str) -> Vec<String> {
        s.split('.')
            .filter(|x| !x.is_empty())
            .map(str::to_string)
            .collect()
    }

    #[test]
    fn paths_with_stars_and_the_whole_record() {
        let v = json!({"a": {"b": 1, "c": 2}, "list": [{"pw": "x1"}, {"pw": "x2"}, 3], "n": null});
        let r = redact(
            v.clone(),
            &[p("a.b"), p("list.*.pw"), p("n"), p("missing.x")],
        );
        assert_eq!(
            r,
            json!({"a": {"b": "***", "c": 2}, "list": [{"pw": "***"}, {"pw": "***"}, 3], "n": "***"})
        );
        assert_eq!(redact(v.clone(), &[Vec::new()]), json!("***"));
        assert_eq!(
            values_at(&v, &[p("list.*.pw"), p("a.b")]),
            vec!["x1".to_string(), "x2".to_string(), "1".to_string()]
        );
    }

    #[test]
    fn messages_lose_the_values() {
        let values = vec!["hunter\"2".to_string(), "s3cr3t".to_string()];
        assert_eq!(
            scrub(
                "'s3cr3t' is not an integer; found {\"pw\":\"hunter\\\"2\"}",
                &values
            ),
            "'***' is not an integer; found {\"pw\":\"***\"}"
        );
        let long = "p".repeat(80);
        let shown = crate::value::show(&json!(long));
        assert_eq!(
            scrub(&format!("{shown} is not a date"), &[long]),
            "'***... is not a date"
        );
        assert_eq!(
            mask_quoted("' hunter2 ' is not an integer, nor 'x"),
            "'***' is not an integer, nor '***"
        );
    }
}
