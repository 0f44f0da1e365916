"""An exporter whose ``export`` is a coroutine is bounded by ``export_timeout_millis``: at the timeout it is
cancelled; one that ignores its cancellation is given up after a short grace instead of holding the lane's
worker for ever (every later flush failed, nothing more was exported; found by a chaos hunt)."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Sequence
from typing import Any

import pytest
import spanbatch
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from tests.helpers import LONG, balanced, end_spans

Later = Callable[[Any], Any]  # the ``shutdown_later`` fixture


class IgnoresItsFirstCancellation(SpanExporter):
    """Its first export swallows every cancellation until the test ends; the later ones succeed."""

    def __init__(self) -> None:
        self.calls = 0
        self.released = threading.Event()

    async def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:  # type: ignore[override]
        self.calls += 1
        while self.calls == 1 and not self.released.is_set():
            with contextlib.suppress(asyncio.CancelledError):  # what the test is about: a cancellation ignored
                await asyncio.sleep(0.05)
        return SpanExportResult.SUCCESS


@pytest.mark.timeout(60)
def test_an_async_export_that_ignores_its_cancellation_times_out_and_the_lane_goes_on(shutdown_later: Later) -> None:
    exporter = IgnoresItsFirstCancellation()
    processor = shutdown_later(
        spanbatch.BatchSpanProcessor(
            exporter, schedule_delay_millis=LONG, max_export_batch_size=1, export_timeout_millis=300
        )
    )
    try:
        end_spans(processor, 1)
        assert processor.force_flush(10_000)  # settled: it timed out
        assert processor.stats().dropped["export_failed"] == 1
        end_spans(processor, 1)
        assert processor.force_flush(10_000)
        stats = processor.stats()
        assert (stats.exported, stats.dropped["export_failed"], stats.queued, stats.in_flight) == (1, 1, 0, 0)
        assert balanced(stats)
    finally:
        exporter.released.set()
