//! The run lock's server side on PostgreSQL: a session advisory lock on the
//! mapping's name, released by the server if the process dies.

use super::PgTarget;
use crate::sink::{Lock, ServerLock};

pub(super) fn advisory_lock() -> ServerLock {
    ServerLock::new(
        "SELECT CASE WHEN pg_try_advisory_lock(hashtextextended(?, 0)) THEN 1 ELSE 0 END AS got",
        "SELECT pg_advisory_unlock(hashtextextended(?, 0))",
        // Advisory locks belong to the database already.
        Box::new(|mapping| format!("cutover:{mapping}")),
    )
}

impl Lock for PgTarget {
    fn server_lock(&self) -> Option<&ServerLock> {
        Some(&self.lock)
    }
}
