//! A mapping's run lock, written once for every dialect.
//!
//! The lock row in `cutover_locks` names the holder (host, pid, run, heartbeat)
//! for messages and for finding holders that are gone. Where the dialect has a
//! server lock ([`ServerLock`]: PostgreSQL's advisory locks, MySQL's
//! `GET_LOCK`), that is the lock, held by one connection for the whole run and
//! released by the server if the process dies; the row only describes it. On
//! SQLite the row is the lock: inserted when there is none, replaced when its
//! holder is gone.

use super::{Target, TargetError};
use crate::db::{Arg, Exec};
use crate::tracking::Holder;
use std::collections::HashMap;
use std::time::Duration;
use tokio::sync::Mutex;

/// Result of taking a mapping's run lock.
#[derive(Debug)]
pub enum LockOutcome {
    Acquired {
        /// A previous holder that was found dead and replaced.
        replaced: Option<Holder>,
    },
    Held(Holder),
}

/// A dialect's server lock: the statements that take it without waiting (one
/// `?`, the lock's name; a row whose first column is 1 when taken) and release
/// it, and the connections that hold it, one per mapping.
pub struct ServerLock {
    take: &'static str,
    release: &'static str,
    /// The lock's name for a mapping.
    name: Box<dyn Fn(&str) -> String + Send + Sync>,
    held: Mutex<HashMap<String, Box<dyn Exec>>>,
}

impl ServerLock {
    pub fn new(
        take: &'static str,
        release: &'static str,
        name: Box<dyn Fn(&str) -> String + Send + Sync>,
    ) -> ServerLock {
        ServerLock {
            take,
            release,
            name,
            held: Mutex::new(HashMap::new()),
        }
    }

    /// Let go of every held lock (the connections close with the pool).
    pub async fn release_all(&self) {
        self.held.lock().await.clear();
    }

    async fn try_take(&self, conn: &mut dyn Exec, mapping: &str) -> Result<bool, TargetError> {
        let name = (self.name)(mapping);
        let rows = conn
            .fetch(self.take, &[Arg::Text(&name)])
            .await
            .map_err(crate::db::ctx("taking the run lock"))?;
        Ok(rows
            .first()
            .and_then(|r| r.at(0))
            .is_some_and(|c| matches!(c, crate::db::Cell::Int(1) | crate::db::Cell::Bool(true))))
    }

    async fn release_on(&self, conn: &mut dyn Exec, mapping: &str) {
        let name = (self.name)(mapping);
        let _ = conn.fetch(self.release, &[Arg::Text(&name)]).await;
    }
}

/// A holder to show when the server lock is taken but no row names its holder.
fn unknown_holder() -> Holder {
    Holder {
        host: "?".into(),
        pid: 0,
        run_id: None,
        acquired_at: "?".into(),
        heartbeat_at: "?".into(),
    }
}

