//! The mapping's declared `[[checks]]`, run on the target after the tables.

use super::report::{CheckReport, Verdict};
use crate::mapping::Mapping;
use crate::pipeline::RunError;
use crate::sink::Target;
use crate::value::parse_decimal;
use serde_json::Value;

/// The mapping's `[[checks]]`: each query's first value against its `expect`.
pub(super) async fn run_checks(
    target: &dyn Target,
    mapping: &Mapping,
) -> Result<Vec<CheckReport>, RunError> {
    let mut checks = Vec::new();
    for c in &mapping.checks {
        let got = target.query_text(&c.sql).await?;
        let ok = match (&c.expect, got.as_deref()) {
            (Value::Null, None) => true,
            (e, Some(g)) => match (parse_decimal(e), parse_decimal(&Value::String(g.into()))) {
                (Ok(a), Ok(b)) => a == b,
                _ => e.as_str().map_or(e.to_string(), str::to_string) == g,
            },
            _ => false,
        };
        checks.push(CheckReport {
            name: c.name.clone(),
            expect: c.expect.clone(),
            got,
            verdict: if ok { Verdict::Passed } else { Verdict::Failed },
        });
    }
    Ok(checks)
}
