//! `SharedLock`: a lock for state shared with spanbatch's own threads (`_threads.shared_lock`),
//! whose take and let-go are each one call into native code, as the OS's own locks' are.
//!
//! `CPython` runs a signal's handler at the next of a few places in Python code (a function's
//! start, after a call, a jump). A lock written in Python had such places between the OS lock
//! taken and its `with` block begun, and between the block's end and the OS lock let go: a
//! `KeyboardInterrupt` raised there left it held for good (about 1 real SIGINT in 3 that landed
//! in a take or let-go, on 3.10 to 3.13). Here no Python code runs once a take has it: what a
//! take calls (who the caller is, how it waits its turn, the pending signal handlers) runs
//! before, and a handler's exception leaves it untaken.
//!
//! Its state is Rust's, and a blocked taker waits for it without the GIL, in slices between
//! which it runs the pending signal handlers (on the main thread, Ctrl-C raises within a
//! slice). Waiting in the OS lock's own `acquire` instead, called from here, a daemon thread
//! woken while the interpreter finalizes was ended by `CPython` from inside that call, through
//! our frames: the process aborted ("FATAL: exception not rethrown"). Here it takes the GIL back
//! only in `PyO3`'s detach, which hangs it then. A taker woken after spanbatch's last atexit hook
//! goes on (the hooks after it may join it or take a lock it holds), without pausing as a
//! greenlet (`exit_gate.rs`), and its wait does not hold the gate's closing up.

use crate::exit_gate::{detach_and_go_on, greenlets_may_pause, hang_if_unwound};
use crate::sync::locked;
use crate::waits::SIGNAL_SLICE;
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::{PyTraverseError, PyVisit};
use std::sync::{Condvar, Mutex, PoisonError};
use std::thread::{self, ThreadId};

/// `Taker::greenlet` outside gevent.
const NO_GREENLET: usize = 0;

/// Who takes or holds the lock: an OS thread, and under gevent one of its greenlets, told by its
/// identity as gevent's `get_ident` tells it.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Taker {
    thread: ThreadId,
    greenlet: usize,
}

struct Holding {
    by: Taker,
    /// How many times over (more than once for a reentrant lock only).
    depth: usize,
}

#[derive(Default)]
struct State {
    holding: Option<Holding>,
    /// Takers blocked until it is let go.
    waiting: usize,
}

/// Its mutex is held for a look or a change of `State` only, never while Python code runs.
///
/// It holds module-level callables, none of which refers back to a lock: it cannot close a
/// reference cycle and needs no `__clear__`.
#[pyclass(frozen, name = "SharedLock", module = "spanbatch._core")]
pub struct PySharedLock {
    /// Its holder may take it again, as an `RLock`'s.
    reentrant: bool,
    /// `wait_turn(held_in_this_thread) -> bool`, called while the lock is held elsewhere (by
    /// another greenlet of the caller's OS thread, if `held_in_this_thread`): pauses the calling
    /// greenlet a moment and says True, or says False: the caller may block its OS thread.
    wait_turn: Py<PyAny>,
    /// Under gevent: `greenlet.getcurrent`, whose greenlet is the taker.
    caller: Option<Py<PyAny>>,
    state: Mutex<State>,
    let_go: Condvar,
}

impl PySharedLock {
    fn taker(&self, py: Python<'_>) -> PyResult<Taker> {
        let greenlet = match &self.caller {
            // A C function that runs no Python code: nothing can end the thread in it.
            Some(caller) => caller.call0(py)?.as_ptr() as usize,
            None => NO_GREENLET,
        };
        Ok(Taker {
            thread: thread::current().id(),
            greenlet,
        })
    }

