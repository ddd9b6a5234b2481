//! Dry runs write nothing, not even tracking rows: they count what a real run
//! would do, report keys produced twice in the input, and check `lookup()`s
//! against the key map the earlier mappings of the same dry run would record.

use super::summary::Counters;
use crate::transform::{Outcome, Transformed, Transformer};
use std::collections::HashSet;
use std::sync::Arc;

/// The key map a dry run would have written, kept in memory (it grows with the
/// parent mappings' records; only dry runs use it).
#[derive(Debug, Default)]
pub struct DryKeymap(std::sync::Mutex<std::collections::HashMap<(String, String), String>>);

impl DryKeymap {
    pub(super) fn record(&self, mapping: &str, pairs: impl Iterator<Item = (String, String)>) {
        if let Ok(mut m) = self.0.lock() {
            for (l, n) in pairs {
                m.insert((mapping.to_string(), l), n);
            }
        }
    }

    fn get(&self, mapping: &str, legacy: &str) -> Option<String> {
        let m = self.0.lock().ok()?;
        m.get(&(mapping.to_string(), legacy.to_string())).cloned()
    }
}

/// `lookup()` in a dry run: what the earlier mappings of the same dry run would
/// have recorded, then the target's key map.
pub(super) struct DryLookup {
    pub dry: Arc<DryKeymap>,
    pub db: Option<crate::keymap::KeymapLookup>,
}

impl crate::mapping::functions::Lookup for DryLookup {
    fn lookup(&self, mapping: &str, legacy_key: &str) -> Result<Option<serde_json::Value>, String> {
        if let Some(n) = self.dry.get(mapping, legacy_key) {
            return Ok(Some(serde_json::Value::String(n)));
        }
        match &self.db {
            Some(db) => db.lookup(mapping, legacy_key),
            None => Ok(None),
        }
    }

    fn prefetch(&self, mapping: &str, legacy_keys: &[String]) {
        if let Some(db) = &self.db {
            let rest: Vec<String> = legacy_keys
                .iter()
                .filter(|k| self.dry.get(mapping, k).is_none())
                .cloned()
                .collect();
            db.prefetch(mapping, &rest);
        }
    }

    fn failure(&self) -> Option<String> {
        self.db.as_ref().and_then(|db| db.failure())
    }
}

/// What a dry run counts besides the records: keys seen per table, and the
/// keys produced more than once (count, example keys).
pub(super) struct DryCount {
    keys: Vec<HashSet<u64>>,
    pub dups: Vec<(u64, Vec<String>)>,
}

impl DryCount {
    pub fn new(tables: usize) -> DryCount {
        DryCount {
            keys: vec![HashSet::new(); tables],
            dups: vec![(0, Vec::new()); tables],
        }
    }

    /// Count a batch as a real run would write it.
    pub fn absorb(
        &mut self,
        c: &mut Counters,
        batch: &[Transformed],
        transformer: &Transformer,
        dry_keymap: Option<&Arc<DryKeymap>>,
        name: &str,
    ) {
        if let Some(dry) = dry_keymap {
            dry.record(
                name,
                batch.iter().filter_map(|t| match &t.outcome {
                    Outcome::Rows {
                        keymap: Some(pair), ..
                    } => Some(pair.clone()),
                    _ => None,
                }),
            );
        }
        for t in batch {
            match &t.outcome {
                Outcome::Rows { rows, .. } => {
                    c.written += 1;
                    for (ti, values) in rows {
                        c.tables[*ti].0 += 1;
                        let key: Vec<String> = transformer.tables[*ti]
                            .key_idx
                            .iter()
                            .map(|&i| values[i].key_text())
                            .collect();
                        let mut h = std::collections::hash_map::DefaultHasher::new();
                        std::hash::Hash::hash(&key, &mut h);
                        if !self.keys[*ti].insert(std::hash::Hasher::finish(&h)) {
                            let d = &mut self.dups[*ti];
                            d.0 += 1;
                            if d.1.len() < 3 {
                                d.1.push(key.join(", "));
                            }
                        }
                    }
                }
                Outcome::Filtered => c.filtered += 1,
                // Dry runs keep no digests; counted as a written record would be.
                Outcome::Unchanged { .. } => c.written += 1,
                Outcome::Failed(e) => {
                    c.failed += 1;
                    c.add_failure(e);
                }
            }
        }
        c.read += batch.len() as i64;
    }
}
