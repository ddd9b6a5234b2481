//! `lookup('mapping')`: legacy ids translated through `cutover_keymap`, with a
//! second connection of the transform thread, a per-batch prefetch and a
//! bounded cache of the ids found.
//!
//! Ids that are not found are only remembered for the batch they were asked for
//! (a later batch, or a later mapping's run, may find them), and a failing key
//! map query is retried and then reported as a failure of the run, never as
//! "not found".

use crate::mapping::functions::Lookup;
use crate::runtime::Bridge;
use crate::sink::{self, Target, TargetError};
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::Duration;

/// Cache entries kept before the cache is emptied (memory stays bounded).
const CACHE_LIMIT: usize = 1_000_000;
/// Attempts of one key map query before the run fails.
const ATTEMPTS: u32 = 4;

type Key = (String, String);

#[derive(Default)]
struct Cache {
    found: HashMap<Key, String>,
    /// Asked for since the last prefetch and not found.
    missing: HashSet<Key>,
}

pub struct KeymapLookup {
    /// The second connection to the target, on its own runtime.
    target: Bridge<Box<dyn Target>>,
    cache: Mutex<Cache>,
    /// The first key map query that failed for good.
    failure: Mutex<Option<String>>,
}

impl KeymapLookup {
    /// Open a second connection to the target (from any thread).
    pub fn connect(url: &str) -> Result<KeymapLookup, TargetError> {
        let fail = |message: String| TargetError::Connect {
            url: crate::redact_url(url),
            message,
        };
        let mut bridge = Bridge::new("cutover-keymap").map_err(|e| fail(e.to_string()))?;
        let target = bridge
            .run(sink::connect(url))
            .unwrap_or_else(|_| Err(fail("the key map connection thread failed".into())))?;
        bridge.set(Some(target));
        Ok(KeymapLookup {
            target: bridge,
            cache: Mutex::new(Cache::default()),
            failure: Mutex::new(None),
        })
    }

    fn query(&self, mapping: &str, keys: &[String]) -> Result<Vec<(String, String)>, String> {
        let Some(t) = self.target.get() else {
            return Err("the key map connection is closed".into());
        };
        let mut attempt = 0;
        loop {
            attempt += 1;
            let r = self
                .target
                .run(t.store().keymap_get(mapping, keys))
                .unwrap_or_else(|_| {
                    Err(TargetError::Db {
                        context: "reading the key map".into(),
                        message: "the key map query thread failed".into(),
                        retryable: false,
                    })
                });
            match r {
                Ok(found) => return Ok(found),
                Err(e) if attempt < ATTEMPTS => {
                    let wait = Duration::from_millis(200 << attempt);
                    tracing::warn!(
                        mapping,
                        attempt,
                        "key map query failed, retrying in {wait:?}: {e}"
                    );
                    std::thread::sleep(wait);
                }
                Err(e) => return Err(format!("reading the key map of mapping '{mapping}': {e}")),
            }
        }
    }

    /// Fetch keys into the cache; a failure is remembered for [`Lookup::failure`].
    fn fetch(&self, mapping: &str, keys: &[String]) -> Result<(), String> {
        let found = match self.query(mapping, keys) {
            Ok(f) => f,
            Err(e) => {
                if let Ok(mut f) = self.failure.lock() {
                    f.get_or_insert(e.clone());
                }
                return Err(e);
            }
        };
        let found: HashMap<String, String> = found.into_iter().collect();
        if let Ok(mut cache) = self.cache.lock() {
            if cache.found.len() > CACHE_LIMIT {
                cache.found.clear();
            }
            for k in keys {
                let key = (mapping.to_string(), k.clone());
                match found.get(k) {
                    Some(new) => {
                        cache.found.insert(key, new.clone());
                    }
                    None => {
                        cache.missing.insert(key);
                    }
                }
            }
        }
        Ok(())
    }

    fn cached(&self, key: &Key) -> Option<Option<String>> {
        let cache = self.cache.lock().ok()?;
        match cache.found.get(key) {
            Some(v) => Some(Some(v.clone())),
            None if cache.missing.contains(key) => Some(None),
            None => None,
        }
    }
}

impl Lookup for KeymapLookup {
    fn lookup(&self, mapping: &str, legacy_key: &str) -> Result<Option<Value>, String> {
        let key = (mapping.to_string(), legacy_key.to_string());
        if let Some(hit) = self.cached(&key) {
            return Ok(hit.map(Value::String));
        }
        self.fetch(mapping, &[legacy_key.to_string()])?;
        Ok(self.cached(&key).flatten().map(Value::String))
    }

    fn prefetch(&self, mapping: &str, legacy_keys: &[String]) {
        let missing: Vec<String> = {
            let Ok(mut cache) = self.cache.lock() else {
                return;
            };
            // Ids not found before may have been recorded since.
            cache.missing.clear();
            let mut m: Vec<String> = legacy_keys
                .iter()
                .filter(|k| {
                    !cache
                        .found
                        .contains_key(&(mapping.to_string(), (*k).clone()))
                })
                .cloned()
                .collect();
            m.sort();
            m.dedup();
            m
        };
        if !missing.is_empty() {
            // A failure is reported through `failure()` after the batch.
            let _ = self.fetch(mapping, &missing);
        }
    }

    fn failure(&self) -> Option<String> {
        self.failure.lock().ok().and_then(|f| f.clone())
    }
}