    /// Takes it if `taker` may; if not, says whether it is held in the taker's OS thread.
    fn try_take(&self, taker: Taker) -> Result<(), bool> {
        let mut state = locked(&self.state);
        match &mut state.holding {
            None => {
                state.holding = Some(Holding {
                    by: taker,
                    depth: 1,
                });
                Ok(())
            }
            Some(holding) if self.reentrant && holding.by == taker => {
                holding.depth += 1;
                Ok(())
            }
            Some(holding) => Err(holding.by.thread == taker.thread),
        }
    }

    /// A greenlet's turn (see `wait_turn`): whether it paused. A thread that the closed exit gate
    /// stops does not pause (False): Python code may let go of the GIL, and take it back once the
    /// interpreter finalizes, outside `PyO3`'s detach, which hangs such a thread.
    fn paused(&self, py: Python<'_>, held_in_this_thread: bool) -> PyResult<bool> {
        if !greenlets_may_pause() {
            return Ok(false);
        }
        hang_if_unwound(|| {
            self.wait_turn
                .call1(py, (held_in_this_thread,))?
                .is_truthy(py)
        })
    }

    /// Blocks without the GIL until it is let go, or for one slice.
    fn wait_for_let_go(&self, py: Python<'_>) {
        detach_and_go_on(py, || {
            let mut state = locked(&self.state);
            state.waiting += 1;
            let (mut state, _) = self
                .let_go
                .wait_timeout_while(state, SIGNAL_SLICE, |state| state.holding.is_some())
                .unwrap_or_else(PoisonError::into_inner);
            state.waiting -= 1;
        });
    }
}

#[pymethods]
impl PySharedLock {
    #[new]
    #[pyo3(signature = (wait_turn, *, reentrant=false, caller=None))]
    fn new(wait_turn: Py<PyAny>, reentrant: bool, caller: Option<Py<PyAny>>) -> Self {
        Self {
            reentrant,
            wait_turn,
            caller,
            state: Mutex::default(),
            let_go: Condvar::new(),
        }
    }

    fn acquire(&self, py: Python<'_>) -> PyResult<()> {
        let taker = self.taker(py)?;
        loop {
            let Err(held_in_this_thread) = self.try_take(taker) else {
                return Ok(());
            };
            if !self.paused(py, held_in_this_thread)? {
                self.wait_for_let_go(py);
                py.check_signals()?;
            }
        }
    }

    /// Lets go once. As the OS's locks: a reentrant one by its holder only, a plain one by anyone.
    fn release(&self, py: Python<'_>) -> PyResult<()> {
        let taker = if self.reentrant {
            Some(self.taker(py)?)
        } else {
            None
        };
        let mut state = locked(&self.state);
        let Some(holding) = &mut state.holding else {
            return Err(PyRuntimeError::new_err(match taker {
                Some(_) => "cannot release un-acquired lock",
                None => "release unlocked lock",
            }));
        };
        if taker.is_some_and(|taker| taker != holding.by) {
            return Err(PyRuntimeError::new_err("cannot release un-acquired lock"));
        }
        holding.depth -= 1;
        if holding.depth == 0 {
            state.holding = None;
            if state.waiting > 0 {
                self.let_go.notify_all();
            }
        }
        Ok(())
    }

    fn __enter__(&self, py: Python<'_>) -> PyResult<()> {
        self.acquire(py)
    }

    #[pyo3(signature = (*_exc))]
    fn __exit__(&self, py: Python<'_>, _exc: &Bound<'_, PyAny>) -> PyResult<()> {
        self.release(py)
    }

    fn __repr__(&self) -> String {
        let state = locked(&self.state);
        let depth = state.holding.as_ref().map_or(0, |holding| holding.depth);
        format!(
            "SharedLock(reentrant={}, gevent={}, depth={depth}, waiting={})",
            if self.reentrant { "True" } else { "False" },
            if self.caller.is_some() {
                "True"
            } else {
                "False"
            },
            state.waiting,
        )
    }

    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        visit.call(&self.wait_turn)?;
        if let Some(caller) = &self.caller {
            visit.call(caller)?;
        }
        Ok(())
    }
}
