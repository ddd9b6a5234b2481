//! Per-record digests (`cutover_digests`): for each record a mapping wrote, a
//! 64-bit digest of the record as read (see `RawRecord::digest`), keyed by a
//! hash of its key. A later pass that reads the same digest skips the record:
//! no decoding, no transform, no write. The digest of a record is written in
//! the same transaction as its rows, and forgotten when the record fails, when
//! its rows are deleted, and when the run that wrote it is undone, so a
//! skipped record always has its rows in the target as that digest made them.
//!
//! `pass_id` is the pass that last processed (transformed and wrote) the
//! record: deletions read the records a pass processed from here, so a pass
//! resumed after `kill -9` still knows them.

use super::store::{tuples, upsert, Set, ROWS_PER_STATEMENT};
use crate::db::{Arg, DbFailure, Exec};
use std::collections::HashSet;

/// The hash of a record key kept in `cutover_digests` and in the key sets of
/// deletions. Fixed by xxh3's specification (it is stored). A collision can only
/// make a record be processed again, or keep a row that should go.
pub fn key_hash(key: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64(key.as_bytes())
}

/// The seed of a mapping's digests, from a text that stands for what the
/// mapping makes of a record (the pipeline says which).
pub fn seed(transformation: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64(transformation.as_bytes())
}

/// The digests of a mapping as they stood when a pass started: (digest, key
/// hash), sorted by digest; 16 bytes a record.
#[derive(Debug, Default)]
pub struct DigestSet {
    entries: Vec<(u64, u64)>,
}

impl DigestSet {
    pub fn from_entries(mut entries: Vec<(u64, u64)>) -> DigestSet {
        entries.sort_unstable();
        entries.dedup();
        DigestSet { entries }
    }

    /// Where `digest` is, if a record with it was written.
    pub fn find(&self, digest: u64) -> Option<usize> {
        self.entries
            .binary_search_by(|e| e.0.cmp(&digest))
            .ok()
            // Equal digests of different keys (the same bytes under two
            // names cannot happen: the name is hashed too): the first.
            .map(|mut i| {
                while i > 0 && self.entries[i - 1].0 == digest {
                    i -= 1;
                }
                i
            })
    }

