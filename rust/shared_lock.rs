//! `SharedLock`: a lock for state shared with spanbatch's own threads (`_threads.shared_lock`),
//! whose take and let-go are each one call into native code, as the OS's own locks' are.
//!
//! `CPython` runs a signal's handler at the next of a few places in Python code (a function's
//! start, after a call, a jump). A lock written in Python had such places between the OS lock
//! taken and its `with` block begun, and between the block's end and the OS lock let go: a
//! `KeyboardInterrupt` raised there left it held for good (about 1 real SIGINT in 3 that landed
//! in a take or let-go, on 3.10 to 3.13). Here no Python code runs while this call holds the OS
//! lock: what a take calls (who the caller is, how it waits its turn) runs before it is taken,
//! and a signal's handler raising in there, or in the OS lock's own wait, leaves it untaken.

use crate::exit_gate::hang_if_unwound;
use crate::interned::interned;
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::{PyTraverseError, PyVisit};
use std::sync::atomic::{AtomicUsize, Ordering};

/// `holder` when no greenlet is noted.
const NOBODY: usize = 0;

/// The OS's lock, taken and let go in one native call each.
///
/// Its holder's notes are read and written only by a holder of the OS lock, whose other
/// greenlets do not run meanwhile: no Python code runs between the OS lock taken and the notes.
///
/// It holds the OS lock and module-level callables, none of which refers back to a lock: it
/// cannot close a reference cycle and needs no `__clear__`.
#[pyclass(frozen, name = "SharedLock", module = "spanbatch._core")]
pub struct PySharedLock {
    /// `_thread.allocate_lock()` or `_thread.RLock()`, as gevent did not patch them.
    os_lock: Py<PyAny>,
    /// `wait_turn(held_in_this_thread) -> bool`, called while the lock is held elsewhere (by
    /// another greenlet of the caller's OS thread, if `held_in_this_thread`): pauses the calling
    /// greenlet a moment and says True, or says False: the caller may block on the OS lock.
    wait_turn: Py<PyAny>,
    /// Reentrant under gevent: `greenlet.getcurrent`. The OS's `RLock` knows OS threads only;
    /// the greenlet holding it is noted beside it, told by its identity as gevent's `get_ident`
    /// tells it, and another greenlet of its thread waits for it.
    caller: Option<Py<PyAny>>,
    /// The greenlet holding it (`NOBODY`: none), and how many times over.
    holder: AtomicUsize,
    depth: AtomicUsize,
}

impl PySharedLock {
    /// Takes the OS lock: at once if it is free, else after the caller's turns (`wait_turn`),
    /// or in the OS lock's own wait, which a signal's handler interrupts on the main thread.
    fn take(&self, py: Python<'_>, held_in_this_thread: bool) -> PyResult<()> {
        let acquire = self.os_lock.bind(py).getattr(interned!(py, "acquire"))?;
        if held_in_this_thread {
            self.wait(py, true)?;
        }
        loop {
            if acquire.call1((false,))?.is_truthy()? {
                return Ok(());
            }
            if !self.wait(py, false)? {
                // A daemon thread waiting here when the interpreter finalizes is ended from in it.
                hang_if_unwound(|| acquire.call0())?;
                return Ok(());
            }
        }
    }

    fn wait(&self, py: Python<'_>, held_in_this_thread: bool) -> PyResult<bool> {
        hang_if_unwound(|| {
            self.wait_turn
                .call1(py, (held_in_this_thread,))?
                .is_truthy(py)
        })
    }

    /// The calling greenlet's identity.
    fn greenlet(py: Python<'_>, caller: &Py<PyAny>) -> PyResult<usize> {
        let current = hang_if_unwound(|| caller.call0(py))?;
        Ok(current.as_ptr() as usize)
    }

    fn let_go_of_the_os_lock(&self, py: Python<'_>) -> PyResult<()> {
        self.os_lock.call_method0(py, interned!(py, "release"))?;
        Ok(())
    }
}

#[pymethods]
impl PySharedLock {
    #[new]
    #[pyo3(signature = (os_lock, wait_turn, *, caller=None))]
    fn new(os_lock: Py<PyAny>, wait_turn: Py<PyAny>, caller: Option<Py<PyAny>>) -> Self {
        Self {
            os_lock,
            wait_turn,
            caller,
            holder: AtomicUsize::new(NOBODY),
            depth: AtomicUsize::new(0),
        }
    }

    fn acquire(&self, py: Python<'_>) -> PyResult<()> {
        let Some(caller) = &self.caller else {
            return self.take(py, false);
        };
        let me = Self::greenlet(py, caller)?;
        let mut held_in_this_thread = false;
        loop {
            self.take(py, held_in_this_thread)?;
            let holder = self.holder.load(Ordering::SeqCst);
            if holder == NOBODY || holder == me {
                self.depth.fetch_add(1, Ordering::SeqCst);
                self.holder.store(me, Ordering::SeqCst);
                return Ok(());
            }
            // Taken again by this OS thread, but another greenlet of it holds it.
            self.let_go_of_the_os_lock(py)?;
            held_in_this_thread = true;
        }
    }

    fn release(&self, py: Python<'_>) -> PyResult<()> {
        if let Some(caller) = &self.caller {
            // Checked before anything changes: the OS's RLock would let another greenlet of the
            // holder's thread go.
            if self.holder.load(Ordering::SeqCst) != Self::greenlet(py, caller)? {
                return Err(PyRuntimeError::new_err("cannot release un-acquired lock"));
            }
            if self.depth.fetch_sub(1, Ordering::SeqCst) == 1 {
                self.holder.store(NOBODY, Ordering::SeqCst);
            }
        }
        self.let_go_of_the_os_lock(py)
    }

    fn __enter__(&self, py: Python<'_>) -> PyResult<()> {
        self.acquire(py)
    }

    #[pyo3(signature = (*_exc))]
    fn __exit__(&self, py: Python<'_>, _exc: &Bound<'_, PyAny>) -> PyResult<()> {
        self.release(py)
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let os_lock = self.os_lock.bind(py).repr()?;
        Ok(match self.caller {
            Some(_) => format!(
                "SharedLock({os_lock}, greenlet_depth={})",
                self.depth.load(Ordering::SeqCst)
            ),
            None => format!("SharedLock({os_lock})"),
        })
    }

    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        visit.call(&self.os_lock)?;
        visit.call(&self.wait_turn)?;
        if let Some(caller) = &self.caller {
            visit.call(caller)?;
        }
        Ok(())
    }
}
