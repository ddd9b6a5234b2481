//! Wires source → transform → target for one mapping: checks the mapping against
//! the target, takes the run lock, decides between a fresh pass and a resume,
//! streams batches through bounded channels (reader thread → rayon transform
//! thread → async writer), retries batches that fail on the connection, and
//! records the run. Only this module draws progress.

use crate::mapping::{Diagnostic, Mapping, MappingError};
use crate::record::Position;
use crate::sink::{write_batch, Dialect, LockOutcome, Target, TargetError};
use crate::source::{self, Source, SourceError};
use crate::tracking::{Holder, NewRun, Progress, RunStatus};
use crate::transform::{BoundTable, ErrorRow, Outcome, Transformed, Transformer};
use futures_util::StreamExt;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::{info, warn};

/// Longest time batches wait in an open transaction before a commit.
const COMMIT_INTERVAL: Duration = Duration::from_secs(5);

/// Options of `cutover run`.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub batch_size: usize,
    pub max_errors: Option<u64>,
    pub restart: bool,
    pub dry_run: bool,
    /// Draw a progress bar (only when stderr is a terminal).
    pub progress: bool,
    /// Attempts for a batch that fails on the connection.
    pub retries: u32,
    /// Commit after this many records (several batches per transaction). `None`:
    /// the target's default (SQLite groups batches: each commit rewrites every
    /// touched page into the WAL; servers commit every batch).
    pub commit_every: Option<usize>,
    /// Batches written in parallel over this many connections (servers only).
    /// `None`: [`DEFAULT_SERVER_WORKERS`].
    pub workers: Option<usize>,
    /// Dry runs of several mappings: the key map pairs the earlier mappings would
    /// record, so that a later mapping's `lookup()`s are checked against them.
    pub dry_keymap: Option<Arc<DryKeymap>>,
}

/// Connections that write batches on PostgreSQL and MySQL when `--workers` is not
/// given. Two overlap one batch's round trip and commit with the next batch's
/// statement: on the 1M-record bench (2 cores), MariaDB 58.5 s with one, 37.6 s
/// with two; PostgreSQL 10.7 s and 7.9 s. More gave nothing on 2 cores.
pub const DEFAULT_SERVER_WORKERS: usize = 2;

/// Connections that write the batches of a run.
fn writers(dialect: Dialect, opts: &RunOptions) -> usize {
    if dialect == Dialect::Sqlite {
        1
    } else {
        opts.workers.unwrap_or(DEFAULT_SERVER_WORKERS).max(1)
    }
}

/// The key map a dry run would have written, kept in memory (it grows with the
/// parent mappings' records; only dry runs use it).
#[derive(Debug, Default)]
pub struct DryKeymap(std::sync::Mutex<std::collections::HashMap<(String, String), String>>);

impl DryKeymap {
    fn record(&self, mapping: &str, pairs: impl Iterator<Item = (String, String)>) {
        if let Ok(mut m) = self.0.lock() {
            for (l, n) in pairs {
                m.insert((mapping.to_string(), l), n);
            }
        }
    }

    fn get(&self, mapping: &str, legacy: &str) -> Option<String> {
        let m = self.0.lock().ok()?;
        m.get(&(mapping.to_string(), legacy.to_string())).cloned()
    }
}

/// `lookup()` in a dry run: what the earlier mappings of the same dry run would
/// have recorded, then the target's key map.
struct DryLookup {
    dry: Arc<DryKeymap>,
    db: Option<crate::keymap::KeymapLookup>,
}

impl crate::mapping::functions::Lookup for DryLookup {
    fn lookup(&self, mapping: &str, legacy_key: &str) -> Result<Option<serde_json::Value>, String> {
        if let Some(n) = self.dry.get(mapping, legacy_key) {
            return Ok(Some(serde_json::Value::String(n)));
        }
        match &self.db {
            Some(db) => db.lookup(mapping, legacy_key),
            None => Ok(None),
        }
    }

    fn prefetch(&self, mapping: &str, legacy_keys: &[String]) {
        if let Some(db) = &self.db {
            let rest: Vec<String> = legacy_keys
                .iter()
                .filter(|k| self.dry.get(mapping, k).is_none())
                .cloned()
                .collect();
            db.prefetch(mapping, &rest);
        }
    }

    fn failure(&self) -> Option<String> {
        self.db.as_ref().and_then(|db| db.failure())
    }
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            batch_size: 5000,
            max_errors: None,
            restart: false,
            dry_run: false,
            progress: true,
            retries: 5,
            commit_every: None,
            workers: None,
            dry_keymap: None,
        }
    }
}

/// Set by Ctrl-C: stop reading, finish the batch in flight, mark the run interrupted.
#[derive(Debug, Default, Clone)]
pub struct Cancel(Arc<AtomicBool>);

