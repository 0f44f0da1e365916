"""Finished spans for the OTLP tests and benchmarks: every field, every attribute type, odd corners."""

from __future__ import annotations

import math
from collections.abc import Sequence

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanLimits, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Link, NonRecordingSpan, SpanContext, SpanKind, Status, StatusCode, TraceFlags
from opentelemetry.trace.span import TraceState

EVERY_TYPE = {
    "str": "value",
    "unicode": "héllo 🌍 日本語",
    "empty.str": "",
    "bool.true": True,
    "bool.false": False,
    "int.zero": 0,
    "int.max": 2**63 - 1,
    "int.min": -(2**63),
    "int.negative": -42,
    "float": 3.25,
    "float.zero": 0.0,
    "float.negzero": -0.0,
    "float.nan": math.nan,
    "float.inf": math.inf,
    "float.neginf": -math.inf,
    "bytes": b"\x00\xffbin",
    "empty.bytes": b"",
    "strs": ("a", "", "ü"),
    "bools": (True, False),
    "ints": (1, -1, 2**62),
    "floats": (1.5, math.nan, -math.inf),
    "empty.seq": (),
    "mixed.seq": (1, "two", 3.0, None),
    "none": None,
    "mapping": {"nested": {"deep": [1, 2]}, "n": None},
}


def recorder(resource: Resource, limits: SpanLimits | None = None) -> tuple[TracerProvider, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    # shutdown_on_exit=False: the caller shuts it down once it has the spans, not an atexit hook.
    provider = TracerProvider(resource=resource, span_limits=limits, shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


def remote_parent(trace_id: int, span_id: int, state: TraceState | None = None) -> trace.Context:
    context = SpanContext(trace_id, span_id, is_remote=True, trace_flags=TraceFlags(1), trace_state=state)
    return trace.set_span_in_context(NonRecordingSpan(context))


def corpus() -> list[ReadableSpan]:
    """A batch touching every field, several resources (two equal but distinct) and scopes."""
    main = Resource(
        {"service.name": "shop", "host.id": 7, "tags": ("a", "b")}, schema_url="https://opentelemetry.io/s/1"
    )
    # Equal to ``main`` (same attributes and schema, other order): the stock dict puts both in one group.
    twin = Resource(
        {"tags": ("a", "b"), "host.id": 7, "service.name": "shop"}, schema_url="https://opentelemetry.io/s/1"
    )
    bare = Resource({})
    limits = SpanLimits(
        max_span_attributes=40, max_events=2, max_links=2, max_event_attributes=1, max_link_attributes=1
    )
    spans: list[ReadableSpan] = []
    for resource in (main, bare, twin):
        provider, exporter = recorder(resource, limits)
        scoped = provider.get_tracer("lib.scoped", "1.2.3", schema_url="https://s/2", attributes={"scope.attr": 1})
        plain = provider.get_tracer("lib.plain")
        again = provider.get_tracer("lib.scoped", "1.2.3", schema_url="https://s/2", attributes={"scope.attr": 1})
        state = TraceState([("vendor", "v1"), ("other", "y")])
        with scoped.start_as_current_span("parent", kind=SpanKind.SERVER, attributes=EVERY_TYPE) as parent:
            parent.add_event("evt", {"k": "v", "dropped": 1}, timestamp=1_000)
            parent.add_event("évènement")
            parent.add_event("third")  # over max_events
            with plain.start_as_current_span("child", kind=SpanKind.CLIENT) as child:
                child.set_status(Status(StatusCode.ERROR, "boom ✗"))
        links = [
            Link(SpanContext(0xABC, 0xDEF, is_remote=True), {"link.a": 1, "link.b": 2}),
            Link(SpanContext(1, 2, is_remote=False)),
            Link(SpanContext(3, 4, is_remote=False)),  # over max_links
        ]
        remote = remote_parent(2**128 - 1, 2**64 - 1, state)
        span = again.start_span("remote-child", remote, kind=SpanKind.CONSUMER, links=links, start_time=5)
        span.set_status(Status(StatusCode.OK))
        span.end(end_time=2**63)
        for kind in (SpanKind.INTERNAL, SpanKind.PRODUCER):
            plain.start_span("", kind=kind).end()
        spans.extend(exporter.get_finished_spans())
        provider.shutdown()
    spans.append(ReadableSpan(name="hand-made", context=SpanContext(9, 10, False), resource=bare, attributes={"x": 1}))
    spans.append(
        ReadableSpan(
            "scoped-hand-made",
            context=SpanContext(11, 12, False),
            parent=SpanContext(11, 13, False),
            resource=main,
            instrumentation_scope=InstrumentationScope("lib.scoped", "1.2.3", "https://s/2", {"scope.attr": 1}),
            events=(),
            links=(),
            status=Status(StatusCode.UNSET),
        )
    )
    return spans


def realistic_batch(count: int = 512) -> list[ReadableSpan]:
    """``count`` spans as a web service makes them: 8 attributes and 1 event each, one resource."""
    resource = Resource({"service.name": "checkout", "service.version": "1.4.2", "host.name": "web-1"})
    provider, exporter = recorder(resource)
    tracer = provider.get_tracer("opentelemetry.instrumentation.flask", "0.48b0")
    for i in range(count):
        with tracer.start_as_current_span("GET /api/orders/{id}", kind=SpanKind.SERVER) as span:
            span.set_attributes(
                {
                    "http.request.method": "GET",
                    "url.path": f"/api/orders/{i}",
                    "url.scheme": "https",
                    "http.route": "/api/orders/{id}",
                    "http.response.status_code": 200,
                    "server.address": "shop.example.com",
                    "client.address": "10.0.0.12",
                    "user_agent.original": "Mozilla/5.0 (X11; Linux x86_64)",
                }
            )
            span.add_event("order.loaded", {"order.items": 3})
    spans = exporter.get_finished_spans()
    provider.shutdown()
    return list(spans)


def stock_bytes(spans: Sequence[ReadableSpan]) -> bytes:
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans  # noqa: PLC0415

    return encode_spans(spans).SerializeToString()  # type: ignore[no-any-return]
