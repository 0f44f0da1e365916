//! `SpanEncoder`: `ReadableSpan`s in, a serialized `ExportTraceServiceRequest` out.
//!
//! Each span is written to protobuf bytes as it is read, while the interpreter is held;
//! joining a request's parts into one body runs detached, so other Python threads go
//! on meanwhile.

use super::builder::{Encoder, Read, RequestBuilder};
use super::compress::Codec;
use super::spans::SpanFields;
use super::types::Types;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use pyo3::PyClass;
use pyo3::{PyTraverseError, PyVisit};

/// What `SpanEncoder` and `LogEncoder` share, Python side: the encoder state and its counters.
#[pyclass(frozen, subclass, name = "Encoder", module = "spanbatch._core")]
#[derive(Default)]
pub struct PyEncoder {
    pub(crate) encoder: Encoder,
}

#[pymethods]
impl PyEncoder {
    /// Attribute values left out so far because OTLP cannot carry them.
    #[getter]
    fn skipped_values(&self) -> u64 {
        self.encoder.skipped_values()
    }

    /// Why the most recent item left out could not be read.
    #[getter]
    fn last_skip_reason(&self) -> Option<String> {
        self.encoder.last_skip_reason()
    }

    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        self.encoder.traverse(&visit)
    }

    fn __clear__(&self) {
        self.encoder.clear();
    }
}

/// The encoder state of a `SpanEncoder` or `LogEncoder`.
pub(crate) fn state<'a, T: PyClass<BaseType = PyEncoder>>(
    encoder: &'a Bound<'_, T>,
) -> &'a Encoder {
    &encoder.as_super().get().encoder
}

/// Reads `span` into `builder`; a span that cannot be read is left out and counted.
pub(crate) fn add_span(
    encoder: &Encoder,
    builder: &mut RequestBuilder,
    span: &Bound<'_, PyAny>,
    types: &Types,
) {
    encoder.add(builder, types, |scratch, pass| {
        let span = SpanFields::of(span, types)?;
        let placed = (span.resource()?, span.scope()?);
        span.write(scratch, types, pass)?;
        Ok(placed)
    });
}

#[pyclass(frozen, extends = PyEncoder, name = "SpanEncoder", module = "spanbatch._core")]
pub struct PySpanEncoder;

#[pymethods]
impl PySpanEncoder {
    #[new]
    fn new() -> PyClassInitializer<Self> {
        PyClassInitializer::from(PyEncoder::default()).add_subclass(Self)
    }

    /// Serializes `spans` as the stock `encode_spans(spans).SerializeToString()` would.
    ///
    /// Attribute values OTLP cannot carry are left out (as stock does) and counted in
    /// `skipped_values`; a span that cannot be read at all is left out and counted in
    /// `skipped_spans`, where the stock encoder would fail the whole batch.
    fn encode<'py>(
        slf: &Bound<'py, Self>,
        spans: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        Ok(Self::read(slf, spans)?.0.to_bytes(slf.py()))
    }

    /// Reads `spans` (counting what `encode` would leave out) into a request not yet
    /// serialized, for a sender to write and send later without the GIL.
    fn read(slf: &Bound<'_, Self>, spans: &Bound<'_, PyAny>) -> PyResult<PySpanRequest> {
        let encoder = state(slf);
        let read = encoder.read(spans, |b, span, types| add_span(encoder, b, span, types))?;
        Ok(PySpanRequest(read))
    }

    /// Spans left out so far because they could not be read.
    #[getter]
    fn skipped_spans(slf: &Bound<'_, Self>) -> u64 {
        state(slf).skipped_items()
    }

    fn __repr__(slf: &Bound<'_, Self>) -> String {
        state(slf).describe("SpanEncoder", "skipped_spans")
    }
}

/// Spans read into an `ExportTraceServiceRequest`, serialized only when sent.
#[pyclass(frozen, name = "SpanRequest", module = "spanbatch._core")]
pub struct PySpanRequest(pub(crate) Read);

#[pymethods]
impl PySpanRequest {
    /// The serialized request, as `SpanEncoder.encode` returns it.
    fn to_bytes<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        self.0.to_bytes(py)
    }

    /// The spans it was read from, those left out included: what its export settles.
    fn __len__(&self) -> usize {
        self.0.taken
    }

    /// The spans it was read from that could not be read, and are not in it.
    #[getter]
    fn left_out(&self) -> u64 {
        self.0.left_out
    }

    fn __repr__(&self) -> String {
        let spans = self.0.request.span_count();
        format!("SpanRequest(spans={spans}, taken={})", self.0.taken)
    }
}

/// Compresses an OTLP/HTTP request body, detached: `encoding` is `"gzip"` or `"deflate"`.
#[pyfunction]
pub fn compress<'py>(
    py: Python<'py>,
    data: &[u8],
    encoding: &str,
) -> PyResult<Bound<'py, PyBytes>> {
    let codec = Codec::parse(encoding).ok_or_else(|| {
        PyValueError::new_err(format!(
            "unknown content encoding {encoding:?}; expected 'gzip', 'deflate' or 'none'."
        ))
    })?;
    let packed = py.detach(|| codec.apply(data));
    Ok(PyBytes::new(py, &packed))
}
