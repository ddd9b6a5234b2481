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
use std::time::Duration;

pub struct KeysetSource<D> {
    driver: D,
    spec: SourceSpec,
    /// A connection was made once: from then on a lost one is re-established.
    connected_once: bool,
    /// Key of the last record read (the keyset cursor).
    keyset: Keyset,
    counter: Arc<AtomicU64>,
    file: Arc<FileInfo>,
    /// How the backoff waits (tests do not).
    sleep: fn(Duration),
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
            sleep: std::thread::sleep,
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
                    (self.sleep)(wait);
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
        // A delta pass pages on (watermark, key): the record is named by its key
        // alone (error rows, `retry`), the checkpoint keeps both.
        let id = key
            .get(self.spec.paging_prefix..)
            .filter(|k| !k.is_empty())
            .unwrap_or(&key)
            .to_vec();
        let text = id.iter().map(key_text).collect::<Vec<_>>().join(", ");
        let key_value = if id.len() == 1 {
            id[0].clone()
        } else {
            Value::Array(id.clone())
        };
        let at = |key| Position {
            file: 0,
            offset: 0,
            line: 0,
            key: Some(key),
        };
        RawRecord {
            position: at(id),
            next: at(key),
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
            // A delta pass's window is not part of the source: its checkpoint
            // and a full pass's name the same records.
            self.spec.key[self.spec.paging_prefix.min(self.spec.key.len())..].join(", ")
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

    fn count(&mut self) -> Result<u64, SourceError> {
        match self.call(|d| d.count())? {
            Some(n) => Ok(n),
            None => super::super::count_by_reading(self),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mapping::{KvFormat, SourceKind};
    use serde_json::json;

    /// A table of integer keys 1..=rows behind a connection that fails as told.
    #[derive(Default)]
    struct Fake {
        rows: i64,
        connected: bool,
        /// Connection attempts and page calls.
        connects: u32,
        pages: Vec<Option<Vec<Value>>>,
        /// What the next connects and calls do (front first); empty: work.
        connect_fails: Vec<Failure>,
        call_fails: Vec<Failure>,
    }

    impl Driver for Fake {
        fn display(&self) -> String {
            "fake://db".into()
        }
        fn connect(&mut self) -> Result<(), Failure> {
            if self.connected {
                return Ok(());
            }
            self.connects += 1;
            if !self.connect_fails.is_empty() {
                return Err(self.connect_fails.remove(0));
            }
            self.connected = true;
            Ok(())
        }
        fn disconnect(&mut self) {
            self.connected = false;
        }
        fn page(&mut self, after: Option<&[Value]>, limit: usize) -> Result<Vec<Row>, Failure> {
            self.pages.push(after.map(<[Value]>::to_vec));
            if !self.call_fails.is_empty() {
                return Err(self.call_fails.remove(0));
            }
            let from = after.and_then(|a| a[0].as_i64()).unwrap_or(0) + 1;
            Ok((from..=self.rows)
                .take(limit)
                .map(|k| Row {
                    key: vec![json!(k)],
                    json: format!("{{\"id\":{k}}}").into_bytes(),
                })
                .collect())
        }
        fn lookup(&mut self, key: &[Value]) -> Result<Option<Row>, Failure> {
            Ok(Some(Row {
                key: key.to_vec(),
                json: b"{}".to_vec(),
            }))
        }
        fn connect_error(&self, message: String) -> SourceError {
            SourceError::Other(format!("cannot connect: {message}"))
        }
        fn lost_error(&self, attempts: u32, message: String) -> SourceError {
            SourceError::Other(format!("lost after {attempts}: {message}"))
        }
    }

    fn source(fake: Fake) -> KeysetSource<Fake> {
        let spec = SourceSpec {
            filter: None,
            paging_prefix: 0,
            watermark: None,
            kind: SourceKind::Postgres,
            path: None,
            path_text: None,
            format: KvFormat::Jsonl,
            key: vec!["id".into()],
            url: Some("fake://db".into()),
            password_env: None,
            table: Some("t".into()),
            query: None,
            trust_server_certificate: false,
            dir: std::path::PathBuf::from("."),
        };
        let mut s = KeysetSource::new(&spec, fake);
        s.sleep = |_| {};
        s
    }

    fn keys(batch: &[RawRecord]) -> Vec<Value> {
        batch
            .iter()
            .map(|r| r.position.key.clone().unwrap_or_default()[0].clone())
            .collect()
    }

    #[test]
    fn pages_run_from_the_last_key_to_the_end() {
        let mut s = source(Fake {
            rows: 5,
            ..Fake::default()
        });
        assert_eq!(keys(&s.next_batch(2).unwrap()), vec![json!(1), json!(2)]);
        assert_eq!(keys(&s.next_batch(2).unwrap()), vec![json!(3), json!(4)]);
        assert_eq!(keys(&s.next_batch(2).unwrap()), vec![json!(5)]);
        assert!(s.next_batch(2).unwrap().is_empty());
        assert_eq!(
            s.driver().pages,
            vec![None, Some(vec![json!(2)]), Some(vec![json!(4)])]
        );
        let r = s.next_batch(2).unwrap();
        assert!(r.is_empty());
        // Resume from a checkpoint.
        let mut s = source(Fake {
            rows: 5,
            ..Fake::default()
        });
        s.seek(&Position {
            key: Some(vec![json!(3)]),
            ..Position::default()
        })
        .unwrap();
        assert_eq!(keys(&s.next_batch(10).unwrap()), vec![json!(4), json!(5)]);
        let rec = s.next_batch(10).unwrap();
        assert!(rec.is_empty());
    }

    #[test]
    fn a_lost_connection_reads_the_page_again_from_the_last_key() {
        let mut s = source(Fake {
            rows: 4,
            ..Fake::default()
        });
        assert_eq!(keys(&s.next_batch(2).unwrap()), vec![json!(1), json!(2)]);
        s.driver.call_fails = vec![Failure::Lost("reset".into())];
        s.driver.connect_fails = vec![Failure::Lost("refused".into())];
        assert_eq!(keys(&s.next_batch(2).unwrap()), vec![json!(3), json!(4)]);
        // The page after key 2, asked three times: failed, (connect failed), read.
        assert_eq!(
            s.driver().pages[1..],
            [Some(vec![json!(2)]), Some(vec![json!(2)])]
        );
        assert_eq!(s.driver().connects, 3);
    }

    #[test]
    fn a_connection_that_stays_lost_gives_up_after_the_reconnects() {
        let mut s = source(Fake {
            rows: 4,
            ..Fake::default()
        });
        s.next_batch(1).unwrap();
        s.driver.call_fails = (0..=RECONNECTS)
            .map(|_| Failure::Lost("reset".into()))
            .collect();
        let e = s.next_batch(1).unwrap_err().to_string();
        assert_eq!(e, format!("lost after {RECONNECTS}: reset"));
        assert_eq!(s.driver().pages.len(), 2 + RECONNECTS as usize);
    }

    #[test]
    fn data_errors_and_a_first_connection_are_never_retried() {
        let mut s = source(Fake {
            rows: 4,
            connect_fails: vec![Failure::Lost("refused".into())],
            ..Fake::default()
        });
        assert_eq!(
            s.next_batch(1).unwrap_err().to_string(),
            "cannot connect: refused"
        );
        assert_eq!(s.driver().connects, 1);
        let mut s = source(Fake {
            rows: 4,
            call_fails: vec![Failure::Fatal(SourceError::Other("bad column".into()))],
            ..Fake::default()
        });
        assert_eq!(s.next_batch(1).unwrap_err().to_string(), "bad column");
        assert_eq!(s.driver().pages.len(), 1);
    }

    #[test]
    fn records_are_named_by_their_key() {
        let mut s = source(Fake {
            rows: 1,
            ..Fake::default()
        });
        let r = s.next_batch(5).unwrap();
        assert_eq!(r[0].label(), "1");
        let rec = r[0].decode().unwrap();
        assert_eq!(rec.value, json!({"id": 1}));
        let one = s
            .read_at(&Position {
                key: Some(vec![json!("a"), json!(2)]),
                ..Position::default()
            })
            .unwrap()
            .unwrap();
        assert_eq!(one.label(), "a, 2");
        assert_eq!(one.decode().unwrap().key_value, json!(["a", 2]));
        assert!(s.read_at(&Position::default()).unwrap().is_none());
        assert!(s.fingerprint().starts_with("postgres fake://db t key (id)"));
    }
}
