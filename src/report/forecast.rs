//! The forecast of the real cutover: each mapping's production records at the
//! rate this rehearsal measured for it, one mapping after another.

use super::{Report, ReportError};
use serde::Serialize;
use std::collections::BTreeMap;

/// How many records production holds (`--scale`, or counted from the sources).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scale {
    /// Records of all mappings together, shared among the mappings not pinned
    /// below in the proportions of this rehearsal.
    pub total: Option<u64>,
    /// Records of one mapping (`--scale NAME=N`, or its source counted).
    pub pinned: BTreeMap<String, u64>,
    /// Where the pinned counts come from, per mapping (the source counted).
    pub counted_from: BTreeMap<String, String>,
}

impl Scale {
    /// One `--scale` value: `N` (all mappings) or `MAPPING=N`.
    pub fn add_arg(&mut self, arg: &str) -> Result<(), ReportError> {
        let number = |s: &str| {
            s.trim().replace(['_', ','], "").parse::<u64>().map_err(|_| {
                ReportError::Scale(format!(
                    "'{arg}' is not a record count: give N (production records of all mappings) or MAPPING=N"
                ))
            })
        };
        match arg.split_once('=') {
            Some((m, n)) if !m.trim().is_empty() => {
                self.pinned.insert(m.trim().to_string(), number(n)?);
            }
            Some(_) => return Err(ReportError::Scale(format!("'{arg}' names no mapping"))),
            None => {
                if self.total.is_some() {
                    return Err(ReportError::Scale(
                        "the total is given twice; give one N, and MAPPING=N for single mappings"
                            .into(),
                    ));
                }
                self.total = Some(number(arg)?);
            }
        }
        Ok(())
    }
}

/// One mapping's forecast.
#[derive(Debug, Clone, Serialize)]
pub struct ForecastRow {
    pub mapping: String,
    pub rehearsal_records: i64,
    pub rehearsal_seconds: f64,
    pub records_per_second: Option<f64>,
    pub production_records: u64,
    /// Where the production count comes from.
    pub basis: String,
    /// Expected run time (none: no rate was measured).
    pub seconds: Option<f64>,
}

/// The forecast of the whole cutover.
#[derive(Debug, Clone, Serialize)]
pub struct Forecast {
    /// How the production counts were given.
    pub input: String,
    /// What the forecast assumes, in words.
    pub assumption: String,
    pub mappings: Vec<ForecastRow>,
    pub production_records: u64,
    /// The mappings one after another (none when a mapping has no rate).
    pub seconds: Option<f64>,
}

/// Forecast the real cutover from the rates of `report`.
pub fn forecast(report: &Report, scale: &Scale, input: &str) -> Result<Forecast, ReportError> {
    for m in scale.pinned.keys() {
        if !report.mappings.iter().any(|r| &r.mapping == m) {
            return Err(ReportError::Scale(format!(
                "mapping {m} is not in the report (mappings: {})",
                report
                    .mappings
                    .iter()
                    .map(|m| m.mapping.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
    }
    let pinned_sum: u64 = scale.pinned.values().sum();
    let rest: i64 = report
        .mappings
        .iter()
        .filter(|m| !scale.pinned.contains_key(&m.mapping))
        .map(|m| m.records_read)
        .sum();
    let share = match scale.total {
        Some(t) if t < pinned_sum => {
            return Err(ReportError::Scale(format!(
                "the total {t} is smaller than the {pinned_sum} records given for single mappings"
            )))
        }
        Some(t) => Some(t - pinned_sum),
        None => None,
    };
    let mut rows = Vec::new();
    for m in &report.mappings {
        let (records, basis) = match (scale.pinned.get(&m.mapping), share) {
            (Some(&n), _) => (
                n,
                scale.counted_from.get(&m.mapping).map_or_else(
                    || format!("--scale {}={n}", m.mapping),
                    |s| format!("counted: {s}"),
                ),
            ),
            (None, Some(s)) if rest > 0 => (
                (s as f64 * m.records_read as f64 / rest as f64).round() as u64,
                format!(
                    "{:.1} % of {s}, as in the rehearsal",
                    100.0 * m.records_read as f64 / rest as f64
                ),
            ),
            (None, Some(s)) => (
                s,
                "the total (no records in the rehearsal to share it by)".into(),
            ),
            (None, None) => (
                u64::try_from(m.records_read).unwrap_or(0),
                "as in the rehearsal".into(),
            ),
        };
        rows.push(ForecastRow {
            mapping: m.mapping.clone(),
            rehearsal_records: m.records_read,
            rehearsal_seconds: m.seconds,
            records_per_second: m.records_per_second,
            production_records: records,
            basis,
            seconds: m.records_per_second.map(|r| records as f64 / r),
        });
    }
    let seconds = rows.iter().map(|r| r.seconds).sum::<Option<f64>>();
    Ok(Forecast {
        input: input.to_string(),
        assumption:
            "Each mapping loads its production records at the rate this rehearsal measured \
            for it (records read per second over its last full pass, start-up included), so its \
            time grows in proportion to its records; the mappings run one after another, in this \
            order, on a target like this one with the same batch size and workers. Start-up time \
            weighs more in a short rehearsal, which makes the forecast of a long load pessimistic; \
            a production target that is slower, busier or already holds data makes it optimistic."
                .into(),
        production_records: rows.iter().map(|r| r.production_records).sum(),
        mappings: rows,
        seconds,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scale_arguments() {
        let mut s = Scale::default();
        s.add_arg("1_000_000").unwrap();
        s.add_arg("orders=250000").unwrap();
        assert_eq!(s.total, Some(1_000_000));
        assert_eq!(s.pinned["orders"], 250_000);
        assert!(s.add_arg("5").is_err(), "a second total");
        assert!(s.add_arg("x=abc").is_err());
        assert!(s.add_arg("=5").is_err());
    }
}
