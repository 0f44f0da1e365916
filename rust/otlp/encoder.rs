//! `SpanEncoder`: `ReadableSpan`s in, a serialized `ExportTraceServiceRequest` out.
//!
//! Each span is written to protobuf bytes as it is read, while the interpreter is held;
//! joining a request's parts into one body runs detached, so other Python threads go
//! on meanwhile.

use super::buffers::BufferPool;
use super::compress::Codec;
use super::groups::{encode_resource, encode_scope, Cache, Groups};
use super::request::{Request, ResourceSpans, ScopeSpans, Spans};
use super::spans::SpanFields;
use super::types::Types;
use super::values::ReadPass;
use crate::sync::locked;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use pyo3::{PyTraverseError, PyVisit};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

type ScopeGroups = Groups<Spans>;

#[pyclass(frozen, name = "SpanEncoder", module = "spanbatch._core")]
#[derive(Default)]
pub struct PySpanEncoder {
    resources: Cache,
    scopes: Cache,
    /// Span buffers and bodies, reused from request to request.
    buffers: Arc<BufferPool>,
    skipped_values: AtomicU64,
    skipped_spans: AtomicU64,
    /// Why the most recent span was left out, for the exporter's warning.
    last_skip_reason: Mutex<Option<String>>,
}

/// Spans read so far towards one request; the worker fills it a chunk at a time.
#[derive(Default)]
pub(crate) struct RequestBuilder {
    by_resource: Groups<ScopeGroups>,
    pass: ReadPass,
    /// Spans offered, read or left out: what the request stands for in the queue's accounting.
    taken: usize,
    /// One span's bytes, before they join their group.
    scratch: Vec<u8>,
}

impl PySpanEncoder {
    /// Reads `span` into `builder`; a span that cannot be read is left out and counted.
    pub(crate) fn add(&self, builder: &mut RequestBuilder, span: &Bound<'_, PyAny>, types: &Types) {
        builder.taken += 1;
        let RequestBuilder {
            by_resource,
            pass,
            scratch,
            ..
        } = builder;
        let placed = SpanFields::of(span, types).and_then(|span| {
            let (resource, scope) = (span.resource()?, span.scope()?);
            // Written aside first: a span left out half-way must not have given its groups
            // their place in the first-seen order, which the request's bytes follow.
            scratch.clear();
            span.write(scratch, types, pass)?;
            let made = by_resource.count();
            let scopes = by_resource.slot(Some(&resource), &self.resources, |r| {
                encode_resource(r, types, pass)
            })?;
            match scopes.slot(scope.as_ref(), &self.scopes, |s| {
                encode_scope(s, types, pass)
            }) {
                Ok(spans) => {
                    if spans.bytes.capacity() == 0 {
                        spans.bytes = self.buffers.take();
                    }
                    spans.push(scratch);
                    Ok(())
                }
                Err(error) => {
                    by_resource.forget_from(made);
                    Err(error)
                }
            }
        });
        if let Err(error) = placed {
            // The stock encoder would fail the whole batch here; we lose one span, counted.
            pass.skipped_spans += 1;
            // Rendered before locking: formatting a Python exception may run Python code.
            let reason = error.to_string();
            *locked(&self.last_skip_reason) = Some(reason);
        }
    }

    /// The request `builder` holds; what it left out is added to this encoder's counters.
    pub(crate) fn finish(&self, builder: RequestBuilder) -> PySpanRequest {
        let RequestBuilder {
            by_resource,
            pass,
            taken,
            ..
        } = builder;
        self.skipped_values
            .fetch_add(pass.skipped_values, Ordering::Relaxed);
        self.skipped_spans
            .fetch_add(pass.skipped_spans, Ordering::Relaxed);
        let resources = by_resource
            .into_parts()
            .map(|(resource, scopes)| ResourceSpans {
                resource: resource.expect("every span has a resource object"),
                scopes: scopes
                    .into_parts()
                    .map(|(scope, spans)| ScopeSpans { scope, spans })
                    .collect(),
            })
            .collect();
        PySpanRequest {
            request: Request {
                resources,
                pool: self.buffers.clone(),
            },
            taken,
            left_out: pass.skipped_spans,
        }
    }
}

#[pymethods]
impl PySpanEncoder {
    #[new]
    fn new() -> Self {
        Self::default()
    }

    /// Serializes `spans` as the stock `encode_spans(spans).SerializeToString()` would.
    ///
    /// Attribute values OTLP cannot carry are left out (as stock does) and counted in
    /// `skipped_values`; a span that cannot be read at all is left out and counted in
    /// `skipped_spans`, where the stock encoder would fail the whole batch.
    fn encode<'py>(
        &self,
        py: Python<'py>,
        spans: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        Ok(self.read(spans)?.to_bytes(py))
    }

    /// Reads `spans` (counting what `encode` would leave out) into a request not yet
    /// serialized, for a sender to write and send later without the GIL.
    fn read(&self, spans: &Bound<'_, PyAny>) -> PyResult<PySpanRequest> {
        let types = Types::get(spans.py())?;
        let mut builder = RequestBuilder::default();
        for span in spans.try_iter()? {
            self.add(&mut builder, &span?, types);
        }
        Ok(self.finish(builder))
    }

    /// Attribute values left out so far because OTLP cannot carry them.
    #[getter]
    fn skipped_values(&self) -> u64 {
        self.skipped_values.load(Ordering::Relaxed)
    }

    /// Spans left out so far because they could not be read.
    #[getter]
    fn skipped_spans(&self) -> u64 {
        self.skipped_spans.load(Ordering::Relaxed)
    }

    #[getter]
    fn last_skip_reason(&self) -> Option<String> {
        locked(&self.last_skip_reason).clone()
    }

    fn __repr__(&self) -> String {
        format!(
            "SpanEncoder(cached_resources={}, cached_scopes={}, skipped_values={}, skipped_spans={})",
            self.resources.len(),
            self.scopes.len(),
            self.skipped_values(),
            self.skipped_spans(),
        )
    }

    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        self.resources.traverse(&visit)?;
        self.scopes.traverse(&visit)
    }

    fn __clear__(&self) {
        self.resources.clear();
        self.scopes.clear();
    }
}

/// Spans read into an `ExportTraceServiceRequest`, serialized only when sent.
#[pyclass(frozen, name = "SpanRequest", module = "spanbatch._core")]
pub struct PySpanRequest {
    pub(crate) request: Request,
    /// The spans it was read from, those left out included.
    taken: usize,
    /// The spans among them that could not be read: dropped (`unencodable`) when it settles.
    pub(crate) left_out: u64,
}

#[pymethods]
impl PySpanRequest {
    /// The serialized request, as `SpanEncoder.encode` returns it.
    fn to_bytes<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        let body = py.detach(|| self.request.to_bytes());
        let bytes = PyBytes::new(py, &body);
        self.request.done_with(body);
        bytes
    }

    /// The spans it was read from, those left out included: what its export settles.
    fn __len__(&self) -> usize {
        self.taken
    }

    /// The spans it was read from that could not be read, and are not in it.
    #[getter]
    fn left_out(&self) -> u64 {
        self.left_out
    }

    fn __repr__(&self) -> String {
        let spans = self.request.span_count();
        format!("SpanRequest(spans={spans}, taken={})", self.taken)
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
