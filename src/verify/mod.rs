//! Reconciliation after a load: the rows the mapping produces today from the
//! source, compared with the rows in the target, and the mapping's declared
//! `[[checks]]`.
//!
//! A table is compared by segment checksums ([`segments`]): the target sums
//! its rows per segment of keys (inside the database where it is a server)
//! while the source is read and summed the same way; only the segments whose
//! sums differ are read again and compared row by row ([`rows`]), which names
//! each missing, different and extra key and the columns that differ. A table
//! with a column that has no exact form on its dialect, or secret columns, is
//! compared row by row throughout, and says why. `--sample N` compares N
//! random rows per table.

mod canon;
mod checks;
mod report;
mod rows;
mod segments;

pub use report::{CheckReport, Difference, Report, TableReport, Verdict};

use crate::mapping::{Mapping, OnConflict};
use crate::pipeline::stages::{LookupPlan, Stages};
use crate::pipeline::RunError;
use crate::sink::{bind, Target, TargetError};
use crate::source::{self};
use crate::tracking::ErrorFilter;
use crate::transform::{BoundTable, Outcome, Transformer};
use crate::value::comparable_text;
use rows::{compare, key_hash, Candidate, Expected, TableState};
use segments::Sums;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How a verify runs.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Compare N random keys per table instead of all.
    pub sample: Option<usize>,
    pub batch_size: usize,
    /// Stop after this many differing keys.
    pub max_differences: Option<u64>,
    /// Stop after this long with what was found so far.
    pub time_limit: Option<Duration>,
}

/// A table compared by segments: the source's sums, the segments a repeated
/// key makes uncertain, and, on the second look, the segments that differ.
struct Seg {
    src: Vec<Sums>,
    dirty: Vec<bool>,
    differing: Vec<bool>,
    /// Keys (in `row_key` form) of the expected rows in differing segments.
    expected_keys: HashSet<String>,
    /// Key hashes of the rows compared on the second look, with their segment.
    segment_of: HashMap<u64, usize>,
    /// Keys seen on the second look (the first occurrence wins with `ignore`).
    seen: HashSet<u64>,
}

impl Seg {
    fn new() -> Self {
        Seg {
            src: vec![Sums::default(); canon::BUCKETS],
            dirty: vec![false; canon::BUCKETS],
            differing: vec![false; canon::BUCKETS],
            expected_keys: HashSet::new(),
            segment_of: HashMap::new(),
            seen: HashSet::new(),
        }
    }
}

/// A row's key MD5 and row MD5.
type RowDigest = ([u8; 16], [u8; 16]);

/// Which read of the source this is.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Pass {
    /// Sum segments; compare tables without segments row by row.
    First,
    /// Compare the rows of the differing segments.
    Second,
}

struct Ctx<'a> {
    target: &'a dyn Target,
    mapping: &'a Arc<Mapping>,
    tables: &'a [BoundTable],
    transformer: Arc<Transformer>,
    unresolved: &'a HashSet<String>,
    opts: &'a Options,
    started: Instant,
}

#[derive(Default)]
struct Counts {
    read: u64,
    failing: u64,
    failing_unexplained: u64,
}

fn source_error(mapping: &Mapping, e: source::SourceError) -> RunError {
    RunError::Source {
        mapping: mapping.name.clone(),
        source: e,
    }
}

