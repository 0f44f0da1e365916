"""Tasks an ``async def export`` starts and leaves running on the worker's private loop (a deferred send, a
keep-alive) are cancelled into their own cleanup when that loop closes, as ``asyncio.run`` does on its way out:
closed under them, their ``except CancelledError`` / ``finally`` (closing a connection, flushing a buffer)
never ran on their loop, and asyncio logged "Task was destroyed but it is pending!" once the collector found
them. (The stock processor never awaits what ``export`` returns at all.)"""

from __future__ import annotations

import asyncio
import gc
import logging
import threading
from collections.abc import Sequence
from typing import Any

import pytest
import spanbatch
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from tests.helpers import LONG, balanced, end_spans


class LeavesATaskRunning(SpanExporter):
    """Each export starts a task that outlives it and notes how that task ended, and on which thread."""

    def __init__(self) -> None:
        self.tasks_ended: list[tuple[str, str]] = []
        self.export_threads: set[str] = set()

    async def export(self, spans: Sequence[ReadableSpan]) -> Any:  # type: ignore[override]
        self.export_threads.add(threading.current_thread().name)
        asyncio.get_running_loop().create_task(self._keep_alive())
        return SpanExportResult.SUCCESS

    async def _keep_alive(self) -> None:
        try:
            await asyncio.sleep(LONG / 1000)
            self.tasks_ended.append(("finished", threading.current_thread().name))
        except asyncio.CancelledError:
            self.tasks_ended.append(("cancelled", threading.current_thread().name))
            raise


@pytest.mark.timeout(60)
def test_a_task_left_running_by_an_async_export_is_cancelled_on_its_loop_at_shutdown(
    caplog: pytest.LogCaptureFixture,
) -> None:
    exporter = LeavesATaskRunning()
    processor = spanbatch.BatchSpanProcessor(exporter, schedule_delay_millis=LONG, max_export_batch_size=2)
    with caplog.at_level(logging.ERROR, logger="asyncio"):
        end_spans(processor, 4)
        assert processor.force_flush(10_000)
        assert exporter.tasks_ended == []  # still running between exports, as on any loop that lives on
        processor.shutdown()
        # Before shutdown returns, on the worker's thread, with the cancellation it can clean up after.
        (worker,) = exporter.export_threads
        assert exporter.tasks_ended == [("cancelled", worker), ("cancelled", worker)]
        gc.collect()
    assert not [record for record in caplog.records if record.name == "asyncio"], caplog.text
    stats = processor.stats()
    assert (stats.exported, stats.dropped_total) == (4, 0)
    assert balanced(stats)


class LeavesAStreamOpen(SpanExporter):
    """Reads one item of an async generator per export and keeps it open for the next (a response stream)."""

    def __init__(self) -> None:
        self.stream: Any = None
        self.stream_closed: list[str] = []

    async def export(self, spans: Sequence[ReadableSpan]) -> Any:  # type: ignore[override]
        if self.stream is None:
            self.stream = self._acknowledgements()
        return await self.stream.__anext__()

    async def _acknowledgements(self) -> Any:
        try:
            while True:
                yield SpanExportResult.SUCCESS
        finally:
            self.stream_closed.append(threading.current_thread().name)


@pytest.mark.timeout(60)
def test_an_async_generator_an_async_export_left_open_is_closed_on_its_loop_at_shutdown() -> None:
    exporter = LeavesAStreamOpen()
    processor = spanbatch.BatchSpanProcessor(exporter, schedule_delay_millis=LONG, max_export_batch_size=2)
    end_spans(processor, 4)
    assert processor.force_flush(10_000)
    processor.shutdown()
    # Left to the collector, its ``finally`` ran on whatever thread that was, and asked the closed loop to close it.
    assert exporter.stream_closed == [f"spanbatch-{LeavesAStreamOpen.__name__}"]
    assert processor.stats().exported == 4
