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
//! Once spanbatch's last atexit hook has run, a thread of the application waits without the GIL
//! instead of pausing: it goes on, and `PyO3` hangs it if it takes the GIL back once the
//! interpreter finalizes (see `exit_gate.rs`).

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
        // Once the gate stops this thread, it waits without the GIL instead of pausing.
        let pause = pause.filter(|_| crate::exit_gate::greenlets_may_pause());
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
        // Looked at again, the GIL held from here into the pause: the gate may have closed while
        // this thread let go of it above (its wait, a signal handler), and the next turn waits.
        if let Some(pause) = pause.filter(|_| crate::exit_gate::greenlets_may_pause()) {
            crate::exit_gate::hang_if_unwound(|| pause.call1((left.min(PAUSE).as_secs_f64(),)))?;
        }
    }
}
