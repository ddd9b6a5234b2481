//! The reader and transform stages of a run, each on its own thread, joined by
//! bounded channels: the reader hands a batch over only when the transform
//! thread takes it, and the transform thread starts a batch only with a permit
//! (see [`Slots`]), so memory stays flat however big the source is.

use super::dry_run::{DryKeymap, DryLookup};
use super::{Cancel, RunError};
use crate::keymap::KeymapLookup;
use crate::mapping::functions::Lookup;
use crate::source::{RawRecord, Source, SourceError};
use crate::transform::{Transformed, Transformer};
use std::sync::Arc;
use std::thread::JoinHandle;

/// A transformed batch with its permit (see [`Slots`]).
pub(crate) type Batch = Result<(Vec<Transformed>, Permit), SourceError>;

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

pub(crate) struct Permit(Arc<Slots>);

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

/// Where the transform stage finds the ids `lookup()` asks for.
pub(crate) struct LookupPlan {
    /// The target's URL, for a second connection to `cutover_keymap`.
    pub url: Option<String>,
    /// Dry runs: what the earlier mappings of the same dry run would record.
    pub dry: Option<Arc<DryKeymap>>,
}

/// The running reader and transform threads; transformed batches arrive on `out`.
pub(crate) struct Stages {
    pub out: tokio::sync::mpsc::Receiver<Batch>,
    slots: Arc<Slots>,
    reader: JoinHandle<()>,
    transform: JoinHandle<()>,
}

impl Stages {
    /// Start reading `source` in batches of `batch_size` and transforming them,
    /// with `permits` transformed batches in flight at most.
    pub fn spawn(
        mut source: Box<dyn Source>,
        transformer: Arc<Transformer>,
        lookup: LookupPlan,
        permits: usize,
        batch_size: usize,
        cancel: &Cancel,
        name: &str,
    ) -> Result<Stages, RunError> {
        let thread_err = |e: std::io::Error| RunError::Source {
            mapping: name.to_string(),
            source: SourceError::Other(e.to_string()),
        };
        let slots = Slots::new(permits);
        let (raw_tx, raw_rx) = crossbeam_channel::bounded::<Result<Vec<RawRecord>, SourceError>>(0);
        let (out_tx, out_rx) = tokio::sync::mpsc::channel::<Batch>(1);
        let batch_size = batch_size.max(1);
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
            .map_err(thread_err)?;
        let slots_tr = slots.clone();
        let transform = std::thread::Builder::new()
            .name("cutover-transform".into())
            .spawn(move || {
                // lookup(): a second connection for the key map.
                let db = match lookup.url.map(|u| KeymapLookup::connect(&u)) {
                    Some(Ok(l)) => Some(l),
                    Some(Err(e)) => {
                        let _ = out_tx.blocking_send(Err(SourceError::Other(format!(
                            "key map for lookup(): {e}"
                        ))));
                        return;
                    }
                    None => None,
                };
                let lookup: Option<Box<dyn Lookup>> = match (lookup.dry, db) {
                    (Some(dry), db) => Some(Box::new(DryLookup { dry, db })),
                    (None, Some(db)) => Some(Box::new(db)),
                    (None, None) => None,
                };
                let lookup_ref = lookup.as_deref();
                while let Some(permit) = slots_tr.acquire() {
                    let Ok(msg) = raw_rx.recv() else { break };
                    let out = msg.and_then(|b| {
                        transformer
                            .run_batch(b, lookup_ref)
                            .map(|t| (t, permit))
                            .map_err(|e| SourceError::Other(format!("lookup(): {e}")))
                    });
                    if out_tx.blocking_send(out).is_err() {
                        break;
                    }
                }
            })
            .map_err(thread_err)?;
        Ok(Stages {
            out: out_rx,
            slots,
            reader,
            transform,
        })
    }

    /// Stop both threads and wait for them. A thread that panicked closed its
    /// channel early: the records after it were never read, so the run must not
    /// look finished; its stage is returned.
    pub fn stop(self) -> Option<&'static str> {
        drop(self.out);
        self.slots.close();
        [
            ("reading", self.reader.join()),
            ("transforming", self.transform.join()),
        ]
        .into_iter()
        .find(|(_, r)| r.is_err())
        .map(|(what, _)| what)
    }
}
