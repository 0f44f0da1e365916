//! An `ExportTraceServiceRequest` held as already-encoded parts, and its serialization.
//!
//! Spans are written to protobuf as they are read, each scope's spans into one buffer;
//! resources and scopes are encoded once and shared. Serializing a request is then only
//! the three envelope levels, from lengths known up front, around copies of those bytes.

use super::buffers::BufferPool;
use super::wire::{field_len, open, string, string_len};
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
}

impl Spans {
    /// Appends one span's written body.
    pub fn push(&mut self, body: &[u8]) {
        super::wire::len_field(&mut self.bytes, 2, body);
        self.count += 1;
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
    fn body_len(&self) -> usize {
        let (message, url) = self
            .scope
            .as_deref()
            .map_or((0, ""), |s| (s.message.len(), s.schema_url.as_str()));
        field_len(1, message) + self.spans.bytes.len() + string_len(3, url)
    }
}

impl ResourceSpans {
    fn body_len(&self) -> usize {
        let scopes: usize = self.scopes.iter().map(|s| field_len(2, s.body_len())).sum();
        field_len(1, self.resource.message.len())
            + scopes
            + string_len(3, &self.resource.schema_url)
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
}
