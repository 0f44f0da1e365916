"""An async exporter's blocking calls (``asyncio.to_thread``, ``run_in_executor(None, ...)``) run on its private
loop's own pool (README), which behaves as asyncio's default pool but for what a hung call does (see the tests of
sends hung in ``to_thread``): its threads are reused from one export to the next, and the calls still awaited run as
many at a time as asyncio's own pool would run them, no more. A thread per call, the other way to keep hung calls
from holding the exit, cost 115-160 us a call where this pool's cost 50-95 (asyncio's 70-85), and ran an export's
200 gathered sends of 20 ms on 88-200 threads at once (a connection each), where a pool used 6."""

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


class SendsInThreads(SpanExporter):
    """Sends each batch as ``sends`` blocking calls gathered at once; each waits (10 s at most) until as many run
    at once as the pool allows, so that the most seen at once is the pool's limit, not a matter of timing."""

    def __init__(self, sends: int) -> None:
        self.sends = sends
        self.lock = threading.Lock()
        self.running = 0
        self.most = 0
        self.full = threading.Event()
        self.threads: list[threading.Thread] = []

    def _send(self) -> None:
        with self.lock:
            self.running += 1
            self.most = max(self.most, self.running)
            self.threads.append(threading.current_thread())
            if self.running == DEFAULT_THREADS:
                self.full.set()
        self.full.wait(10)
        with self.lock:
            self.running -= 1

    async def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:  # type: ignore[override]
        await asyncio.gather(*(asyncio.to_thread(self._send) for _ in range(self.sends)))
        return SpanExportResult.SUCCESS


@pytest.mark.timeout(60)
def test_gathered_sends_run_as_many_at_a_time_as_asyncios_own_pool_runs(shutdown_later: Later) -> None:
    exporter = SendsInThreads(sends=3 * DEFAULT_THREADS)
    processor = shutdown_later(spanbatch.BatchSpanProcessor(exporter, schedule_delay_millis=LONG))
    end_spans(processor, 1)
    assert processor.force_flush(30_000)
    assert exporter.full.is_set()
    assert exporter.most == DEFAULT_THREADS
    assert len(set(exporter.threads)) == DEFAULT_THREADS
    stats = processor.stats()
    assert (stats.exported, stats.dropped_total) == (1, 0)
    assert balanced(stats)


@pytest.mark.timeout(60)
def test_a_send_per_export_reuses_one_thread(shutdown_later: Later) -> None:
    exporter = SendsInThreads(sends=1)
    exporter.full.set()  # one send at a time: nothing to wait for
    processor = shutdown_later(
        spanbatch.BatchSpanProcessor(exporter, schedule_delay_millis=LONG, max_export_batch_size=1)
    )
    end_spans(processor, 5)
    assert processor.force_flush(30_000)
    assert len(exporter.threads) == 5
    assert len(set(exporter.threads)) == 1
    stats = processor.stats()
    assert (stats.exported, stats.dropped_total) == (5, 0)
    assert balanced(stats)
