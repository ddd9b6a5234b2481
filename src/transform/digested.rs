//! Passes that keep per-record digests (see `tracking::digests`): a record
//! read exactly as the pass that last wrote it read it is not decoded.

use super::{Outcome, Transformed, Transformer};
use crate::source::RawRecord;
use rayon::prelude::*;
use std::sync::Arc;

/// The digests a pass computes and skips by (see `tracking::digests`).
#[derive(Debug)]
pub struct Digests {
    /// What the mapping makes of a record (see `tracking::digests::seed`):
    /// every digest starts from it.
    pub seed: u64,
    /// Whether the file's path is part of a record (the mapping reads `file.*`).
    pub with_path: bool,
    /// The digests of the records written before this pass began (empty when
    /// nothing may be skipped: `--full`, a first pass).
    pub known: crate::tracking::digests::DigestSet,
    /// Key hashes of the records this pass processed so far: a record read
    /// unchanged after another record of its key was processed is processed
    /// too (the last record of a key wins).
    pub processed: std::sync::Mutex<std::collections::HashSet<u64>>,
}

impl Transformer {
    /// A batch of a pass that keeps digests: records read exactly as before
    /// are not decoded; the others are transformed and carry their digest.
    pub(super) fn run_digested(&self, raw: Vec<RawRecord>, d: &Digests) -> Vec<Transformed> {
        let out: Vec<(Transformed, Option<(usize, RawRecord)>)> = raw
            .into_par_iter()
            .map(|r| {
                let digest = r.digest(d.seed, d.with_path);
                if let Some(at) = d.known.find(digest) {
                    let t = Transformed {
                        key: String::new(),
                        position: r.position.clone(),
                        next: r.next.clone(),
                        outcome: Outcome::Unchanged { at },
                        digest: Some(digest),
                    };
                    return (t, Some((at, r)));
                }
                let mut t = match r.decode() {
                    Ok(rec) => self.record(rec, None, Some(Arc::new(r))),
                    Err(e) => self.read_error(*e, r.next.clone()),
                };
                t.digest = Some(digest);
                (t, None)
            })
            .collect();
        // In order: a record of a key processed earlier in this pass is
        // processed again even when it reads as before.
        let mut processed = match d.processed.lock() {
            Ok(p) => p,
            Err(p) => p.into_inner(),
        };
        out.into_iter()
            .map(|(t, skipped)| match skipped {
                Some((at, r)) if processed.contains(&d.known.key_at(at)) => {
                    let digest = t.digest;
                    let mut t = match r.decode() {
                        Ok(rec) => self.record(rec, None, Some(Arc::new(r))),
                        Err(e) => self.read_error(*e, r.next.clone()),
                    };
                    t.digest = digest;
                    t
                }
                Some(_) => t,
                None => {
                    processed.insert(crate::tracking::digests::key_hash(&t.key));
                    t
                }
            })
            .collect()
    }
}
