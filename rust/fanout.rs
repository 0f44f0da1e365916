//! `FanOut`: one `on_end` for several lanes, in a single call into Rust.

use crate::core::PyBatchCore;
use crate::sampled::is_sampled;
use pyo3::prelude::*;
use pyo3::{PyTraverseError, PyVisit};

/// Pushes one item to every lane with `push(core, may_wait)`, then raises the first error (a Ctrl-C
/// that came while one lane read or waited): the lanes after it still get the item, and count it,
/// but without waiting for room (`may_wait` false): the interrupt must reach the application now,
/// not after each further lane's block timeout.
pub(crate) fn to_every_lane(
    cores: &[Py<PyBatchCore>],
    mut push: impl FnMut(&PyBatchCore, bool) -> PyResult<()>,
) -> PyResult<()> {
    let mut first_error = Ok(());
    for core in cores {
        let pushed = push(core.get(), first_error.is_ok());
        first_error = first_error.and(pushed);
    }
    first_error
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
        to_every_lane(&self.cores, |core, may_wait| {
            core.push_waiting(py, span, may_wait)
        })
    }

    /// Pushes a log record to every lane; each drops it only if emitted on its own export thread.
    /// `wait=False`: no lane waits for room (see `BatchCore.on_emit`).
    #[pyo3(signature = (record, wait = true))]
    fn on_emit(&self, py: Python<'_>, record: &Bound<'_, PyAny>, wait: bool) -> PyResult<()> {
        to_every_lane(&self.cores, |core, may_wait| {
            core.on_emit(py, record, wait && may_wait)
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
