//! The OTLP exporters' `BatchReader`: spans or log records read into a request while their
//! batch fills.
//!
//! An item that waited in the queue for a whole batch would outlive several garbage
//! collections, and be promoted; read a chunk at a time as the worker takes them, items die
//! young. The request goes to Python as a `SpanRequest` or a `LogRequest`.

use super::builder::{Read, RequestBuilder};
use super::encoder::{PySpanEncoder, PySpanRequest};
use super::log_encoder::{PyLogEncoder, PyLogRequest};
use super::request::Request;
use super::types::Types;
use crate::reader::BatchReader;
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;

/// An encoder of one kind of item, as the reader uses it.
pub(crate) trait ItemEncoder {
    /// Reads `item` into `builder`; one that cannot be read is left out and counted.
    fn add(&self, builder: &mut RequestBuilder, item: &Bound<'_, PyAny>, types: &Types);

    /// The request `builder` holds, counted by this encoder, as the Python object exported.
    fn finish<'py>(
        &self,
        py: Python<'py>,
        builder: RequestBuilder,
    ) -> PyResult<(Bound<'py, PyAny>, u64)>;
}

fn wrapped<T: pyo3::PyClass + Into<pyo3::PyClassInitializer<T>>>(
    py: Python<'_>,
    read: Read,
    wrap: fn(Read) -> T,
) -> PyResult<(Bound<'_, PyAny>, u64)> {
    let left_out = read.left_out;
    Ok((Bound::new(py, wrap(read))?.into_any(), left_out))
}

impl ItemEncoder for PySpanEncoder {
    fn add(&self, builder: &mut RequestBuilder, item: &Bound<'_, PyAny>, types: &Types) {
        PySpanEncoder::add(self, builder, item, types);
    }

    fn finish<'py>(
        &self,
        py: Python<'py>,
        builder: RequestBuilder,
    ) -> PyResult<(Bound<'py, PyAny>, u64)> {
        wrapped(py, self.encoder.finish(builder), PySpanRequest)
    }
}

impl ItemEncoder for PyLogEncoder {
    fn add(&self, builder: &mut RequestBuilder, item: &Bound<'_, PyAny>, types: &Types) {
        PyLogEncoder::add(self, builder, item, types);
    }

    fn finish<'py>(
        &self,
        py: Python<'py>,
        builder: RequestBuilder,
    ) -> PyResult<(Bound<'py, PyAny>, u64)> {
        wrapped(py, self.encoder.finish(builder), PyLogRequest)
    }
}

pub struct RequestReader<'a> {
    encoder: &'a dyn ItemEncoder,
    types: &'a Types,
    builder: RequestBuilder,
}

impl<'a> RequestReader<'a> {
    /// A reader for `encoder`: a `SpanEncoder` or a `LogEncoder`.
    pub fn new(py: Python<'a>, encoder: &'a Bound<'_, PyAny>) -> PyResult<Self> {
        let encoder: &'a dyn ItemEncoder = if let Ok(spans) = encoder.cast::<PySpanEncoder>() {
            spans.get()
        } else if let Ok(logs) = encoder.cast::<PyLogEncoder>() {
            logs.get()
        } else {
            return Err(PyTypeError::new_err(
                "expected a SpanEncoder or a LogEncoder",
            ));
        };
        Ok(Self {
            encoder,
            types: Types::get(py)?,
            builder: RequestBuilder::default(),
        })
    }
}

impl BatchReader for RequestReader<'_> {
    fn read(&mut self, py: Python<'_>, items: Vec<Py<PyAny>>) {
        for item in items {
            self.encoder
                .add(&mut self.builder, item.bind(py), self.types);
        }
    }

    fn finish<'py>(&mut self, py: Python<'py>) -> PyResult<(Bound<'py, PyAny>, u64)> {
        self.encoder.finish(py, std::mem::take(&mut self.builder))
    }
}

/// A `SpanRequest` or a `LogRequest`, as a sender takes them back from Python.
#[derive(FromPyObject)]
pub enum AnyRequest {
    Spans(Py<PySpanRequest>),
    Logs(Py<PyLogRequest>),
}

impl AnyRequest {
    pub fn request(&self) -> &Request {
        match self {
            Self::Spans(spans) => &spans.get().0.request,
            Self::Logs(logs) => &logs.get().0.request,
        }
    }
}
