//! `SpanEncoder`: `ReadableSpan`s in, a serialized `ExportTraceServiceRequest` out.
//!
//! Each span is written to protobuf bytes as it is read, while the interpreter is held;
//! joining a request's parts into one body runs detached, so other Python threads go
//! on meanwhile. With a byte limit, a request over it is cut into parts that each fit
//! (see `request::Request::split`); the sender sends each part once.

use super::buffers::BufferPool;
use super::compress::Codec;
use super::groups::{encode_resource, encode_scope, Cache, Groups};
use super::request::{Cut, Request, ResourceSpans, ScopeSpans, Spans};
use super::spans::SpanFields;
use super::types::Types;
use super::values::ReadPass;
use crate::counters::LeftOut;
use crate::sync::locked;
use pyo3::exceptions::{PyIndexError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use pyo3::{PyTraverseError, PyVisit};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
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
    /// No request is made larger than this many bytes; `None`: no limit.
    max_request_bytes: Option<usize>,
    /// Spans left out because each alone was over `max_request_bytes`.
    too_large_spans: AtomicU64,
    /// The size of the largest such span in the latest request that had any, for the warning.
    last_too_large_bytes: AtomicU64,
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
        let resources: Vec<ResourceSpans> = by_resource
            .into_parts()
            .map(|(resource, scopes)| ResourceSpans {
                resource: resource.expect("every span has a resource object"),
                scopes: scopes
                    .into_parts()
                    .map(|(scope, spans)| ScopeSpans { scope, spans })
                    .collect(),
            })
            .collect();
        let request = Request {
            resources,
            pool: self.buffers.clone(),
        };
        // The usual request fits: measuring it is a sum over its groups, not its spans.
        let split = self
            .max_request_bytes
            .filter(|&limit| request.len() > limit)
            .map(|limit| request.split(limit));
        let too_large = split
            .as_ref()
            .map_or(0, |split| split.too_large.len() as u64);
        if let Some(&largest) = split.as_ref().and_then(|s| s.too_large.iter().max()) {
            self.too_large_spans.fetch_add(too_large, Ordering::Relaxed);
            self.last_too_large_bytes
                .store(largest as u64, Ordering::Relaxed);
        }
        let cuts = split.map(|split| split.cuts);
        let parts = cuts.as_ref().map_or(1, Vec::len);
        PySpanRequest {
            request,
            cuts,
            accepted: (0..parts).map(|_| AtomicBool::new(false)).collect(),
            taken,
            left_out: LeftOut {
                unencodable: pass.skipped_spans,
                too_large,
            },
        }
    }
}

#[pymethods]
impl PySpanEncoder {
    /// `max_request_bytes`: no request it makes is larger (serialized, before compression);
    /// a batch over it is cut into parts, and a span over it alone is left out.
    #[new]
    #[pyo3(signature = (max_request_bytes = None))]
    fn new(max_request_bytes: Option<usize>) -> PyResult<Self> {
        if max_request_bytes == Some(0) {
            return Err(PyValueError::new_err(
                "max_request_bytes must be a positive integer.",
            ));
        }
        Ok(Self {
            max_request_bytes,
            ..Self::default()
        })
    }

    #[getter]
    fn max_request_bytes(&self) -> Option<usize> {
        self.max_request_bytes
    }

    /// Spans left out so far because each alone was over `max_request_bytes`.
    #[getter]
    fn too_large_spans(&self) -> u64 {
        self.too_large_spans.load(Ordering::Relaxed)
    }

