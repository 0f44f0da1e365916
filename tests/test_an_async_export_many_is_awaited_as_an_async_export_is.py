"""An exporter's class may define ``export_many(batches)`` (README), and its ``export`` may be ``async def``
(README): one that writes both as coroutines has ``export_many``'s awaited on the worker's private loop, bounded
by ``export_timeout_millis``, as ``export``'s is. Its coroutine was taken for an answer that is not one result
per batch: every batch counted as failed (never sent, "coroutine was never awaited"), where the same class
without ``export_many`` exported them all."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from typing import Any

import pytest
import spanbatch
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from tests.helpers import LONG, balanced, end_spans


class AsyncBatches(SpanExporter):
    """Sends each call's batches together; ``hang`` makes the first call outlast any timeout."""

    def __init__(self, hang: bool = False) -> None:
        self.hang = hang
        self.calls: list[list[int]] = []
        self.released = threading.Event()

    async def export(self, spans: Sequence[ReadableSpan]) -> Any:  # type: ignore[override]
        return (await self.export_many([spans]))[0]

    async def export_many(self, batches: Sequence[Sequence[ReadableSpan]]) -> list[SpanExportResult]:
        self.calls.append([len(batch) for batch in batches])
        while self.hang and len(self.calls) == 1 and not self.released.is_set():
            await asyncio.sleep(0.05)
        return [SpanExportResult.SUCCESS for _ in batches]


@pytest.mark.timeout(60)
def test_an_async_export_many_exports_every_batch() -> None:
    exporter = AsyncBatches()
    processor = spanbatch.BatchSpanProcessor(exporter, schedule_delay_millis=LONG, max_export_batch_size=2)
    try:
        end_spans(processor, 5)
        assert processor.force_flush(10_000)
        stats = processor.stats()
        assert sum(map(sum, exporter.calls)) == 5
        assert (stats.exported, stats.dropped_total) == (5, 0), stats
        assert balanced(stats)
    finally:
        processor.shutdown()


@pytest.mark.timeout(60)
def test_an_async_export_many_is_cancelled_at_the_export_timeout() -> None:
    exporter = AsyncBatches(hang=True)
    processor = spanbatch.BatchSpanProcessor(
        exporter, schedule_delay_millis=LONG, max_export_batch_size=2, export_timeout_millis=300
    )
    try:
        end_spans(processor, 2)
        assert processor.force_flush(10_000)  # settled: cancelled at its timeout
        end_spans(processor, 3)
        assert processor.force_flush(10_000)
        stats = processor.stats()
        assert (stats.exported, stats.dropped["export_failed"]) == (3, 2), stats
        assert balanced(stats)
    finally:
        exporter.released.set()
        processor.shutdown()
