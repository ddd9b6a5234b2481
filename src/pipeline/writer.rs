//! The batch writers of a run. On SQLite one writer groups several batches in
//! one transaction (each commit rewrites every touched page into the WAL); on
//! servers `--workers` batches are written in parallel, each on its own
//! connection, and the checkpoint only moves over the contiguous prefix of
//! committed batches ([`Prefix`]). A batch that fails on the connection is
//! retried with backoff on a fresh one.

use super::stages::Permit;
use super::summary::Counters;
use super::{Cancel, RunError};
use crate::record::Position;
use crate::sink::{write_batch, BatchResult, BatchTx, Target, TargetError};
use crate::tracking::samples::Sample;
use crate::tracking::Progress;
use crate::transform::{Outcome, Transformed, Transformer};
use futures_util::stream::FuturesUnordered;
use futures_util::StreamExt;
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::warn;

/// Longest time batches wait in an open transaction before a commit.
const COMMIT_INTERVAL: Duration = Duration::from_secs(5);

async fn backoff(name: &str, attempt: u32, e: &TargetError) {
    let wait = Duration::from_millis(250 * (1 << attempt.min(6)));
    warn!(target: super::LOG_TARGET, mapping = %name, attempt, "batch failed on the connection, retrying in {wait:?}: {e}");
    tokio::time::sleep(wait).await;
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

/// What parallel writers share: the committed prefix (for the checkpoint).
pub(super) struct Order {
    prefix: tokio::sync::Mutex<Prefix>,
}

impl Order {
    /// `records`: the records of the pass committed before this run.
    pub fn new(records: i64) -> Order {
        Order {
            prefix: tokio::sync::Mutex::new(Prefix {
                next: 0,
                records,
                done: BTreeMap::new(),
            }),
        }
    }
}

/// Batches write their rows in order where it matters: a batch that shares a
/// key with an earlier batch still in flight waits until that batch has
/// written its rows (its commit may still be under way), so the later record's
/// values win, as with one writer; batches with disjoint keys go in parallel.
/// `true` once a batch's rows are written (or it gave up).
type Written = tokio::sync::watch::Receiver<bool>;

/// Says "written" when dropped: after the rows, or when the batch fails.
struct Wrote(tokio::sync::watch::Sender<bool>);

impl Drop for Wrote {
    fn drop(&mut self) {
        self.0.send_replace(true);
    }
}

/// Hashes of the keys a batch writes, per table.
fn key_hashes(transformer: &Transformer, batch: &[Transformed]) -> HashSet<u64> {
    use std::hash::{BuildHasher, Hasher};
    let seed = foldhash::fast::FixedState::default();
    let mut keys = HashSet::new();
    for t in batch {
        if let Outcome::Rows { rows, .. } = &t.outcome {
            for (ti, values) in rows {
                let mut h = seed.build_hasher();
                h.write_usize(*ti);
                for &i in &transformer.tables[*ti].key_idx {
                    values[i].hash_key_text(&mut h);
                }
                keys.insert(h.finish());
            }
        }
    }
    keys
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
    order: &Order,
    wait_for: Vec<Written>,
    wrote: Wrote,
    retries: u32,
) -> (i64, Result<BatchResult, TargetError>) {
    let n = batch.len() as i64;
    let Some(next_pos) = batch.last().map(|t| t.next.clone()) else {
        return (0, Ok(BatchResult::default()));
    };
    for mut w in wait_for {
        let _ = w.wait_for(|&done| done).await;
    }
    let mut wrote = Some(wrote);
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
                &|t, m| transformer.load_error(t, m),
                &batch,
                &mut progress,
                resolve,
            )
            .await?;
            // A replay after a lost connection does not hold the others back.
            drop(wrote.take());
            let mut st = order.prefix.lock().await;
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
                    samples: Vec::new(),
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

/// A batch being written by a parallel writer: (records, result).
type WriteFuture<'a> = std::pin::Pin<
    Box<dyn std::future::Future<Output = (i64, Result<BatchResult, TargetError>)> + Send + 'a>,
>;

/// The run a writer writes for.
pub(super) struct RunCtx {
    pub run_id: i64,
    /// Records committed by the pass before this run (a resumed run).
    pub base_committed: i64,
    pub fingerprint: String,
    /// Resolve earlier error rows of the records this run loads.
    pub resolve: bool,
    /// The pass the run belongs to (see `cutover_rows`).
    pub pass_id: i64,
    /// Keep the keys of the records read (a delta pass with deletions).
    pub collect_keys: bool,
    /// When the run row was written: progress samples count from there.
    pub started: Instant,
    /// Per-record digests: computed for every record, and the known ones skipped.
    pub digests: Option<Arc<crate::transform::Digests>>,
}

/// Writes the batches of one run, serially or in parallel.
pub(super) struct Writer<'a> {
    target: &'a dyn Target,
    transformer: &'a Transformer,
    run: &'a RunCtx,
    /// The run's progress without counts: mapping, checksums, run id.
    template: Progress,
    workers: usize,
    retries: u32,
    commit_every: usize,
    order: &'a Order,
    seq: u64,
    /// The key hashes of the batches in flight, and whether they wrote their rows.
    keys_in_flight: Vec<(Arc<HashSet<u64>>, Written)>,
    inflight: FuturesUnordered<WriteFuture<'a>>,
    /// Serial writer: the open transaction and the records in it.
    open: Option<Box<dyn BatchTx>>,
    pending: usize,
    last_commit: Instant,
    /// Progress samples waiting for the next batch, which saves them.
    samples: Vec<Sample>,
}