    /// The size of the largest span left out for its size in the latest request that had any.
    #[getter]
    fn last_too_large_bytes(&self) -> u64 {
        self.last_too_large_bytes.load(Ordering::Relaxed)
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
            "SpanEncoder(max_request_bytes={}, cached_resources={}, cached_scopes={}, skipped_values={}, \
             skipped_spans={}, too_large_spans={})",
            self.max_request_bytes
                .map_or_else(|| "None".to_owned(), |limit| limit.to_string()),
            self.resources.len(),
            self.scopes.len(),
            self.skipped_values(),
            self.skipped_spans(),
            self.too_large_spans(),
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

/// Spans read into an `ExportTraceServiceRequest`, serialized only when sent: in one part,
/// or in several that each fit the encoder's byte limit.
///
/// It remembers which parts the backend accepted: a retry sends only the others.
#[pyclass(frozen, name = "SpanRequest", module = "spanbatch._core")]
pub struct PySpanRequest {
    pub(crate) request: Request,
    /// Its parts when it was cut; `None`: one part, the whole request.
    cuts: Option<Vec<Cut>>,
    /// One flag per part.
    accepted: Vec<AtomicBool>,
    /// The spans it was read from, those left out included.
    taken: usize,
    /// The spans among them left out, by reason: dropped when it settles.
    pub(crate) left_out: LeftOut,
}

impl PySpanRequest {
    /// Part `index` serialized, in a buffer to hand back with `request.done_with`.
    pub(crate) fn part_body(&self, index: usize) -> Vec<u8> {
        match &self.cuts {
            Some(cuts) => self.request.cut_to_bytes(&cuts[index]),
            None => self.request.to_bytes(),
        }
    }

    /// The parts not accepted yet, in order.
    pub(crate) fn pending(&self) -> Vec<usize> {
        (0..self.accepted.len())
            .filter(|&index| !self.accepted[index].load(Ordering::Acquire))
            .collect()
    }

    pub(crate) fn accept(&self, index: usize) {
        self.accepted[index].store(true, Ordering::Release);
    }

    fn checked(&self, index: usize) -> PyResult<usize> {
        if index < self.accepted.len() {
            Ok(index)
        } else {
            Err(PyIndexError::new_err(format!(
                "part {index} of a request of {} parts",
                self.accepted.len()
            )))
        }
    }
}

#[pymethods]
impl PySpanRequest {
    /// The serialized request, as `SpanEncoder.encode` returns it: every part in one (a
    /// request cut in parts is their concatenation, which protobuf reads as one message).
    fn to_bytes<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        let body = py.detach(|| match &self.cuts {
            None => self.request.to_bytes(),
            Some(cuts) => {
                let mut body = Vec::with_capacity(cuts.iter().map(|cut| cut.len).sum());
                for cut in cuts {
                    let part = self.request.cut_to_bytes(cut);
                    body.extend_from_slice(&part);
                    self.request.done_with(part);
                }
                body
            }
        });
        let bytes = PyBytes::new(py, &body);
        self.request.done_with(body);
        bytes
    }

    /// How many requests it is sent as: 1, or more when it was cut to the byte limit
    /// (0 when every span in it was too large).
    #[getter]
    fn parts(&self) -> usize {
        self.accepted.len()
    }

    /// Part `index` serialized: a whole `ExportTraceServiceRequest` of its own.
    fn part_to_bytes<'py>(&self, py: Python<'py>, index: usize) -> PyResult<Bound<'py, PyBytes>> {
        let index = self.checked(index)?;
        let body = py.detach(|| self.part_body(index));
        let bytes = PyBytes::new(py, &body);
        self.request.done_with(body);
        Ok(bytes)
    }

    /// The spans in part `index`.
    fn part_spans(&self, index: usize) -> PyResult<usize> {
        let index = self.checked(index)?;
        Ok(self
            .cuts
            .as_ref()
            .map_or_else(|| self.request.span_count(), |cuts| cuts[index].spans))
    }

    /// The parts the backend has not accepted yet, in order: what an export (or its retry) sends.
    fn pending_parts(&self) -> Vec<usize> {
        self.pending()
    }

    /// Records that the backend accepted part `index`: it is not sent again.
    #[pyo3(name = "accept")]
    fn py_accept(&self, index: usize) -> PyResult<()> {
        self.accept(self.checked(index)?);
        Ok(())
    }

    /// The spans it was read from, those left out included: what its export settles.
    fn __len__(&self) -> usize {
        self.taken
    }

    /// The spans it was read from that are not in it: unreadable, or too large.
    #[getter]
    fn left_out(&self) -> u64 {
        self.left_out.total()
    }

    /// The spans it was read from that each alone were over the byte limit, and are not in it.
    #[getter]
    fn too_large(&self) -> u64 {
        self.left_out.too_large
    }

    fn __repr__(&self) -> String {
        let spans = self.cuts.as_ref().map_or_else(
            || self.request.span_count(),
            |cuts| cuts.iter().map(|cut| cut.spans).sum(),
        );
        format!(
            "SpanRequest(spans={spans}, taken={}, parts={}, pending={})",
            self.taken,
            self.parts(),
            self.pending().len()
        )
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