impl Cancel {
    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Mapping(#[from] MappingError),
    #[error("source of mapping {mapping}: {source}")]
    Source {
        mapping: String,
        source: SourceError,
    },
    #[error(transparent)]
    Target(#[from] TargetError),
    #[error("mapping {mapping} is already being loaded by {holder}; wait for it to finish or stop that process (a lock of a dead process is taken over automatically)")]
    Locked { mapping: String, holder: Holder },
    #[error("refusing to resume mapping {mapping}: {reason}")]
    ResumeRefused { mapping: String, reason: String },
}

impl RunError {
    /// Exit code: 2 for mapping and usage problems, 1 otherwise.
    pub fn exit_code(&self) -> i32 {
        match self {
            RunError::Mapping(_) | RunError::ResumeRefused { .. } => 2,
            _ => 1,
        }
    }
}

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
    pub tables: Vec<TableSummary>,
    pub seconds: f64,
    /// The run and position this run resumed from.
    pub resumed_from: Option<(i64, String)>,
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

/// Check a mapping against the target's tables: every table and column exists,
/// the key is a unique constraint, types can fit, NOT NULL columns are written.
pub async fn bind(target: &dyn Target, mapping: &Mapping) -> Result<Vec<BoundTable>, RunError> {
    let mut diags: Vec<Diagnostic> = Vec::new();
    let mut bound = Vec::new();
    for t in &mapping.tables {
        let Some(info) = target.describe_table(&t.table).await? else {
            diags.push(
                mapping.diagnostic(
                    &t.loc,
                    format!(
                        "table `{}` does not exist on the target {}",
                        t.table,
                        target.display_url()
                    ),
                    Some(match &mapping.schema {
                        Some(s) => format!("create it in a migration under {}", s.display()),
                        None => {
                            "create it first, or name a migrations folder with `schema = \"...\"`"
                                .into()
                        }
                    }),
                ),
            );
            continue;
        };
        let mut types = Vec::new();
        let mut declared = Vec::new();
        let mut nullable = Vec::new();
        for c in &t.columns {
            match info.column(&c.name) {
                None => {
                    let names: Vec<&str> = info.columns.iter().map(|c| c.name.as_str()).collect();
                    let close = names.iter().find(|n| {
                        n.eq_ignore_ascii_case(&c.name)
                            || crate::mapping::functions::strsim(
                                &n.to_lowercase(),
                                &c.name.to_lowercase(),
                            ) <= 2
                    });
                    diags.push(mapping.diagnostic(
                        &c.loc,
                        format!("table `{}` has no column `{}`", t.table, c.name),
                        Some(match close {
                            Some(n) => format!("did you mean `{n}`?"),
                            None => format!("its columns are: {}", names.join(", ")),
                        }),
                    ));
                }
                Some(col) => {
                    let k = c.expr.kind();
                    if col.ty.rejects(k) {
                        diags.push(mapping.diagnostic(
                            &c.loc,
                            format!(
                                "{}.{}: the expression gives {:?} values but the column is {} ({})",
                                t.table,
                                c.name,
                                k,
                                col.ty.name(),
                                col.declared
                            ),
                            Some("convert it in the expression, e.g. `| text` or `| int`".into()),
                        ));
                    }
                    types.push(col.ty.clone());
                    declared.push(col.declared.clone());
                    nullable.push(col.nullable);
                }
            }
        }
        for col in &info.columns {
            if !col.nullable && !col.has_default && !t.columns.iter().any(|c| c.name == col.name) {
                // SQLite's INTEGER PRIMARY KEY fills itself.
                let rowid = info
                    .unique_keys
                    .first()
                    .is_some_and(|k| k == &vec![col.name.clone()])
                    && col.declared.eq_ignore_ascii_case("INTEGER");
                if !rowid {
                    diags.push(mapping.diagnostic(
                        &t.loc,
                        format!(
                            "table `{}`: column `{}` is NOT NULL without a default, but the mapping does not set it",
                            t.table, col.name
                        ),
                        Some(format!("add `columns.{} = \"...\"`", col.name)),
                    ));
                }
            }
        }
        if !info.is_unique_key(&t.key) {
            diags.push(mapping.diagnostic(
                &t.key_loc,
                format!(
                    "table `{}`: key ({}) is not a primary key or unique constraint of the table",
                    t.table,
                    t.key.join(", ")
                ),
                Some(if info.unique_keys.is_empty() {
                    "the table has no unique constraint; add a PRIMARY KEY or UNIQUE index on the key columns".into()
                } else {
                    format!(
                        "its unique keys are: {}",
                        info.unique_keys
                            .iter()
                            .map(|k| format!("({})", k.join(", ")))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                }),
            ));
        }
        if types.len() == t.columns.len() {
            bound.push(BoundTable {
                key_idx: t.key_indexes(),
                spec: t.clone(),
                types,
                declared,
                nullable,
            });
        }
    }
    if !diags.is_empty() {
        return Err(RunError::Mapping(MappingError::Invalid(diags)));
    }
    Ok(bound)
}

/// Check, before anything is written, every mapping whose tables all exist on
/// the target already; all their problems are reported together. Mappings with
/// a table still missing are checked when their turn comes, after their
/// migrations.
pub async fn precheck(target: &dyn Target, mappings: &[Arc<Mapping>]) -> Result<(), RunError> {
    let mut diags = Vec::new();
    for m in mappings {
        let mut all_exist = true;
        for t in &m.tables {
            if target.describe_table(&t.table).await?.is_none() {
                all_exist = false;
                break;
            }
        }
        if !all_exist {
            continue;
        }
        match bind(target, m).await {
            Ok(_) => {}
            Err(RunError::Mapping(MappingError::Invalid(d))) => diags.extend(d),
            Err(e) => return Err(e),
        }
    }
    if diags.is_empty() {
        Ok(())
    } else {
        Err(RunError::Mapping(MappingError::Invalid(diags)))
    }
}

fn progress_bar(opts: &RunOptions, total: Option<u64>, name: &str) -> ProgressBar {
    if !opts.progress || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let pb = match total {
        Some(t) => ProgressBar::with_draw_target(Some(t), ProgressDrawTarget::stderr()),
        None => ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr()),
    };
    let style = if total.is_some() {
        "{prefix} [{bar:30}] {bytes}/{total_bytes} {msg} ETA {eta}"
    } else {
        "{prefix} {spinner} {bytes} {msg}"
    };
    if let Ok(s) = ProgressStyle::with_template(style) {
        pb.set_style(s.progress_chars("=> "));
    }
    pb.set_prefix(name.to_string());
    pb
}

struct Counters {
    read: i64,
    written: i64,
    filtered: i64,
    failed: i64,
    tables: Vec<(i64, i64, Option<i64>)>,
    first_errors: Vec<ErrorRow>,
    groups: BTreeMap<String, (usize, Vec<String>)>,
}

async fn backoff(name: &str, attempt: u32, e: &TargetError) {
    let wait = Duration::from_millis(250 * (1 << attempt.min(6)));
    warn!(mapping = %name, attempt, "batch failed on the connection, retrying in {wait:?}: {e}");
    tokio::time::sleep(wait).await;
}

impl Counters {
    fn absorb(&mut self, read: i64, res: crate::sink::BatchResult) {
        self.read += read;
        self.written += res.written;
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
        for e in res.errors {
            let g = self.groups.entry(group_reason(&e)).or_default();
            g.0 += 1;
            if g.1.len() < 3 {
                g.1.push(e.record_key.clone());
            }
            if self.first_errors.len() < 10 {
                self.first_errors.push(e);
            }
        }
    }
}

/// Batches committed out of order by parallel writers: the checkpoint only moves
/// over the contiguous prefix of committed batches.
struct Prefix {
    /// Sequence number of the first batch not yet in the committed prefix.
    next: u64,
    /// Records of the pass committed in the prefix.
    records: i64,
    /// Committed batches past the prefix: sequence → (resume position, records).
    done: BTreeMap<u64, (Position, i64)>,
}

/// One batch on its own connection (parallel writers): write, then, holding the
/// prefix lock, move the checkpoint as far as the contiguous prefix reaches and
/// commit.
#[allow(clippy::too_many_arguments)]
async fn write_parallel(
    target: &dyn Target,
    transformer: &Transformer,
    batch: Vec<Transformed>,
    seq: u64,
    template: Progress,
    resolve: bool,
    prefix: &tokio::sync::Mutex<Prefix>,
    retries: u32,
) -> (i64, Result<crate::sink::BatchResult, TargetError>) {
    let n = batch.len() as i64;
    let Some(next_pos) = batch.last().map(|t| t.next.clone()) else {
        return (0, Ok(crate::sink::BatchResult::default()));
    };
    let mut attempt = 0;
    loop {
        let result = async {
            let mut tx = target.begin().await?;
            let mut progress = Progress {
                position: None,
                ..template.clone()
            };
            let res = write_batch(
                tx.as_mut(),
                &transformer.tables,
                &|t| transformer.original_json(t),
                &batch,
                &mut progress,
                resolve,
            )
            .await?;
            let mut st = prefix.lock().await;
            st.done.insert(seq, (next_pos.clone(), n));
            let (mut next, mut records, mut last) = (st.next, st.records, None);
            while let Some((p, k)) = st.done.get(&next) {
                records += k;
                last = Some(p.clone());
                next += 1;
            }
            if let Some(pos) = last {
                let cp = Progress {
                    position: Some(pos),
                    records_committed: records,
                    tables: Vec::new(),
                    ..template.clone()
                };
                if let Err(f) = tx.save_progress(&cp).await {
                    st.done.remove(&seq);
                    return Err(f.into_target("moving the checkpoint"));
                }
            }
            match tx.commit().await {
                Ok(()) => {
                    st.next = next;
                    st.records = records;
                    st.done.retain(|k, _| *k >= next);
                    Ok(res)
                }
                Err(f) => {
                    st.done.remove(&seq);
                    Err(f.into_target("committing a batch"))
                }
            }
        }
        .await;
        match result {
            Err(e) if e.is_retryable() && attempt < retries => {
                attempt += 1;
                backoff(&template.mapping, attempt, &e).await;
            }
            other => return (n, other),
        }
    }
}

fn group_reason(e: &ErrorRow) -> String {
    // Group by column and the reason without the quoted value.
    let msg = match e.message.find("' ") {
        Some(i) if e.message.starts_with('\'') => format!("<value>{}", &e.message[i + 1..]),
        _ => e.message.clone(),
    };
    match &e.column {
        Some(c) => format!("{}: {c}: {msg}", e.stage),
        None => format!("{}: {msg}", e.stage),
    }
}

/// Load one mapping. The mapping must have been validated by [`Mapping::load`].
pub async fn run_mapping(
    target: &dyn Target,
    mapping: Arc<Mapping>,
    opts: &RunOptions,
    cancel: &Cancel,
) -> Result<RunSummary, RunError> {
    let started = Instant::now();
    // The mapping's own schema first (its tables must exist to be checked), then
    // every check against the target, and only then the tracking tables.
    if !opts.dry_run {
        if let Some(dir) = &mapping.schema {
            let report = target.migrate(dir).await?;
            for (v, d) in &report.applied {
                info!(mapping = %mapping.name, version = v, description = %d, "applied migration");
            }
        }
    }
    let tables = bind(target, &mapping).await?;
    if !opts.dry_run {
        target.ensure_tracking().await?;
    }
    let src_err = |source| RunError::Source {
        mapping: mapping.name.clone(),
        source,
    };
    let source = source::open(&mapping).map_err(src_err)?;
    if opts.dry_run {
        return stream(
            target,
            mapping.clone(),
            tables,
            source,
            opts,
            cancel,
            None,
            started,
        )
        .await;
    }
    let me = Holder::me(None);
    match target.try_lock(&mapping.name, &me).await? {
        LockOutcome::Held(holder) => {
            return Err(RunError::Locked {
                mapping: mapping.name.clone(),
                holder,
            })
        }
        LockOutcome::Acquired { replaced } => {
            if let Some(h) = replaced {
                warn!(mapping = %mapping.name, "took over the run lock of {h}, which is gone");
            }
        }
    }
    let result = run_locked(
        target,
        mapping.clone(),
        tables,
        source,
        opts,
        cancel,
        started,
    )
    .await;
    if let Err(e) = target.unlock(&mapping.name).await {
        warn!(mapping = %mapping.name, "could not release the run lock: {e}");
    }
    result
}

async fn run_locked(
    target: &dyn Target,
    mapping: Arc<Mapping>,
    tables: Vec<BoundTable>,
    mut source: Box<dyn Source>,
    opts: &RunOptions,
    cancel: &Cancel,
    started: Instant,
) -> Result<RunSummary, RunError> {
    let name = mapping.name.clone();
    let gone = target
        .store().mark_abandoned(&name, "the process of this run is gone (killed or crashed); a later run resumed from its checkpoint")
        .await?;
    if gone > 0 {
        warn!(mapping = %name, "a previous run's process is gone; marked it interrupted");
    }
    let last = target.store().checkpoint_run(&name).await?;
    let checkpoint = target.store().checkpoint(&name).await?;
    let fingerprint = source.fingerprint();
    let resume = match (&last, checkpoint) {
        _ if opts.restart => None,
        (Some(run), Some(cp)) if run.status != RunStatus::Succeeded && cp.position().is_some() => {
            Some((run.clone(), cp))
        }
        _ => None,
    };
    if let Some((run, cp)) = &resume {
        if cp.mapping_checksum != mapping.checksum {
            return Err(RunError::ResumeRefused {
                mapping: name,
                reason: format!(
                    "the mapping file {} changed since run {} stopped ({} records committed). Run again with --restart to load everything from the start (rows that are already right stay unchanged), restore the mapping to resume, or use `cutover retry` for the failed records only",
                    mapping.file.display(),
                    run.id,
                    cp.records_committed
                ),
            });
        }
        if cp.source_fingerprint != fingerprint {
            return Err(RunError::ResumeRefused {
                mapping: name,
                reason: format!(
                    "the source changed since run {} stopped (was {}, now {}); the checkpoint may no longer point at the same record. Run again with --restart to load everything from the start",
                    run.id, cp.source_fingerprint, fingerprint
                ),
            });
        }
    }
    let resume_info = resume.as_ref().map(|(run, cp)| {
        (
            run.id,
            cp.position.clone().unwrap_or_default(),
            cp.records_committed,
        )
    });
    let options = serde_json::json!({
        "batch_size": opts.batch_size,
        "max_errors": opts.max_errors,
        "restart": opts.restart,
        "workers": writers(target.dialect(), opts),
        "resumed_from_run": resume_info.as_ref().map(|r| r.0),
        "resumed_from_position": resume_info.as_ref().map(|r| r.1.clone()),
        "target": target.display_url(),
        "source": source.describe(),
    });
    let run_id = target
        .store()
        .start_run(&NewRun {
            mapping: name.clone(),
            checksum: mapping.checksum.clone(),
            dry_run: false,
            host: crate::tracking::this_host(),
            pid: std::process::id(),
            options: options.to_string(),
        })
        .await?;
    target.heartbeat(&name, run_id).await?;
    if let Some((_, cp)) = &resume {
        if let Some(pos) = cp.position() {
            info!(mapping = %name, run_id, from_run = cp.run_id, position = %pos, "resuming from the checkpoint");
            if let Err(e) = source.seek(&pos) {
                let _ = target
                    .store()
                    .finish_run(run_id, RunStatus::Failed, Some(&e.to_string()))
                    .await;
                return Err(RunError::Source {
                    mapping: name,
                    source: e,
                });
            }
        }
    } else {
        info!(mapping = %name, run_id, "starting a full pass");
    }
    let ctx = RunCtx {
        run_id,
        base_committed: resume.as_ref().map_or(0, |(_, cp)| cp.records_committed),
        fingerprint,
        resolve: target.store().unresolved_errors(&name).await? > 0,
    };
    let mut summary = stream(
        target,
        mapping,
        tables,
        source,
        opts,
        cancel,
        Some(ctx),
        started,
    )
    .await?;
    summary.resumed_from = resume_info.map(|(r, p, _)| (r, p));
    Ok(summary)
}

struct RunCtx {
    run_id: i64,
    base_committed: i64,
    fingerprint: String,
    resolve: bool,
}

/// A transformed batch with its permit (see [`Slots`]).
type Batch = Result<(Vec<Transformed>, Permit), SourceError>;

/// Memory stays flat because batches in flight are few: the reader hands a
/// batch over only when the transform thread takes it (a zero-capacity
/// channel), and the transform thread starts a batch only with a permit, of
/// which there are as many as batches the writer can write at once plus one.
/// A permit travels with its batch and is returned when the batch is dropped
/// (written, or abandoned at shutdown).
struct Slots {
    state: std::sync::Mutex<(usize, bool)>,
    freed: std::sync::Condvar,
}

struct Permit(Arc<Slots>);

impl Slots {
    fn new(n: usize) -> Arc<Slots> {
        Arc::new(Slots {
            state: std::sync::Mutex::new((n, false)),
            freed: std::sync::Condvar::new(),
        })
    }

    /// Wait for a permit; `None` once the writer has stopped.
    fn acquire(self: &Arc<Self>) -> Option<Permit> {
        let mut st = self.state.lock().ok()?;
        loop {
            if st.1 {
                return None;
            }
            if st.0 > 0 {
                st.0 -= 1;
                return Some(Permit(self.clone()));
            }
            st = self.freed.wait(st).ok()?;
        }
    }

    fn close(&self) {
        if let Ok(mut st) = self.state.lock() {
            st.1 = true;
        }
        self.freed.notify_all();
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        if let Ok(mut st) = self.0.state.lock() {
            st.0 += 1;
        }
        self.0.freed.notify_all();
    }
}

/// A batch being written by a parallel writer: (records, result).
type WriteFuture<'a> = std::pin::Pin<
    Box<
        dyn std::future::Future<Output = (i64, Result<crate::sink::BatchResult, TargetError>)>
            + Send
            + 'a,
    >,
>;

#[allow(clippy::too_many_arguments)]
async fn stream(
    target: &dyn Target,
    mapping: Arc<Mapping>,
    tables: Vec<BoundTable>,
    mut source: Box<dyn Source>,
    opts: &RunOptions,
    cancel: &Cancel,
    run: Option<RunCtx>,
    started: Instant,
) -> Result<RunSummary, RunError> {
    let name = mapping.name.clone();
    let pb = progress_bar(opts, source.total_bytes(), &name);
    let bytes = source.bytes_counter();
    let table_names: Vec<String> = tables.iter().map(|t| t.spec.table.clone()).collect();
    let transformer = Arc::new(Transformer::new(mapping.clone(), tables.clone()));

    // Reader thread → transform thread → this task, each channel bounded.
    let workers = writers(target.dialect(), opts);
    let slots = Slots::new(workers + 1);
    let (raw_tx, raw_rx) =
        crossbeam_channel::bounded::<Result<Vec<source::RawRecord>, SourceError>>(0);
    let (out_tx, mut out_rx) = tokio::sync::mpsc::channel::<Batch>(1);
    let batch_size = opts.batch_size.max(1);
    let stop = cancel.clone();
    let reader = std::thread::Builder::new()
        .name("cutover-read".into())
        .spawn(move || loop {
            if stop.is_cancelled() {
                break;
            }
            match source.next_batch(batch_size) {
                Ok(b) if b.is_empty() => break,
                Ok(b) => {
                    if raw_tx.send(Ok(b)).is_err() {
                        break;
                    }
                }
                Err(e) => {
                    let _ = raw_tx.send(Err(e));
                    break;
                }
            }
        })
        .map_err(|e| RunError::Source {
            mapping: name.clone(),
            source: SourceError::Other(e.to_string()),
        })?;
    let tr = transformer.clone();
    // A dry run creates no tracking tables: without a key map on the target,
    // only what earlier mappings of the same dry run would record is known.
    let keymap_exists = !opts.dry_run || target.describe_table("cutover_keymap").await?.is_some();
    let lookup_url =
        (!transformer.lookups().is_empty() && keymap_exists).then(|| target.url().to_string());
    let dry_keymap = match (
        &opts.dry_keymap,
        opts.dry_run,
        transformer.lookups().is_empty(),
    ) {
        (Some(d), true, _) => Some(d.clone()),
        // A dry run of one mapping on a target without a key map: nothing is known.
        (None, true, false) => Some(Arc::new(DryKeymap::default())),
        _ => None,
    };
    let slots_tr = slots.clone();
    let transformer_thread = std::thread::Builder::new()
        .name("cutover-transform".into())
        .spawn(move || {
            // lookup(): a second connection for the key map.
            let db = match lookup_url.map(|u| crate::keymap::KeymapLookup::connect(&u)) {
                Some(Ok(l)) => Some(l),
                Some(Err(e)) => {
                    let _ = out_tx.blocking_send(Err(SourceError::Other(format!(
                        "key map for lookup(): {e}"
                    ))));
                    return;
                }
                None => None,
            };
            let lookup: Option<Box<dyn crate::mapping::functions::Lookup>> = match (dry_keymap, db)
            {
                (Some(dry), db) => Some(Box::new(DryLookup { dry, db })),
                (None, Some(db)) => Some(Box::new(db)),
                (None, None) => None,
            };
            let lookup_ref = lookup.as_deref();
            while let Some(permit) = slots_tr.acquire() {
                let Ok(msg) = raw_rx.recv() else { break };
                let out = msg.and_then(|b| {
                    tr.run_batch(b, lookup_ref)
                        .map(|t| (t, permit))
                        .map_err(|e| SourceError::Other(format!("lookup(): {e}")))
                });
                if out_tx.blocking_send(out).is_err() {
                    break;
                }
            }
        })
        .map_err(|e| RunError::Source {
            mapping: name.clone(),
            source: SourceError::Other(e.to_string()),
        })?;

    let mut c = Counters {
        read: 0,
        written: 0,
        filtered: 0,
        failed: 0,
        tables: vec![(0, 0, None); table_names.len()],
        first_errors: Vec::new(),
        groups: BTreeMap::new(),
    };
    let mut fatal: Option<RunError> = None;
    let mut interrupted = false;
    let commit_every = opts.commit_every.unwrap_or(match target.dialect() {
        Dialect::Sqlite => 200_000,
        _ => 1,
    });
    let mut open: Option<Box<dyn crate::sink::BatchTx>> = None;
    let prefix = tokio::sync::Mutex::new(Prefix {
        next: 0,
        records: run.as_ref().map_or(0, |r| r.base_committed),
        done: BTreeMap::new(),
    });
    let mut seq: u64 = 0;
    let mut dry_keys: Vec<std::collections::HashSet<u64>> =
        vec![std::collections::HashSet::new(); table_names.len()];
    let mut dry_dups: Vec<(u64, Vec<String>)> = vec![(0, Vec::new()); table_names.len()];
    let mut inflight: futures_util::stream::FuturesUnordered<WriteFuture<'_>> =
        futures_util::stream::FuturesUnordered::new();
    let mut pending: usize = 0;
    let mut last_commit = Instant::now();
    let mut heartbeat = tokio::time::interval(Duration::from_secs(20));
    heartbeat.tick().await;
    // Dry run: keys seen per table, to report duplicates within the input.
    loop {
        let msg = tokio::select! {
            m = out_rx.recv() => m,
            _ = heartbeat.tick() => {
                // With a transaction open, its batches carry the heartbeat.
                if let (Some(r), None) = (&run, &open) {
                    match target.heartbeat(&name, r.run_id).await {
                        Err(e @ TargetError::LockLost { .. }) => {
                            fatal = Some(e.into());
                            break;
                        }
                        Err(e) => warn!(mapping = %name, "heartbeat failed: {e}"),
                        Ok(()) => {}
                    }
                }
                continue;
            }
        };
        let Some(msg) = msg else { break };
        if cancel.is_cancelled() {
            interrupted = true;
            break;
        }
        let (batch, permit) = match msg {
            Ok(b) => b,
            Err(e) => {
                fatal = Some(RunError::Source {
                    mapping: name.clone(),
                    source: e,
                });
                break;
            }
        };
        let Some(last) = batch.last() else { continue };
        let next: Position = last.next.clone();
        match &run {
            None => {
                // Dry run: count what a real run would do.
                if let Some(dry) = &opts.dry_keymap {
                    dry.record(
                        &name,
                        batch.iter().filter_map(|t| match &t.outcome {
                            Outcome::Rows {
                                keymap: Some(pair), ..
                            } => Some(pair.clone()),
                            _ => None,
                        }),
                    );
                }
                for t in &batch {
                    match &t.outcome {
                        Outcome::Rows { rows, .. } => {
                            c.written += 1;
                            for (ti, values) in rows {
                                c.tables[*ti].0 += 1;
                                let key: Vec<String> = transformer.tables[*ti]
                                    .key_idx
                                    .iter()
                                    .map(|&i| values[i].key_text())
                                    .collect();
                                let mut h = std::collections::hash_map::DefaultHasher::new();
                                std::hash::Hash::hash(&key, &mut h);
                                if !dry_keys[*ti].insert(std::hash::Hasher::finish(&h)) {
                                    let d = &mut dry_dups[*ti];
                                    d.0 += 1;
                                    if d.1.len() < 3 {
                                        d.1.push(key.join(", "));
                                    }
                                }
                            }
                        }
                        Outcome::Filtered => c.filtered += 1,
                        Outcome::Failed(e) => {
                            c.failed += 1;
                            let g = c.groups.entry(group_reason(e)).or_default();
                            g.0 += 1;
                            if g.1.len() < 3 {
                                g.1.push(e.record_key.clone());
                            }
                            if c.first_errors.len() < 10 {
                                c.first_errors.push((**e).clone());
                            }
                        }
                    }
                }
                c.read += batch.len() as i64;
            }
            Some(r) if workers > 1 => {
                let template = Progress {
                    run_id: r.run_id,
                    mapping: name.clone(),
                    mapping_checksum: mapping.checksum.clone(),
                    source_fingerprint: r.fingerprint.clone(),
                    ..Default::default()
                };
                while inflight.len() >= workers {
                    if let Some((n, res)) = inflight.next().await {
                        match res {
                            Ok(res) => c.absorb(n, res),
                            Err(e) => fatal = Some(e.into()),
                        }
                    }
                }
                if fatal.is_some() {
                    break;
                }
                let fut = write_parallel(
                    target,
                    &transformer,
                    batch,
                    seq,
                    template,
                    r.resolve,
                    &prefix,
                    opts.retries,
                );
                inflight.push(Box::pin(async move {
                    let _permit = permit;
                    fut.await
                }));
                seq += 1;
            }
            Some(r) => {
                let mut progress = Progress {
                    run_id: r.run_id,
                    mapping: name.clone(),
                    position: Some(next),
                    records_committed: r.base_committed + c.read + batch.len() as i64,
                    mapping_checksum: mapping.checksum.clone(),
                    source_fingerprint: r.fingerprint.clone(),
                    ..Default::default()
                };
                let mut attempt = 0;
                let res = loop {
                    if open.is_none() {
                        match target.begin().await {
                            Ok(tx) => open = Some(tx),
                            Err(e) if e.is_retryable() && attempt < opts.retries => {
                                attempt += 1;
                                backoff(&name, attempt, &e).await;
                                continue;
                            }
                            Err(e) => break Err(e),
                        }
                    }
                    let Some(tx) = open.as_mut() else { continue };
                    let written = write_batch(
                        tx.as_mut(),
                        &transformer.tables,
                        &|t| transformer.original_json(t),
                        &batch,
                        &mut progress,
                        r.resolve,
                    )
                    .await;
                    let pending_before = pending;
                    let result = match written {
                        Ok(res) => {
                            pending += batch.len();
                            if pending >= commit_every
                                || last_commit.elapsed() >= COMMIT_INTERVAL
                                || cancel.is_cancelled()
                            {
                                last_commit = Instant::now();
                                let tx = open.take();
                                pending = 0;
                                match tx {
                                    Some(tx) => tx
                                        .commit()
                                        .await
                                        .map(|_| res)
                                        .map_err(|f| f.into_target("committing a batch")),
                                    None => Ok(res),
                                }
                            } else {
                                Ok(res)
                            }
                        }
                        Err(e) => Err(e),
                    };
                    match result {
                        Ok(res) => break Ok(res),
                        Err(e)
                            if e.is_retryable()
                                && attempt < opts.retries
                                && pending_before == 0 =>
                        {
                            // Only this batch was in the transaction: replay it.
                            open = None;
                            pending = 0;
                            attempt += 1;
                            backoff(&name, attempt, &e).await;
                        }
                        Err(e) => {
                            open = None;
                            break Err(e);
                        }
                    }
                };
                match res {
                    Ok(res) => c.absorb(batch.len() as i64, res),
                    Err(e) => {
                        fatal = Some(e.into());
                        break;
                    }
                }
            }
        }
        pb.set_position(bytes.load(Ordering::Relaxed));
        let secs = started.elapsed().as_secs_f64().max(0.001);
        pb.set_message(format!(
            "{} records ({:.0}/s), {} failed",
            c.read,
            c.read as f64 / secs,
            c.failed
        ));
        if cancel.is_cancelled() {
            interrupted = true;
            break;
        }
    }
    while let Some((n, res)) = inflight.next().await {
        match res {
            Ok(res) => c.absorb(n, res),
            Err(e) => {
                if fatal.is_none() {
                    fatal = Some(e.into());
                }
            }
        }
    }
    drop(inflight);
    if let Some(tx) = open.take() {
        // Batches written so far are good (a source error stops reading, it does
        // not make them wrong): commit them with their checkpoint.
        if !matches!(fatal, Some(RunError::Target(_))) {
            if let Err(f) = tx.commit().await {
                fatal = Some(f.into_target("committing the last batches").into());
            }
        }
    }
    drop(out_rx);
    slots.close();
    // A reader or transform thread that panicked closed its channel early: the
    // records after it were never read, so the run must not look finished.
    let panicked = [
        ("reading", reader.join()),
        ("transforming", transformer_thread.join()),
    ]
    .into_iter()
    .find(|(_, r)| r.is_err());
    if let (Some((what, _)), None) = (panicked, &fatal) {
        fatal = Some(RunError::Source {
            mapping: name.clone(),
            source: SourceError::Other(format!(
                "the {what} thread stopped unexpectedly (a bug in cutover; please report it); the checkpoint is at the last committed batch, run again to resume"
            )),
        });
    }
    // Ctrl-C can arrive before the first batch (the reader then stops without
    // sending anything and the loop above sees a closed channel).
    interrupted |= cancel.is_cancelled();
    pb.finish_and_clear();

    let table_names_for_dups = table_names.clone();
    let status = if fatal.is_some() {
        RunStatus::Failed
    } else if interrupted {
        RunStatus::Interrupted
    } else {
        RunStatus::Succeeded
    };
    let message = fatal.as_ref().map(|e| e.to_string()).or_else(|| {
        interrupted
            .then(|| "interrupted (Ctrl-C); run again to resume from the checkpoint".to_string())
    });
    if let Some(r) = &run {
        target
            .store()
            .finish_run(r.run_id, status, message.as_deref())
            .await?;
    }
    if let Some(e) = fatal {
        return Err(e);
    }
    info!(mapping = %name, read = c.read, written = c.written, filtered = c.filtered, failed = c.failed, "run {status}");
    Ok(RunSummary {
        mapping: name,
        run_id: run.as_ref().map(|r| r.run_id),
        status,
        dry_run: run.is_none(),
        records_read: c.read,
        records_written: c.written,
        records_filtered: c.filtered,
        records_failed: c.failed,
        tables: table_names
            .into_iter()
            .zip(c.tables)
            .map(|(table, (w, u, i))| TableSummary {
                table,
                rows_written: w,
                rows_unchanged: u,
                rows_inserted: i,
            })
            .collect(),
        seconds: started.elapsed().as_secs_f64(),
        resumed_from: None,
        message,
        first_errors: c.first_errors,
        failure_groups: c
            .groups
            .into_iter()
            .map(|(k, (n, keys))| (k, n, keys))
            .collect(),
        duplicate_keys: table_names_for_dups
            .into_iter()
            .zip(dry_dups)
            .filter(|(_, d)| d.0 > 0)
            .map(|(t, (n, keys))| (t, n, keys))
            .collect(),
    })
}

/// What `cutover retry` did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RetrySummary {
    pub mapping: String,
    pub run_id: i64,
    /// Distinct records with unresolved errors.
    pub records: i64,
    /// Now loaded (their errors resolved).
    pub loaded: i64,
    pub filtered: i64,
    /// Failed again (a new error row each).
    pub failed: i64,
    /// Their stored position no longer points at a record of the source.
    pub not_found: Vec<String>,
    pub first_errors: Vec<String>,
}

/// Reload only the records that have unresolved error rows, reading each again
/// from the source at its stored position. Works after the mapping changed (that
/// is the point); the checkpoint does not move.
pub async fn retry_mapping(
    target: &dyn Target,
    mapping: Arc<Mapping>,
    opts: &RunOptions,
) -> Result<RetrySummary, RunError> {
    if let Some(dir) = &mapping.schema {
        target.migrate(dir).await?;
    }
    let tables = bind(target, &mapping).await?;
    target.ensure_tracking().await?;
    let name = mapping.name.clone();
    let src_err = |source| RunError::Source {
        mapping: name.clone(),
        source,
    };
    let mut source = source::open(&mapping).map_err(src_err)?;
    let me = Holder::me(None);
    if let LockOutcome::Held(holder) = target.try_lock(&name, &me).await? {
        return Err(RunError::Locked {
            mapping: name,
            holder,
        });
    }
    let result = async {
        let errors = target
            .store().errors(&crate::tracking::ErrorFilter { mapping: Some(name.clone()), unresolved_only: true, ..Default::default() })
            .await?;
        // The latest position of each record key.
        let mut latest: BTreeMap<String, (i64, Option<Position>)> = BTreeMap::new();
        for e in &errors {
            let pos = e.position.as_deref().and_then(Position::from_json);
            let entry = latest.entry(e.record_key.clone()).or_insert((e.id, pos.clone()));
            if e.id >= entry.0 {
                *entry = (e.id, pos);
            }
        }
        let mut not_found = Vec::new();
        let mut todo: Vec<(String, Position)> = Vec::new();
        for (k, (_, p)) in latest {
            match p {
                Some(p) => todo.push((k, p)),
                None => not_found.push(k),
            }
        }
        todo.sort_by_key(|a| (a.1.file, a.1.offset));
        let options = serde_json::json!({"retry": true, "records": todo.len(), "target": target.display_url()});
        let run_id = target
            .store().start_run(&NewRun {
                mapping: name.clone(),
                checksum: mapping.checksum.clone(),
                dry_run: false,
                host: crate::tracking::this_host(),
                pid: std::process::id(),
                options: options.to_string(),
            })
            .await?;
        let mut raw = Vec::new();
        for (key, pos) in &todo {
            match source.read_at(pos).map_err(src_err)? {
                // The record there must be the one that failed: by its key, or by
                // its label when it could not be decoded then (or now). After an
                // edit that moved records, the position points elsewhere.
                Some(r) if r.label() == *key || matches!(r.decode(), Ok(rec) if rec.key == *key) => {
                    raw.push(r)
                }
                _ => not_found.push(key.clone()),
            }
        }
        let transformer = Transformer::new(mapping.clone(), tables.clone());
        let lookup = match transformer.lookups().is_empty() {
            true => None,
            false => Some(crate::keymap::KeymapLookup::connect(target.url())?),
        };
        let mut summary = RetrySummary {
            mapping: name.clone(),
            run_id,
            records: (todo.len() + not_found.len()) as i64,
            loaded: 0,
            filtered: 0,
            failed: 0,
            not_found,
            first_errors: Vec::new(),
        };
        let mut chunks = Vec::new();
        while !raw.is_empty() {
            let rest = raw.split_off(raw.len().min(opts.batch_size.max(1)));
            chunks.push(std::mem::replace(&mut raw, rest));
        }
        for chunk in chunks {
            let batch = transformer
                .run_batch(chunk, lookup.as_ref().map(|l| l as &dyn crate::mapping::functions::Lookup))
                .map_err(|e| src_err(SourceError::Other(format!("lookup(): {e}"))))?;
            let mut progress = Progress {
                run_id,
                mapping: name.clone(),
                position: None,
                mapping_checksum: mapping.checksum.clone(),
                ..Default::default()
            };
            let mut tx = target.begin().await?;
            let res = write_batch(tx.as_mut(), &transformer.tables, &|t| transformer.original_json(t), &batch, &mut progress, true).await?;
            tx.commit().await.map_err(|f| f.into_target("committing the retry"))?;
            summary.loaded += res.written;
            summary.filtered += res.filtered;
            summary.failed += res.failed;
            for e in res.errors.iter().take(10usize.saturating_sub(summary.first_errors.len())) {
                summary.first_errors.push(format!("{}: {}{}", e.record_key, e.column.as_deref().map(|c| format!("{c}: ")).unwrap_or_default(), e.message));
            }
        }
        let status = RunStatus::Succeeded;
        target.store().finish_run(run_id, status, Some(&format!("retry of {} records: {} loaded, {} failed again", summary.records, summary.loaded, summary.failed))).await?;
        Ok::<_, RunError>(summary)
    }
    .await;
    if let Err(e) = target.unlock(&name).await {
        warn!(mapping = %name, "could not release the run lock: {e}");
    }
    result
}
