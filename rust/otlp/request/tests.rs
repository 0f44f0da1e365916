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
        skipped_values: 0,
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

/// Our request for a prost one.
fn request_of(expected: &proto::ExportTraceServiceRequest) -> Request {
    Request {
        resources: expected
            .resource_spans
            .iter()
            .map(|r| ResourceSpans {
                resource: part(r.resource.as_ref().unwrap().encode_to_vec(), &r.schema_url),
                scopes: r.scope_spans.iter().map(ours).collect(),
            })
            .collect(),
        pool: Arc::default(),
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
    let request = request_of(&expected);
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
    let request = request_of(&expected);
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

#[test]
fn spans_either_side_of_one_too_large_stay_one_scope_group() {
    // As the stock encoder writes the spans that fit: one ScopeSpans of both, not one each.
    let one_scope = |spans: Vec<proto::Span>| proto::ExportTraceServiceRequest {
        resource_spans: vec![proto::ResourceSpans {
            resource: Some(proto::Resource::default()),
            scope_spans: vec![proto::ScopeSpans {
                scope: Some(proto::InstrumentationScope {
                    name: "a".into(),
                    ..Default::default()
                }),
                spans,
                schema_url: "s".into(),
            }],
            schema_url: String::new(),
        }],
    };
    let (small, large) = (|name| span(name, 1), span("large", 12));
    let request = request_of(&one_scope(vec![
        small("x"),
        large.clone(),
        large,
        small("y"),
        small("z"),
    ]));
    let split = request.split(500);
    assert_eq!(split.too_large.len(), 2);
    assert_eq!(split.cuts.len(), 1);
    let fitting = one_scope(vec![small("x"), small("y"), small("z")]);
    assert_eq!(
        request.cut_to_bytes(&split.cuts[0]),
        fitting.encode_to_vec()
    );
}
