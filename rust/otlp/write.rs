//! Serializes an `ExportTraceServiceRequest` measuring each span once.
//!
//! `Message::encode_to_vec` writes every nested message behind its length, and prost
//! measures a message again at each enclosing level: a span would be measured four
//! times (request, resource, scope, span). Here the three envelope levels are written
//! by hand from lengths computed once; the bytes are the same.

use super::proto::{ExportTraceServiceRequest, ResourceSpans, ScopeSpans};
use prost::encoding::{
    encode_key, encode_varint, encoded_len_varint, key_len, message, string, WireType,
};
use prost::Message;

/// Tag + length prefix + body of a length-delimited field.
fn field_len(tag: u32, body: usize) -> usize {
    key_len(tag) + encoded_len_varint(body as u64) + body
}

fn string_len(tag: u32, value: &str) -> usize {
    if value.is_empty() {
        0
    } else {
        field_len(tag, value.len())
    }
}

fn open(tag: u32, body: usize, buf: &mut Vec<u8>) {
    encode_key(tag, WireType::LengthDelimited, buf);
    encode_varint(body as u64, buf);
}

fn write_string(tag: u32, value: &str, buf: &mut Vec<u8>) {
    if !value.is_empty() {
        string::encode(tag, &value.to_owned(), buf);
    }
}

/// Body lengths, in the order the writer needs them.
#[derive(Default)]
struct Lengths {
    resources: Vec<usize>,
    scopes: Vec<usize>,
    spans: Vec<usize>,
}

fn scope_len(scope: &ScopeSpans, lengths: &mut Lengths) -> usize {
    let mut len = scope
        .scope
        .as_ref()
        .map_or(0, |s| field_len(1, s.encoded_len()));
    for span in &scope.spans {
        let span_len = span.encoded_len();
        lengths.spans.push(span_len);
        len += field_len(2, span_len);
    }
    len + string_len(3, &scope.schema_url)
}

fn resource_len(resource: &ResourceSpans, lengths: &mut Lengths) -> usize {
    let mut len = resource
        .resource
        .as_ref()
        .map_or(0, |r| field_len(1, r.encoded_len()));
    for scope in &resource.scope_spans {
        let body = scope_len(scope, lengths);
        lengths.scopes.push(body);
        len += field_len(2, body);
    }
    len + string_len(3, &resource.schema_url)
}

/// The same bytes as `request.encode_to_vec()`, in less time.
pub fn encode_request(request: &ExportTraceServiceRequest) -> Vec<u8> {
    let mut lengths = Lengths::default();
    let mut total = 0;
    for resource in &request.resource_spans {
        let body = resource_len(resource, &mut lengths);
        lengths.resources.push(body);
        total += field_len(1, body);
    }
    let mut buf = Vec::with_capacity(total);
    let (mut scopes, mut spans) = (lengths.scopes.iter(), lengths.spans.iter());
    for (resource, &body) in request.resource_spans.iter().zip(&lengths.resources) {
        open(1, body, &mut buf);
        if let Some(r) = &resource.resource {
            message::encode(1, r, &mut buf);
        }
        for (scope, &body) in resource.scope_spans.iter().zip(&mut scopes) {
            open(2, body, &mut buf);
            if let Some(s) = &scope.scope {
                message::encode(1, s, &mut buf);
            }
            for (span, &body) in scope.spans.iter().zip(&mut spans) {
                open(2, body, &mut buf);
                span.encode_raw(&mut buf);
            }
            write_string(3, &scope.schema_url, &mut buf);
        }
        write_string(3, &resource.schema_url, &mut buf);
    }
    debug_assert_eq!(buf.len(), total);
    buf
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::otlp::proto::*;

    fn span(name: &str, attributes: usize) -> Span {
        Span {
            trace_id: vec![1; 16],
            span_id: vec![2; 8],
            name: name.into(),
            kind: 2,
            start_time_unix_nano: 5,
            attributes: (0..attributes)
                .map(|i| KeyValue {
                    key: format!("k{i}"),
                    value: Some(AnyValue {
                        value: Some(Value::String("v".repeat(i * 40))),
                    }),
                })
                .collect(),
            status: Some(Status::default()),
            flags: remote_flags(false),
            ..Span::default()
        }
    }

    #[test]
    fn same_bytes_as_prost() {
        let scope = |name: &str, url: &str, spans: Vec<Span>| ScopeSpans {
            scope: Some(InstrumentationScope {
                name: name.into(),
                ..Default::default()
            }),
            spans,
            schema_url: url.into(),
        };
        let request = ExportTraceServiceRequest {
            resource_spans: vec![
                ResourceSpans {
                    resource: Some(Resource::default()),
                    scope_spans: vec![
                        scope("a", "", vec![span("x", 3), span("", 0)]),
                        scope("b", "u", (0..50).map(|i| span("y", i % 7)).collect()),
                    ],
                    schema_url: "https://r".into(),
                },
                ResourceSpans {
                    resource: None,
                    scope_spans: vec![],
                    schema_url: String::new(),
                },
                ResourceSpans {
                    resource: Some(Resource::default()),
                    scope_spans: vec![ScopeSpans {
                        scope: None,
                        spans: vec![span("z", 1)],
                        schema_url: String::new(),
                    }],
                    schema_url: String::new(),
                },
            ],
        };
        assert_eq!(encode_request(&request), request.encode_to_vec());
        let empty = ExportTraceServiceRequest::default();
        assert_eq!(encode_request(&empty), empty.encode_to_vec());
    }
}
