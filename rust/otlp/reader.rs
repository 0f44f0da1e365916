//! The OTLP exporters' `BatchReader`: spans read into a request while their batch fills.
//!
//! A span that waited in the queue for a whole batch would outlive several garbage
//! collections, and be promoted; read a chunk at a time as the worker takes them, spans die
//! young. The request goes to Python as a `SpanRequest`.

use super::encoder::{PySpanEncoder, RequestBuilder};
use super::types::Types;
use crate::counters::LeftOut;
use crate::reader::BatchReader;
use pyo3::prelude::*;

pub struct SpanReader<'a> {
    encoder: &'a PySpanEncoder,
    types: &'a Types,
    builder: RequestBuilder,
}

impl<'a> SpanReader<'a> {
    pub fn new(py: Python<'a>, encoder: &'a PySpanEncoder) -> PyResult<Self> {
        Ok(Self {
            encoder,
            types: Types::get(py)?,
            builder: RequestBuilder::default(),
        })
    }
}

impl BatchReader for SpanReader<'_> {
    fn read(&mut self, py: Python<'_>, spans: Vec<Py<PyAny>>) {
        for span in spans {
            self.encoder
                .add(&mut self.builder, span.bind(py), self.types);
        }
    }

    fn finish<'py>(&mut self, py: Python<'py>) -> PyResult<(Bound<'py, PyAny>, LeftOut)> {
        let request = self.encoder.finish(std::mem::take(&mut self.builder));
        let left_out = request.left_out;
        Ok((Bound::new(py, request)?.into_any(), left_out))
    }
}
