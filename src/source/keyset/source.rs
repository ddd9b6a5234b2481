//! The keyset source over a [`Driver`]: paging from the checkpoint, the records,
//! and the reconnect loop.

use super::retry::{backoff, RECONNECTS};
use super::{Driver, Failure, Keyset, Row};
use crate::mapping::SourceSpec;
use crate::record::{FileInfo, Position};
use crate::source::{key_text, Decoded, Label, Payload, RawRecord, Source, SourceError};
use serde_json::Value;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

pub struct KeysetSource<D> {
    driver: D,
    spec: SourceSpec,
    /// A connection was made once: from then on a lost one is re-established.
    connected_once: bool,
    /// Key of the last record read (the keyset cursor).
    keyset: Keyset,
    counter: Arc<AtomicU64>,
    file: Arc<FileInfo>,
}

impl<D: Driver> KeysetSource<D> {
    pub fn new(spec: &SourceSpec, driver: D) -> KeysetSource<D> {
        KeysetSource {
            driver,
            spec: spec.clone(),
            connected_once: false,
            keyset: Keyset::default(),
            counter: Arc::new(AtomicU64::new(0)),
            file: Arc::new(FileInfo::default()),
        }
    }

    /// The driver (tests look at its settings).
    pub fn driver(&self) -> &D {
        &self.driver
    }

    /// Make a call; on a lost connection reconnect with backoff (up to
    /// [`RECONNECTS`] times) and make it again. A first connection that cannot be
    /// made, and any other error, end the call at once.
    fn call<T>(
        &mut self,
        mut op: impl FnMut(&mut D) -> Result<T, Failure>,
    ) -> Result<T, SourceError> {
        let mut attempt = 0;
        loop {
            let res = match self.driver.connect() {
                Ok(()) => {
                    self.connected_once = true;
                    op(&mut self.driver)
                }
                Err(e) => Err(e),
            };
            match res {
                Ok(out) => {
                    if attempt > 0 {
                        tracing::info!(source = %self.driver.display(), attempts = attempt, "reconnected to the source");
                    }
                    return Ok(out);
                }
                Err(Failure::Lost(message)) if !self.connected_once => {
                    return Err(self.driver.connect_error(message))
                }
                Err(Failure::Lost(message)) if attempt < RECONNECTS => {
                    attempt += 1;
                    let wait = backoff(attempt);
                    tracing::warn!(
                        source = %self.driver.display(),
                        attempt,
                        wait_ms = wait.as_millis() as u64,
                        error = %message,
                        "lost the connection to the source; reconnecting to read the page again from the last key"
                    );
                    self.driver.disconnect();
                    std::thread::sleep(wait);
                }
                Err(Failure::Lost(message)) => {
                    self.driver.disconnect();
                    return Err(self.driver.lost_error(attempt, message));
                }
                Err(Failure::Fatal(e)) => return Err(e),
            }
        }
    }

    /// A record of its key values and its row as JSON text.
    fn record(&self, row: Row) -> RawRecord {
        let Row { key, json } = row;
        let text = key.iter().map(key_text).collect::<Vec<_>>().join(", ");
        let key_value = if key.len() == 1 {
            key[0].clone()
        } else {
            Value::Array(key.clone())
        };
        let pos = Position {
            file: 0,
            offset: 0,
            line: 0,
            key: Some(key),
        };
        RawRecord {
            position: pos.clone(),
            next: pos,
            file: self.file.clone(),
            label: Label::Key,
            payload: Payload::Decoded(Box::new(Decoded::new(text, key_value, json))),
        }
    }

    fn relation_text(&self) -> String {
        self.spec
            .table
            .clone()
            .or_else(|| self.spec.query.clone())
            .unwrap_or_default()
    }
}

impl<D: Driver> Source for KeysetSource<D> {
    fn seek(&mut self, pos: &Position) -> Result<(), SourceError> {
        self.keyset.last = pos.key.clone();
        Ok(())
    }

    fn next_batch(&mut self, max: usize) -> Result<Vec<RawRecord>, SourceError> {
        if self.keyset.done {
            return Ok(Vec::new());
        }
        let max = max.max(1);
        let after = self.keyset.last.clone();
        // One row ahead: `advance` sees whether the source goes on, and checks the
        // key of the row after the page's last.
        let rows = self.call(|d| d.page(after.as_deref(), max + 1))?;
        let page = rows.into_iter().map(|r| self.record(r)).collect();
        self.keyset
            .advance(&self.spec.key, page, max, &self.counter)
    }

    fn total_bytes(&self) -> Option<u64> {
        None
    }

    fn bytes_counter(&self) -> Arc<AtomicU64> {
        self.counter.clone()
    }

    fn fingerprint(&self) -> String {
        format!(
            "{} {} {} key ({})",
            crate::mapping::kind_name(self.spec.kind),
            self.driver.display(),
            self.relation_text(),
            self.spec.key.join(", ")
        )
    }

    fn describe(&self) -> String {
        format!(
            "{} {} ({}), keyset on ({})",
            crate::mapping::kind_name(self.spec.kind),
            self.driver.display(),
            self.spec.table.clone().unwrap_or_else(|| "query".into()),
            self.spec.key.join(", ")
        )
    }

    fn read_at(&mut self, pos: &Position) -> Result<Option<RawRecord>, SourceError> {
        let Some(key) = &pos.key else { return Ok(None) };
        let row = self.call(|d| d.lookup(key))?;
        Ok(row.map(|r| self.record(r)))
    }
}
