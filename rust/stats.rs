//! The counters as Python reads them: `Stats`, one snapshot of a lane, and `DropReason`, one
//! row of the drop reason table (`counters.rs`), which the native module lists as `DROP_REASONS`.

use crate::counters::Snapshot;
use crate::drop_reasons::{About, DropReason, Stage, REASONS};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};

/// A consistent reading of one lane's counters; `spanbatch.SpanStats` is built from it.
#[pyclass(frozen, name = "Stats", module = "spanbatch._core")]
pub struct PyStats {
    #[pyo3(get)]
    enqueued: u64,
    #[pyo3(get)]
    exported: u64,
    #[pyo3(get)]
    spilled: u64,
    #[pyo3(get)]
    queued: u64,
    #[pyo3(get)]
    in_flight: u64,
    #[pyo3(get)]
    batches: u64,
    #[pyo3(get)]
    export_errors: u64,
    #[pyo3(get)]
    retried: u64,
    /// Of the `shutdown` drops, those taken off the queue first (see `Snapshot::abandoned`).
    #[pyo3(get)]
    abandoned: u64,
    dropped: [u64; REASONS],
}

impl From<Snapshot> for PyStats {
    fn from(snapshot: Snapshot) -> Self {
        Self {
            enqueued: snapshot.enqueued,
            exported: snapshot.exported,
            spilled: snapshot.spilled,
            queued: snapshot.queued,
            in_flight: snapshot.in_flight,
            batches: snapshot.batches,
            export_errors: snapshot.export_errors,
            retried: snapshot.retried,
            abandoned: snapshot.abandoned,
            dropped: snapshot.dropped,
        }
    }
}

#[pymethods]
impl PyStats {
    /// Spans dropped per reason, every reason listed, in the order of `DROP_REASONS`.
    #[getter]
    fn dropped<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let dropped = PyDict::new(py);
        for reason in DropReason::ALL {
            dropped.set_item(reason.name(), self.dropped[reason as usize])?;
        }
        Ok(dropped)
    }

    #[getter]
    fn dropped_total(&self) -> u64 {
        self.dropped.iter().sum()
    }

    fn __repr__(&self) -> String {
        format!(
            "Stats(enqueued={}, exported={}, spilled={}, queued={}, in_flight={}, batches={}, export_errors={}, \
             dropped_total={}, retried={})",
            self.enqueued,
            self.exported,
            self.spilled,
            self.queued,
            self.in_flight,
            self.batches,
            self.export_errors,
            self.dropped_total(),
            self.retried,
        )
    }
}

/// One drop reason: its key in `dropped`, the words of the drop warning, and how the stock
/// processor's metrics count a span dropped for it.
#[pyclass(frozen, name = "DropReason", module = "spanbatch._core")]
pub struct PyDropReason(DropReason);

#[pymethods]
impl PyDropReason {
    #[getter]
    fn name(&self) -> &'static str {
        self.0.about().name
    }

    #[getter]
    fn description(&self) -> &'static str {
        self.0.about().description
    }

    /// The `error.type` of a span dropped straight out of the queue; None for one dropped when
    /// its export ended, which the stock processor counts as processed without an error.
    #[getter]
    fn error_type(&self) -> Option<&'static str> {
        match self.0.about().stage {
            Stage::Queue { error_type } => Some(error_type),
            Stage::Export => None,
        }
    }

    fn __repr__(&self) -> String {
        let About {
            name, description, ..
        } = self.0.about();
        let error_type = self
            .error_type()
            .map_or_else(|| "None".to_owned(), |t| format!("'{t}'"));
        format!("DropReason(name='{name}', description='{description}', error_type={error_type})")
    }
}

/// Every drop reason, in the order `Stats.dropped` lists them.
pub fn drop_reasons(py: Python<'_>) -> PyResult<Bound<'_, PyTuple>> {
    let reasons = DropReason::ALL
        .into_iter()
        .map(|reason| Py::new(py, PyDropReason(reason)))
        .collect::<PyResult<Vec<_>>>()?;
    PyTuple::new(py, reasons)
}
