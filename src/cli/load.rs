//! Loading the mappings named on the command line.

use cutover::mapping::{Mapping, MappingError};
use cutover::pipeline::RunError;
use std::path::PathBuf;
use std::sync::Arc;

/// Load every mapping first: a mistake in any of them stops before anything is written.
pub(super) fn load_all(paths: &[PathBuf]) -> Result<Vec<Arc<Mapping>>, RunError> {
    let mut out = Vec::new();
    let mut diags = Vec::new();
    for p in paths {
        match Mapping::load(p) {
            Ok(m) => out.push(Arc::new(m)),
            Err(MappingError::Invalid(d)) => diags.extend(d),
            Err(e) => return Err(e.into()),
        }
    }
    if !diags.is_empty() {
        return Err(RunError::Mapping(MappingError::Invalid(diags)));
    }
    Ok(out)
}
