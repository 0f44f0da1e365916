"""Shared fixtures: span factories and exporters that record, fail, raise or hang."""

from __future__ import annotations

import ctypes
import random
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any, Callable

import pytest
import spanbatch
from opentelemetry.context import _SUPPRESS_INSTRUMENTATION_KEY, get_value
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor as StockBatchSpanProcessor
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.trace import SpanContext, TraceFlags

PROCESSORS = {"stock": StockBatchSpanProcessor, "spanbatch": spanbatch.BatchSpanProcessor}


class RecordingExporter(SpanExporter):
    """Keeps every batch; ``result`` may be a value or a callable of the batch."""

    def __init__(self, result: Any = SpanExportResult.SUCCESS, delay: float = 0.0) -> None:
        self.batches: list[list[ReadableSpan]] = []
        self.suppressed: list[bool] = []
        self.shutdown_calls: list[dict[str, Any]] = []
        self.result = result
        self.delay = delay
        self.exported = threading.Condition()

    def export(self, spans: Sequence[ReadableSpan]) -> Any:
        if self.delay:
            time.sleep(self.delay)
        with self.exported:
            self.batches.append(list(spans))
            self.suppressed.append(bool(get_value(_SUPPRESS_INSTRUMENTATION_KEY)))
            self.exported.notify_all()
        return self.result(spans) if callable(self.result) else self.result

    def shutdown(self, timeout_millis: float = 30000) -> None:
        self.shutdown_calls.append({"timeout_millis": timeout_millis})

    @property
    def spans(self) -> list[ReadableSpan]:
        return [s for batch in self.batches for s in batch]

    def names(self) -> list[str]:
        return [s.name for s in self.spans]

    def wait_for(self, count: int, timeout: float = 10.0) -> bool:
        with self.exported:
            return self.exported.wait_for(lambda: len(self.spans) >= count, timeout)


class RaisingExporter(RecordingExporter):
    def export(self, spans: Sequence[ReadableSpan]) -> Any:
        super().export(spans)
        raise RuntimeError("backend exploded")


class HangingExporter(RecordingExporter):
    """``export`` (and optionally ``shutdown``) block until ``release`` is set."""

    def __init__(self, hang_shutdown: bool = False) -> None:
        super().__init__()
        self.release = threading.Event()
        self.entered = threading.Event()
        self.hang_shutdown = hang_shutdown

    def export(self, spans: Sequence[ReadableSpan]) -> Any:
        self.entered.set()
        self.release.wait(60)
        return super().export(spans)

    def shutdown(self, timeout_millis: float = 30000) -> None:
        super().shutdown(timeout_millis)
        if self.hang_shutdown:
            self.release.wait(60)


@pytest.fixture
def hanging_exporter() -> Iterator[HangingExporter]:
    exporter = HangingExporter()
    yield exporter
    exporter.release.set()


def make_span(name: str = "span", sampled: bool = True, trace_id: int = 1, span_id: int = 1) -> ReadableSpan:
    flags = TraceFlags(TraceFlags.SAMPLED if sampled else TraceFlags.DEFAULT)
    return ReadableSpan(name=name, context=SpanContext(trace_id, span_id, is_remote=False, trace_flags=flags))


@pytest.fixture
def end_spans() -> Callable[..., None]:
    """Ends ``count`` real SDK spans through ``processor`` via a TracerProvider."""

    def run(processor: Any, count: int, prefix: str = "s") -> None:
        provider = TracerProvider(shutdown_on_exit=False)
        provider.add_span_processor(processor)
        tracer = provider.get_tracer("tests")
        for i in range(count):
            tracer.start_span(f"{prefix}{i}").end()

    return run


def balanced(stats: spanbatch.SpanStats) -> bool:
    return stats.enqueued == stats.exported + stats.queued + stats.in_flight + stats.dropped_total


def libc_fork() -> int:
    """Fork from C as uWSGI does: none of Python's fork hooks run. PyDLL keeps the GIL held.

    CPython survives such a fork only if no other thread is queued for the GIL at that
    instant (a hookless child never re-initialises the GIL's condition variable), so give
    workers woken by recent spans time to go back to their wait, which is detached.
    """
    time.sleep(0.2)
    pid = int(ctypes.PyDLL(None).fork())
    if pid == 0:
        # Python reseeds ``random`` only in its own fork hooks; without this the child would
        # generate the parent's next span ids. The id generator is not what is under test.
        random.seed()
    return pid
