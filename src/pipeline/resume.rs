//! Whether a run resumes: the run that wrote the mapping's checkpoint did not
//! succeed, and neither the mapping file nor the source changed since (a
//! changed one is refused with what to do instead).

use super::{RunError, RunOptions};
use crate::mapping::Mapping;
use crate::sink::Target;
use crate::tracking::{CheckpointRow, RunRow, RunStatus};
use tracing::warn;

/// Where a resumed run starts: the run that stopped and its checkpoint.
pub(super) type Resume = (RunRow, CheckpointRow);

/// Mark runs of gone processes interrupted, then decide between a fresh pass
/// and a resume from the checkpoint.
pub(super) async fn decide(
    target: &dyn Target,
    mapping: &Mapping,
    opts: &RunOptions,
    fingerprint: &str,
) -> Result<Option<Resume>, RunError> {
    let name = mapping.name.clone();
    let gone = target
        .store()
        .mark_abandoned(&name, "the process of this run is gone (killed or crashed); a later run resumed from its checkpoint")
        .await?;
    if gone > 0 {
        warn!(target: super::LOG_TARGET, mapping = %name, "a previous run's process is gone; marked it interrupted");
    }
    let last = target.store().checkpoint_run(&name).await?;
    let checkpoint = target.store().checkpoint(&name).await?;
    let resume = match (&last, checkpoint) {
        _ if opts.restart => None,
        (Some(run), Some(cp)) if run.status != RunStatus::Succeeded && cp.position().is_some() => {
            Some((run.clone(), cp))
        }
        _ => None,
    };
    if let Some((run, cp)) = &resume {
        if cp.mapping_checksum != mapping.checksum {
            return Err(RunError::ResumeRefused {
                mapping: name,
                reason: format!(
                    "the mapping file {} changed since run {} stopped ({} records committed). Run again with --restart to load everything from the start (rows that are already right stay unchanged), restore the mapping to resume, or use `cutover retry` for the failed records only",
                    mapping.file.display(),
                    run.id,
                    cp.records_committed
                ),
            });
        }
        if cp.source_fingerprint != fingerprint {
            return Err(RunError::ResumeRefused {
                mapping: name,
                reason: format!(
                    "the source changed since run {} stopped (was {}, now {}); the checkpoint may no longer point at the same record. Run again with --restart to load everything from the start",
                    run.id, cp.source_fingerprint, fingerprint
                ),
            });
        }
    }
    Ok(resume)
}
