//! An `ExportTraceServiceRequest` held as already-encoded parts, and its serialization.
//!
//! Spans are written to protobuf as they are read, each scope's spans into one buffer;
//! resources and scopes are encoded once and shared. Serializing a request is then only
//! the three envelope levels, from lengths known up front, around copies of those bytes.
//!
//! Each span's end in its scope's buffer is kept too, so a request over a byte limit is cut
//! at span boundaries into parts that each fit, from sizes already known: nothing is
//! encoded twice.

use super::buffers::BufferPool;
use super::wire::{field_len, open, string, string_len};
use std::ops::Range;
use std::sync::Arc;

/// An encoded `Resource` or `InstrumentationScope` message, with the schema URL its
/// envelope (`ResourceSpans` or `ScopeSpans`) carries.
#[derive(Default)]
pub struct Part {
    pub message: Vec<u8>,
    pub schema_url: String,
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

/// Consecutive spans of one scope group, as the bytes they take in its buffer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Piece {
    pub scope: usize,
    pub bytes: Range<usize>,
    pub spans: usize,
}

/// One resource group's pieces in a part.
#[derive(Debug, PartialEq, Eq)]
pub struct Entry {
    pub resource: usize,
    pub pieces: Vec<Piece>,
}

/// A part of a request: a request of its own, of `len` bytes once serialized.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Cut {
    pub entries: Vec<Entry>,
    pub spans: usize,
    pub len: usize,
}

/// A request cut to a byte limit: its parts, and the sizes of the spans left out because
/// each alone, with its resource and scope, is over the limit.
#[derive(Debug, Default)]
pub struct Split {
    pub cuts: Vec<Cut>,
    pub too_large: Vec<usize>,
}

/// The part being filled while a request is cut, and what its finished levels measure.
struct Cutter {
    limit: usize,
    split: Split,
    cut: Cut,
    /// Bytes of the part's finished resource entries.
    closed: usize,
    /// Bytes of the finished scope entries of the resource entry being filled.
    scopes_len: usize,
}

impl Cutter {
    /// Adds `piece` (of the scope whose framing takes `scope_fixed` bytes) to `resource`'s entry.
    fn close_piece(&mut self, resource: usize, scope_fixed: usize, piece: Piece) {
        if piece.spans == 0 {
            return;
        }
        self.scopes_len += field_len(2, scope_fixed + piece.bytes.len());
        self.cut.spans += piece.spans;
        match self.cut.entries.last_mut() {
            Some(entry) if entry.resource == resource => entry.pieces.push(piece),
            _ => self.cut.entries.push(Entry {
                resource,
                pieces: vec![piece],
            }),
        }
    }

    fn close_entry(&mut self, resource_fixed: usize) {
        if self.scopes_len > 0 {
            self.closed += field_len(1, resource_fixed + self.scopes_len);
            self.scopes_len = 0;
        }
    }

