//! The OTLP exporters' `BatchReader`: spans or log records read into a request while their
//! batch fills.
//!
//! An item that waited in the queue for a whole batch would outlive several garbage
//! collections, and be promoted; read a chunk at a time as the worker takes them, items die
//! young. The request goes to Python as a `SpanRequest` or a `LogRequest`.

use super::builder::{Encoder, Read, RequestBuilder};
use super::encoder::{add_span, PyEncoder, PySpanEncoder, PySpanRequest};
use super::log_encoder::{add_log, PyLogEncoder, PyLogRequest};
use super::types::Types;
use crate::counters::LeftOut;
use crate::reader::BatchReader;
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;

/// What a reader reads: which items, and the request type they go out in.
#[derive(Clone, Copy)]
enum Items {
    Spans,
    Logs,
}

impl Items {
    fn add(
        self,
        encoder: &Encoder,
        builder: &mut RequestBuilder,
        item: &Bound<'_, PyAny>,
        types: &Types,
    ) {
        match self {
            Self::Spans => add_span(encoder, builder, item, types),
            Self::Logs => add_log(encoder, builder, item, types),
        }
    }

    /// The request `read`, as the Python object exported.
    fn wrap(self, py: Python<'_>, read: Read) -> PyResult<Bound<'_, PyAny>> {
        Ok(match self {
            Self::Spans => PySpanRequest::wrap(py, read)?.into_any(),
            Self::Logs => PyLogRequest::wrap(py, read)?.into_any(),
        })
    }
}

pub struct RequestReader<'a> {
    encoder: &'a Encoder,
    items: Items,
    types: &'a Types,
    builder: RequestBuilder,
}

impl<'a> RequestReader<'a> {
    /// A reader for `encoder`: a `SpanEncoder` or a `LogEncoder`.
    pub fn new(py: Python<'a>, encoder: &'a Bound<'_, PyAny>) -> PyResult<Self> {
        let items = if encoder.is_instance_of::<PySpanEncoder>() {
            Items::Spans
        } else if encoder.is_instance_of::<PyLogEncoder>() {
            Items::Logs
        } else {
            return Err(PyTypeError::new_err(
                "expected a SpanEncoder or a LogEncoder",
            ));
        };
        Ok(Self {
            encoder: &encoder.cast::<PyEncoder>()?.get().encoder,
            items,
            types: Types::get(py)?,
            builder: RequestBuilder::default(),
        })
    }
}

impl BatchReader for RequestReader<'_> {
    fn read(&mut self, py: Python<'_>, items: Vec<Py<PyAny>>) {
        for item in items {
            let (encoder, types) = (self.encoder, self.types);
            self.items
                .add(encoder, &mut self.builder, item.bind(py), types);
        }
    }

    fn bytes(&self) -> usize {
        self.builder.bytes()
    }

    fn finish<'py>(&mut self, py: Python<'py>) -> PyResult<(Bound<'py, PyAny>, LeftOut)> {
        let read = self.encoder.finish(std::mem::take(&mut self.builder));
        let left_out = read.left_out;
        Ok((self.items.wrap(py, read)?, left_out))
    }
}
