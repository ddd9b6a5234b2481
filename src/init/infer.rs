//! kv and json sources: sample records, infer each field.

use super::error::InitError;
use super::generate::InitOptions;
use super::plan::Plan;
use crate::mapping::SourceKind;

pub async fn plan(_o: &InitOptions, _kind: SourceKind) -> Result<Plan, InitError> {
    Err(InitError::Usage("kv and json sources: not yet".into()))
}