impl Ctx<'_> {
    /// Why to stop reading, if the limits say so.
    fn over_limit(&self, states: &[TableState]) -> Option<String> {
        if let Some(limit) = self.opts.time_limit {
            if self.started.elapsed() >= limit {
                return Some(format!(
                    "the time limit ({}) was reached",
                    humantime::format_duration(limit)
                ));
            }
        }
        if let Some(max) = self.opts.max_differences {
            let n: u64 = states.iter().map(TableState::differing).sum();
            if n >= max {
                return Some(format!(
                    "{n} differing keys reached --max-differences {max}"
                ));
            }
        }
        None
    }

    /// Read the source once. Returns why it stopped early, if it did.
    async fn pass(
        &self,
        which: Pass,
        states: &mut [TableState],
        segs: &mut [Option<Seg>],
        counts: &mut Counts,
        rng: &mut impl FnMut() -> u64,
    ) -> Result<Option<String>, RunError> {
        let d = self.target.dialect();
        let src = source::open(self.mapping).map_err(|e| source_error(self.mapping, e))?;
        // The run's reader and transform stages: the next batch is read and
        // transformed while this one is summed or compared.
        let lookup = LookupPlan {
            url: (!self.transformer.lookups().is_empty()).then(|| self.target.url().to_string()),
            dry: None,
        };
        let cancel = crate::pipeline::Cancel::default();
        let mut stages = Stages::spawn(
            src,
            self.transformer.clone(),
            lookup,
            2,
            self.opts.batch_size,
            &cancel,
            &self.mapping.name,
        )?;
        let end = self
            .consume(which, &mut stages, states, segs, counts, rng, d)
            .await;
        cancel.cancel();
        if let Some(stage) = stages.stop() {
            if end.is_ok() {
                return Err(source_error(
                    self.mapping,
                    source::SourceError::Other(format!("the {stage} thread stopped")),
                ));
            }
        }
        end
    }

    #[allow(clippy::too_many_arguments)]
    async fn consume(
        &self,
        which: Pass,
        stages: &mut Stages,
        states: &mut [TableState],
        segs: &mut [Option<Seg>],
        counts: &mut Counts,
        rng: &mut impl FnMut() -> u64,
        d: crate::dialect::Dialect,
    ) -> Result<Option<String>, RunError> {
        loop {
            if let Some(why) = self.over_limit(states) {
                return Ok(Some(why));
            }
            let Some(next) = stages.out.recv().await else {
                return Ok(None);
            };
            let (batch, _permit) = next.map_err(|e| source_error(self.mapping, e))?;
            if which == Pass::First {
                counts.read += batch.len() as u64;
            }
            // Per table, this batch's rows to compare by key, folded as a load
            // folds them, each with whether its key is new.
            let mut per_table: Vec<Vec<(Candidate, bool)>> =
                self.tables.iter().map(|_| Vec::new()).collect();
            let mut index: Vec<HashMap<u64, usize>> = vec![HashMap::new(); self.tables.len()];
            // Pass 1: each row's digests, on every core.
            let digests: Vec<Vec<Option<RowDigest>>> = match which {
                Pass::First => {
                    use rayon::prelude::*;
                    let hashed: Vec<bool> = segs.iter().map(Option::is_some).collect();
                    batch
                        .par_iter()
                        .map(|tr| match &tr.outcome {
                            Outcome::Rows { rows, .. } => rows
                                .iter()
                                .map(|(ti, values)| {
                                    hashed[*ti].then(|| {
                                        let t = &self.tables[*ti];
                                        let texts: Vec<Option<String>> = values
                                            .iter()
                                            .enumerate()
                                            .map(|(i, v)| canon::predict(d, t, i, v))
                                            .collect();
                                        canon::digest_row(t, &texts)
                                    })
                                })
                                .collect(),
                            _ => Vec::new(),
                        })
                        .collect()
                }
                Pass::Second => Vec::new(),
            };
            for (r, tr) in batch.iter().enumerate() {
                let (rows, secrets) = match &tr.outcome {
                    Outcome::Failed(e) => {
                        if which == Pass::First {
                            counts.failing += 1;
                            if !self.unresolved.contains(&e.record_key) {
                                counts.failing_unexplained += 1;
                            }
                        }
                        continue;
                    }
                    Outcome::Filtered | Outcome::Unchanged { .. } => continue,
                    Outcome::Rows { rows, secrets, .. } => (rows, secrets),
                };
                for (n, (ti, values)) in rows.iter().enumerate() {
                    let t = &self.tables[*ti];
                    let ignore = t.spec.on_conflict == OnConflict::Ignore;
                    let key = t
                        .key_idx
                        .iter()
                        .map(|&i| values[i].key_text())
                        .collect::<Vec<_>>()
                        .join(", ");
                    let hash = key_hash(&key);
                    let first = match (which, &mut segs[*ti]) {
                        (Pass::First, seg) => {
                            let first = states[*ti].seen.insert(hash);
                            if first {
                                states[*ti].report.expected += 1;
                            }
                            if let Some(seg) = seg {
                                let Some(Some((km, rm))) =
                                    digests.get(r).and_then(|row| row.get(n))
                                else {
                                    continue;
                                };
                                let b = canon::bucket_of(km);
                                if first {
                                    seg.src[b].add(rm);
                                } else if !ignore {
                                    // The last occurrence is the one the target
                                    // kept: this segment is compared row by row.
                                    seg.dirty[b] = true;
                                }
                                continue;
                            }
                            first
                        }
                        (Pass::Second, None) => continue,
                        (Pass::Second, Some(seg)) => {
                            let texts: Vec<Option<String>> = t
                                .key_idx
                                .iter()
                                .map(|&i| canon::predict(d, t, i, &values[i]))
                                .collect();
                            let mut framed = String::new();
                            for x in &texts {
                                canon::frame(&mut framed, x.as_deref());
                            }
                            let b = canon::bucket_of(&canon::md5(&framed));
                            if !seg.differing[b] {
                                continue;
                            }
                            let row: Vec<Option<String>> =
                                values.iter().map(comparable_text).collect();
                            seg.expected_keys.insert(t.row_key(&row));
                            seg.segment_of.insert(hash, b);
                            seg.seen.insert(hash)
                        }
                    };
                    if !first && ignore {
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
            for (ti, rows) in per_table.into_iter().enumerate() {
                let st = &mut states[ti];
                match self.opts.sample {
                    Some(n) if which == Pass::First => {
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
                                    let j = (rng() % seen_n.max(1) as u64) as usize;
                                    if j < n {
                                        st.drawn.remove(&st.reservoir[j].0);
                                        st.drawn.insert(row.0, j);
                                        st.reservoir[j] = row;
                                    }
                                }
                            }
                        }
                    }
                    _ => {
                        let rows: Vec<Candidate> = rows.into_iter().map(|(c, _)| c).collect();
                        compare(self.target, &self.tables[ti], &rows, st, self.unresolved).await?
                    }
                }
            }
        }
    }
}

