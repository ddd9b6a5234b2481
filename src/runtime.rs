//! The one bridge from synchronous code to async I/O: the SQL sources, the SQL
//! Server source and the key map lookups are called from plain threads (the
//! reader thread, rayon workers) and from inside async commands (`retry`,
//! `verify`), and each needs its driver's futures run to completion.
//!
//! A [`Bridge`] owns a current-thread tokio runtime and the value that lives on
//! it (a pool, a client, a target connection). Every future runs on a fresh
//! scoped thread, so it never nests inside the caller's runtime, and a panic in
//! there (tiberius answers some column types with `todo!`) comes back as an
//! error instead of taking the process down. Dropping the bridge drops the value
//! inside the runtime (its connections close there) and then shuts the runtime
//! down in the background: bridges are dropped inside async commands too.

use std::future::Future;

/// Why a future could not be run to completion.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuntimeError {
    /// The runtime could not be built (the I/O error's text).
    #[error("{0}")]
    Start(String),
    /// The thread for the future could not be started.
    #[error("{0}")]
    Thread(String),
    /// The future panicked; the panic's message.
    #[error("{0}")]
    Panicked(String),
}

/// A runtime and the value that lives on it.
pub struct Bridge<T> {
    name: &'static str,
    rt: Option<tokio::runtime::Runtime>,
    value: Option<T>,
}

/// The text of a panic payload.
fn panic_text(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".into())
}

impl<T> Bridge<T> {
    /// A bridge with no value yet; `name` names its I/O threads.
    pub fn new(name: &'static str) -> Result<Bridge<T>, RuntimeError> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| RuntimeError::Start(e.to_string()))?;
        Ok(Bridge {
            name,
            rt: Some(rt),
            value: None,
        })
    }

    /// Run a future to completion on the bridge's runtime, from any context.
    pub fn run<R: Send>(&self, f: impl Future<Output = R> + Send) -> Result<R, RuntimeError> {
        let Some(rt) = &self.rt else {
            return Err(RuntimeError::Start("the runtime is shut down".into()));
        };
        std::thread::scope(|s| {
            let handle = std::thread::Builder::new()
                .name(self.name.into())
                .spawn_scoped(s, move || rt.block_on(f))
                .map_err(|e| RuntimeError::Thread(e.to_string()))?;
            handle
                .join()
                .map_err(|p| RuntimeError::Panicked(panic_text(p.as_ref())))
        })
    }

    /// The value, when there is one.
    pub fn get(&self) -> Option<&T> {
        self.value.as_ref()
    }

    /// Take the value out (to move it into a future that needs it mutably);
    /// give it back with [`Bridge::set`].
    pub fn take(&mut self) -> Option<T> {
        self.value.take()
    }

    /// Replace the value; the old one is dropped inside the runtime.
    pub fn set(&mut self, value: Option<T>) {
        let old = std::mem::replace(&mut self.value, value);
        self.drop_inside(old);
    }

    /// Drop a value inside the runtime (its connections close there).
    fn drop_inside(&self, value: Option<T>) {
        match &self.rt {
            Some(rt) => {
                let _inside = rt.enter();
                drop(value);
            }
            None => drop(value),
        }
    }
}

impl<T> Drop for Bridge<T> {
    fn drop(&mut self) {
        let value = self.value.take();
        self.drop_inside(value);
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_in_the_future_is_an_error_and_the_bridge_still_works() {
        let b: Bridge<()> = Bridge::new("cutover-test").unwrap();
        let r: Result<(), _> = b.run(async { panic!("boom") });
        assert_eq!(r, Err(RuntimeError::Panicked("boom".into())));
        let r: Result<(), _> = b.run(async { panic!("{}", String::from("owned")) });
        assert_eq!(r, Err(RuntimeError::Panicked("owned".into())));
        assert_eq!(b.run(async { 5 }).unwrap(), 5);
    }

    #[test]
    fn runs_from_inside_another_runtime_and_drops_there() {
        let outer = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        outer.block_on(async {
            let mut b: Bridge<tokio::sync::mpsc::Sender<u8>> = Bridge::new("cutover-test").unwrap();
            let (tx, mut rx) = tokio::sync::mpsc::channel(1);
            b.set(Some(tx));
            let tx = b.get().unwrap().clone();
            assert!(b.run(async move { tx.send(7).await.is_ok() }).unwrap());
            assert_eq!(rx.recv().await, Some(7));
            drop(b);
        });
    }
}
