//! The run lock's server side on MySQL and MariaDB: `GET_LOCK` on the
//! mapping's name, released by the server if the process dies. (`GET_LOCK` is
//! local to one node of a Galera cluster.)

use super::MySqlTarget;
use crate::sink::{Lock, ServerLock};

/// GET_LOCK names are limited to 64 characters.
fn lock_name(mapping: &str) -> String {
    let name = format!("cutover:{mapping}");
    if name.len() <= 64 {
        name
    } else {
        use sha2::{Digest, Sha256};
        format!(
            "cutover:{}",
            &hex::encode(Sha256::digest(mapping.as_bytes()))[..48]
        )
    }
}

pub(super) fn named_lock() -> ServerLock {
    ServerLock::new(
        "SELECT COALESCE(GET_LOCK(?, 0), 0) AS got",
        "SELECT RELEASE_LOCK(?)",
        lock_name,
    )
}

impl Lock for MySqlTarget {
    fn server_lock(&self) -> Option<&ServerLock> {
        Some(&self.lock)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_names_fit_get_lock() {
        assert!(lock_name(&"x".repeat(100)).len() <= 64);
        assert_eq!(lock_name("short"), "cutover:short");
    }
}