/// Whether a table can be compared by segments, or why not.
async fn segment_method(target: &dyn Target, t: &BoundTable) -> Option<String> {
    if let Some(why) = canon::unhashable(target.dialect(), t) {
        return Some(why);
    }
    if target.dialect() == crate::dialect::Dialect::Sqlite {
        let probe = format!(
            "SELECT rowid FROM {} LIMIT 1",
            crate::dialect::quote_table(target.dialect(), &t.spec.table)
        );
        if target.exec().fetch(&probe, &[]).await.is_err() {
            return Some("the table has no rowid to read it in order".into());
        }
    }
    None
}

/// A table's index and the target's sums of its segments.
type TableSums = (usize, Vec<Sums>);

/// The target's segment sums of the tables compared by segments, computed on
/// a connection of their own while the source is read.
fn spawn_target_sums(
    url: String,
    tables: Vec<(usize, BoundTable)>,
) -> tokio::task::JoinHandle<Result<Vec<TableSums>, TargetError>> {
    tokio::spawn(async move {
        let mut out = Vec::new();
        if tables.is_empty() {
            return Ok(out);
        }
        let target = crate::sink::connect(&url).await?;
        for (i, t) in &tables {
            match segments::target_sums(target.as_ref(), t).await {
                Ok(s) => out.push((*i, s)),
                Err(e) => {
                    target.close().await;
                    return Err(e);
                }
            }
        }
        target.close().await;
        Ok(out)
    })
}

