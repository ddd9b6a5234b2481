//! What a run did: the counts the writers add up, and the summary the CLI prints.

use crate::sink::BatchResult;
use crate::tracking::RunStatus;
use crate::transform::ErrorRow;
use std::collections::BTreeMap;

/// Rows per table of a run.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct TableSummary {
    pub table: String,
    pub rows_written: i64,
    pub rows_unchanged: i64,
    /// Rows inserted (the rest of rows_written were updates), where the target tells.
    pub rows_inserted: Option<i64>,
}

/// What a run did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RunSummary {
    pub mapping: String,
    pub run_id: Option<i64>,
    pub status: RunStatus,
    pub dry_run: bool,
    pub records_read: i64,
    pub records_written: i64,
    pub records_filtered: i64,
    pub records_failed: i64,
    /// Of the written records, those read exactly as the pass that last wrote
    /// them read them: skipped (not transformed, nothing written).
    pub records_unchanged: i64,
    pub tables: Vec<TableSummary>,
    pub seconds: f64,
    /// The run and position this run resumed from.
    pub resumed_from: Option<(i64, String)>,
    /// The pass the run made (`full` or `delta`, and a delta pass's window).
    #[serde(serialize_with = "pass_json")]
    pub pass: Option<crate::tracking::passes::PassRow>,
    /// A delta pass: hashes of the keys of the records it read and did not fail
    /// (for the deletions of rows their records no longer produce).
    #[serde(skip)]
    pub read_keys: Option<std::sync::Arc<std::collections::HashSet<u64>>>,
    /// A pass that skipped unchanged records and carries deletions: which of
    /// the known records it read (their rows stay).
    #[serde(skip)]
    pub seen: Option<std::sync::Arc<Seen>>,
    /// A dry run: the rows it produced and the records that failed (hashes).
    #[serde(skip)]
    pub produced: Option<std::sync::Arc<super::deletions::Produced>>,
    /// A dry run: per table, the rows a real pass would delete (count, first keys).
    pub would_delete: Vec<(String, u64, Vec<String>)>,
    pub message: Option<String>,
    /// The first errors, for the summary.
    #[serde(skip)]
    pub first_errors: Vec<ErrorRow>,
    /// Dry run: failing records grouped by reason → (count, example keys).
    pub failure_groups: Vec<(String, usize, Vec<String>)>,
    /// Dry run: per table, keys produced more than once in the input (the last
    /// one wins in a real run) → (table, count, example keys).
    pub duplicate_keys: Vec<(String, u64, Vec<String>)>,
}

impl RunSummary {
    pub fn records_per_second(&self) -> f64 {
        if self.seconds > 0.0 {
            self.records_read as f64 / self.seconds
        } else {
            0.0
        }
    }
}

/// The known records (digests) a pass read unchanged, one bit each.
#[derive(Debug)]
pub struct Seen {
    pub digests: std::sync::Arc<crate::transform::Digests>,
    pub bits: Vec<u64>,
}

impl Seen {
    pub fn new(digests: std::sync::Arc<crate::transform::Digests>) -> Seen {
        let n = digests.known.len().div_ceil(64);
        Seen {
            digests,
            bits: vec![0; n],
        }
    }

    pub fn mark(&mut self, at: usize) {
        if let Some(w) = self.bits.get_mut(at / 64) {
            *w |= 1 << (at % 64);
        }
    }

    /// The key hashes of the records read unchanged.
    pub fn keys(&self) -> impl Iterator<Item = u64> + '_ {
        self.bits.iter().enumerate().flat_map(move |(w, bits)| {
            (0..64)
                .filter(move |b| bits & (1u64 << b) != 0)
                .map(move |b| self.digests.known.key_at(w * 64 + b))
        })
    }
}

pub(super) struct Counters {
    pub read: i64,
    pub written: i64,
    pub unchanged: i64,
    pub filtered: i64,
    pub failed: i64,
    pub tables: Vec<(i64, i64, Option<i64>)>,
    pub first_errors: Vec<ErrorRow>,
    pub groups: BTreeMap<String, (usize, Vec<String>)>,
}

impl Counters {
    pub fn new(tables: usize) -> Counters {
        Counters {
            read: 0,
            written: 0,
            unchanged: 0,
            filtered: 0,
            failed: 0,
            tables: vec![(0, 0, None); tables],
            first_errors: Vec::new(),
            groups: BTreeMap::new(),
        }
    }

    /// Count a failed record under its reason, keeping a few example keys.
    pub fn add_failure(&mut self, e: &ErrorRow) {
        let g = self.groups.entry(group_reason(e)).or_default();
        g.0 += 1;
        if g.1.len() < 3 {
            g.1.push(e.record_key.clone());
        }
        if self.first_errors.len() < 10 {
            self.first_errors.push(e.clone());
        }
    }

    pub fn absorb(&mut self, read: i64, res: BatchResult) {
        self.read += read;
        self.written += res.written;
        self.unchanged += res.unchanged;
        self.filtered += res.filtered;
        self.failed += res.failed;
        for (acc, t) in self.tables.iter_mut().zip(&res.tables) {
            acc.0 += t.0;
            acc.1 += t.1;
            acc.2 = match (acc.2, t.2) {
                (Some(a), Some(b)) => Some(a + b),
                (None, b) => b,
                (a, None) => a,
            };
        }
        for e in &res.errors {
            self.add_failure(e);
        }
    }
}

/// An error message without the value it quotes first (`'12a' is not an
/// integer` → `<value> is not an integer`): failures are grouped by it.
pub fn normalize_reason(message: &str) -> String {
    match message.find("' ") {
        Some(i) if message.starts_with('\'') => format!("<value>{}", &message[i + 1..]),
        _ => message.to_string(),
    }
}

fn group_reason(e: &ErrorRow) -> String {
    // Group by column and the reason without the quoted value.
    let msg = normalize_reason(&e.message);
    match &e.column {
        Some(c) => format!("{}: {c}: {msg}", e.stage),
        None => format!("{}: {msg}", e.stage),
    }
}

fn pass_json<S: serde::Serializer>(
    p: &Option<crate::tracking::passes::PassRow>,
    s: S,
) -> Result<S::Ok, S::Error> {
    use serde::Serialize;
    p.as_ref()
        .map(|p| {
            serde_json::json!({
                "kind": p.kind.as_str(),
                "watermark": p.watermark,
                "low": p.low,
                "high": p.high,
            })
        })
        .serialize(s)
}
