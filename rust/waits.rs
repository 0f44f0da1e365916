//! Waits on an application's thread that Ctrl-C and gevent's hub can still get through.
//!
//! A wait detached from the interpreter never returns to Python meanwhile, so the interpreter
//! cannot run a signal handler: Ctrl-C would wait out the whole timeout (30 s for a flush). So
//! these waits block in slices and run pending handlers in between; an exception a handler
//! raises (`KeyboardInterrupt`) ends the wait, and a handler that returns lets it go on.
//!
//! Under gevent's monkey-patching the caller may be a greenlet sharing its OS thread with the
//! hub and every other greenlet: any native wait stops them all. Given a `pause` (gevent's
//! `sleep`), a wait never blocks natively: it looks, then pauses cooperatively, and again.
//! Once spanbatch's last atexit hook has run, a thread of the application parks instead of
//! pausing (see `exit_gate.rs`).

use pyo3::prelude::*;
use std::time::{Duration, Instant};

/// Longest native wait between two runs of the pending signal handlers.
pub const SIGNAL_SLICE: Duration = Duration::from_millis(50);
/// How long a cooperative wait lets other greenlets run between two looks.
const PAUSE: Duration = Duration::from_millis(5);

/// Waits until `done(until)` holds or `deadline` passes; returns whether it held.
///
/// `done(until)` looks at what is waited for and may block, detached, until `until` for it.
/// A signal handler's or `pause`'s exception ends the wait and is returned.
pub fn interruptible(
    py: Python<'_>,
    deadline: Instant,
    pause: Option<&Bound<'_, PyAny>>,
    done: impl Fn(Instant) -> bool + Sync,
) -> PyResult<bool> {
    loop {
        let now = Instant::now();
        let until = match pause {
            Some(_) => now,
            None => deadline.min(now + SIGNAL_SLICE),
        };
        if crate::exit_gate::detach(py, || done(until)) {
            return Ok(true);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(false);
        }
        py.check_signals()?;
        if let Some(pause) = pause {
            // A real OS thread's pause lets go of the GIL: one that took it back once the
            // interpreter finalizes was ended from in there, and crashed the process.
            crate::exit_gate::calling_python_unless_stopped(
                py,
                crate::handoff::stopped_in_its_own_waits,
                || pause.call1((left.min(PAUSE).as_secs_f64(),)),
            )?;
        }
    }
}
