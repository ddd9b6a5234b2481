//! Wires source → transform → sink for one mapping, in stages: the ordered
//! checks before the first write ([`checks`]), the run lock and the resume
//! decision ([`resume`]), the reader and transform threads ([`stages`]), the
//! batch writers ([`writer`]), dry runs ([`dry_run`]), and `cutover retry`
//! ([`retry`]). [`run`] puts them together and records the run.

mod checks;
mod deletions;
mod digests;
mod dry_run;
mod error;
mod events;
mod options;
mod pass;
mod resume;
mod retry;
mod run;
pub(crate) mod stages;
mod summary;
pub mod undo;
mod writer;

/// The target of the pipeline's log events, whichever file they come from
/// (`RUST_LOG=cutover::pipeline=debug` selects them).
const LOG_TARGET: &str = "cutover::pipeline";

pub use checks::{bind, precheck};
pub use deletions::{carry as carry_deletions, Deleted};
pub use dry_run::DryKeymap;
pub use error::RunError;
pub use events::{Event, Observer};
pub use options::{Cancel, RunOptions, DEFAULT_SERVER_WORKERS};
pub use retry::{retry_mapping, RetrySummary};
pub use run::run_mapping;
pub use summary::{normalize_reason, RunSummary, TableSummary};
pub use undo::{undo_mapping, UndoOptions, UndoReport};