impl dyn Target + '_ {
    /// Take the run lock of a mapping for `me`, or say who holds it.
    pub async fn try_lock(&self, mapping: &str, me: &Holder) -> Result<LockOutcome, TargetError> {
        match self.server_lock() {
            Some(server) => self.try_server_lock(server, mapping, me).await,
            None => self.try_row_lock(mapping, me).await,
        }
    }

    /// The lock row is the lock: replace a dead holder's row, then insert ours
    /// only where there is none.
    async fn try_row_lock(&self, mapping: &str, me: &Holder) -> Result<LockOutcome, TargetError> {
        for _ in 0..10 {
            let mut replaced = None;
            if let Some(h) = self.store().read_holder(mapping).await? {
                if h.is_alive() && !(h.host == me.host && h.pid == me.pid) {
                    return Ok(LockOutcome::Held(h));
                }
                self.store()
                    .delete_holder(mapping, &h.host, h.pid, Some(&h.acquired_at))
                    .await?;
                replaced = Some(h);
            }
            if self.store().write_holder(mapping, me, false).await? {
                return Ok(LockOutcome::Acquired { replaced });
            }
        }
        match self.store().read_holder(mapping).await? {
            Some(h) => Ok(LockOutcome::Held(h)),
            None => Err(TargetError::Db {
                context: "taking the run lock".into(),
                message: "the lock changed hands repeatedly; try again".into(),
                retryable: true,
            }),
        }
    }

    async fn try_server_lock(
        &self,
        server: &ServerLock,
        mapping: &str,
        me: &Holder,
    ) -> Result<LockOutcome, TargetError> {
        let mut conn = self.acquire().await?;
        let mut got = false;
        // A holder that died a moment ago keeps its lock until the server notices
        // the closed connection: wait for that, up to 20 s.
        for _ in 0..40 {
            got = server.try_take(&mut *conn, mapping).await?;
            if got
                || self
                    .store()
                    .read_holder(mapping)
                    .await?
                    .is_none_or(|h| h.is_alive())
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        if !got {
            let holder = self
                .store()
                .read_holder(mapping)
                .await?
                .unwrap_or_else(unknown_holder);
            return Ok(LockOutcome::Held(holder));
        }
        let replaced = self.store().read_holder(mapping).await?;
        // The server lock is free, but the holder row names a live process: its
        // lock connection was lost (the server releases the lock with it) while
        // it still runs. It re-takes the lock at its next heartbeat, or stops.
        if let Some(h) = replaced
            .as_ref()
            .filter(|h| h.is_alive() && !(h.host == me.host && h.pid == me.pid))
        {
            server.release_on(&mut *conn, mapping).await;
            return Ok(LockOutcome::Held(h.clone()));
        }
        crate::tracking::Store::new(Box::new(&mut *conn))
            .write_holder(mapping, me, true)
            .await?;
        server.held.lock().await.insert(mapping.to_string(), conn);
        Ok(LockOutcome::Acquired { replaced })
    }

    /// Check that the connection holding the mapping's server lock is alive; if
    /// it was lost (the server then released the lock), take the lock again on
    /// a fresh connection, or fail when another process has it now.
    async fn keep_lock(&self, server: &ServerLock, mapping: &str) -> Result<(), TargetError> {
        let mut held = server.held.lock().await;
        let Some(conn) = held.get_mut(mapping) else {
            return Ok(());
        };
        if conn.execute("SELECT 1", &[]).await.is_ok() {
            return Ok(());
        }
        tracing::warn!(
            mapping,
            "the connection holding the run lock was lost; taking the lock again"
        );
        let mut fresh = self.acquire().await?;
        if !server.try_take(&mut *fresh, mapping).await? {
            held.remove(mapping);
            return Err(TargetError::LockLost {
                mapping: mapping.to_string(),
            });
        }
        held.insert(mapping.to_string(), fresh);
        Ok(())
    }

    /// The run holding the lock is alive (and still holds the server lock).
    pub async fn heartbeat(&self, mapping: &str, run_id: i64) -> Result<(), TargetError> {
        self.keep_server_lock(mapping).await?;
        self.store().heartbeat(mapping, run_id).await
    }

    /// Only check the server lock's connection (re-taking the lock if it was
    /// lost): while the run's own batch transactions are open, they write the
    /// heartbeat rows, and an update from outside them would wait for them.
    pub async fn keep_server_lock(&self, mapping: &str) -> Result<(), TargetError> {
        match self.server_lock() {
            Some(server) => self.keep_lock(server, mapping).await,
            None => Ok(()),
        }
    }

    pub async fn unlock(&self, mapping: &str) -> Result<(), TargetError> {
        self.store()
            .delete_holder(
                mapping,
                &crate::tracking::this_host(),
                i64::from(std::process::id()),
                None,
            )
            .await?;
        if let Some(server) = self.server_lock() {
            if let Some(mut conn) = server.held.lock().await.remove(mapping) {
                server.release_on(&mut *conn, mapping).await;
            }
        }
        Ok(())
    }
}
