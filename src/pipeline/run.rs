//! One mapping's run: its schema, the checks, the run lock, the resume
//! decision, then batches from the stages to the writers until the source ends,
//! Ctrl-C, or a failure; the run row records how it ended.

use super::dry_run::{DryCount, DryKeymap};
use super::events::Event;
use super::options::writers;
use super::stages::{LookupPlan, Stages};
use super::summary::{Counters, RunSummary, TableSummary};
use super::writer::{Order, RunCtx, Writer};
use super::{bind, digests::digests_for, pass, resume, Cancel, RunError, RunOptions};
use crate::dialect::Dialect;
use crate::mapping::Mapping;
use crate::sink::{LockOutcome, Target, TargetError};
use crate::source::{self, Source, SourceError};
use crate::tracking::passes::{PassKind, PassRow};
use crate::tracking::samples::Sampler;
use crate::tracking::{Holder, NewRun, Progress, RunStatus};
use crate::transform::{BoundTable, Transformer};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;
use tracing::{info, warn};

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
                info!(target: super::LOG_TARGET, mapping = %mapping.name, version = v, description = %d, "applied migration");
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
        let mut summary = stream(
            target,
            mapping.clone(),
            tables,
            source,
            opts,
            cancel,
            None,
            started,
        )
        .await?;
        if summary.status == RunStatus::Succeeded {
            summary.would_delete = super::deletions::dry_run(target, &mapping, &summary).await?;
        }
        return Ok(summary);
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
                warn!(target: super::LOG_TARGET, mapping = %mapping.name, "took over the run lock of {h}, which is gone");
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
        warn!(target: super::LOG_TARGET, mapping = %mapping.name, "could not release the run lock: {e}");
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
    let fingerprint = source.fingerprint();
    let resume = resume::decide(target, &mapping, opts, &fingerprint).await?;
    let plan = pass::decide(target, &mapping, opts, resume.as_ref()).await?;
    if let Some(spec) = &plan.spec {
        source = source::open_spec(spec).map_err(|e| RunError::Source {
            mapping: name.clone(),
            source: e,
        })?;
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
        "pass": plan.row.kind.as_str(),
        "target": target.display_url(),
        "source": source.describe(),
    });
    let run_id = target
        .store()
        .start_run(&NewRun::here(&mapping, &options))
        .await?;
    let run_started = Instant::now();
    target.heartbeat(&name, run_id).await?;
    // The undo journal: what the checkpoint was, and a shadow table per table.
    let mut tables = tables;
    {
        let cp = target.store().checkpoint(&name).await?;
        let cp = cp.and_then(|c| serde_json::to_string(&c).ok());
        let mut db = target.exec();
        crate::tracking::journal::start_run(&mut *db, &name, run_id, mapping.undo, cp.as_deref())
            .await
            .map_err(crate::db::ctx("recording the run for undo"))?;
    }
    if mapping.undo {
        for t in tables.iter_mut() {
            let shadow = crate::tracking::journal::ensure_shadow(target, &t.spec.table).await?;
            t.journal = Some(Arc::new(shadow));
        }
    }
    // A resumed pass keeps the id of the run that started it.
    let pass_row = PassRow {
        run_id,
        pass_id: if plan.row.pass_id > 0 {
            plan.row.pass_id
        } else {
            run_id
        },
        ..plan.row.clone()
    };
    target.store().record_pass(&name, &pass_row).await?;
    if let Some((_, cp)) = &resume {
        if let Some(pos) = cp.position() {
            info!(target: super::LOG_TARGET, mapping = %name, run_id, from_run = cp.run_id, position = %pos, "resuming from the checkpoint");
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
    } else if pass_row.kind == PassKind::Delta {
        info!(target: super::LOG_TARGET, mapping = %name, run_id, low = %pass_row.low.clone().unwrap_or_default(), high = %pass_row.high.clone().unwrap_or_default(), "starting a delta pass");
    } else {
        info!(target: super::LOG_TARGET, mapping = %name, run_id, "starting a full pass");
    }
    let digests = digests_for(
        target,
        &mapping,
        opts,
        &name,
        pass_row.pass_id,
        pass_row.kind == PassKind::Delta,
    )
    .await?;
    let ctx = RunCtx {
        collect_keys: pass_row.kind == PassKind::Delta
            && mapping
                .tables
                .iter()
                .any(|t| t.deletes != crate::mapping::DeletePolicy::Keep),
        pass_id: pass_row.pass_id,
        run_id,
        base_committed: resume.as_ref().map_or(0, |(_, cp)| cp.records_committed),
        fingerprint,
        resolve: target.store().unresolved_errors(&name).await? > 0,
        started: run_started,
        digests,
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
    summary.pass = Some(pass_row);
    Ok(summary)
}

/// The counts a progress sample keeps: read, written, filtered, failed.
fn counts(c: &Counters) -> [i64; 4] {
    [c.read, c.written, c.filtered, c.failed]
}

/// Queue a progress sample for the next batch when one is due.
fn sample(sampler: &mut Option<Sampler>, writer: Option<&mut Writer<'_>>, c: &Counters) {
    if let (Some(s), Some(w)) = (sampler.as_mut(), writer) {
        if let Some(sample) = s.due(counts(c)) {
            w.queue_sample(sample);
        }
    }
}

/// Where `lookup()` finds its ids: a dry run creates no tracking tables, so
/// without a key map on the target only what earlier mappings of the same dry
/// run would record is known.
async fn lookup_plan(
    target: &dyn Target,
    transformer: &Transformer,
    opts: &RunOptions,
) -> Result<LookupPlan, RunError> {
    let keymap_exists = !opts.dry_run || target.describe_table("cutover_keymap").await?.is_some();
    let url =
        (!transformer.lookups().is_empty() && keymap_exists).then(|| target.url().to_string());
    let dry = match (
        &opts.dry_keymap,
        opts.dry_run,
        transformer.lookups().is_empty(),
    ) {
        (Some(d), true, _) => Some(d.clone()),
        // A dry run of one mapping on a target without a key map: nothing is known.
        (None, true, false) => Some(Arc::new(DryKeymap::default())),
        _ => None,
    };
    Ok(LookupPlan { url, dry })
}

/// Batches from the stages to the writers (or, in a dry run, to the counts).
#[allow(clippy::too_many_arguments)]
async fn stream(
    target: &dyn Target,
    mapping: Arc<Mapping>,
    tables: Vec<BoundTable>,
    source: Box<dyn Source>,
    opts: &RunOptions,
    cancel: &Cancel,
    run: Option<RunCtx>,
    started: Instant,
) -> Result<RunSummary, RunError> {
    let name = mapping.name.clone();
    let report = |e: Event| {
        if let Some(o) = &opts.observer {
            o.event(&e);
        }
    };
    report(Event::Started {
        mapping: name.clone(),
        total_bytes: source.total_bytes(),
    });
    let bytes = source.bytes_counter();
    let table_names: Vec<String> = tables.iter().map(|t| t.spec.table.clone()).collect();
    let mut transformer = Transformer::new(mapping.clone(), tables);
    if let Some(d) = run.as_ref().and_then(|r| r.digests.clone()) {
        transformer = transformer.with_digests(d);
    }
    let transformer = Arc::new(transformer);
    let workers = writers(target.dialect(), opts);
    let lookup = lookup_plan(target, &transformer, opts).await?;
    let mut stages = Stages::spawn(
        source,
        transformer.clone(),
        lookup,
        workers + 1,
        opts.batch_size,
        cancel,
        &name,
    )?;

    let mut c = Counters::new(table_names.len());
    let mut dry = DryCount::new(table_names.len());
    let mut fatal: Option<RunError> = None;
    let mut interrupted = false;
    let commit_every = opts.commit_every.unwrap_or(match target.dialect() {
        Dialect::Sqlite => 200_000,
        _ => 1,
    });
    let order = Order::new(run.as_ref().map_or(0, |r| r.base_committed));
    let mut writer = run.as_ref().map(|r| {
        let template = Progress {
            run_id: r.run_id,
            mapping: name.clone(),
            mapping_checksum: mapping.checksum.clone(),
            source_fingerprint: r.fingerprint.clone(),
            pass_id: r.pass_id,
            ..Default::default()
        };
        Writer::new(
            target,
            &transformer,
            r,
            template,
            workers,
            opts.retries,
            commit_every,
            &order,
        )
    });
    let mut seen = run
        .as_ref()
        .and_then(|r| r.digests.clone())
        .filter(|d| {
            !d.known.is_empty()
                && mapping
                    .tables
                    .iter()
                    .any(|t| t.deletes != crate::mapping::DeletePolicy::Keep)
        })
        .map(super::summary::Seen::new);
    let mut read_keys = run
        .as_ref()
        .filter(|r| r.collect_keys)
        .map(|_| std::collections::HashSet::new());
    // A dry run of a mapping that carries deletions: what it would produce.
    let mut produced = (run.is_none()
        && mapping
            .tables
            .iter()
            .any(|t| t.deletes != crate::mapping::DeletePolicy::Keep))
    .then(super::deletions::Produced::default);
    // Progress samples for `cutover report`: at most one a second, each saved
    // with the batch after it (no statement of its own), the last at the end.
    let mut sampler = run.as_ref().map(|r| Sampler::new(r.started));
    let mut heartbeat = tokio::time::interval(opts.heartbeat);
    heartbeat.tick().await;
    loop {
        let msg = tokio::select! {
            m = stages.out.recv() => m,
            (n, res) = async {
                match writer.as_mut() {
                    Some(w) => w.next_done().await,
                    None => std::future::pending().await,
                }
            } => {
                match res {
                    Ok(res) => c.absorb(n, res),
                    Err(e) => {
                        fatal = Some(e.into());
                        break;
                    }
                }
                sample(&mut sampler, writer.as_mut(), &c);
                continue;
            }
            _ = heartbeat.tick() => {
                if let (Some(r), Some(w)) = (&run, &writer) {
                    // With a batch transaction open, its batches carry the
                    // heartbeat; only the server lock is checked.
                    let beat = if w.holds_transaction() {
                        target.keep_server_lock(&name).await
                    } else {
                        target.heartbeat(&name, r.run_id).await
                    };
                    match beat {
                        Err(e @ TargetError::LockLost { .. }) => {
                            fatal = Some(e.into());
                            break;
                        }
                        Err(e) => warn!(target: super::LOG_TARGET, mapping = %name, "heartbeat failed: {e}"),
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
        if batch.is_empty() {
            continue;
        }
        if let Some(keys) = read_keys.as_mut() {
            for t in &batch {
                if !matches!(
                    t.outcome,
                    crate::transform::Outcome::Failed(_)
                        | crate::transform::Outcome::Unchanged { .. }
                ) {
                    keys.insert(super::deletions::key_hash(&t.key));
                }
            }
        }
        if let Some(s) = seen.as_mut() {
            for t in &batch {
                if let crate::transform::Outcome::Unchanged { at } = t.outcome {
                    s.mark(at);
                }
            }
        }
        match writer.as_mut() {
            // Dry run: count what a real run would do.
            None => {
                if let Some(p) = produced.as_mut() {
                    for t in &batch {
                        match &t.outcome {
                            crate::transform::Outcome::Rows { rows, .. } => {
                                for (ti, vals) in rows {
                                    let table = &transformer.tables[*ti];
                                    p.rows.insert(super::deletions::row_hash(
                                        &table.spec.table,
                                        &crate::sink::row_key(table, vals),
                                    ));
                                }
                            }
                            crate::transform::Outcome::Failed(_) => {
                                p.failed.insert(super::deletions::key_hash(&t.key));
                            }
                            _ => {}
                        }
                    }
                }
                dry.absorb(
                    &mut c,
                    &batch,
                    &transformer,
                    opts.dry_keymap.as_ref(),
                    &name,
                )
            }
            Some(w) => {
                if let Err(e) = w.write(batch, permit, &mut c, cancel).await {
                    fatal = Some(e);
                    break;
                }
            }
        }
        report(Event::Progress {
            mapping: name.clone(),
            bytes: bytes.load(Ordering::Relaxed),
            records: c.read,
            failed: c.failed,
            seconds: started.elapsed().as_secs_f64(),
        });
        sample(&mut sampler, writer.as_mut(), &c);
        if cancel.is_cancelled() {
            interrupted = true;
            break;
        }
    }
    let mut last_samples = Vec::new();
    if let Some(w) = writer.as_mut() {
        w.finish(&mut c, &mut fatal).await;
        last_samples = w.take_samples();
    }
    drop(writer);
    if let (Some(what), None) = (stages.stop(), &fatal) {
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
    report(Event::Finished {
        mapping: name.clone(),
    });

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
    if let (Some(r), Some(s)) = (&run, &sampler) {
        last_samples.push(s.take(counts(&c)));
        if let Err(e) = target.store().record_samples(r.run_id, &last_samples).await {
            warn!(target: super::LOG_TARGET, mapping = %name, "could not record the last progress sample: {e}");
        }
    }
    if let Some(r) = &run {
        target
            .store()
            .finish_run(r.run_id, status, message.as_deref())
            .await?;
    }
    if let Some(e) = fatal {
        return Err(e);
    }
    info!(target: super::LOG_TARGET, mapping = %name, read = c.read, written = c.written, unchanged = c.unchanged, filtered = c.filtered, failed = c.failed, "run {status}");
    Ok(RunSummary {
        mapping: name,
        run_id: run.as_ref().map(|r| r.run_id),
        status,
        dry_run: run.is_none(),
        records_read: c.read,
        records_written: c.written,
        records_filtered: c.filtered,
        records_failed: c.failed,
        records_unchanged: c.unchanged,
        tables: table_names
            .iter()
            .zip(c.tables)
            .map(|(table, (w, u, i))| TableSummary {
                table: table.clone(),
                rows_written: w,
                rows_unchanged: u,
                rows_inserted: i,
            })
            .collect(),
        seconds: started.elapsed().as_secs_f64(),
        resumed_from: None,
        pass: None,
        read_keys: read_keys.map(Arc::new),
        seen: seen.map(Arc::new),
        produced: produced.map(Arc::new),
        would_delete: Vec::new(),
        message,
        first_errors: c.first_errors,
        failure_groups: c
            .groups
            .into_iter()
            .map(|(k, (n, keys))| (k, n, keys))
            .collect(),
        duplicate_keys: table_names
            .into_iter()
            .zip(dry.dups)
            .filter(|(_, d)| d.0 > 0)
            .map(|(t, (n, keys))| (t, n, keys))
            .collect(),
    })
}
