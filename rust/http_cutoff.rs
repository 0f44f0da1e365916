//! A cut-off for an `HttpSender`'s requests, set while they are under way: at exit, a spilling exporter's
//! request that waits for an answer that never comes (a backend that took the connection and hangs, or stopped reading) ends in
//! time for it and the queue behind it to be written to disk within the exit deadline (`_spilling.py`).
//!
//! The sender's connections (`http_tcp.rs`) read and write in slices of at most `LOOK_EVERY`, looking at the
//! cut-off between them: one set after the request began still ends it, whether it waits for the answer or in
//! its write (a backend that stopped reading). Past the cut-off, a request fails before it writes anything.
//! The connect is not cut: it precedes these, and a backend that takes the connection is what this is for.
//! The failure is a timeout, as if the request's own had passed.

use std::io::{self, ErrorKind};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use ureq::Error;

/// How often a read or write under way looks at the cut-off: its precision.
pub const LOOK_EVERY: Duration = Duration::from_millis(100);
/// What `Cutoff::at` holds while no cut-off is set.
const UNSET: u64 = u64::MAX;

/// When an `HttpSender`'s requests end at the latest, once set; shared with its connections. An atomic, not a
/// lock: every slice of a read or write looks at it, and a lock held at a fork would stay held in the child.
#[derive(Debug)]
pub struct Cutoff {
    since: Instant,
    /// Nanoseconds from `since` to the cut-off, or `UNSET`.
    at: AtomicU64,
}

impl Default for Cutoff {
    fn default() -> Self {
        Self {
            since: Instant::now(),
            at: AtomicU64::new(UNSET),
        }
    }
}

impl Cutoff {
    pub fn set(&self, at: Instant) {
        let nanos = at.saturating_duration_since(self.since).as_nanos();
        let nanos = u64::try_from(nanos).unwrap_or(UNSET - 1).min(UNSET - 1); // centuries away: never, in practice
        self.at.store(nanos, Ordering::Relaxed);
    }

    /// No cut-off any more: requests wait out their own timeouts again.
    pub fn lift(&self) {
        self.at.store(UNSET, Ordering::Relaxed);
    }

    /// The time left to the cut-off (zero once past); None while none is set.
    pub fn left(&self) -> Option<Duration> {
        let nanos = self.at.load(Ordering::Relaxed);
        (nanos != UNSET).then(|| {
            (self.since + Duration::from_nanos(nanos)).saturating_duration_since(Instant::now())
        })
    }
}

/// What a request fails with at the cut-off: a connection timeout, retried (and then spilled) as one.
pub fn cut_short() -> Error {
    Error::Io(io::Error::new(
        ErrorKind::TimedOut,
        "cut short: no answer by the cut-off set at exit (the exit deadline is near)",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lifted_cutoff_is_none_again() {
        let cutoff = Cutoff::default();
        assert_eq!(cutoff.left(), None);
        cutoff.set(Instant::now());
        assert_eq!(cutoff.left(), Some(Duration::ZERO));
        cutoff.lift();
        assert_eq!(cutoff.left(), None);
    }
}
