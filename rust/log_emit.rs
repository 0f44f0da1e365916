//! `LogEmit`: a log processor's `on_emit` in one call into Rust. The record is made readable as the
//! stock processor makes it (`ReadableLogRecord` around a shallow copy of the API record, its
//! context emptied), then pushed to every lane.
//!
//! `copy.copy` of a record whose class adds no copy hooks is `object.__new__(cls)` with the
//! instance `__dict__` copied in; a frozen dataclass without `__post_init__` is its fields in its
//! `__dict__`. Both done here directly cost a fraction of the Python path. Whether a record class
//! copies plainly is the `plain` callable's verdict on the class, asked once per class; every
//! other record takes `stock`, the stock processor's own steps.

use crate::core::{PyBatchCore, Wait};
use crate::fanout::to_every_lane;
use crate::interned::interned;
use crate::room_wait::PyRoomWait;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyType};
use pyo3::{PyTraverseError, PyVisit};

/// `Bound<'py, PyAny>` of `obj.__dict__`, the instance's own attributes.
fn fields<'py>(obj: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyDict>> {
    Ok(obj
        .getattr(interned!(obj.py(), "__dict__"))?
        .cast_into::<PyDict>()?)
}

/// It holds cores and module-level callables and classes, none of which refers back to a
/// `LogEmit`: it cannot close a reference cycle and needs no `__clear__`.
#[pyclass(frozen, name = "LogEmit", module = "spanbatch._core")]
pub struct PyLogEmit {
    cores: Vec<Py<PyBatchCore>>,
    /// The SDK's `ReadableLogRecord`, a frozen dataclass that builds plainly.
    readable: Py<PyType>,
    /// `opentelemetry.context.Context`: each copy gets a new empty one, as stock's does.
    context: Py<PyAny>,
    /// `object.__new__`: what `copy.copy` and a dataclass constructor allocate with.
    new: Py<PyAny>,
    /// `plain(cls) -> bool`: whether `copy.copy` of a `cls` is a new object with its `__dict__` copied.
    plain: Py<PyAny>,
    /// `stock(record) -> ReadableLogRecord`: the stock processor's steps, for every other record.
    stock: Py<PyAny>,
    /// `plain`'s verdict by record class.
    verdicts: Py<PyDict>,
}

impl PyLogEmit {
    fn copies_plainly(&self, py: Python<'_>, cls: &Bound<'_, PyType>) -> PyResult<bool> {
        let verdicts = self.verdicts.bind(py);
        if let Some(verdict) = verdicts.get_item(cls)? {
            return verdict.is_truthy();
        }
        let verdict = self.plain.bind(py).call1((cls,))?.is_truthy()?;
        verdicts.set_item(cls, verdict)?;
        Ok(verdict)
    }

    /// What the stock processor queues for `record` (a `ReadWriteLogRecord`).
    fn readable<'py>(&self, record: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        let py = record.py();
        let api = record.getattr(interned!(py, "log_record"))?;
        let resource = record.getattr(interned!(py, "resource"))?;
        // No resource: stock makes an empty one per record (rare; the SDK's logger always sets it).
        if resource.is_none() || !self.copies_plainly(py, &api.get_type())? {
            return self.stock.bind(py).call1((record,));
        }
        let new = self.new.bind(py);
        let copy = new.call1((api.get_type(),))?;
        let copied = fields(&copy)?;
        copied.update(fields(&api)?.as_mapping())?;
        copied.set_item(interned!(py, "context"), self.context.bind(py).call0()?)?;
        let readable = new.call1((self.readable.bind(py),))?;
        let set = fields(&readable)?;
        set.set_item(interned!(py, "log_record"), copy)?;
        set.set_item(interned!(py, "resource"), resource)?;
        set.set_item(
            interned!(py, "instrumentation_scope"),
            record.getattr(interned!(py, "instrumentation_scope"))?,
        )?;
        set.set_item(
            interned!(py, "limits"),
            record.getattr(interned!(py, "limits"))?,
        )?;
        Ok(readable)
    }
}

impl PyLogEmit {
    fn emit(
        &self,
        py: Python<'_>,
        record: &Bound<'_, PyAny>,
        wait: Wait,
    ) -> PyResult<Vec<PyRoomWait>> {
        // Past the exit gate, with every lane shut down before it closed, the record is refused
        // as shutdown refuses it, unread: making it readable may run Python code.
        let stopped = || {
            self.cores
                .iter()
                .all(|core| core.get().handoff.stopped_before_exit())
        };
        let Some(readable) = crate::exit_gate::calling_python(stopped, || self.readable(record))
        else {
            return to_every_lane(py, &self.cores, Wait::Never, |core, _| {
                core.refuse_at_shutdown();
                Ok(None)
            });
        };
        let readable = readable?;
        to_every_lane(py, &self.cores, wait, |core, wait| {
            core.on_emit(py, &readable, wait)
        })
    }
}

#[pymethods]
impl PyLogEmit {
    #[new]
    fn new(
        cores: Vec<Py<PyBatchCore>>,
        readable: Py<PyType>,
        context: Py<PyAny>,
        plain: Py<PyAny>,
        stock: Py<PyAny>,
        py: Python<'_>,
    ) -> PyResult<Self> {
        let new = py
            .get_type::<pyo3::types::PyAny>()
            .getattr(interned!(py, "__new__"))?
            .unbind();
        Ok(Self {
            cores,
            readable,
            context,
            new,
            plain,
            stock,
            verdicts: PyDict::new(py).unbind(),
        })
    }

    /// Makes `record` readable and pushes it to every lane (see `BatchCore.on_emit`).
    #[pyo3(signature = (record, wait = true))]
    fn on_emit(&self, py: Python<'_>, record: &Bound<'_, PyAny>, wait: bool) -> PyResult<()> {
        self.emit(py, record, Wait::Here.only_if(wait)).map(drop)
    }

    /// `on_emit` for a caller that waits for room itself (see `FanOut.on_end_handing_back`).
    #[pyo3(signature = (record, wait = true))]
    fn on_emit_handing_back(
        &self,
        py: Python<'_>,
        record: &Bound<'_, PyAny>,
        wait: bool,
    ) -> PyResult<Vec<PyRoomWait>> {
        self.emit(py, record, Wait::ByCaller.only_if(wait))
    }

    fn __repr__(&self) -> String {
        format!("LogEmit(lanes={})", self.cores.len())
    }

    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        for core in &self.cores {
            visit.call(core)?;
        }
        visit.call(&self.readable)?;
        visit.call(&self.context)?;
        visit.call(&self.new)?;
        visit.call(&self.plain)?;
        visit.call(&self.stock)?;
        visit.call(&self.verdicts)
    }
}
