//! `RoomWait`: an item a full queue refused under the `block` policy, handed back to a caller that
//! waits for room itself (`Wait::ByCaller`): a greenlet on 3.11+, which pauses from Python code
//! between tries (`_room.py`) rather than from inside the push.
//!
//! The item is counted as enqueued from the first try, as one waiting in the push is: it shows as
//! `queued` until it settles, queued or dropped, once. A wait let go unsettled (its caller
//! interrupted before it could settle it) is given up as it goes. Until then its producer counts
//! among those waiting for room (`Room::claim`), which an export thread's own items leave to them.

use crate::batching::millis;
use crate::core::{PyBatchCore, Refused, Settled, Wait};
use pyo3::prelude::*;
use pyo3::{PyTraverseError, PyVisit};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

#[pyclass(frozen, name = "RoomWait", module = "spanbatch._core")]
pub struct PyRoomWait {
    core: Py<PyBatchCore>,
    item: Py<PyAny>,
    seq: u64,
    settled: AtomicBool,
    /// Whether this wait still counts among the core's producers waiting for room.
    claimed: AtomicBool,
}

impl PyRoomWait {
    /// The wait for `refused`, which `lane` (or its successor, in a forked child) handed back.
    pub(crate) fn new(py: Python<'_>, lane: &Py<PyBatchCore>, refused: Refused) -> Self {
        let core = refused.by.unwrap_or_else(|| lane.clone_ref(py));
        core.get().room.claim();
        Self {
            core,
            item: refused.item,
            seq: refused.seq,
            settled: AtomicBool::new(false),
            claimed: AtomicBool::new(true),
        }
    }

    /// No longer counted among the producers waiting for room, once.
    fn unclaim(&self) {
        if self.claimed.swap(false, Ordering::SeqCst) {
            self.core.get().room.unclaim();
        }
    }

    /// Counts how the wait ended, unless it already settled.
    fn settle(&self, py: Python<'_>, settled: Settled) -> PyResult<()> {
        self.unclaim();
        if self.settled.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        // It waited for room already: a forked child's successor that takes it too never waits.
        let core = self.core.get();
        core.settle(py, self.item.bind(py), settled, self.seq, Wait::Never)
            .map(drop)
    }

    /// One more try, then given up: what a lane gets once an interrupt ended the push's waiting.
    pub(crate) fn last_try(&self, py: Python<'_>) -> PyResult<()> {
        if !self.try_push(py)? {
            self.give_up(py)?;
        }
        Ok(())
    }
}

#[pymethods]
impl PyRoomWait {
    /// One try, without waiting: True once settled (queued, or dropped as `shutdown` if the lane
    /// stopped meanwhile), False while the queue is still full.
    fn try_push(&self, py: Python<'_>) -> PyResult<bool> {
        if self.settled.load(Ordering::SeqCst) {
            return Ok(true);
        }
        let core = self.core.get();
        let settled = if core.stopping() {
            Settled::Shutdown
        } else if core.push_attached(self.item.clone_ref(py)).is_ok() {
            Settled::Queued
        } else {
            return Ok(false);
        };
        self.settle(py, settled)?;
        Ok(true)
    }

    /// Waits in the push's own way (detached, or pausing from native code) up to `timeout_millis`,
    /// then settles: without room, dropped (`queue_full`). Raises what interrupted it (Ctrl-C),
    /// the item dropped (`queue_full`).
    fn wait(&self, py: Python<'_>, timeout_millis: f64) -> PyResult<()> {
        if self.settled.load(Ordering::SeqCst) {
            return Ok(());
        }
        let deadline = Instant::now() + millis(timeout_millis);
        let core = self.core.get();
        // The push's own wait counts it from here (no other thread pushes meanwhile: the GIL is held).
        self.unclaim();
        let settled = core.push_blocking(py, self.item.clone_ref(py), deadline);
        self.settle(py, settled)
    }

    /// Gives up the wait: the item is dropped (`queue_full`), as a wait that timed out is.
    fn give_up(&self, py: Python<'_>) -> PyResult<()> {
        self.settle(py, Settled::Full)
    }

    /// How long the lane's producers wait for room.
    #[getter]
    fn block_timeout_millis(&self) -> f64 {
        self.core.get().block_timeout.as_secs_f64() * 1000.0
    }

    fn __repr__(&self) -> String {
        let settled = self.settled.load(Ordering::SeqCst);
        format!(
            "RoomWait(settled={})",
            if settled { "True" } else { "False" }
        )
    }

    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        visit.call(&self.core)?;
        visit.call(&self.item)
    }
}

impl Drop for PyRoomWait {
    fn drop(&mut self) {
        self.unclaim();
        // Let go unsettled: the item never got room (see the module's comment).
        if !self.settled.swap(true, Ordering::SeqCst) {
            self.core.get().count_overflow();
        }
    }
}