    fn close_cut(&mut self, resource_fixed: usize) {
        self.close_entry(resource_fixed);
        if self.cut.spans > 0 {
            let mut cut = std::mem::take(&mut self.cut);
            cut.len = std::mem::take(&mut self.closed);
            self.split.cuts.push(cut);
        }
        self.closed = 0;
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

    /// The request cut into parts of at most `limit` bytes each, at span boundaries, in
    /// order; each part groups its spans under their resource and scope again. A span that
    /// would be over `limit` even in a part of its own is left out.
    pub fn split(&self, limit: usize) -> Split {
        let mut cutter = Cutter {
            limit,
            split: Split::default(),
            cut: Cut::default(),
            closed: 0,
            scopes_len: 0,
        };
        for (resource, group) in self.resources.iter().enumerate() {
            let resource_fixed = group.fixed_len();
            for (scope, spans) in group.scopes.iter().enumerate() {
                let scope_fixed = spans.fixed_len();
                let mut piece = Piece {
                    scope,
                    bytes: 0..0,
                    spans: 0,
                };
                for &end in &spans.spans.ends {
                    let size = end - piece.bytes.end;
                    if field_len(1, resource_fixed + field_len(2, scope_fixed + size))
                        > cutter.limit
                    {
                        cutter.close_piece(resource, scope_fixed, piece.clone());
                        cutter.split.too_large.push(size);
                        piece = Piece {
                            scope,
                            bytes: end..end,
                            spans: 0,
                        };
                        continue;
                    }
                    let grown = resource_fixed
                        + cutter.scopes_len
                        + field_len(2, scope_fixed + end - piece.bytes.start);
                    if cutter.closed + field_len(1, grown) > cutter.limit {
                        let start = piece.bytes.end;
                        cutter.close_piece(resource, scope_fixed, piece);
                        cutter.close_cut(resource_fixed);
                        piece = Piece {
                            scope,
                            bytes: start..start,
                            spans: 0,
                        };
                    }
                    piece.bytes.end = end;
                    piece.spans += 1;
                }
                cutter.close_piece(resource, scope_fixed, piece);
            }
            cutter.close_entry(resource_fixed);
        }
        cutter.close_cut(0);
        cutter.split
    }

    /// One part of the request serialized, as `to_bytes` does the whole.
    pub fn cut_to_bytes(&self, cut: &Cut) -> Vec<u8> {
        let mut buf = self.pool.take();
        buf.reserve_exact(cut.len);
        let empty = Part::default();
        for entry in &cut.entries {
            let resource = &self.resources[entry.resource];
            let scope_body =
                |piece: &Piece| resource.scopes[piece.scope].fixed_len() + piece.bytes.len();
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
                buf.extend_from_slice(&scope.spans.bytes[piece.bytes.clone()]);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::otlp::proto;
    use prost::Message;

    fn span(name: &str, attributes: usize) -> proto::Span {
        proto::Span {
            trace_id: vec![1; 16],
            span_id: vec![2; 8],
            name: name.into(),
            kind: 2,
            start_time_unix_nano: 5,
            attributes: (0..attributes)
                .map(|i| proto::KeyValue {
                    key: format!("k{i}"),
                    value: Some(proto::AnyValue {
                        value: Some(proto::Value::String("v".repeat(i * 40))),
                    }),
                })
                .collect(),
            status: Some(proto::Status::default()),
            flags: 0x100,
            ..proto::Span::default()
        }
    }

    fn part(message: Vec<u8>, schema_url: &str) -> Arc<Part> {
        Arc::new(Part {
            message,
            schema_url: schema_url.into(),
        })
    }

    /// Our parts for one prost scope group.
    fn ours(scope: &proto::ScopeSpans) -> ScopeSpans {
        let mut spans = Spans::default();
        for span in &scope.spans {
            spans.push(&span.encode_to_vec());
        }
        ScopeSpans {
            scope: scope
                .scope
                .as_ref()
                .map(|s| part(s.encode_to_vec(), &scope.schema_url)),
            spans,
        }
    }

    #[test]
    fn same_bytes_as_prost() {
        let scope = |name: &str, url: &str, spans: Vec<proto::Span>| proto::ScopeSpans {
            scope: Some(proto::InstrumentationScope {
                name: name.into(),
                ..Default::default()
            }),
            spans,
            schema_url: url.into(),
        };
        let resource = |scope_spans: Vec<proto::ScopeSpans>, url: &str| proto::ResourceSpans {
            resource: Some(proto::Resource::default()),
            scope_spans,
            schema_url: url.into(),
        };
        let expected = proto::ExportTraceServiceRequest {
            resource_spans: vec![
                resource(
                    vec![
                        scope("a", "", vec![span("x", 3), span("", 0)]),
                        scope("b", "u", (0..50).map(|i| span("y", i % 7)).collect()),
                    ],
                    "https://r",
                ),
                resource(vec![scope("c", "", vec![span("z", 1)])], ""),
            ],
        };
        let request = Request {
            resources: expected
                .resource_spans
                .iter()
                .map(|r| ResourceSpans {
                    resource: part(r.resource.as_ref().unwrap().encode_to_vec(), &r.schema_url),
                    scopes: r.scope_spans.iter().map(ours).collect(),
                })
                .collect(),
            pool: Arc::default(),
        };
        assert_eq!(request.to_bytes(), expected.encode_to_vec());
        assert_eq!(request.span_count(), 53);
        assert!(Request::default().to_bytes().is_empty());
    }

    #[test]
    fn buffers_go_back_to_the_pool() {
        let pool = Arc::new(BufferPool::default());
        let mut spans = Spans::default();
        spans.bytes.reserve(4096);
        spans.push(&[1]);
        let request = Request {
            resources: vec![ResourceSpans {
                resource: Arc::default(),
                scopes: vec![ScopeSpans { scope: None, spans }],
            }],
            pool: pool.clone(),
        };
        let body = request.to_bytes();
        request.done_with(body);
        drop(request);
        let reused = [pool.take(), pool.take()];
        assert!(reused.iter().all(|b| b.is_empty() && b.capacity() > 0));
        assert!(reused.iter().any(|b| b.capacity() >= 4096));
    }

    #[test]
    fn a_missing_scope_is_an_empty_message() {
        let spans = vec![span("s", 1)];
        let expected = proto::ExportTraceServiceRequest {
            resource_spans: vec![proto::ResourceSpans {
                resource: Some(proto::Resource::default()),
                scope_spans: vec![proto::ScopeSpans {
                    scope: Some(proto::InstrumentationScope::default()),
                    spans: spans.clone(),
                    schema_url: String::new(),
                }],
                schema_url: String::new(),
            }],
        };
        let mut scope = ours(&expected.resource_spans[0].scope_spans[0]);
        scope.scope = None;
        let request = Request {
            resources: vec![ResourceSpans {
                resource: Arc::default(),
                scopes: vec![scope],
            }],
            pool: Arc::default(),
        };
        assert_eq!(request.to_bytes(), expected.encode_to_vec());
    }

    /// Two resources, three scopes, spans of 0 to 700 bytes of attributes.
    fn varied() -> (proto::ExportTraceServiceRequest, Request) {
        let scope = |name: &str, spans: Vec<proto::Span>| proto::ScopeSpans {
            scope: Some(proto::InstrumentationScope {
                name: name.into(),
                ..Default::default()
            }),
            spans,
            schema_url: "s".into(),
        };
        let many = |from: usize, n: usize| -> Vec<proto::Span> {
            (from..from + n)
                .map(|i| span(&format!("span{i}"), (i * 7) % 6))
                .collect()
        };
        let expected = proto::ExportTraceServiceRequest {
            resource_spans: vec![
                proto::ResourceSpans {
                    resource: Some(proto::Resource::default()),
                    scope_spans: vec![scope("a", many(0, 20)), scope("b", many(20, 15))],
                    schema_url: "https://r".into(),
                },
                proto::ResourceSpans {
                    resource: Some(proto::Resource::default()),
                    scope_spans: vec![scope("c", many(35, 25))],
                    schema_url: String::new(),
                },
            ],
        };
        let request = Request {
            resources: expected
                .resource_spans
                .iter()
                .map(|r| ResourceSpans {
                    resource: part(r.resource.as_ref().unwrap().encode_to_vec(), &r.schema_url),
                    scopes: r.scope_spans.iter().map(ours).collect(),
                })
                .collect(),
            pool: Arc::default(),
        };
        (expected, request)
    }

    /// Every span of `request`, with its resource and scope schema URLs, in order.
    fn flat(request: &proto::ExportTraceServiceRequest) -> Vec<(String, String, proto::Span)> {
        let mut spans = Vec::new();
        for r in &request.resource_spans {
            for s in &r.scope_spans {
                let name = s.scope.as_ref().unwrap().name.clone();
                for span in &s.spans {
                    spans.push((r.schema_url.clone(), name.clone(), span.clone()));
                }
            }
        }
        spans
    }

    /// The size of a request of `span` alone (the scope names are all one length).
    fn alone((url, _, span): &(String, String, proto::Span)) -> usize {
        let one = proto::ExportTraceServiceRequest {
            resource_spans: vec![proto::ResourceSpans {
                resource: Some(proto::Resource::default()),
                scope_spans: vec![proto::ScopeSpans {
                    scope: Some(proto::InstrumentationScope {
                        name: "a".into(),
                        ..Default::default()
                    }),
                    spans: vec![span.clone()],
                    schema_url: "s".into(),
                }],
                schema_url: url.clone(),
            }],
        };
        one.encoded_len()
    }

    #[test]
    fn a_request_within_the_limit_is_one_part_of_the_same_bytes() {
        let (_, request) = varied();
        let whole = request.to_bytes();
        assert_eq!(request.len(), whole.len());
        let split = request.split(whole.len());
        assert!(split.too_large.is_empty());
        assert_eq!(split.cuts.len(), 1);
        assert_eq!(request.cut_to_bytes(&split.cuts[0]), whole);
    }

    #[test]
    fn parts_fit_the_limit_and_hold_every_span_once_in_order() {
        let (expected, request) = varied();
        let all = flat(&expected);
        let largest = all.iter().map(alone).max().unwrap();
        for limit in [largest, largest + 1, largest + 77, 2 * largest, 4000, 9999] {
            let split = request.split(limit);
            assert!(split.too_large.is_empty(), "limit {limit}");
            let mut again = Vec::new();
            for cut in &split.cuts {
                let bytes = request.cut_to_bytes(cut);
                assert_eq!(bytes.len(), cut.len);
                assert!(bytes.len() <= limit, "{} > {limit}", bytes.len());
                let part = proto::ExportTraceServiceRequest::decode(bytes.as_slice()).unwrap();
                assert_eq!(flat(&part).len(), cut.spans);
                again.extend(flat(&part));
            }
            assert_eq!(again, all, "limit {limit}");
            // Greedy: two neighbouring parts would not fit in one.
            assert!(split.cuts.windows(2).all(|w| w[0].len + w[1].len > limit));
        }
    }

    #[test]
    fn a_span_over_the_limit_alone_is_left_out() {
        let (expected, request) = varied();
        let all = flat(&expected);
        let limit = 400;
        let split = request.split(limit);
        let kept: Vec<_> = split
            .cuts
            .iter()
            .flat_map(|cut| {
                let bytes = request.cut_to_bytes(cut);
                assert!(bytes.len() <= limit);
                flat(&proto::ExportTraceServiceRequest::decode(bytes.as_slice()).unwrap())
            })
            .collect();
        let fitting: Vec<_> = all.iter().filter(|s| alone(s) <= limit).cloned().collect();
        assert!(!split.too_large.is_empty() && fitting.len() > 10);
        assert_eq!(kept, fitting);
        assert_eq!(split.too_large.len(), all.len() - fitting.len());
        let sizes: Vec<usize> = all
            .iter()
            .filter(|s| alone(s) > limit)
            .map(|(_, _, span)| field_len(2, span.encoded_len()))
            .collect();
        assert_eq!(split.too_large, sizes);
        assert!(request.split(10).cuts.is_empty());
    }
}
