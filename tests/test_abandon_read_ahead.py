"""Shutdown gives up on a lane whose export hangs: the spans application threads had read into its open
request are dropped and counted (``shutdown``) with the queued ones, and never handed to the exporter."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
import spanbatch
from opentelemetry.sdk.trace import ReadableSpan
from spanbatch._export import READ_AHEAD_SPANS

from tests.helpers import LONG, HangingEncodingExporter, balanced, make_span

Later = Callable[[Any], Any]  # the ``shutdown_later`` fixture


class BlockingTime:
    """A start time the encoder reads through ``__index__`` (Python code): on the application thread, that
    read waits for ``unblock``, holding the open request."""

    reading, unblock = threading.Event(), threading.Event()

    def __index__(self) -> int:
        if threading.current_thread().name == "app":
            self.reading.set()
            self.unblock.wait(20)
        return 1


def blocking_span(span_id: int) -> ReadableSpan:
    span = make_span(span_id=span_id)
    span._start_time = BlockingTime()  # type: ignore[assignment]
    return span


def hung_processor(shutdown_later: Later, exporter: HangingEncodingExporter) -> spanbatch.BatchSpanProcessor:
    """A processor of batches of 64 whose worker hangs in the export of its second batch."""
    processor = shutdown_later(
        spanbatch.BatchSpanProcessor(
            exporter, max_export_batch_size=64, schedule_delay_millis=LONG, export_timeout_millis=1000
        )
    )
    processor.on_end(make_span(span_id=1))
    assert processor.force_flush(5000)
    for i in range(64):
        processor.on_end(make_span(span_id=10 + i))
    assert exporter.exporting.wait(10)
    return processor


def worker_done(processor: spanbatch.BatchSpanProcessor) -> None:
    exporter: HangingEncodingExporter = processor._lanes[0].exporter  # type: ignore[assignment]
    exporter.release.set()
    worker = processor._lanes[0].worker
    assert worker is not None
    worker.join(10)
    assert not worker.is_alive()


@pytest.mark.timeout(60)
def test_spans_read_ahead_into_an_abandoned_lane_are_dropped_and_counted(shutdown_later: Later) -> None:
    exporter = HangingEncodingExporter()
    processor = hung_processor(shutdown_later, exporter)
    for i in range(40):  # this thread reads a chunk of them into the open request; the rest wait
        processor.on_end(make_span(span_id=200 + i))
    before = processor.stats()
    assert (before.queued, before.in_flight) == (40 - READ_AHEAD_SPANS, 64 + READ_AHEAD_SPANS)
    processor.shutdown()
    after = processor.stats()
    assert (after.dropped["shutdown"], after.in_flight, after.queued) == (40, 64, 0)
    assert balanced(after)
    worker_done(processor)
    # The hung export returned after the exporter was shut down: nothing more was handed to it.
    assert [len(batch) for batch in exporter.batches] == [1, 64]
    final = processor.stats()
    assert (final.exported, final.dropped["shutdown"], final.in_flight) == (65, 40, 0)
    assert balanced(final)


@pytest.mark.timeout(60)
def test_spans_an_application_thread_is_still_reading_when_the_lane_is_abandoned_are_dropped_once_read(
    shutdown_later: Later,
) -> None:
    exporter = HangingEncodingExporter()
    processor = hung_processor(shutdown_later, exporter)

    def app() -> None:
        processor.on_end(blocking_span(2))
        for i in range(READ_AHEAD_SPANS):  # the last reads the chunk before it queues its own span
            processor.on_end(make_span(span_id=300 + i))

    thread = threading.Thread(target=app, name="app", daemon=True)
    thread.start()
    try:
        assert BlockingTime.reading.wait(10)  # the chunk is taken; its first span is being read
        processor.shutdown()  # returns by its deadline, though the open request is held
        during = processor.stats()
        assert during.in_flight == 64 + READ_AHEAD_SPANS
        assert balanced(during)
    finally:
        BlockingTime.unblock.set()
    thread.join(10)
    after = processor.stats()
    # The chunk, and the span whose on_end read it (shutdown began meanwhile: never queued).
    assert (after.dropped["shutdown"], after.in_flight) == (READ_AHEAD_SPANS + 1, 64)
    assert balanced(after)
    worker_done(processor)
    assert [len(batch) for batch in exporter.batches] == [1, 64]
    assert processor.stats().exported == 65
