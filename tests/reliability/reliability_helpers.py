"""Helpers shared by the reliability tests: providers wired to spanbatch, span makers, the invariant."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Callable

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


def run_in_threads(targets: Sequence[Callable[[], object]]) -> None:
    """Runs each target on a thread of its own, all at once, and returns when every one has."""
    threads = [threading.Thread(target=target) for target in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
    """Polls ``predicate`` every 5 ms; False if ``timeout`` seconds pass first."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.005)
    return True


class ScriptedExporter(SpanExporter):
    """Keeps what it exports; call *n* does what ``script[n]`` says, later calls succeed.

    Actions: ``ok``; ``fail`` (returns FAILURE); ``raise`` (RuntimeError); ``exit`` (SystemExit);
    ``none`` (returns None); ``junk`` (returns a string); ``block`` (waits for ``gate``, at most
    60 s, then succeeds).
    """

    def __init__(self, *script: str) -> None:
        self.script = list(script)
        self.exported: list[ReadableSpan] = []
        self.calls = 0
        self.gate = threading.Event()
        self.shutdowns = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        action = self.script[self.calls] if self.calls < len(self.script) else "ok"
        self.calls += 1
        if action == "fail":
            return SpanExportResult.FAILURE
        if action == "raise":
            raise RuntimeError("exporter failure injected by the test")
        if action == "exit":
            raise SystemExit(3)
        if action == "none":
            return None  # type: ignore[return-value]
        if action == "junk":
            return "SUCCESS"  # type: ignore[return-value]
        if action == "block":
            self.gate.wait(60)
        self.exported.extend(spans)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        self.shutdowns += 1

    def names(self) -> list[str]:
        return [span.name for span in self.exported]


def flush_then_shut_down_while_stuck(
    processor: BatchSpanProcessor, provider: TracerProvider
) -> tuple[float, float, SpanStats]:
    """With an export stuck: a 300 ms flush (must fail), 40 more spans, then shutdown.

    Returns the flush and shutdown durations in seconds and the stats right after shutdown.
    """
    started = time.monotonic()
    assert processor.force_flush(300) is False
    flush_seconds = time.monotonic() - started
    end_spans(provider, 40, name="queued")
    started = time.monotonic()
    provider.shutdown()
    return flush_seconds, time.monotonic() - started, processor.stats()
