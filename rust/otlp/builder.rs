//! What the span and log encoders share: items (spans or log records) written one at a time
//! into their resource and scope groups, and the counters of what had to be left out.
//!
//! An `ExportTraceServiceRequest` and an `ExportLogsServiceRequest` have the same envelope
//! (resource, scope, items as field 2, schema URL as field 3 at each level), so one
//! `Request` serves both; only how one item is written differs. So does the cutting of a
//! request over the encoder's byte limit into parts that each fit (`Request::split`): span
//! and log requests are bounded alike, and each part is sent once.

use super::buffers::BufferPool;
use super::groups::{encode_resource, encode_scope, Cache, Groups};
use super::request::{Cut, Request, ResourceSpans, ScopeSpans, Spans};
use super::types::Types;
use super::values::ReadPass;
use crate::counters::LeftOut;
use crate::sync::locked;
use pyo3::exceptions::{PyException, PyIndexError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use pyo3::{PyTraverseError, PyVisit};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

type ScopeGroups = Groups<Spans>;

/// One item read: its resource and its scope (`None` for a missing or falsy one).
pub(crate) type Placed<'py> = (Bound<'py, PyAny>, Option<Bound<'py, PyAny>>);

/// An encoder's state, kept from request to request.
#[derive(Default)]
pub(crate) struct Encoder {
    resources: Cache,
    scopes: Cache,
    /// Item buffers and bodies, reused from request to request.
    buffers: Arc<BufferPool>,
    skipped_values: AtomicU64,
    skipped_items: AtomicU64,
    /// Why the most recent item was left out, for the exporter's warning.
    last_skip_reason: Mutex<Option<String>>,
    /// No request is made larger than this many bytes; `None`: no limit.
    max_request_bytes: Option<usize>,
    /// Items left out because each alone was over `max_request_bytes`.
    too_large_items: AtomicU64,
    /// The size of the largest such item in the latest request that had any, for the warning.
    last_too_large_bytes: AtomicU64,
}

/// Items read so far towards one request; the worker fills it a chunk at a time.
#[derive(Default)]
pub(crate) struct RequestBuilder {
    by_resource: Groups<ScopeGroups>,
    pass: ReadPass,
    /// Items offered, read or left out: what the request stands for in the queue's accounting.
    taken: usize,
    /// One item's bytes, before they join their group.
    scratch: Vec<u8>,
    /// The bytes of the items read so far (a request's size, less its groups' headers).
    bytes: usize,
}

impl RequestBuilder {
    /// The bytes of the items read so far.
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

/// A request read, with the items it stands for: in one part, or in several that each fit
/// the encoder's byte limit.
///
/// It remembers which parts the backend accepted: a retry sends only the others.
pub(crate) struct Read {
    pub request: Request,
    /// Its parts when it was cut; `None`: one part, the whole request.
    cuts: Option<Vec<Cut>>,
    /// One flag per part.
    accepted: Vec<AtomicBool>,
    /// The items it was read from, those left out included.
    pub taken: usize,
    /// The items among them left out, by reason: dropped when it settles.
    pub left_out: LeftOut,
}

impl Encoder {
    /// An encoder whose requests are at most `max_request_bytes` each (serialized, before
    /// compression): a batch over it is cut into parts, and an item over it alone is left out.
    pub fn limited(max_request_bytes: Option<usize>) -> PyResult<Self> {
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

    /// Reads one item into `builder` with `write`, which writes its body and says where it
    /// goes; an item that cannot be read is left out and counted. Returns the error of one
    /// whose reading was interrupted (see the end).
    pub fn add<'py>(
        &self,
        py: Python<'py>,
        builder: &mut RequestBuilder,
        types: &Types,
        write: impl FnOnce(&mut Vec<u8>, &mut ReadPass) -> PyResult<Placed<'py>>,
    ) -> PyResult<()> {
        builder.taken += 1;
        let RequestBuilder {
            by_resource,
            pass,
            scratch,
            bytes,
            ..
        } = builder;
        // Written aside first: an item left out half-way must not have given its groups
        // their place in the first-seen order, which the request's bytes follow.
        scratch.clear();
        let placed = write(scratch, pass).and_then(|(resource, scope)| {
            let made = by_resource.count();
            let scopes = by_resource.slot(Some(&resource), &self.resources, |r| {
                encode_resource(r, types, pass)
            })?;
            match scopes.slot(scope.as_ref(), &self.scopes, |s| {
                encode_scope(s, types, pass)
            }) {
                Ok(items) => {
                    if items.bytes.capacity() == 0 {
                        items.bytes = self.buffers.take();
                    }
                    *bytes += scratch.len();
                    items.push(scratch);
                    Ok(())
                }
                Err(error) => {
                    by_resource.forget_from(made);
                    Err(error)
                }
            }
        });
        if let Err(error) = placed {
            // The stock encoder would fail the whole batch here; we lose one item, counted.
            pass.skipped_items += 1;
            // Rendered before locking: formatting a Python exception may run Python code.
            let reason = error.to_string();
            *locked(&self.last_skip_reason) = Some(reason);
            // Not the item's fault: a Ctrl-C (or `SystemExit`) raised while Python code ran to
            // read it, on the thread that ends spans (`read_ahead.rs`). That thread raises it.
            if !error.is_instance_of::<PyException>(py) {
                return Err(error);
            }
        }
        Ok(())
    }

    /// The request `builder` holds; what it left out is added to this encoder's counters.
    pub fn finish(&self, builder: RequestBuilder) -> Read {
        let RequestBuilder {
            by_resource,
            pass,
            taken,
            ..
        } = builder;
        self.skipped_items
            .fetch_add(pass.skipped_items, Ordering::Relaxed);
        let resources: Vec<ResourceSpans> = by_resource
            .into_parts()
            .map(|(resource, scopes)| ResourceSpans {
                resource: resource.expect("every item has a resource object"),
                scopes: scopes
                    .into_parts()
                    .map(|(scope, spans)| ScopeSpans { scope, spans })
                    .collect(),
            })
            .collect();
        let in_parts: u64 = resources
            .iter()
            .flat_map(|r| {
                let scopes = r.scopes.iter().filter_map(|s| s.scope.as_deref());
                std::iter::once(&*r.resource).chain(scopes)
            })
            .map(|part| part.skipped_values)
            .sum();
        self.skipped_values
            .fetch_add(pass.skipped_values + in_parts, Ordering::Relaxed);
        let request = Request {
            resources,
            pool: self.buffers.clone(),
        };
        // The usual request fits: measuring it is a sum over its groups, not its items.
        let split = self
            .max_request_bytes
            .filter(|&limit| request.len() > limit)
            .map(|limit| request.split(limit));
        let too_large = split
            .as_ref()
            .map_or(0, |split| split.too_large.len() as u64);
        if let Some(&largest) = split.as_ref().and_then(|s| s.too_large.iter().max()) {
            self.too_large_items.fetch_add(too_large, Ordering::Relaxed);
            self.last_too_large_bytes
                .store(largest as u64, Ordering::Relaxed);
        }
        let cuts = split.map(|split| split.cuts);
        // Items given and none readable: nothing to send, as the stock encoder's raise sends nothing.
        let parts = if pass.skipped_items > 0 && request.span_count() == 0 {
            0
        } else {
            cuts.as_ref().map_or(1, Vec::len)
        };
        Read {
            request,
            cuts,
            accepted: (0..parts).map(|_| AtomicBool::new(false)).collect(),
            taken,
            left_out: LeftOut {
                unencodable: pass.skipped_items,
                too_large,
            },
        }
    }

    /// Reads every item of `items` with `add_one`.
    pub fn read(
        &self,
        items: &Bound<'_, PyAny>,
        add_one: impl Fn(&mut RequestBuilder, &Bound<'_, PyAny>, &Types) -> PyResult<()>,
    ) -> PyResult<Read> {
        let builder = crate::exit_gate::hang_if_unwound(|| {
            let types = Types::get(items.py())?;
            let mut builder = RequestBuilder::default();
            for item in items.try_iter()? {
                add_one(&mut builder, &item?, types)?;
            }
            PyResult::Ok(builder)
        })?;
        Ok(self.finish(builder))
    }

    pub fn skipped_values(&self) -> u64 {
        self.skipped_values.load(Ordering::Relaxed)
    }

    pub fn skipped_items(&self) -> u64 {
        self.skipped_items.load(Ordering::Relaxed)
    }

    pub fn last_skip_reason(&self) -> Option<String> {
        locked(&self.last_skip_reason).clone()
    }

    pub fn max_request_bytes(&self) -> Option<usize> {
        self.max_request_bytes
    }

    pub fn too_large_items(&self) -> u64 {
        self.too_large_items.load(Ordering::Relaxed)
    }

    pub fn last_too_large_bytes(&self) -> u64 {
        self.last_too_large_bytes.load(Ordering::Relaxed)
    }

    /// The encoder's `__repr__`: its limit, caches and counters; `items` names its item
    /// counters (`skipped_<items>`, `too_large_<items>`).
    pub fn describe(&self, class: &str, items: &str) -> String {
        format!(
            "{class}(max_request_bytes={}, cached_resources={}, cached_scopes={}, skipped_values={}, \
             skipped_{items}={}, too_large_{items}={})",
            self.max_request_bytes
                .map_or_else(|| "None".to_owned(), |limit| limit.to_string()),
            self.resources.len(),
            self.scopes.len(),
            self.skipped_values(),
            self.skipped_items(),
            self.too_large_items(),
        )
    }

    pub fn traverse(&self, visit: &PyVisit<'_>) -> Result<(), PyTraverseError> {
        self.resources.traverse(visit)?;
        self.scopes.traverse(visit)
    }

    pub fn clear(&self) {
        self.resources.clear();
        self.scopes.clear();
    }
}

impl Read {
    /// The serialized request: every part in one (a request cut in parts is their
    /// concatenation, which protobuf reads as one message), joined detached.
    pub fn to_bytes<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        let body = crate::exit_gate::detach(py, || match &self.cuts {
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

    /// Part `index` serialized, in a buffer to hand back with `request.done_with`.
    pub fn part_body(&self, index: usize) -> Vec<u8> {
        match &self.cuts {
            Some(cuts) => self.request.cut_to_bytes(&cuts[index]),
            None => self.request.to_bytes(),
        }
    }

    /// How many requests it is sent as: 1, or more when it was cut to the byte limit (0 when
    /// every item in it was too large or unreadable).
    pub fn parts(&self) -> usize {
        self.accepted.len()
    }

    /// The items in part `index`.
    pub fn part_items(&self, index: usize) -> usize {
        self.cuts
            .as_ref()
            .map_or_else(|| self.request.span_count(), |cuts| cuts[index].spans)
    }

    /// The items in every part.
    pub fn items(&self) -> usize {
        (0..self.parts()).map(|index| self.part_items(index)).sum()
    }

    /// The parts not accepted yet, in order.
    pub fn pending(&self) -> Vec<usize> {
        (0..self.accepted.len())
            .filter(|&index| !self.accepted[index].load(Ordering::Acquire))
            .collect()
    }

    pub fn accept(&self, index: usize) {
        self.accepted[index].store(true, Ordering::Release);
    }

    /// `index` if it names one of its parts, else Python's `IndexError`.
    pub fn checked(&self, index: usize) -> PyResult<usize> {
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
