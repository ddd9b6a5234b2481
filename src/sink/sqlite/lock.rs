//! SQLite has no server lock: the row in `cutover_locks` is the run lock
//! (see `crate::sink::lock`).

use super::SqliteTarget;
use crate::sink::Lock;

impl Lock for SqliteTarget {}
