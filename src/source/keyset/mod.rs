//! One keyset source for every SQL database: a table or a query read in pages
//! of `--batch-size` rows by keyset pagination (`WHERE key > last ORDER BY key`):
//! never OFFSET, never a cursor held open, and the checkpoint is the last key
//! committed. The source owns the paging loop, the checkpoint, the records, the
//! unique/NULL key checks ([`Keyset::advance`]) and the reconnect policy
//! ([`retry`]); a [`Driver`] supplies what differs per database: the connection,
//! the page and lookup SQL of its dialect, how key values are typed and bound,
//! how a row becomes JSON text, and which errors are a lost connection.

mod cursor;
pub mod retry;
mod source;

pub(crate) use cursor::Keyset;
pub use source::KeysetSource;

use super::SourceError;
use serde_json::Value;

/// Why a call to the database failed.
#[derive(Debug)]
pub enum Failure {
    /// The connection is gone (I/O, a server shutdown, a killed session): a new
    /// connection may cure it. The message is free of passwords.
    Lost(String),
    /// Anything else (bad SQL, a value that does not convert, a login refused):
    /// never retried.
    Fatal(SourceError),
}

impl<E: Into<SourceError>> From<E> for Failure {
    fn from(e: E) -> Failure {
        Failure::Fatal(e.into())
    }
}

/// A row as read: the values of the key columns (in the order of `[source] key`)
/// and the whole row as a JSON object's text.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub key: Vec<Value>,
    pub json: Vec<u8>,
}

/// What a database gives a [`KeysetSource`]. Every call may be made again after
/// a [`Failure::Lost`] (on a new connection): a call reads whole or not at all.
pub trait Driver: Send {
    /// The source for logs, errors and the fingerprint: never a password.
    fn display(&self) -> String;
    /// Connect, when not connected.
    fn connect(&mut self) -> Result<(), Failure>;
    /// Forget a connection that was lost; the next call connects again.
    fn disconnect(&mut self);
    /// Up to `limit` rows ordered by the key, after the key `after` (from the
    /// start without it).
    fn page(&mut self, after: Option<&[Value]>, limit: usize) -> Result<Vec<Row>, Failure>;
    /// The one row with this key (`cutover retry`).
    fn lookup(&mut self, key: &[Value]) -> Result<Option<Row>, Failure>;
    /// The error when the first connection cannot be made.
    fn connect_error(&self, message: String) -> SourceError;
    /// The error when a lost connection did not come back after `attempts`.
    fn lost_error(&self, attempts: u32, message: String) -> SourceError;
    /// The rows of the relation, counted by the server (`None`: it cannot;
    /// the source then pages through them).
    fn count(&mut self) -> Result<Option<u64>, Failure> {
        Ok(None)
    }
}
