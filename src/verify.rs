//! Reconciliation after a load: the rows the mapping produces today from the
//! source, compared with the rows in the target (all of them, or a random
//! sample), and the mapping's declared `[[checks]]`.

use crate::mapping::{Mapping, OnConflict};
use crate::pipeline::RunError;
use crate::sink::bind;
use crate::sink::Target;
use crate::source::{self};
use crate::tracking::ErrorFilter;
use crate::transform::{BoundTable, Outcome, Transformer};
use crate::value::{comparable_text, norm, parse_decimal, SqlValue};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::sync::Arc;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "UPPERCASE")]
pub enum Verdict {
    Passed,
    Warning,
    Failed,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Difference {
    pub key: String,
    pub record_key: String,
    /// Columns whose values differ (empty: the row is missing).
    pub columns: Vec<String>,
    /// An unresolved error row of the record explains it.
    pub explained: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TableReport {
    pub table: String,
    /// Distinct keys produced by the records that transform cleanly.
    pub expected: u64,
    /// Rows in the target table.
    pub found: i64,
    /// Rows compared (all expected rows, or the sample).
    pub compared: u64,
    pub missing: u64,
    pub different: u64,
    /// Rows in the target beyond the expected ones (rows this mapping does not
    /// produce today: an earlier load, another writer).
    pub extra: u64,
    pub sampled: bool,
    /// First few missing and different rows.
    pub examples: Vec<Difference>,
    pub verdict: Verdict,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CheckReport {
    pub name: String,
    pub expect: Value,
    pub got: Option<String>,
    pub verdict: Verdict,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    pub mapping: String,
    pub records_read: u64,
    /// Records that fail to transform today.
    pub records_failing: u64,
    /// Of those, records without an unresolved error row: the mapping or the
    /// source changed since the load, and the target may hold stale rows.
    pub records_failing_unexplained: u64,
    /// Unresolved error rows of the mapping.
    pub unresolved_errors: u64,
    /// Distinct records with unresolved error rows.
    pub unresolved_records: u64,
    pub tables: Vec<TableReport>,
    pub checks: Vec<CheckReport>,
    pub verdict: Verdict,
}

struct Expected {
    record_key: String,
    values: Vec<SqlValue>,
    /// The clear text of its secret columns: (column, text).
    clear: Vec<(usize, String)>,
}

/// A row to compare: (hash of its key, key text, the row the mapping produces).
type Candidate = (u64, String, Expected);

fn key_hash(key: &str) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    key.hash(&mut h);
    h.finish()
}

/// One table while the source is read. A key can come back in a later record
/// (the last one wins in a load, the first with `on_conflict = "ignore"`), so a
/// difference found for a key is kept by key and replaced by the comparison of
/// its later occurrence; only what is left at the end counts.
struct TableState {
    report: TableReport,
    /// Hashes of the keys seen so far (the expected count).
    seen: HashSet<u64>,
    /// Current differences: key hash → (missing, explained by an error row).
    diffs: HashMap<u64, (bool, bool)>,
    examples: Vec<(u64, Difference)>,
    /// `--sample`: the rows drawn so far, and where each key sits.
    reservoir: Vec<Candidate>,
    drawn: HashMap<u64, usize>,
}

impl TableState {
    fn record(&mut self, hash: u64, diff: Option<(Difference, bool)>) {
        self.diffs.remove(&hash);
        self.examples.retain(|(h, _)| *h != hash);
        if let Some((d, missing)) = diff {
            self.diffs.insert(hash, (missing, d.explained));
            if self.examples.len() < 10 {
                self.examples.push((hash, d));
            }
        }
    }

    fn finish(&mut self, failing: Verdict) {
        let r = &mut self.report;
        r.compared = if r.sampled {
            self.reservoir.len() as u64
        } else {
            r.expected
        };
        r.missing = self.diffs.values().filter(|d| d.0).count() as u64;
        r.different = self.diffs.len() as u64 - r.missing;
        r.extra = (r.found - r.expected as i64).max(0) as u64;
        r.verdict = if self.diffs.values().any(|d| !d.1) {
            Verdict::Failed
        } else if !self.diffs.is_empty() || r.extra > 0 {
            Verdict::Warning
        } else {
            Verdict::Passed
        }
        .max(failing);
        r.examples = std::mem::take(&mut self.examples)
            .into_iter()
            .map(|(_, d)| d)
            .collect();
    }
}

/// Compare rows of one table with the target.
async fn compare(
    target: &dyn Target,
    t: &BoundTable,
    rows: &[Candidate],
    state: &mut TableState,
    unresolved: &HashSet<String>,
) -> Result<(), RunError> {
    if rows.is_empty() {
        return Ok(());
    }
    let keys: Vec<Vec<SqlValue>> = rows
        .iter()
        .map(|(_, _, e)| t.key_idx.iter().map(|&i| e.values[i].clone()).collect())
        .collect();
    let found = target.fetch_by_keys(t, &keys).await?;
    let by_key: HashMap<String, &Vec<Option<String>>> =
        found.iter().map(|r| (t.row_key(r), r)).collect();
    // Secret columns match when the stored value opens to the clear text.
    let secrets: HashMap<usize, _> = crate::sink::secrets::secret_columns(t)
        .into_iter()
        .collect();
    let mut checks = Vec::new();
    // Each row's text and the row found for its key.
    type TextRow = Vec<Option<String>>;
    let mut matched: Vec<(TextRow, Option<&TextRow>)> = Vec::new();
    for (_, _, e) in rows {
        let exp_row: Vec<Option<String>> = e.values.iter().map(comparable_text).collect();
        let got = by_key.get(&t.row_key(&exp_row)).copied();
        if let Some(got) = got {
            for (col, clear) in &e.clear {
                if let (Some(secret), Some(Some(stored))) = (secrets.get(col), got.get(*col)) {
                    checks.push((secret.clone(), stored.clone(), clear.clone()));
                }
            }
        }
        matched.push((exp_row, got));
    }
    let mut opened = crate::sink::secrets::opens_all(checks).await.into_iter();
    for ((hash, key, e), (exp_row, got)) in rows.iter().zip(matched) {
        let columns = match got {
            None => Some(Vec::new()),
            Some(got) => {
                let mut cols = Vec::new();
                for (i, c) in t.spec.columns.iter().enumerate() {
                    let differs = match e.clear.iter().find(|(col, _)| *col == i) {
                        // In the order the checks were made.
                        Some(_) if got[i].is_some() && secrets.contains_key(&i) => {
                            !opened.next().unwrap_or(false)
                        }
                        Some(_) => true,
                        None => {
                            norm(&t.types[i], exp_row[i].as_deref())
                                != norm(&t.types[i], got[i].as_deref())
                        }
                    };
                    if differs {
                        cols.push(c.name.clone());
                    }
                }
                (!cols.is_empty()).then_some(cols)
            }
        };
        let diff = columns.map(|columns| {
            let missing = columns.is_empty();
            (
                Difference {
                    key: key.clone(),
                    record_key: e.record_key.clone(),
                    columns,
                    explained: unresolved.contains(&e.record_key),
                },
                missing,
            )
        });
        state.record(*hash, diff);
    }
    Ok(())
}

/// Reconcile one mapping. `sample`: compare N random keys per table instead of all.
pub async fn verify(
    target: &dyn Target,
    mapping: Arc<Mapping>,
    sample: Option<usize>,
    batch_size: usize,
) -> Result<Report, RunError> {
    let tables = bind(target, &mapping).await?;
    target.ensure_tracking().await?;
    let unresolved_rows = target
        .store()
        .errors(&ErrorFilter {
            mapping: Some(mapping.name.clone()),
            unresolved_only: true,
            ..Default::default()
        })
        .await?;
    let unresolved: HashSet<String> = unresolved_rows
        .iter()
        .map(|e| e.record_key.clone())
        .collect();
    let unresolved_records = unresolved.len() as u64;
    let transformer = Transformer::new(mapping.clone(), tables.clone());
    let lookup = match transformer.lookups().is_empty() {
        true => None,
        false => Some(crate::keymap::KeymapLookup::connect(target.url())?),
    };
    let mut src = source::open(&mapping).map_err(|e| RunError::Source {
        mapping: mapping.name.clone(),
        source: e,
    })?;
    let mut states: Vec<TableState> = tables
        .iter()
        .map(|t| TableState {
            report: TableReport {
                table: t.spec.table.clone(),
                expected: 0,
                found: 0,
                compared: 0,
                missing: 0,
                different: 0,
                extra: 0,
                sampled: sample.is_some(),
                examples: Vec::new(),
                verdict: Verdict::Passed,
            },
            seen: HashSet::new(),
            diffs: HashMap::new(),
            examples: Vec::new(),
            reservoir: Vec::new(),
            drawn: HashMap::new(),
        })
        .collect();
    let mut rng_state: u64 = 0x9E37_79B9_7F4A_7C15
        ^ std::process::id() as u64
        ^ chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0) as u64;
    let mut next_rand = move || {
        rng_state ^= rng_state << 13;
        rng_state ^= rng_state >> 7;
        rng_state ^= rng_state << 17;
        rng_state
    };
    let (mut read, mut failing, mut failing_unexplained) = (0u64, 0u64, 0u64);
    loop {
        let raw = src.next_batch(batch_size).map_err(|e| RunError::Source {
            mapping: mapping.name.clone(),
            source: e,
        })?;
        if raw.is_empty() {
            break;
        }
        read += raw.len() as u64;
        let batch = transformer
            .run_batch(
                raw,
                lookup
                    .as_ref()
                    .map(|l| l as &dyn crate::mapping::functions::Lookup),
            )
            .map_err(|e| RunError::Source {
                mapping: mapping.name.clone(),
                source: source::SourceError::Other(format!("lookup(): {e}")),
            })?;
        // Per table, this batch's rows by key, folded as a load folds them.
        // Each with whether its key is new in this batch.
        let mut per_table: Vec<Vec<(Candidate, bool)>> =
            tables.iter().map(|_| Vec::new()).collect();
        let mut index: Vec<HashMap<u64, usize>> = vec![HashMap::new(); tables.len()];
        for tr in &batch {
            match &tr.outcome {
                Outcome::Failed(e) => {
                    failing += 1;
                    if !unresolved.contains(&e.record_key) {
                        failing_unexplained += 1;
                    }
                }
                Outcome::Filtered | Outcome::Unchanged { .. } => {}
                Outcome::Rows { rows, secrets, .. } => {
                    for (n, (ti, values)) in rows.iter().enumerate() {
                        let t = &tables[*ti];
                        let ignore = t.spec.on_conflict == OnConflict::Ignore;
                        let key = t
                            .key_idx
                            .iter()
                            .map(|&i| values[i].key_text())
                            .collect::<Vec<_>>()
                            .join(", ");
                        let hash = key_hash(&key);
                        let first = states[*ti].seen.insert(hash);
                        if first {
                            states[*ti].report.expected += 1;
                        } else if ignore {
                            // The first occurrence is the one the target kept.
                            continue;
                        }
                        let e = Expected {
                            record_key: tr.key.clone(),
                            values: values.clone(),
                            clear: secrets
                                .iter()
                                .filter(|c| c.row == n)
                                .map(|c| (c.col, c.clear.clone()))
                                .collect(),
                        };
                        match index[*ti].get(&hash) {
                            Some(&i) => per_table[*ti][i].0 = (hash, key, e),
                            None => {
                                index[*ti].insert(hash, per_table[*ti].len());
                                per_table[*ti].push(((hash, key, e), first));
                            }
                        }
                    }
                }
            }
        }
        for (ti, rows) in per_table.into_iter().enumerate() {
            let st = &mut states[ti];
            match sample {
                None => {
                    let rows: Vec<Candidate> = rows.into_iter().map(|(c, _)| c).collect();
                    compare(target, &tables[ti], &rows, st, &unresolved).await?
                }
                Some(n) => {
                    for (row, first) in rows {
                        if let Some(&at) = st.drawn.get(&row.0) {
                            // A later occurrence of a drawn key replaces it.
                            st.reservoir[at] = row;
                        } else if first {
                            // Each distinct key is drawn once, when it first appears.
                            let seen_n = st.report.expected as usize;
                            if st.reservoir.len() < n {
                                st.drawn.insert(row.0, st.reservoir.len());
                                st.reservoir.push(row);
                            } else {
                                let j = (next_rand() % seen_n.max(1) as u64) as usize;
                                if j < n {
                                    st.drawn.remove(&st.reservoir[j].0);
                                    st.drawn.insert(row.0, j);
                                    st.reservoir[j] = row;
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    let failing_verdict = if failing_unexplained > 0 {
        Verdict::Failed
    } else if failing > 0 {
        Verdict::Warning
    } else {
        Verdict::Passed
    };
    for (ti, t) in tables.iter().enumerate() {
        let st = &mut states[ti];
        if sample.is_some() {
            let rows = std::mem::take(&mut st.reservoir);
            compare(target, t, &rows, st, &unresolved).await?;
            st.reservoir = rows;
        }
        st.report.found = target.count_rows(&t.spec.table).await?;
        st.finish(failing_verdict);
    }
    let reports: Vec<TableReport> = states.into_iter().map(|s| s.report).collect();
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
    let verdict = reports
        .iter()
        .map(|t| t.verdict)
        .chain(checks.iter().map(|c| c.verdict))
        .max()
        .unwrap_or(Verdict::Passed);
    Ok(Report {
        mapping: mapping.name.clone(),
        records_read: read,
        records_failing: failing,
        records_failing_unexplained: failing_unexplained,
        unresolved_errors: unresolved_rows.len() as u64,
        unresolved_records,
        tables: reports,
        checks,
        verdict,
    })
}
