//! What a run reports while it goes. The pipeline never draws: it sends these
//! events to the [`Observer`] its caller gave (the CLI draws a progress bar;
//! other callers may give none).

use std::fmt;

/// A moment of a run.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// Reading starts; the source's size when it is known (files).
    Started {
        mapping: String,
        total_bytes: Option<u64>,
    },
    /// A batch was written (or, in a dry run, counted).
    Progress {
        mapping: String,
        /// Bytes of the source read so far.
        bytes: u64,
        records: i64,
        failed: i64,
        seconds: f64,
    },
    /// The run stopped reading (whatever the outcome).
    Finished { mapping: String },
}

/// Receives a run's events (from the run's own task; keep it quick).
pub trait Observer: Send + Sync {
    fn event(&self, event: &Event);
}

impl fmt::Debug for dyn Observer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Observer")
    }
}
