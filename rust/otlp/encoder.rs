//! `SpanEncoder`: `ReadableSpan`s in, a serialized `ExportTraceServiceRequest` out.
//!
//! Each span is written to protobuf bytes as it is read, while the interpreter is held;
//! joining a request's parts into one body runs detached, so other Python threads go
//! on meanwhile. With a byte limit, a request over it is cut into parts that each fit
//! (see `request::Request::split`); the sender sends each part once.

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

    /// No request it makes is larger (serialized, before compression); `None`: no limit.
    #[getter]
    fn max_request_bytes(&self) -> Option<usize> {
        self.encoder.max_request_bytes()
    }

    /// The size of the largest item left out for its size in the latest request that had any.
    #[getter]
    fn last_too_large_bytes(&self) -> u64 {
        self.encoder.last_too_large_bytes()
    }

    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        self.encoder.traverse(&visit)
    }

    fn __clear__(&self) {
        self.encoder.clear();
    }
}

/// A new `SpanEncoder` or `LogEncoder`'s base, with its byte limit.
pub(crate) fn base(max_request_bytes: Option<usize>) -> PyResult<PyClassInitializer<PyEncoder>> {
    Ok(PyClassInitializer::from(PyEncoder {
        encoder: Encoder::limited(max_request_bytes)?,
    }))
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

impl PySpanEncoder {
    fn read_spans(slf: &Bound<'_, Self>, spans: &Bound<'_, PyAny>) -> PyResult<Read> {
        let encoder = state(slf);
        encoder.read(spans, |b, span, types| add_span(encoder, b, span, types))
    }
}

#[pymethods]
impl PySpanEncoder {
    /// `max_request_bytes`: no request it makes is larger (serialized, before compression);
    /// a batch over it is cut into parts, and a span over it alone is left out.
    #[new]
    #[pyo3(signature = (max_request_bytes = None))]
    fn new(max_request_bytes: Option<usize>) -> PyResult<PyClassInitializer<Self>> {
        Ok(base(max_request_bytes)?.add_subclass(Self))
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
        Ok(Self::read_spans(slf, spans)?.to_bytes(slf.py()))
    }

    /// Reads `spans` (counting what `encode` would leave out) into a request not yet
    /// serialized, for a sender to write and send later without the GIL.
    fn read<'py>(
        slf: &Bound<'py, Self>,
        spans: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PySpanRequest>> {
        PySpanRequest::wrap(slf.py(), Self::read_spans(slf, spans)?)
    }

    /// Spans left out so far because they could not be read.
    #[getter]
    fn skipped_spans(slf: &Bound<'_, Self>) -> u64 {
        state(slf).skipped_items()
    }

    /// Spans left out so far because each alone was over `max_request_bytes`.
    #[getter]
    fn too_large_spans(slf: &Bound<'_, Self>) -> u64 {
        state(slf).too_large_items()
    }

    fn __repr__(slf: &Bound<'_, Self>) -> String {
        state(slf).describe("SpanEncoder", "spans")
    }
}

/// What `SpanRequest` and `LogRequest` share, Python side: items read into a request,
/// serialized only when sent, in one part or in several that each fit the encoder's byte
/// limit; the parts the backend accepted are remembered, so a retry sends only the others.
#[pyclass(frozen, subclass, name = "Request", module = "spanbatch._core")]
pub struct PyRequest(pub(crate) Read);

#[pymethods]
impl PyRequest {
    /// The serialized request, as its encoder's `encode` returns it.
    fn to_bytes<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        self.0.to_bytes(py)
    }

    /// The items it was read from, those left out included: what its export settles.
    fn __len__(&self) -> usize {
        self.0.taken
    }

    /// The items it was read from that are not in it: unreadable, or too large.
    #[getter]
    fn left_out(&self) -> u64 {
        self.0.left_out.total()
    }

    /// The items it was read from that each alone were over the byte limit, and are not in it.
    #[getter]
    fn too_large(&self) -> u64 {
        self.0.left_out.too_large
    }

    /// How many requests it is sent as: 1, or more when it was cut to the byte limit
    /// (0 when every item in it was too large).
    #[getter]
    fn parts(&self) -> usize {
        self.0.parts()
    }

    /// Part `index` serialized: a whole export request of its own.
    fn part_to_bytes<'py>(&self, py: Python<'py>, index: usize) -> PyResult<Bound<'py, PyBytes>> {
        let index = self.0.checked(index)?;
        let body = py.detach(|| self.0.part_body(index));
        let bytes = PyBytes::new(py, &body);
        self.0.request.done_with(body);
        Ok(bytes)
    }

    /// The items (spans or log records) in part `index`.
    fn part_items(&self, index: usize) -> PyResult<usize> {
        Ok(self.0.part_items(self.0.checked(index)?))
    }

    /// The parts the backend has not accepted yet, in order: what an export (or its retry) sends.
    fn pending_parts(&self) -> Vec<usize> {
        self.0.pending()
    }

    /// Records that the backend accepted part `index`: it is not sent again.
    fn accept(&self, index: usize) -> PyResult<()> {
        self.0.accept(self.0.checked(index)?);
        Ok(())
    }
}

impl PyRequest {
    /// The `__repr__` of a request of `items` (its class's word for them).
    pub(crate) fn describe(slf: &Bound<'_, PyAny>, items: &str) -> PyResult<String> {
        let read = &slf.cast::<Self>()?.get().0;
        Ok(format!(
            "{}({items}={}, taken={}, parts={}, pending={})",
            slf.get_type().name()?,
            read.items(),
            read.taken,
            read.parts(),
            read.pending().len()
        ))
    }
}

/// Spans read into an `ExportTraceServiceRequest`.
#[pyclass(frozen, extends = PyRequest, name = "SpanRequest", module = "spanbatch._core")]
pub struct PySpanRequest;

impl PySpanRequest {
    pub(crate) fn wrap(py: Python<'_>, read: Read) -> PyResult<Bound<'_, Self>> {
        Bound::new(
            py,
            PyClassInitializer::from(PyRequest(read)).add_subclass(Self),
        )
    }
}

#[pymethods]
impl PySpanRequest {
    fn __repr__(slf: &Bound<'_, Self>) -> PyResult<String> {
        PyRequest::describe(slf.as_any(), "spans")
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
