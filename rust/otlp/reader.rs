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
use pyo3::{PyTraverseError, PyVisit};

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
    ) -> PyResult<()> {
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

/// Reads items into a request with the encoder a worker gave it (`use_encoder`).
#[derive(Default)]
pub struct RequestReader {
    encoder: Option<(Py<PyEncoder>, Items)>,
    builder: RequestBuilder,
}

impl RequestReader {
    /// Reads with `encoder` (a `SpanEncoder` or a `LogEncoder`) from the next batch on: the
    /// open one, if any, is finished with the encoder that read it. Returns whether it reads spans.
    pub fn use_encoder(&mut self, encoder: &Bound<'_, PyAny>, open: bool) -> PyResult<bool> {
        let items = if encoder.is_instance_of::<PySpanEncoder>() {
            Items::Spans
        } else if encoder.is_instance_of::<PyLogEncoder>() {
            Items::Logs
        } else {
            return Err(PyTypeError::new_err(
                "expected a SpanEncoder or a LogEncoder",
            ));
        };
        Types::get(encoder.py())?; // once, so that reading never meets the error
        let same = self
            .encoder
            .as_ref()
            .is_some_and(|(current, _)| current.as_ptr() == encoder.as_ptr());
        if !same && !open {
            self.encoder = Some((encoder.cast::<PyEncoder>()?.clone().unbind(), items));
        }
        Ok(matches!(self.encoder, Some((_, Items::Spans))))
    }

    pub fn traverse(&self, visit: &PyVisit<'_>) -> Result<(), PyTraverseError> {
        match &self.encoder {
            Some((encoder, _)) => visit.call(encoder),
            None => Ok(()),
        }
    }
}

impl BatchReader for RequestReader {
    fn read(&mut self, py: Python<'_>, items: Vec<Py<PyAny>>) -> PyResult<()> {
        // An encoder is given, and the types read, before a worker takes any item (`use_encoder`).
        let (Some((encoder, kind)), Ok(types)) = (&self.encoder, Types::get(py)) else {
            return Ok(());
        };
        let encoder = &encoder.get().encoder;
        // Every item taken is read or counted: an interruption is raised after the rest.
        let mut interrupted = Ok(());
        for item in items {
            let added = kind.add(encoder, &mut self.builder, item.bind(py), types);
            interrupted = interrupted.and(added);
        }
        interrupted
    }

    fn bytes(&self) -> usize {
        self.builder.bytes()
    }

    fn discard(&mut self) -> LeftOut {
        let builder = std::mem::take(&mut self.builder);
        // Needs no Python: the thread that lets go of an abandoned batch may be detached. There,
        // the request's references to its resources and scopes (a few) are leaked, not freed (no
        // reference pool: see .cargo/config.toml).
        self.encoder
            .as_ref()
            .map_or_else(LeftOut::default, |(encoder, _)| {
                encoder.get().encoder.finish(builder).left_out
            })
    }

    fn finish<'py>(&mut self, py: Python<'py>) -> PyResult<(Bound<'py, PyAny>, LeftOut)> {
        let builder = std::mem::take(&mut self.builder);
        let Some((encoder, kind)) = &self.encoder else {
            return Err(PyTypeError::new_err(
                "no encoder to finish the request with",
            ));
        };
        let read = encoder.get().encoder.finish(builder);
        let left_out = read.left_out;
        Ok((kind.wrap(py, read)?, left_out))
    }
}
