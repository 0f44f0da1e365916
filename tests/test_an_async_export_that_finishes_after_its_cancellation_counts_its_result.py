"""An exporter whose ``export`` is a coroutine is cancelled at ``export_timeout_millis`` as ``asyncio.wait_for``
cancels it (README): an export that finishes its send in its cancellation's cleanup, within the grace, and
returns a result has that result taken, as ``wait_for`` takes it. Counting it as a timeout would drop spans the
backend has (or, with retries, send them twice)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

import pytest
import spanbatch
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from tests.helpers import LONG, balanced, end_spans

Later = Callable[[Any], Any]  # the ``shutdown_later`` fixture


class FinishesItsSendWhenCancelled(SpanExporter):
    """Its send outlasts the timeout; cancelled, it lets the send in flight finish (briefly) and says so."""

    def __init__(self) -> None:
        self.delivered = 0

    async def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:  # type: ignore[override]
        try:
            await asyncio.sleep(5)
        except asyncio.CancelledError:
            await asyncio.sleep(0.05)  # the request already written: its answer comes back
        self.delivered += len(spans)
        return SpanExportResult.SUCCESS


@pytest.mark.timeout(60)
def test_an_export_that_returns_a_result_in_its_cancellation_cleanup_has_that_result_taken(
    shutdown_later: Later,
) -> None:
    exporter = FinishesItsSendWhenCancelled()
    processor = shutdown_later(
        spanbatch.BatchSpanProcessor(exporter, schedule_delay_millis=LONG, export_timeout_millis=300)
    )
    end_spans(processor, 3)
    assert processor.force_flush(10_000)
    stats = processor.stats()
    assert exporter.delivered == 3
    assert (stats.exported, stats.dropped_total, stats.in_flight) == (3, 0, 0)  # as wait_for returns it
    assert balanced(stats)