    /// The key hash of the record at `at`.
    pub fn key_at(&self, at: usize) -> u64 {
        self.entries.get(at).map_or(0, |e| e.1)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// Stored as signed 64-bit integers (every dialect has BIGINT).
fn to_db(v: u64) -> i64 {
    v as i64
}

fn from_db(v: i64) -> u64 {
    v as u64
}

/// Every digest of a mapping, read in key order a page at a time.
pub async fn load(db: &mut dyn Exec, mapping: &str) -> Result<DigestSet, DbFailure> {
    const PAGE: i64 = 50_000;
    let mut entries = Vec::new();
    let mut after: Option<i64> = None;
    loop {
        let rows = match after {
            None => {
                db.fetch(
                    "SELECT key_hash, digest FROM cutover_digests WHERE mapping = ? ORDER BY key_hash LIMIT ?",
                    &[Arg::Text(mapping), Arg::Int(PAGE)],
                )
                .await?
            }
            Some(a) => {
                db.fetch(
                    "SELECT key_hash, digest FROM cutover_digests WHERE mapping = ? AND key_hash > ? ORDER BY key_hash LIMIT ?",
                    &[Arg::Text(mapping), Arg::Int(a), Arg::Int(PAGE)],
                )
                .await?
            }
        };
        for r in &rows {
            entries.push((from_db(r.int("digest")?), from_db(r.int("key_hash")?)));
        }
        match rows.last() {
            Some(r) if rows.len() as i64 == PAGE => after = Some(r.int("key_hash")?),
            _ => break,
        }
    }
    Ok(DigestSet::from_entries(entries))
}

/// The key hashes of the records pass `pass_id` processed, read a page at a
/// time (a whole table's rows at once would hold every row's cells).
pub async fn processed(
    db: &mut dyn Exec,
    mapping: &str,
    pass_id: i64,
) -> Result<HashSet<u64>, DbFailure> {
    const PAGE: i64 = 50_000;
    let mut out = HashSet::new();
    // The first page from the smallest key hash on (`>=`), the next ones after the last.
    let (mut after, mut op) = (i64::MIN, ">=");
    loop {
        let sql = format!("SELECT key_hash FROM cutover_digests WHERE mapping = ? AND pass_id = ? AND key_hash {op} ? ORDER BY key_hash LIMIT ?");
        let rows = db
            .fetch(
                &sql,
                &[
                    Arg::Text(mapping),
                    Arg::Int(pass_id),
                    Arg::Int(after),
                    Arg::Int(PAGE),
                ],
            )
            .await?;
        for r in &rows {
            out.insert(from_db(r.int("key_hash")?));
        }
        match rows.last() {
            Some(r) if rows.len() as i64 == PAGE => (after, op) = (r.int("key_hash")?, ">"),
            _ => break,
        }
    }
    Ok(out)
}

/// Record (key hash, digest) of records written by `run_id` in `pass_id`.
pub async fn save(
    db: &mut dyn Exec,
    mapping: &str,
    pass_id: i64,
    run_id: i64,
    entries: &[(u64, u64)],
) -> Result<(), DbFailure> {
    if entries.is_empty() {
        return Ok(());
    }
    // One entry per key: the last record of a key is the one written.
    let mut seen = HashSet::with_capacity(entries.len());
    let mut folded: Vec<(u64, u64)> = Vec::with_capacity(entries.len());
    for e in entries.iter().rev() {
        if seen.insert(e.0) {
            folded.push(*e);
        }
    }
    folded.reverse();
    let tail = upsert(
        db.dialect(),
        "cutover_digests",
        &["mapping", "key_hash"],
        &[
            ("digest", Set::Replace),
            ("pass_id", Set::Replace),
            ("run_id", Set::Replace),
        ],
    );
    for chunk in folded.chunks(ROWS_PER_STATEMENT) {
        let sql = format!(
            "INSERT INTO cutover_digests (mapping, key_hash, digest, pass_id, run_id) VALUES {} {tail}",
            tuples(chunk.len(), 5)
        );
        let mut args = Vec::with_capacity(chunk.len() * 5);
        for (k, d) in chunk {
            args.extend([
                Arg::Text(mapping),
                Arg::Int(to_db(*k)),
                Arg::Int(to_db(*d)),
                Arg::Int(pass_id),
                Arg::Int(run_id),
            ]);
        }
        db.execute(&sql, &args).await?;
    }
    Ok(())
}

/// Forget the digests of these records (key hashes): their next pass processes them.
pub async fn forget(db: &mut dyn Exec, mapping: &str, keys: &[u64]) -> Result<(), DbFailure> {
    for chunk in keys.chunks(ROWS_PER_STATEMENT) {
        let list = chunk
            .iter()
            .map(|k| to_db(*k).to_string())
            .collect::<Vec<_>>()
            .join(", ");
        db.execute(
            &format!("DELETE FROM cutover_digests WHERE mapping = ? AND key_hash IN ({list})"),
            &[Arg::Text(mapping)],
        )
        .await?;
    }
    Ok(())
}

/// Forget the digests the runs in `runs` (a list of ids) wrote: `undo`.
pub async fn forget_runs(db: &mut dyn Exec, mapping: &str, runs: &str) -> Result<(), DbFailure> {
    db.execute(
        &format!("DELETE FROM cutover_digests WHERE mapping = ? AND run_id IN ({runs})"),
        &[Arg::Text(mapping)],
    )
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_digest_is_found_with_its_key_and_an_unknown_one_is_not() {
        let set = DigestSet::from_entries(vec![(30, 3), (10, 1), (20, 2)]);
        assert_eq!(set.len(), 3);
        let at = set.find(20).expect("20 is there");
        assert_eq!(set.key_at(at), 2);
        assert_eq!(set.find(15), None);
        assert!(DigestSet::default().find(1).is_none());
    }

    #[test]
    fn key_hashes_are_pinned() {
        // Stored on targets: a build that hashed differently would process
        // every record again and, worse, misjudge deletions.
        assert_eq!(key_hash(""), 0x2D06_8005_38D3_94C2);
        assert_ne!(key_hash("a"), key_hash("b"));
    }
}
