//! What the worker reads the spans it takes into: the narrow interface between the lane core
//! and what a batch becomes.
//!
//! The core takes spans off the queue (a chunk at a time while a batch fills, when it reads
//! ahead) and gives each chunk to a reader; when the batch is complete the reader makes the
//! object Python exports. A plain exporter gets the spans as a list (`SpanList`); spanbatch's
//! OTLP exporters get them read into a request as they come (`otlp::reader`).

use crate::counters::LeftOut;
use pyo3::prelude::*;
use pyo3::types::PyList;

pub trait BatchReader {
    /// Reads spans just taken into the batch being filled.
    fn read(&mut self, py: Python<'_>, spans: Vec<Py<PyAny>>);

    /// Completes the batch: the object its export settles, and how many of its spans the
    /// reader left out, by reason. The reader starts the next batch empty.
    fn finish<'py>(&mut self, py: Python<'py>) -> PyResult<(Bound<'py, PyAny>, LeftOut)>;

    /// The bytes of the batch being filled, as it will be sent; 0 when not known (a list).
    fn bytes(&self) -> usize {
        0
    }
}

/// The spans of a batch as the list an exporter's `export` gets.
#[derive(Default)]
pub struct SpanList(Vec<Py<PyAny>>);

impl BatchReader for SpanList {
    fn read(&mut self, _py: Python<'_>, mut spans: Vec<Py<PyAny>>) {
        if self.0.is_empty() {
            self.0 = spans;
        } else {
            self.0.append(&mut spans);
        }
    }

    fn finish<'py>(&mut self, py: Python<'py>) -> PyResult<(Bound<'py, PyAny>, LeftOut)> {
        let list = PyList::new(py, std::mem::take(&mut self.0))?;
        Ok((list.into_any(), LeftOut::default()))
    }
}