/// Reconcile one mapping.
pub async fn verify(
    target: &dyn Target,
    mapping: Arc<Mapping>,
    opts: &Options,
) -> Result<Report, RunError> {
    let started = Instant::now();
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
    let transformer = Arc::new(Transformer::new(mapping.clone(), tables.clone()));
    let mut states = Vec::new();
    let mut segs: Vec<Option<Seg>> = Vec::new();
    for t in &tables {
        let (method, why) = match opts.sample {
            Some(_) => ("sample", None),
            None => match segment_method(target, t).await {
                None => ("segments", None),
                Some(why) => ("rows", Some(why)),
            },
        };
        segs.push((method == "segments").then(Seg::new));
        states.push(TableState::new(TableReport::new(
            &t.spec.table,
            method,
            why,
        )));
    }
    let sums = spawn_target_sums(
        target.url().to_string(),
        tables
            .iter()
            .enumerate()
            .filter(|(i, _)| segs[*i].is_some())
            .map(|(i, t)| (i, t.clone()))
            .collect(),
    );
    let ctx = Ctx {
        target,
        mapping: &mapping,
        tables: &tables,
        transformer,
        unresolved: &unresolved,
        opts,
        started,
    };
    let mut rng_state: u64 = 0x9E37_79B9_7F4A_7C15
        ^ std::process::id() as u64
        ^ chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0) as u64;
    let mut next_rand = move || {
        rng_state ^= rng_state << 13;
        rng_state ^= rng_state >> 7;
        rng_state ^= rng_state << 17;
        rng_state
    };
    let mut counts = Counts::default();
    let mut incomplete = ctx
        .pass(
            Pass::First,
            &mut states,
            &mut segs,
            &mut counts,
            &mut next_rand,
        )
        .await?;
    let failing_verdict = if counts.failing_unexplained > 0 {
        Verdict::Failed
    } else if counts.failing > 0 {
        Verdict::Warning
    } else {
        Verdict::Passed
    };
    // The target's sums; segments that differ are looked at row by row.
    let target_sums = match incomplete {
        Some(_) => {
            sums.abort();
            Vec::new()
        }
        None => sums.await.map_err(|e| TargetError::Db {
            context: "computing segment checksums".into(),
            message: e.to_string(),
            retryable: false,
        })??,
    };
    let mut any_differing = false;
    for (ti, tsums) in &target_sums {
        let (Some(seg), st) = (&mut segs[*ti], &mut states[*ti]) else {
            continue;
        };
        st.report.found = tsums.iter().map(|s| s.n as i64).sum();
        for (b, theirs) in tsums.iter().enumerate() {
            if seg.dirty[b] || seg.src[b] != *theirs {
                seg.differing[b] = true;
                st.report.segments_differing += 1;
                any_differing = true;
            }
        }
    }
    if any_differing && incomplete.is_none() {
        incomplete = ctx
            .pass(
                Pass::Second,
                &mut states,
                &mut segs,
                &mut counts,
                &mut next_rand,
            )
            .await?;
    }
    for (ti, t) in tables.iter().enumerate() {
        let st = &mut states[ti];
        match &segs[ti] {
            Some(seg) => {
                if incomplete.is_some() && target_sums.is_empty() {
                    // Stopped before the sums were compared: nothing said.
                    st.report.verdict = Verdict::Warning;
                    continue;
                }
                let differing: Vec<usize> =
                    (0..canon::BUCKETS).filter(|b| seg.differing[*b]).collect();
                let mut with_findings: HashSet<usize> = st
                    .diffs
                    .keys()
                    .filter_map(|h| seg.segment_of.get(h).copied())
                    .collect();
                if incomplete.is_none() {
                    for (b, row) in segments::target_keys(target, t, &differing).await? {
                        if seg.expected_keys.contains(&t.row_key(&row)) {
                            continue;
                        }
                        with_findings.insert(b);
                        let key = t
                            .key_idx
                            .iter()
                            .map(|&i| row[i].clone().unwrap_or_else(|| "NULL".into()))
                            .collect::<Vec<_>>()
                            .join(", ");
                        st.extras.push(Difference {
                            key,
                            record_key: String::new(),
                            columns: Vec::new(),
                            explained: false,
                            extra: true,
                        });
                    }
                    st.report.segments_unexplained = differing
                        .iter()
                        .filter(|b| !seg.dirty[**b] && !with_findings.contains(b))
                        .count() as u64;
                }
            }
            None => {
                if opts.sample.is_some() {
                    let rows = std::mem::take(&mut st.reservoir);
                    compare(target, t, &rows, st, &unresolved).await?;
                    st.reservoir = rows;
                }
                st.report.found = target.count_rows(&t.spec.table).await?;
            }
        }
        st.finish(failing_verdict);
    }
    let reports: Vec<TableReport> = states.into_iter().map(|s| s.report).collect();
    let checks = checks::run_checks(target, &mapping).await?;
    let verdict = reports
        .iter()
        .map(|t| t.verdict)
        .chain(checks.iter().map(|c| c.verdict))
        .chain(incomplete.iter().map(|_| Verdict::Warning))
        .max()
        .unwrap_or(Verdict::Passed);
    Ok(Report {
        mapping: mapping.name.clone(),
        records_read: counts.read,
        records_failing: counts.failing,
        records_failing_unexplained: counts.failing_unexplained,
        unresolved_errors: unresolved_rows.len() as u64,
        unresolved_records,
        tables: reports,
        checks,
        verdict,
        incomplete,
    })
}
