//! Fork recovery, Rust side.
//!
//! A child forked through Python's hooks gets its own core from its lane (`_lane.py`) before
//! any span reaches the parent's. A fork made without them (uWSGI forks from C) is noticed
//! here, by the process id, at rare points of a push; the lane is then asked for a successor
//! core, which takes the span, and counts those the child found queued as lost (`fork`): it
//! cannot tell its own from its parent's, which the parent exports.

use crate::sync::locked;
use pyo3::prelude::*;
use pyo3::{PyTraverseError, PyVisit};
use std::sync::Mutex;

/// Look for a fork once per this many spans, and once per this many dropped spans.
const EVERY_SPANS: u64 = 1024;
const EVERY_DROPS: u64 = 64;

/// Whether a push is one of the rare points at which to look for a fork: the first span into an
/// empty queue (so the child of an idle parent notices at once), a wake-up, every
/// `EVERY_SPANS`-th span (`seq` spans came before it) and every `EVERY_DROPS`-th overflow
/// (`dropped` before it, if the push overflowed).
pub fn worth_looking(queued: usize, wakes: bool, dropped: Option<u64>, seq: u64) -> bool {
    queued == 1
        || wakes
        || dropped.is_some_and(|before| before % EVERY_DROPS == 0)
        || seq % EVERY_SPANS == 0
}

/// The process a core was made in, and how to find its successor in a forked child.
pub struct ForkWatch {
    pid: u32,
    /// Called with the number of orphaned spans; returns the successor core, or None.
    on_fork: Mutex<Option<Py<PyAny>>>,
}

impl ForkWatch {
    pub fn new(on_fork: Option<Py<PyAny>>) -> Self {
        Self {
            pid: std::process::id(),
            on_fork: Mutex::new(on_fork),
        }
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Whether this is a child forked after the core was made.
    pub fn forked(&self) -> bool {
        std::process::id() != self.pid
    }

    /// The successor core of a forked child that found `orphaned` spans queued; None when the
    /// lane has none (gone, or shut down).
    pub fn successor<'py>(
        &self,
        py: Python<'py>,
        orphaned: usize,
    ) -> PyResult<Option<Bound<'py, PyAny>>> {
        let Some(callback) = locked(&self.on_fork).as_ref().map(|c| c.clone_ref(py)) else {
            return Ok(None);
        };
        let successor = callback.call1(py, (orphaned,))?.into_bound(py);
        Ok((!successor.is_none()).then_some(successor))
    }

    pub fn traverse(&self, visit: &PyVisit<'_>) -> Result<(), PyTraverseError> {
        if let Ok(guard) = self.on_fork.try_lock() {
            if let Some(callback) = guard.as_ref() {
                visit.call(callback)?;
            }
        }
        Ok(())
    }

    pub fn clear(&self) {
        locked(&self.on_fork).take();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fork_is_looked_for_only_at_rare_points() {
        assert!(
            worth_looking(1, false, None, 5),
            "first span into an empty queue"
        );
        assert!(worth_looking(7, true, None, 5), "a wake-up");
        assert!(worth_looking(7, false, None, 2048));
        assert!(!worth_looking(7, false, None, 2049));
        assert!(worth_looking(7, false, Some(128), 5));
        assert!(!worth_looking(7, false, Some(129), 5));
    }

    #[test]
    fn the_process_it_was_made_in_is_not_a_fork() {
        let watch = ForkWatch::new(None);
        assert_eq!(watch.pid(), std::process::id());
        assert!(!watch.forked());
    }
}
