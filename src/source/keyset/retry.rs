//! The one reconnect policy of the keyset sources: a lost connection is
//! re-established a few times with exponential backoff, and the call is made
//! again (a page is read whole or not at all, so reading it again from the last
//! key loses and repeats nothing). A data error is never retried, and neither
//! is a first connection that cannot be made (a wrong host or password does not
//! get better by waiting).

use std::time::Duration;

/// How many times a lost connection is re-established for one call.
pub const RECONNECTS: u32 = 5;

/// The wait before reconnect attempt `n` (1-based): 250 ms, 500 ms, 1 s, 2 s, 4 s.
pub fn backoff(n: u32) -> Duration {
    Duration::from_millis(250 << n.saturating_sub(1).min(6))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_a_quarter_second() {
        assert_eq!(backoff(1), Duration::from_millis(250));
        assert_eq!(backoff(2), Duration::from_millis(500));
        assert_eq!(backoff(5), Duration::from_secs(4));
        assert_eq!(backoff(100), Duration::from_secs(16));
    }
}
