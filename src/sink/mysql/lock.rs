//! The run lock's server side on MySQL and MariaDB: `GET_LOCK` on the
//! database's and the mapping's name, released by the server if the process
//! dies. `GET_LOCK` names are global to the server (and local to one node of a
//! Galera cluster), so the name holds the database: the same mapping loading
//! two databases of one server (staging and production) takes two locks.

use super::MySqlTarget;
use crate::sink::{Lock, ServerLock};

/// The lock of a mapping in a database; GET_LOCK names are limited to 64
/// characters, so a longer one is hashed.
fn lock_name(database: &str, mapping: &str) -> String {
    let name = format!("cutover:{database}/{mapping}");
    if name.len() <= 64 {
        name
    } else {
        use sha2::{Digest, Sha256};
        let id = format!("{database}/{mapping}");
        format!(
            "cutover:{}",
            &hex::encode(Sha256::digest(id.as_bytes()))[..48]
        )
    }
}

pub(super) fn named_lock(database: String) -> ServerLock {
    ServerLock::new(
        "SELECT COALESCE(GET_LOCK(?, 0), 0) AS got",
        "SELECT RELEASE_LOCK(?)",
        Box::new(move |mapping| lock_name(&database, mapping)),
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
        assert!(lock_name("db", &"x".repeat(100)).len() <= 64);
        assert_eq!(lock_name("db", "short"), "cutover:db/short");
        assert_ne!(
            lock_name("a", &"x".repeat(100)),
            lock_name("b", &"x".repeat(100))
        );
    }
}
