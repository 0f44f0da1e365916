"""An async exporter whose sends hang in ``asyncio.to_thread`` is cancelled at each ``export_timeout_millis``; the
sends after them must still go out. asyncio's own default executor has ``min(32, cpus + 4)`` threads: once that many
sends hung in it, every later ``to_thread`` call queued behind them, never started, and every later export timed out
with the backend healthy again (the lane stalled for good)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Sequence
from typing import Any

import pytest
import spanbatch
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from spanbatch._executor import DEFAULT_THREADS

from tests.helpers import LONG, balanced, end_spans

Later = Callable[[Any], Any]  # the ``shutdown_later`` fixture

# Two more than asyncio's default executor has threads (``ThreadPoolExecutor``'s default ``max_workers``).
HUNG = DEFAULT_THREADS + 2


class FirstSendsHang(SpanExporter):
    """Sends each batch with a blocking call in ``asyncio.to_thread``; the first ``hung`` sends block until
    ``released``."""

    def __init__(self, hung: int) -> None:
        self.hung = hung
        self.calls = 0
        self.sent = 0
        self.released = threading.Event()

    def _send(self, spans: int) -> None:
        self.sent += spans

    async def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:  # type: ignore[override]
        self.calls += 1
        if self.calls <= self.hung:
            await asyncio.to_thread(self.released.wait)
        else:
            await asyncio.to_thread(self._send, len(spans))
        return SpanExportResult.SUCCESS


@pytest.mark.timeout(120)
def test_sends_after_hung_ones_are_exported(shutdown_later: Later) -> None:
    exporter = FirstSendsHang(HUNG)
    processor = shutdown_later(
        spanbatch.BatchSpanProcessor(
            # Time enough for a good send to start a thread on a loaded machine: each hung one takes 1 s.
            exporter,
            schedule_delay_millis=LONG,
            max_export_batch_size=1,
            export_timeout_millis=1000,
        )
    )
    try:
        end_spans(processor, HUNG)
        assert processor.force_flush(HUNG * 1000 + 30_000)  # each export cancelled at its timeout
        assert (exporter.calls, processor.stats().dropped["export_failed"]) == (HUNG, HUNG)
        end_spans(processor, 3)
        assert processor.force_flush(30_000)
        stats = processor.stats()
        assert exporter.sent == 3
        assert (stats.exported, stats.dropped["export_failed"], stats.queued, stats.in_flight) == (3, HUNG, 0, 0)
        assert balanced(stats)
    finally:
        exporter.released.set()
