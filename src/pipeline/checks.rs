//! The checks before the first write: every mapping of a run whose tables
//! exist is bound to the target first, and all their problems are reported
//! together (see `crate::sink::bind`).

use super::RunError;
use crate::mapping::{Mapping, MappingError};
use crate::sink::{BindError, Target};
use crate::transform::BoundTable;
use std::sync::Arc;

/// Bind one mapping to the target's tables (see [`crate::sink::bind`]).
pub async fn bind(target: &dyn Target, mapping: &Mapping) -> Result<Vec<BoundTable>, RunError> {
    Ok(crate::sink::bind(target, mapping).await?)
}

/// Check, before anything is written, every mapping whose tables all exist on
/// the target already; all their problems are reported together. Mappings with
/// a table still missing are checked when their turn comes, after their
/// migrations.
pub async fn precheck(target: &dyn Target, mappings: &[Arc<Mapping>]) -> Result<(), RunError> {
    let mut diags = Vec::new();
    for m in mappings {
        let mut all_exist = true;
        for t in &m.tables {
            if target.describe_table(&t.table).await?.is_none() {
                all_exist = false;
                break;
            }
        }
        if !all_exist {
            continue;
        }
        match crate::sink::bind(target, m).await {
            Ok(_) => {}
            Err(BindError::Mapping(MappingError::Invalid(d))) => diags.extend(d),
            Err(e) => return Err(e.into()),
        }
    }
    if diags.is_empty() {
        Ok(())
    } else {
        Err(RunError::Mapping(MappingError::Invalid(diags)))
    }
}
