"""An async exporter's private loop (README) is closed as ``asyncio.run`` closes its own: the tasks the exporter
left running are cancelled into their cleanup, and its async generators closed (their ``finally`` runs), before the
loop goes. It was closed under them: their cleanup never ran ("Task was destroyed but it is pending!"). Each wait is
bounded: a task that ignores its cancellation, or one whose blocking call hangs in ``asyncio.to_thread``, holds the
worker a short grace at most, never its thread pool's hung threads."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import pytest
import spanbatch
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from spanbatch._export import CANCEL_GRACE_SECONDS

from tests.helpers import LONG, balanced, end_spans

Later = Callable[[Any], Any]  # the ``shutdown_later`` fixture

# Shutdown's own work, beside the grace it may give the exporter's leftover tasks, on a loaded machine.
SLACK_SECONDS = 2.0


class LeavesWorkRunning(SpanExporter):
    """Its first export starts a background task (which waits as ``waits`` says) and leaves an async generator
    suspended; both note when their cleanup has run to its end."""

    def __init__(self, waits: str) -> None:
        self.waits = waits
        self.released = threading.Event()  # lets a send hung in ``to_thread`` go, when the test ends
        self.task_cleaned = threading.Event()
        self.generator_closed = threading.Event()
        self.background: asyncio.Task[None] | None = None
        self.ticks: AsyncIterator[None] | None = None

    async def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:  # type: ignore[override]
        if self.background is None:
            self.background = asyncio.create_task(self._heartbeat())
            self.ticks = self._ticker()
            await self.ticks.__anext__()
        return SpanExportResult.SUCCESS

    async def _heartbeat(self) -> None:
        try:
            if self.waits == "to_thread":
                await asyncio.to_thread(self.released.wait)
            else:
                await asyncio.Event().wait()
        finally:
            await asyncio.sleep(0.05)  # a cleanup that awaits, as a last flush would
            self.task_cleaned.set()

    async def _ticker(self) -> AsyncIterator[None]:
        try:
            while True:
                yield
        finally:
            self.generator_closed.set()


@pytest.mark.timeout(60)
@pytest.mark.parametrize("waits", ["event", "to_thread"])
def test_leftover_tasks_and_async_generators_run_their_cleanup_at_shutdown(
    shutdown_later: Later, waits: str, caplog: pytest.LogCaptureFixture
) -> None:
    exporter = LeavesWorkRunning(waits)
    processor = shutdown_later(spanbatch.BatchSpanProcessor(exporter, schedule_delay_millis=LONG))
    try:
        end_spans(processor, 2)
        assert processor.force_flush(10_000)
        gc.collect()  # what earlier tests on this worker left (given-up loops' tasks) is not this test's to see
        started = time.monotonic()
        with caplog.at_level(logging.ERROR, logger="asyncio"):
            processor.shutdown()  # waits for the worker, which closes its loop last
            took = time.monotonic() - started
            del exporter.background, exporter.ticks
            gc.collect()
        # "Task was destroyed but it is pending!" of this exporter's own work, had it been left so.
        said = [record.getMessage() for record in caplog.records if record.name == "asyncio"]
        own = [message for message in said if "_heartbeat" in message or "_ticker" in message]
        assert not own, caplog.text
        assert exporter.task_cleaned.is_set()
        assert exporter.generator_closed.is_set()
        assert took < CANCEL_GRACE_SECONDS + SLACK_SECONDS, took
        stats = processor.stats()
        assert (stats.exported, stats.dropped_total) == (2, 0)
        assert balanced(stats)
    finally:
        exporter.released.set()


class LeavesATaskThatIgnoresItsCancellation(SpanExporter):
    """Its first export starts a task that swallows every cancellation until ``released``."""

    def __init__(self) -> None:
        self.released = threading.Event()
        self.background: asyncio.Task[None] | None = None

    async def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:  # type: ignore[override]
        if self.background is None:
            self.background = asyncio.create_task(self._stubborn())
        return SpanExportResult.SUCCESS

    async def _stubborn(self) -> None:
        while not self.released.is_set():
            with contextlib.suppress(asyncio.CancelledError):  # what the test is about: a cancellation ignored
                await asyncio.sleep(0.05)


@pytest.mark.timeout(60)
def test_a_leftover_task_that_ignores_its_cancellation_holds_shutdown_for_the_grace_at_most(
    shutdown_later: Later,
) -> None:
    exporter = LeavesATaskThatIgnoresItsCancellation()
    processor = shutdown_later(spanbatch.BatchSpanProcessor(exporter, schedule_delay_millis=LONG))
    try:
        end_spans(processor, 1)
        assert processor.force_flush(10_000)
        started = time.monotonic()
        processor.shutdown()
        took = time.monotonic() - started
        assert took < CANCEL_GRACE_SECONDS + SLACK_SECONDS, took
        assert not exporter.released.is_set()  # it was given up, not waited out
        stats = processor.stats()
        assert (stats.exported, stats.dropped_total) == (1, 0)
        assert balanced(stats)
    finally:
        exporter.released.set()
        # The task given up stays pending in its closed loop: it goes here, with asyncio's word on it, not in the
        # middle of a later test that listens to asyncio.
        exporter.background = None
        gc.collect()
