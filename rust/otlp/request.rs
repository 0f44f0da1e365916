//! An `ExportTraceServiceRequest` held as already-encoded parts, and its serialization.
//!
//! Spans are written to protobuf as they are read, each scope's spans into one buffer;
//! resources and scopes are encoded once and shared. Serializing a request is then only
//! the three envelope levels, from lengths known up front, around copies of those bytes.
//!
//! Each span's end in its scope's buffer is kept too, so a request over a byte limit is cut
//! at span boundaries into parts that each fit (`split`); a part is serialized here too.

mod split;
#[cfg(test)]
mod tests;

use super::buffers::BufferPool;
use super::wire::{field_len, open, string, string_len};
pub use split::{Cut, Piece};
use std::sync::Arc;

/// An encoded `Resource` or `InstrumentationScope` message, with the schema URL its
/// envelope (`ResourceSpans` or `ScopeSpans`) carries.
#[derive(Default)]
pub struct Part {
    pub message: Vec<u8>,
    pub schema_url: String,
    /// Attribute values its encoding left out: counted in each request it goes out in, as the
    /// stock encoder, which encodes it again for each batch, logs them each time.
    pub skipped_values: u64,
}

/// Spans written as repeated field 2 of a `ScopeSpans`: key, length and body each.
#[derive(Default)]
pub struct Spans {
    pub bytes: Vec<u8>,
    pub count: usize,
    /// Where each span's field ends in `bytes`: the places a request may be cut.
    pub ends: Vec<usize>,
}

impl Spans {
    /// Appends one span's written body.
    pub fn push(&mut self, body: &[u8]) {
        super::wire::len_field(&mut self.bytes, 2, body);
        self.count += 1;
        self.ends.push(self.bytes.len());
    }
}

/// `None` is the falsy scope, which the stock encoder writes as an empty message.
pub struct ScopeSpans {
    pub scope: Option<Arc<Part>>,
    pub spans: Spans,
}

pub struct ResourceSpans {
    pub resource: Arc<Part>,
    pub scopes: Vec<ScopeSpans>,
}

/// Its span buffers go back to `pool` when it is dropped.
#[derive(Default)]
pub struct Request {
    pub resources: Vec<ResourceSpans>,
    pub pool: Arc<BufferPool>,
}

impl Drop for Request {
    fn drop(&mut self) {
        for scope in self.resources.iter_mut().flat_map(|r| &mut r.scopes) {
            self.pool.give(std::mem::take(&mut scope.spans.bytes));
        }
    }
}

impl ScopeSpans {
    /// Its body without spans: the scope message and schema URL.
    fn fixed_len(&self) -> usize {
        let (message, url) = self
            .scope
            .as_deref()
            .map_or((0, ""), |s| (s.message.len(), s.schema_url.as_str()));
        field_len(1, message) + string_len(3, url)
    }

    fn body_len(&self) -> usize {
        self.fixed_len() + self.spans.bytes.len()
    }
}

impl ResourceSpans {
    /// Its body without scopes: the resource message and schema URL.
    fn fixed_len(&self) -> usize {
        field_len(1, self.resource.message.len()) + string_len(3, &self.resource.schema_url)
    }

    fn body_len(&self) -> usize {
        let scopes: usize = self.scopes.iter().map(|s| field_len(2, s.body_len())).sum();
        self.fixed_len() + scopes
    }
}

impl Request {
    pub fn span_count(&self) -> usize {
        self.resources
            .iter()
            .flat_map(|r| &r.scopes)
            .map(|s| s.spans.count)
            .sum()
    }

    /// The serialized request's size.
    pub fn len(&self) -> usize {
        self.resources
            .iter()
            .map(|r| field_len(1, r.body_len()))
            .sum()
    }

    /// One part of the request serialized, as `to_bytes` does the whole.
    pub fn cut_to_bytes(&self, cut: &Cut) -> Vec<u8> {
        let mut buf = self.pool.take();
        buf.reserve_exact(cut.len);
        let empty = Part::default();
        for entry in &cut.entries {
            let resource = &self.resources[entry.resource];
            let scope_body = |piece: &Piece| resource.scopes[piece.scope].fixed_len() + piece.len;
            let scopes: usize = entry
                .pieces
                .iter()
                .map(|piece| field_len(2, scope_body(piece)))
                .sum();
            open(&mut buf, 1, resource.fixed_len() + scopes);
            let part = &resource.resource;
            open(&mut buf, 1, part.message.len());
            buf.extend_from_slice(&part.message);
            for piece in &entry.pieces {
                let scope = &resource.scopes[piece.scope];
                open(&mut buf, 2, scope_body(piece));
                let part = scope.scope.as_deref().unwrap_or(&empty);
                open(&mut buf, 1, part.message.len());
                buf.extend_from_slice(&part.message);
                for range in piece.ranges() {
                    buf.extend_from_slice(&scope.spans.bytes[range]);
                }
                string(&mut buf, 3, &part.schema_url);
            }
            string(&mut buf, 3, &part.schema_url);
        }
        debug_assert_eq!(buf.len(), cut.len);
        buf
    }

    /// The serialized request, sized exactly before it is written, in a buffer from the
    /// pool: hand it back with `done_with` once sent.
    pub fn to_bytes(&self) -> Vec<u8> {
        let lengths: Vec<usize> = self.resources.iter().map(ResourceSpans::body_len).collect();
        let total = lengths.iter().map(|&len| field_len(1, len)).sum();
        let mut buf = self.pool.take();
        buf.reserve_exact(total);
        for (resource, &len) in self.resources.iter().zip(&lengths) {
            open(&mut buf, 1, len);
            let part = &resource.resource;
            open(&mut buf, 1, part.message.len());
            buf.extend_from_slice(&part.message);
            for scope in &resource.scopes {
                open(&mut buf, 2, scope.body_len());
                let empty = Part::default();
                let part = scope.scope.as_deref().unwrap_or(&empty);
                open(&mut buf, 1, part.message.len());
                buf.extend_from_slice(&part.message);
                buf.extend_from_slice(&scope.spans.bytes);
                string(&mut buf, 3, &part.schema_url);
            }
            string(&mut buf, 3, &part.schema_url);
        }
        debug_assert_eq!(buf.len(), total);
        buf
    }

    /// Returns a body from `to_bytes` for the next request to reuse.
    pub fn done_with(&self, body: Vec<u8>) {
        self.pool.give(body);
    }
}
