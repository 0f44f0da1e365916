"""Spans for tests: hand-made ones for ``on_end``, and real SDK spans ended through a provider."""

from __future__ import annotations

from typing import Protocol

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.trace import SpanContext, TraceFlags


def make_span(name: str = "span", sampled: bool = True, trace_id: int = 1, span_id: int = 1) -> ReadableSpan:
    """A finished span built by hand, to hand to ``on_end`` directly."""
    flags = TraceFlags(TraceFlags.SAMPLED if sampled else TraceFlags.DEFAULT)
    return ReadableSpan(name=name, context=SpanContext(trace_id, span_id, is_remote=False, trace_flags=flags))


def provider_with(*processors: SpanProcessor, service: str = "tests") -> TracerProvider:
    """A provider feeding ``processors``, with ``service.name`` set to ``service``."""
    # shutdown_on_exit=False: a test's provider must not outlive it through an atexit hook.
    provider = TracerProvider(resource=Resource.create({"service.name": service}), shutdown_on_exit=False)
    for processor in processors:
        provider.add_span_processor(processor)
    return provider


class EndsSpans(Protocol):
    """A processor, pipeline or native core: anything spans can be handed to directly."""

    def on_end(self, span: ReadableSpan) -> None: ...


def end_spans(
    target: TracerProvider | EndsSpans, count: int, name: str = "span", *, numbered: bool = False
) -> set[bytes]:
    """Ends ``count`` spans named ``name`` (``name0``, ``name1``, … when ``numbered``); returns their span ids.

    Through a ``TracerProvider``: real SDK spans, each started and ended by a tracer. Into anything
    else: spans made by hand (span ids 1, 2, …) handed straight to its ``on_end``, the cheapest way
    to fill a queue. The ids are 8 big-endian bytes, as an OTLP receiver reports them.
    """
    names = [f"{name}{index}" if numbered else name for index in range(count)]
    ids: list[int] = []
    if isinstance(target, TracerProvider):
        tracer = target.get_tracer("tests")
        for span_name in names:
            span = tracer.start_span(span_name)
            span.end()
            ids.append(span.get_span_context().span_id)
    else:
        for index, span_name in enumerate(names):
            target.on_end(make_span(span_name, span_id=index + 1))
            ids.append(index + 1)
    return {span_id.to_bytes(8, "big") for span_id in ids}
