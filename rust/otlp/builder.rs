//! What the span and log encoders share: items (spans or log records) written one at a time
//! into their resource and scope groups, and the counters of what had to be left out.
//!
//! An `ExportTraceServiceRequest` and an `ExportLogsServiceRequest` have the same envelope
//! (resource, scope, items as field 2, schema URL as field 3 at each level), so one
//! `Request` serves both; only how one item is written differs.

use super::buffers::BufferPool;
use super::groups::{encode_resource, encode_scope, Cache, Groups};
use super::request::{Request, ResourceSpans, ScopeSpans, Spans};
use super::types::Types;
use super::values::ReadPass;
use crate::sync::locked;
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use pyo3::{PyTraverseError, PyVisit};
use std::sync::atomic::{AtomicU64, Ordering};
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
}

/// A request read, with the items it stands for.
pub(crate) struct Read {
    pub request: Request,
    /// The items it was read from, those left out included.
    pub taken: usize,
    /// The items among them that could not be read: dropped (`unencodable`) when it settles.
    pub left_out: u64,
}

impl Encoder {
    /// Reads one item into `builder` with `write`, which writes its body and says where it
    /// goes; an item that cannot be read is left out and counted.
    pub fn add<'py>(
        &self,
        builder: &mut RequestBuilder,
        types: &Types,
        write: impl FnOnce(&mut Vec<u8>, &mut ReadPass) -> PyResult<Placed<'py>>,
    ) {
        builder.taken += 1;
        let RequestBuilder {
            by_resource,
            pass,
            scratch,
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
        }
    }

    /// The request `builder` holds; what it left out is added to this encoder's counters.
    pub fn finish(&self, builder: RequestBuilder) -> Read {
        let RequestBuilder {
            by_resource,
            pass,
            taken,
            ..
        } = builder;
        self.skipped_values
            .fetch_add(pass.skipped_values, Ordering::Relaxed);
        self.skipped_items
            .fetch_add(pass.skipped_items, Ordering::Relaxed);
        let resources = by_resource
            .into_parts()
            .map(|(resource, scopes)| ResourceSpans {
                resource: resource.expect("every item has a resource object"),
                scopes: scopes
                    .into_parts()
                    .map(|(scope, spans)| ScopeSpans { scope, spans })
                    .collect(),
            })
            .collect();
        Read {
            request: Request {
                resources,
                pool: self.buffers.clone(),
            },
            taken,
            left_out: pass.skipped_items,
        }
    }

    /// Reads every item of `items` with `add_one`.
    pub fn read(
        &self,
        items: &Bound<'_, PyAny>,
        add_one: impl Fn(&mut RequestBuilder, &Bound<'_, PyAny>, &Types),
    ) -> PyResult<Read> {
        let types = Types::get(items.py())?;
        let mut builder = RequestBuilder::default();
        for item in items.try_iter()? {
            add_one(&mut builder, &item?, types);
        }
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

    /// The encoder's `__repr__`: its caches and counters; `items` names its item counter.
    pub fn describe(&self, class: &str, items: &str) -> String {
        format!(
            "{class}(cached_resources={}, cached_scopes={}, skipped_values={}, {items}={})",
            self.resources.len(),
            self.scopes.len(),
            self.skipped_values(),
            self.skipped_items(),
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
    /// The serialized request, joined detached.
    pub fn to_bytes<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        let body = py.detach(|| self.request.to_bytes());
        let bytes = PyBytes::new(py, &body);
        self.request.done_with(body);
        bytes
    }
}
