//! Two targets side by side (the previous rehearsal, staging against
//! production): per mapping its status, duration, counts, failures by reason
//! and verify result on each, and whether they differ.

use super::{MappingReport, Report};
use serde::Serialize;
use serde_json::{json, Value};

/// Durations that differ by less than this fraction count as the same.
pub const DURATION_TOLERANCE: f64 = 0.10;

/// One figure of one mapping on both targets.
#[derive(Debug, Clone, Serialize)]
pub struct Difference {
    pub mapping: String,
    /// What is compared (`records failed`, `failures: transform: t.c: ...`).
    pub what: String,
    /// On the report's target (null: not there).
    pub this: Value,
    /// On the other target.
    pub other: Value,
    pub differs: bool,
}

/// The comparison with a second target.
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    pub target: String,
    /// The figures side by side, in the order of the report's mappings.
    pub rows: Vec<Difference>,
    /// How many of them differ.
    pub differences: usize,
}

fn figures(m: Option<&MappingReport>) -> Vec<(&'static str, Value)> {
    let Some(m) = m else {
        return Vec::new();
    };
    vec![
        ("status", json!(m.status.map(|s| s.as_str()))),
        ("duration (s)", json!((m.seconds * 1000.0).round() / 1000.0)),
        ("records read", json!(m.records_read)),
        ("records written", json!(m.records_written)),
        ("records filtered", json!(m.records_filtered)),
        ("records failed", json!(m.records_failed)),
        ("rows written", json!(m.rows_written)),
        ("rows unchanged", json!(m.rows_unchanged)),
        ("rows deleted", json!(m.rows_deleted)),
        ("unresolved errors", json!(m.errors_unresolved)),
        ("verify", json!(m.verify.as_ref().map(|v| v.verdict))),
    ]
}

fn differ(what: &str, a: &Value, b: &Value) -> bool {
    if what == "duration (s)" {
        if let (Some(x), Some(y)) = (a.as_f64(), b.as_f64()) {
            let big = x.abs().max(y.abs());
            return big > 0.0 && (x - y).abs() / big > DURATION_TOLERANCE;
        }
    }
    a != b
}

/// Compare `this` report with the `other` target's.
pub fn compare(this: &Report, other: &Report) -> Comparison {
    let mut names: Vec<&str> = this.mappings.iter().map(|m| m.mapping.as_str()).collect();
    for m in &other.mappings {
        if !names.contains(&m.mapping.as_str()) {
            names.push(&m.mapping);
        }
    }
    let mut rows = Vec::new();
    for name in names {
        let a = this.mappings.iter().find(|m| m.mapping == name);
        let b = other.mappings.iter().find(|m| m.mapping == name);
        let (fa, fb) = (figures(a), figures(b));
        let whats: Vec<&str> = fa.iter().chain(&fb).map(|(w, _)| *w).collect();
        let mut seen: Vec<&str> = Vec::new();
        for what in whats {
            if seen.contains(&what) {
                continue;
            }
            seen.push(what);
            let get = |f: &[(&str, Value)]| {
                f.iter()
                    .find(|(w, _)| *w == what)
                    .map_or(Value::Null, |(_, v)| v.clone())
            };
            let (x, y) = (get(&fa), get(&fb));
            rows.push(Difference {
                mapping: name.to_string(),
                what: what.to_string(),
                differs: differ(what, &x, &y),
                this: x,
                other: y,
            });
        }
        // Failures by reason, on either side.
        let mut reasons: Vec<String> = Vec::new();
        for m in a.iter().chain(b.iter()) {
            for f in &m.failures {
                if !reasons.contains(&f.id()) {
                    reasons.push(f.id());
                }
            }
        }
        for r in reasons {
            let count = |m: Option<&MappingReport>| {
                m.map_or(0, |m| {
                    m.failures
                        .iter()
                        .filter(|f| f.id() == r)
                        .map(|f| f.count)
                        .sum::<i64>()
                })
            };
            let (x, y) = (count(a), count(b));
            rows.push(Difference {
                mapping: name.to_string(),
                what: format!("failures: {r}"),
                this: json!(x),
                other: json!(y),
                differs: x != y,
            });
        }
    }
    Comparison {
        target: other.target.clone(),
        differences: rows.iter().filter(|r| r.differs).count(),
        rows,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_within_the_tolerance_are_the_same() {
        let d = "duration (s)";
        assert!(!differ(d, &json!(10.0), &json!(10.9)));
        assert!(differ(d, &json!(10.0), &json!(12.0)));
        assert!(!differ(d, &json!(0.0), &json!(0.0)));
        assert!(differ("records failed", &json!(9), &json!(8)));
    }
}
