//! `lookup('mapping')`: legacy ids translated through `cutover_keymap`, with a
//! second connection of the transform thread, a per-batch prefetch and a
//! bounded cache.

use crate::mapping::functions::Lookup;
use crate::target::{self, Target, TargetError};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Mutex;

/// Cache entries kept before the cache is emptied (memory stays bounded).
const CACHE_LIMIT: usize = 1_000_000;

pub struct KeymapLookup {
    rt: Option<tokio::runtime::Runtime>,
    target: Option<Box<dyn Target>>,
    cache: Mutex<HashMap<(String, String), Option<String>>>,
}

fn on_rt<T: Send>(
    rt: &tokio::runtime::Runtime,
    f: impl std::future::Future<Output = T> + Send,
) -> Option<T> {
    std::thread::scope(|s| s.spawn(|| rt.block_on(f)).join()).ok()
}

impl KeymapLookup {
    /// Open a second connection to the target (from any thread).
    pub fn connect(url: &str) -> Result<KeymapLookup, TargetError> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| TargetError::Connect {
                url: crate::redact_url(url),
                message: e.to_string(),
            })?;
        let target = on_rt(&rt, target::connect(url)).unwrap_or_else(|| {
            Err(TargetError::Connect {
                url: crate::redact_url(url),
                message: "connection thread failed".into(),
            })
        })?;
        Ok(KeymapLookup {
            rt: Some(rt),
            target: Some(target),
            cache: Mutex::new(HashMap::new()),
        })
    }

    fn fetch(&self, mapping: &str, keys: &[String]) {
        let found = match (&self.rt, &self.target) {
            (Some(rt), Some(t)) => on_rt(rt, t.keymap_get(mapping, keys))
                .and_then(|r| r.ok())
                .unwrap_or_default(),
            _ => Vec::new(),
        };
        let found: HashMap<String, String> = found.into_iter().collect();
        if let Ok(mut cache) = self.cache.lock() {
            if cache.len() > CACHE_LIMIT {
                cache.clear();
            }
            for k in keys {
                cache.insert((mapping.to_string(), k.clone()), found.get(k).cloned());
            }
        }
    }
}

impl Drop for KeymapLookup {
    fn drop(&mut self) {
        if let Some(rt) = self.rt.take() {
            {
                let _inside = rt.enter();
                self.target = None;
            }
            rt.shutdown_background();
        }
    }
}

impl Lookup for KeymapLookup {
    fn lookup(&self, mapping: &str, legacy_key: &str) -> Option<Value> {
        let key = (mapping.to_string(), legacy_key.to_string());
        let cached = self.cache.lock().ok().and_then(|c| c.get(&key).cloned());
        let hit = match cached {
            Some(v) => v,
            None => {
                self.fetch(mapping, &[legacy_key.to_string()]);
                self.cache
                    .lock()
                    .ok()
                    .and_then(|c| c.get(&key).cloned())
                    .flatten()
            }
        };
        hit.map(Value::String)
    }

    fn prefetch(&self, mapping: &str, legacy_keys: &[String]) {
        let missing: Vec<String> = {
            let Ok(cache) = self.cache.lock() else { return };
            let mut m: Vec<String> = legacy_keys
                .iter()
                .filter(|k| !cache.contains_key(&(mapping.to_string(), (*k).clone())))
                .cloned()
                .collect();
            m.sort();
            m.dedup();
            m
        };
        if !missing.is_empty() {
            self.fetch(mapping, &missing);
        }
    }
}