impl<'a> Writer<'a> {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        target: &'a dyn Target,
        transformer: &'a Transformer,
        run: &'a RunCtx,
        template: Progress,
        workers: usize,
        retries: u32,
        commit_every: usize,
        order: &'a Order,
    ) -> Writer<'a> {
        Writer {
            target,
            transformer,
            run,
            template,
            workers,
            retries,
            commit_every,
            order,
            seq: 0,
            keys_in_flight: Vec::new(),
            inflight: FuturesUnordered::new(),
            open: None,
            pending: 0,
            last_commit: Instant::now(),
            samples: Vec::new(),
        }
    }

    /// A progress sample to save with the next batch.
    pub fn queue_sample(&mut self, s: Sample) {
        self.samples.push(s);
    }

    /// The samples no batch took (after [`Writer::finish`]).
    pub fn take_samples(&mut self) -> Vec<Sample> {
        std::mem::take(&mut self.samples)
    }

    /// Whether a batch transaction of this run is open (the serial writer's,
    /// or a parallel batch's): its batches carry the heartbeat then, and an
    /// update of the run's row from outside would wait for it.
    pub fn holds_transaction(&self) -> bool {
        self.open.is_some() || !self.inflight.is_empty()
    }

    /// The next parallel batch to finish (pending for ever when none is in
    /// flight): polled while the run waits for the next batch, so that batches
    /// in flight make progress and commit meanwhile.
    pub async fn next_done(&mut self) -> (i64, Result<BatchResult, TargetError>) {
        match self.inflight.next().await {
            Some(done) => done,
            None => std::future::pending().await,
        }
    }

    /// Write one batch (or start writing it, in parallel); counts go to `c`.
    pub async fn write(
        &mut self,
        batch: Vec<Transformed>,
        permit: Permit,
        c: &mut Counters,
        cancel: &Cancel,
    ) -> Result<(), RunError> {
        if self.workers > 1 {
            self.write_parallel(batch, permit, c).await
        } else {
            let n = batch.len() as i64;
            let res = self.write_serial(&batch, c, cancel).await?;
            c.absorb(n, res);
            Ok(())
        }
    }

    async fn write_parallel(
        &mut self,
        batch: Vec<Transformed>,
        permit: Permit,
        c: &mut Counters,
    ) -> Result<(), RunError> {
        let mut fatal = None;
        while self.inflight.len() >= self.workers {
            if let Some((n, res)) = self.inflight.next().await {
                match res {
                    Ok(res) => c.absorb(n, res),
                    Err(e) => fatal = Some(e),
                }
            }
        }
        if let Some(e) = fatal {
            return Err(e.into());
        }
        let keys = Arc::new(key_hashes(self.transformer, &batch));
        self.keys_in_flight.retain(|(_, w)| !*w.borrow());
        let wait_for: Vec<Written> = self
            .keys_in_flight
            .iter()
            .filter(|(k, _)| !k.is_disjoint(&keys))
            .map(|(_, w)| w.clone())
            .collect();
        let (tx, rx) = tokio::sync::watch::channel(false);
        self.keys_in_flight.push((keys, rx));
        let template = Progress {
            samples: std::mem::take(&mut self.samples),
            ..self.template.clone()
        };
        let fut = write_parallel(
            self.target,
            self.transformer,
            batch,
            self.seq,
            template,
            self.run.resolve,
            self.order,
            wait_for,
            Wrote(tx),
            self.retries,
        );
        self.inflight.push(Box::pin(async move {
            let _permit = permit;
            fut.await
        }));
        self.seq += 1;
        Ok(())
    }

    /// One writer: batches share a transaction until `commit_every` records or
    /// [`COMMIT_INTERVAL`]; a connection failure replays the batch when it was
    /// alone in the transaction.
    async fn write_serial(
        &mut self,
        batch: &[Transformed],
        c: &Counters,
        cancel: &Cancel,
    ) -> Result<BatchResult, TargetError> {
        let mut progress = Progress {
            position: batch.last().map(|t| t.next.clone()),
            records_committed: self.run.base_committed + c.read + batch.len() as i64,
            samples: std::mem::take(&mut self.samples),
            ..self.template.clone()
        };
        let mut attempt = 0;
        loop {
            if self.open.is_none() {
                match self.target.begin().await {
                    Ok(tx) => self.open = Some(tx),
                    Err(e) if e.is_retryable() && attempt < self.retries => {
                        attempt += 1;
                        backoff(&self.template.mapping, attempt, &e).await;
                        continue;
                    }
                    Err(e) => return Err(e),
                }
            }
            let Some(tx) = self.open.as_mut() else {
                continue;
            };
            let written = write_batch(
                tx.as_mut(),
                &self.transformer.tables,
                &|t, m| self.transformer.load_error(t, m),
                batch,
                &mut progress,
                self.run.resolve,
            )
            .await;
            let pending_before = self.pending;
            let result = match written {
                Ok(res) => {
                    self.pending += batch.len();
                    if self.pending >= self.commit_every
                        || self.last_commit.elapsed() >= COMMIT_INTERVAL
                        || cancel.is_cancelled()
                    {
                        self.last_commit = Instant::now();
                        self.pending = 0;
                        match self.open.take() {
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
                Ok(res) => return Ok(res),
                Err(e) if e.is_retryable() && attempt < self.retries && pending_before == 0 => {
                    // Only this batch was in the transaction: replay it.
                    self.open = None;
                    self.pending = 0;
                    attempt += 1;
                    backoff(&self.template.mapping, attempt, &e).await;
                }
                Err(e) => {
                    self.open = None;
                    return Err(e);
                }
            }
        }
    }

    /// Wait for the batches in flight and commit the open transaction, unless
    /// the run failed on the target. The first failure lands in `fatal`.
    pub async fn finish(&mut self, c: &mut Counters, fatal: &mut Option<RunError>) {
        while let Some((n, res)) = self.inflight.next().await {
            match res {
                Ok(res) => c.absorb(n, res),
                Err(e) => {
                    if fatal.is_none() {
                        *fatal = Some(e.into());
                    }
                }
            }
        }
        if let Some(tx) = self.open.take() {
            // Batches written so far are good (a source error stops reading, it
            // does not make them wrong): commit them with their checkpoint.
            if !matches!(fatal, Some(RunError::Target(_))) {
                if let Err(f) = tx.commit().await {
                    *fatal = Some(f.into_target("committing the last batches").into());
                }
            }
        }
    }
}
