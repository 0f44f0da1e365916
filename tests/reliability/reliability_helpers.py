"""Helpers shared by the reliability tests: providers wired to spanbatch, span makers, the invariant."""

from __future__ import annotations

import threading
from collections.abc import Sequence

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from spanbatch import BatchSpanProcessor, SpanStats


def provider_with(processor: BatchSpanProcessor, service: str = "reliability") -> TracerProvider:
    # shutdown_on_exit=False: a test's provider must not outlive it through an atexit hook.
    provider = TracerProvider(resource=Resource.create({"service.name": service}), shutdown_on_exit=False)
    provider.add_span_processor(processor)
    return provider


def end_spans(provider: TracerProvider, count: int, name: str = "span") -> set[bytes]:
    """Ends ``count`` spans named ``name``; returns their span ids as the receiver reports them."""
    tracer = provider.get_tracer("reliability")
    ids: set[bytes] = set()
    for _ in range(count):
        span = tracer.start_span(name)
        span.end()
        ids.add(span.get_span_context().span_id.to_bytes(8, "big"))
    return ids


def assert_accounted(stats: SpanStats) -> None:
    """The processor's promise: every span received is in exactly one state."""
    assert stats.enqueued == stats.exported + stats.queued + stats.in_flight + stats.dropped_total, stats


class RecordingExporter(SpanExporter):
    """Keeps what it exports; ``behaviour`` decides each call's outcome."""

    def __init__(self) -> None:
        self.exported: list[ReadableSpan] = []
        self.calls = 0
        self.fail = False
        self.release = threading.Event()
        self.release.set()
        self.shutdown_called = threading.Event()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.calls += 1
        self.release.wait(60)
        if self.fail:
            return SpanExportResult.FAILURE
        self.exported.extend(spans)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        self.shutdown_called.set()
