//! What can stop `init`: a usage mistake (exit 2: a bad flag, an OUT that
//! exists, a schema or table the source does not have) or the source itself
//! (exit 1: it cannot be reached or read), or writing the files (exit 1).

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum InitError {
    /// A mistake in what was asked for.
    #[error("{0}")]
    Usage(String),
    #[error("{} already exists; init does not overwrite it (--force replaces its sql/ and mappings/ folders)", .0.display())]
    OutExists(PathBuf),
    #[error("cannot reach the source {source_name}: {message}")]
    Connect {
        source_name: String,
        message: String,
    },
    #[error("reading the source's catalog ({what}): {message}")]
    Catalog { what: String, message: String },
    #[error("reading the source: {0}")]
    Read(#[from] crate::source::SourceError),
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl InitError {
    /// 2 for usage, 1 for the source or the files.
    pub fn exit_code(&self) -> i32 {
        match self {
            InitError::Usage(_) | InitError::OutExists(_) => 2,
            _ => 1,
        }
    }

    pub(crate) fn catalog(what: impl Into<String>, e: impl std::fmt::Display) -> InitError {
        InitError::Catalog {
            what: what.into(),
            message: e.to_string(),
        }
    }
}
