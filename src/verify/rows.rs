//! Comparing rows one by one: the rows the mapping produces, fetched by key
//! from the target and compared column by column in each value's exact form.

use super::canon;
use super::report::{Difference, TableReport, Verdict};
use crate::pipeline::RunError;
use crate::sink::Target;
use crate::transform::BoundTable;
use crate::value::{comparable_text, SqlValue};
use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};

pub(super) struct Expected {
    pub record_key: String,
    pub values: Vec<SqlValue>,
    /// The clear text of its secret columns: (column, text).
    pub clear: Vec<(usize, String)>,
}

/// A row to compare: (hash of its key, key text, the row the mapping produces).
pub(super) type Candidate = (u64, String, Expected);

pub(super) fn key_hash(key: &str) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    key.hash(&mut h);
    h.finish()
}

/// One table while the source is read. A key can come back in a later record
/// (the last one wins in a load, the first with `on_conflict = "ignore"`), so a
/// difference found for a key is kept by key and replaced by the comparison of
/// its later occurrence; only what is left at the end counts.
pub(super) struct TableState {
    pub report: TableReport,
    /// Hashes of the keys seen so far (the expected count).
    pub seen: HashSet<u64>,
    /// Current differences: key hash → (missing, explained by an error row).
    pub diffs: HashMap<u64, (bool, bool)>,
    pub examples: Vec<(u64, Difference)>,
    /// `--sample`: the rows drawn so far, and where each key sits.
    pub reservoir: Vec<Candidate>,
    pub drawn: HashMap<u64, usize>,
    /// Rows in the target that no record produces (found in differing segments).
    pub extras: Vec<Difference>,
}

impl TableState {
    pub fn new(report: TableReport) -> Self {
        TableState {
            report,
            seen: HashSet::new(),
            diffs: HashMap::new(),
            examples: Vec::new(),
            reservoir: Vec::new(),
            drawn: HashMap::new(),
            extras: Vec::new(),
        }
    }

    pub fn record(&mut self, hash: u64, diff: Option<(Difference, bool)>) {
        self.diffs.remove(&hash);
        self.examples.retain(|(h, _)| *h != hash);
        if let Some((d, missing)) = diff {
            self.diffs.insert(hash, (missing, d.explained));
            if self.examples.len() < 10 {
                self.examples.push((hash, d));
            }
        }
    }

    /// Keys that differ so far (missing, different, extra).
    pub fn differing(&self) -> u64 {
        (self.diffs.len() + self.extras.len()) as u64
    }

    pub fn finish(&mut self, failing: Verdict) {
        let r = &mut self.report;
        r.compared = if r.sampled {
            self.reservoir.len() as u64
        } else {
            r.expected
        };
        r.missing = self.diffs.values().filter(|d| d.0).count() as u64;
        r.different = self.diffs.len() as u64 - r.missing;
        // Rows in the target beyond the expected rows it holds.
        let by_count = (r.found - r.expected as i64 + r.missing as i64).max(0) as u64;
        r.extra = if r.method == "segments" {
            // Listed by key where the counts agree, else by count.
            let listed = self.extras.len() as u64;
            let agree = r.found == (r.expected - r.missing + listed) as i64;
            if agree {
                listed
            } else {
                by_count
            }
        } else {
            by_count
        };
        r.verdict = if self.diffs.values().any(|d| !d.1) {
            Verdict::Failed
        } else if !self.diffs.is_empty() || r.extra > 0 || r.segments_unexplained > 0 {
            Verdict::Warning
        } else {
            Verdict::Passed
        }
        .max(failing);
        r.examples = std::mem::take(&mut self.examples)
            .into_iter()
            .map(|(_, d)| d)
            .collect();
        let room = 10usize.saturating_sub(r.examples.len());
        r.examples
            .extend(std::mem::take(&mut self.extras).into_iter().take(room));
    }
}

/// Compare rows of one table with the target; returns the key hashes found
/// different or missing.
pub(super) async fn compare(
    target: &dyn Target,
    t: &BoundTable,
    rows: &[Candidate],
    state: &mut TableState,
    unresolved: &HashSet<String>,
) -> Result<(), RunError> {
    if rows.is_empty() {
        return Ok(());
    }
    let d = target.dialect();
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
                            let (ty, decl) = (&t.types[i], t.declared[i].as_str());
                            canon::exact(d, ty, decl, exp_row[i].as_deref())
                                != canon::exact(d, ty, decl, got[i].as_deref())
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
                    extra: false,
                },
                missing,
            )
        });
        state.record(*hash, diff);
    }
    Ok(())
}
