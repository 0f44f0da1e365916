//! `SpanEncoder`: ReadableSpans in, a serialized `ExportTraceServiceRequest` out.
//!
//! The interpreter is held only while spans are read into owned messages; the
//! protobuf writing runs detached, so other Python threads go on meanwhile.

use super::compress::Codec;
use super::groups::{encode_resource, encode_scope, Cache, Groups};
use super::proto;
use super::spans::read_span;
use super::types::Types;
use super::values::ReadPass;
use super::write::encode_request;
use crate::sync::locked;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use pyo3::{PyTraverseError, PyVisit};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

type ScopeGroups = Groups<proto::InstrumentationScope, Vec<proto::Span>>;

#[pyclass(frozen, name = "SpanEncoder", module = "spanbatch._core")]
#[derive(Default)]
pub struct PySpanEncoder {
    resources: Cache<proto::Resource>,
    scopes: Cache<proto::InstrumentationScope>,
    skipped_values: AtomicU64,
    skipped_spans: AtomicU64,
    /// Why the most recent span was left out, for the exporter's warning.
    last_skip_reason: Mutex<Option<String>>,
}

/// Spans read so far towards one request; the worker fills it a chunk at a time.
#[derive(Default)]
pub(crate) struct RequestBuilder {
    by_resource: Groups<proto::Resource, ScopeGroups>,
    pass: ReadPass,
    /// Spans offered, read or left out: what the request stands for in the queue's accounting.
    taken: usize,
}

impl RequestBuilder {
    pub(crate) fn taken(&self) -> usize {
        self.taken
    }
}

impl PySpanEncoder {
    /// Reads `span` into `builder`; a span that cannot be read is left out and counted.
    pub(crate) fn add(&self, builder: &mut RequestBuilder, span: &Bound<'_, PyAny>, types: &Types) {
        builder.taken += 1;
        let RequestBuilder {
            by_resource, pass, ..
        } = builder;
        let placed = read_span(span, types, pass).and_then(|read| {
            let scopes = by_resource.slot(Some(&read.resource), &self.resources, |r| {
                encode_resource(r, types, pass)
            })?;
            let spans = scopes.slot(read.scope.as_ref(), &self.scopes, |s| {
                encode_scope(s, types, pass)
            })?;
            spans.push(read.span);
            Ok(())
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
        } = builder;
        self.skipped_values
            .fetch_add(pass.skipped_values, Ordering::Relaxed);
        self.skipped_spans
            .fetch_add(pass.skipped_spans, Ordering::Relaxed);
        let resource_spans = by_resource
            .into_iter()
            // A resource whose span was then left out (its scope could not be read) has no spans.
            .filter(|(_, scopes)| !scopes.is_empty())
            .map(|(resource, scopes)| {
                let resource = resource.expect("every span has a resource object");
                proto::ResourceSpans {
                    resource: Some(resource.message.clone()),
                    scope_spans: scopes
                        .into_iter()
                        .map(|(scope, spans)| proto::ScopeSpans {
                            scope: Some(
                                scope
                                    .as_ref()
                                    .map(|s| s.message.clone())
                                    .unwrap_or_default(),
                            ),
                            spans,
                            schema_url: scope.map(|s| s.schema_url.clone()).unwrap_or_default(),
                        })
                        .collect(),
                    schema_url: resource.schema_url.clone(),
                }
            })
            .collect();
        PySpanRequest {
            request: proto::ExportTraceServiceRequest { resource_spans },
            taken,
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
        let request = self.read(spans)?.request;
        let bytes = py.detach(|| encode_request(&request));
        Ok(PyBytes::new(py, &bytes))
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
    pub(crate) request: proto::ExportTraceServiceRequest,
    /// The spans it was read from, those left out included.
    taken: usize,
}

#[pymethods]
impl PySpanRequest {
    /// The serialized request, as `SpanEncoder.encode` returns it.
    fn to_bytes<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        let bytes = py.detach(|| encode_request(&self.request));
        PyBytes::new(py, &bytes)
    }

    /// The spans it was read from, those left out included: what its export settles.
    fn __len__(&self) -> usize {
        self.taken
    }

    fn __repr__(&self) -> String {
        let spans: usize = self
            .request
            .resource_spans
            .iter()
            .flat_map(|r| &r.scope_spans)
            .map(|s| s.spans.len())
            .sum();
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
