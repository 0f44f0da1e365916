"""An exporter's own ``shutdown`` gets what is left of the processor's shutdown deadline once the exports drained, as
the stock processor gives it (``timeout_millis`` = the rest of 30 s where it takes one, unbounded where not).

Before, it got at most ``export_timeout_millis`` whatever the exports had done: an exporter that writes out what it
buffered in its ``shutdown`` (1 s of writing under a 300 ms export timeout, every export quick) was left behind
mid-write, where stock waits for it. The cap now applies only to a lane whose exports were given up (one hung past
its timeout), whose exporter is likely to hang in its ``shutdown`` too: ``shutdown()`` still returns within about
twice the export timeout when both hang (``test_processor``'s
``test_shutdown_keeps_its_deadline_when_export_and_exporter_shutdown_hang``).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import pytest
import spanbatch
from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor, LogRecordExporter, LogRecordExportResult
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from tests.helpers import end_spans, provider_with
from tests.helpers.logs import emit_events, logger_provider_with

pytestmark = pytest.mark.timeout(30)

EXPORT_TIMEOUT_MILLIS = 300
WRITING_SECONDS = 1.0  # what the exporter's shutdown takes: over three times the export timeout


class Buffering:
    """Keeps count of what it is given and writes it out in its ``shutdown``, which takes ``WRITING_SECONDS``."""

    def __init__(self) -> None:
        self.buffered = 0
        self.written = 0

    def shutdown(self) -> None:
        time.sleep(WRITING_SECONDS)
        self.written = self.buffered


class BufferingSpanExporter(Buffering, SpanExporter):
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.buffered += len(spans)
        return SpanExportResult.SUCCESS


class BufferingLogExporter(Buffering, LogRecordExporter):
    def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        self.buffered += len(batch)
        return LogRecordExportResult.SUCCESS

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True


def _spans(exporter: SpanExporter, processor_class: type[Any]) -> Any:
    processor = processor_class(exporter, export_timeout_millis=EXPORT_TIMEOUT_MILLIS)
    end_spans(provider_with(processor), 20)
    return processor


def _logs(exporter: LogRecordExporter, processor_class: type[Any]) -> Any:
    processor = processor_class(exporter, export_timeout_millis=EXPORT_TIMEOUT_MILLIS)
    emit_events(logger_provider_with(processor), 20)
    return processor


CASES = [
    pytest.param(BufferingSpanExporter, _spans, spanbatch.BatchSpanProcessor, id="spanbatch-spans"),
    pytest.param(BufferingLogExporter, _logs, spanbatch.BatchLogRecordProcessor, id="spanbatch-logs"),
    pytest.param(BufferingSpanExporter, _spans, BatchSpanProcessor, id="stock-spans"),
    pytest.param(BufferingLogExporter, _logs, BatchLogRecordProcessor, id="stock-logs"),
]


@pytest.mark.parametrize(("exporter_class", "fill", "processor_class"), CASES)
def test_an_exporter_writing_out_its_buffer_in_shutdown_is_waited_for(
    exporter_class: Callable[[], Any],
    fill: Callable[[Any, type[Any]], Any],
    processor_class: type[Any],
    shutdown_later: Callable[[Any], Any],
) -> None:
    exporter = exporter_class()
    processor = shutdown_later(fill(exporter, processor_class))
    processor.shutdown()
    assert exporter.written == 20


class TakesATimeout(BufferingSpanExporter):
    def __init__(self) -> None:
        super().__init__()
        self.given: list[float] = []

    def shutdown(self, timeout_millis: float = 30_000) -> None:  # type: ignore[override]
        self.given.append(timeout_millis)


@pytest.mark.parametrize(
    "processor_class", [spanbatch.BatchSpanProcessor, BatchSpanProcessor], ids=["spanbatch", "stock"]
)
def test_an_exporter_shutdown_that_takes_a_timeout_is_given_the_rest_of_the_deadline(
    processor_class: type[Any], shutdown_later: Callable[[Any], Any]
) -> None:
    exporter = TakesATimeout()
    processor = shutdown_later(_spans(exporter, processor_class))
    processor.shutdown()  # the stock span processor's takes no timeout: 30 s
    (given,) = exporter.given
    assert 25_000 < given <= 30_000


class HungBackend:
    """Its send never returns until ``answered`` is set, and its ``shutdown`` waits for the send in flight, as a
    client closing its connection pool does."""

    def __init__(self) -> None:
        self.sending = threading.Event()
        self.answered = threading.Event()

    def send(self) -> None:
        self.sending.set()
        self.answered.wait(60)

    def shutdown(self) -> None:
        self.answered.wait(60)

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True


class AsyncHung(HungBackend):
    async def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        await asyncio.to_thread(self.send)  # cancelled at the export timeout; the send goes on in its thread
        return SpanExportResult.SUCCESS


class LateThenHung(HungBackend):
    """Its one export returns past the export timeout (the send given up by the client) before the shutdown is
    called; its shutdown hangs."""

    def __init__(self) -> None:
        super().__init__()
        self.returned = threading.Event()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.sending.set()
        time.sleep(EXPORT_TIMEOUT_MILLIS / 1000 * 2)
        self.returned.set()
        return SpanExportResult.FAILURE


@pytest.mark.parametrize("exporter_class", [AsyncHung, LateThenHung], ids=["async-cancelled", "returned-late"])
def test_the_shutdown_of_an_exporter_whose_last_export_hung_is_still_cut_at_the_export_timeout(
    exporter_class: Callable[[], HungBackend], shutdown_later: Callable[[Any], Any]
) -> None:
    # The worker drained (the export ended, cancelled or late), so nothing was given up while it ran; but the
    # exporter's last export took its whole timeout: its shutdown is given no longer than an export.
    exporter = exporter_class()
    processor = shutdown_later(
        spanbatch.BatchSpanProcessor(exporter, export_timeout_millis=EXPORT_TIMEOUT_MILLIS, schedule_delay_millis=50)
    )
    try:
        end_spans(provider_with(processor), 1)
        assert exporter.sending.wait(10)
        if isinstance(exporter, LateThenHung):
            assert exporter.returned.wait(10)
        started = time.monotonic()
        processor.shutdown()
        assert time.monotonic() - started < 3, "waited for the hung exporter shutdown past the export timeout"
        stats = processor.stats()
        assert stats.enqueued == stats.exported + stats.queued + stats.in_flight + sum(stats.dropped.values())
    finally:
        exporter.answered.set()
