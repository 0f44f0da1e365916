//! `FanOut`: one `on_end` for several lanes, in a single call into Rust.

use crate::core::{PyBatchCore, Refused, Wait};
use crate::room_wait::PyRoomWait;
use crate::sampled::is_sampled;
use pyo3::prelude::*;
use pyo3::{PyTraverseError, PyVisit};

/// Pushes one item to every lane with `push(core, wait)`, each lane as `wait` says, then raises
/// the first error (a Ctrl-C that came while one lane read or waited): the lanes after it still
/// get the item, and count it, but without waiting for room: the interrupt must reach the
/// application now, not after each further lane's block timeout. Returns the waits for room of
/// the lanes that handed the item back (`Wait::ByCaller`); on an error each gets one more try
/// instead, as the lanes after it.
pub(crate) fn to_every_lane(
    py: Python<'_>,
    cores: &[Py<PyBatchCore>],
    wait: Wait,
    mut push: impl FnMut(&PyBatchCore, Wait) -> PyResult<Option<Refused>>,
) -> PyResult<Vec<PyRoomWait>> {
    let mut first_error = Ok(());
    let mut waits = Vec::new();
    for core in cores {
        match push(core.get(), wait.only_if(first_error.is_ok())) {
            Ok(Some(refused)) => waits.push(PyRoomWait::new(py, core, refused)),
            Ok(None) => {}
            Err(error) => first_error = first_error.and(Err(error)),
        }
    }
    if let Err(error) = first_error {
        for wait in &waits {
            // The first error is the one raised; a wait left unsettled by another is given up as it goes.
            let _ = wait.last_try(py);
        }
        return Err(error);
    }
    Ok(waits)
}

/// Checks a span once and pushes it to every lane's queue; each lane drops only on its own.
///
/// It holds only cores, which never refer back to a `FanOut`, so it cannot close a
/// reference cycle and needs no `__clear__`.
#[pyclass(frozen, name = "FanOut", module = "spanbatch._core")]
pub struct PyFanOut {
    cores: Vec<Py<PyBatchCore>>,
}

#[pymethods]
impl PyFanOut {
    #[new]
    fn new(cores: Vec<Py<PyBatchCore>>) -> Self {
        Self { cores }
    }

    fn on_end(&self, py: Python<'_>, span: &Bound<'_, PyAny>) -> PyResult<()> {
        if !is_sampled(span)? {
            return Ok(());
        }
        to_every_lane(py, &self.cores, Wait::Here, |core, wait| {
            core.push_waiting(py, span, wait)
        })
        .map(drop)
    }

    /// `on_end` for a caller that waits for room itself: the waits of the lanes whose full queue
    /// refused the span under `block` (see `RoomWait`).
    fn on_end_handing_back(
        &self,
        py: Python<'_>,
        span: &Bound<'_, PyAny>,
    ) -> PyResult<Vec<PyRoomWait>> {
        if !is_sampled(span)? {
            return Ok(Vec::new());
        }
        to_every_lane(py, &self.cores, Wait::ByCaller, |core, wait| {
            core.push_waiting(py, span, wait)
        })
    }

    /// Pushes a log record to every lane; each drops it only if emitted on its own export thread.
    /// `wait=False`: no lane waits for room (see `BatchCore.on_emit`).
    #[pyo3(signature = (record, wait = true))]
    fn on_emit(&self, py: Python<'_>, record: &Bound<'_, PyAny>, wait: bool) -> PyResult<()> {
        let wait = Wait::Here.only_if(wait);
        to_every_lane(py, &self.cores, wait, |core, wait| {
            core.on_emit(py, record, wait)
        })
        .map(drop)
    }

    /// `on_emit` for a caller that waits for room itself (see `on_end_handing_back`).
    #[pyo3(signature = (record, wait = true))]
    fn on_emit_handing_back(
        &self,
        py: Python<'_>,
        record: &Bound<'_, PyAny>,
        wait: bool,
    ) -> PyResult<Vec<PyRoomWait>> {
        let wait = Wait::ByCaller.only_if(wait);
        to_every_lane(py, &self.cores, wait, |core, wait| {
            core.on_emit(py, record, wait)
        })
    }

    fn __repr__(&self) -> String {
        format!("FanOut(lanes={})", self.cores.len())
    }

    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        for core in &self.cores {
            visit.call(core)?;
        }
        Ok(())
    }
}
