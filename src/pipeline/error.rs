//! Why a run (or a retry, or a verify) stopped.

use crate::mapping::MappingError;
use crate::sink::{BindError, TargetError};
use crate::source::SourceError;
use crate::tracking::Holder;

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
    #[error("refusing the pass of mapping {mapping}: {reason}")]
    PassRefused { mapping: String, reason: String },
    #[error("undo of mapping {mapping} refused: {reason}")]
    UndoRefused { mapping: String, reason: String },
    #[error("deletions of mapping {mapping} refused: {reason}")]
    DeletesRefused { mapping: String, reason: String },
}

impl RunError {
    /// Exit code: 2 for mapping and usage problems, 1 otherwise.
    pub fn exit_code(&self) -> i32 {
        match self {
            RunError::Mapping(_)
            | RunError::ResumeRefused { .. }
            | RunError::UndoRefused { .. } => 2,
            _ => 1,
        }
    }
}

impl From<BindError> for RunError {
    fn from(e: BindError) -> Self {
        match e {
            BindError::Mapping(m) => RunError::Mapping(m),
            BindError::Target(t) => RunError::Target(t),
        }
    }
}
