//! The keyset cursor: the last key read, whether the source is exhausted, and
//! the unique/NULL checks of every page.

use crate::source::{RawRecord, SourceError};
use serde_json::Value;
use std::sync::atomic::AtomicU64;

/// The keyset state shared by the SQL sources: the last key read and whether the
/// source is exhausted.
#[derive(Debug, Default)]
pub(crate) struct Keyset {
    pub last: Option<Vec<Value>>,
    pub done: bool,
}

impl Keyset {
    /// Take one page read with `WHERE key > last ORDER BY key` and one row ahead
    /// (`page` holds up to `max + 1` rows) and return its first `max` rows.
    ///
    /// Keyset pagination only works when the key is unique and the server orders and
    /// compares it consistently: with `WHERE key > last`, a key shared by two rows at a
    /// page boundary would skip the second row silently. The row read ahead makes that
    /// visible: equal neighbouring keys, or a page that repeats the last key, stop the
    /// run with an error naming the key. So does a NULL in a key column: `key > last`
    /// is never true for it, and where the server sorts NULLs is its own choice.
    pub fn advance(
        &mut self,
        columns: &[String],
        mut page: Vec<RawRecord>,
        max: usize,
        counter: &AtomicU64,
    ) -> Result<Vec<RawRecord>, SourceError> {
        let mut prev = self.last.as_deref();
        for r in &page {
            let key = r.next.key.as_deref();
            if let Some(i) = key.and_then(|k| k.iter().position(Value::is_null)) {
                return Err(SourceError::NullKey {
                    columns: columns.join(", "),
                    column: columns.get(i).cloned().unwrap_or_else(|| i.to_string()),
                    place: match prev {
                        Some(p) => format!("in the row after key {}", Value::Array(p.to_vec())),
                        None => "in the first row read".into(),
                    },
                });
            }
            if key.is_some() && key == prev {
                return Err(SourceError::Other(format!(
                    "keyset pagination on ({}) found the key {} on more than one row: the \
                     source's key must be unique (a shared key would skip rows at page \
                     boundaries); name unique columns in [source] key",
                    columns.join(", "),
                    serde_json::to_string(&key).unwrap_or_default()
                )));
            }
            prev = key;
        }
        self.done = page.len() <= max;
        page.truncate(max);
        if let Some(last) = page.last() {
            self.last = last.next.key.clone();
        }
        counter.fetch_add(page.len() as u64, std::sync::atomic::Ordering::Relaxed);
        Ok(page)
    }
}
