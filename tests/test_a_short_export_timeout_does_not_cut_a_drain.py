"""``export_timeout_millis`` (``OTEL_BSP_EXPORT_TIMEOUT``) bounds one export, as the spec says ("maximum allowed
time to export data"); it is not the deadline of a drain of many exports.

Before, it was also the deadline of ``shutdown()``, ``force_flush()`` and the exit: with a 100 ms export timeout and
an exporter taking 50 ms per batch (each export well inside its limit), 100 queued spans came out 20 delivered and
the rest dropped, where the stock processor (which does not read the setting: its ``shutdown`` waits 30 s for its
worker) delivers all 100. Now the drain's deadline is 30 s, or ``export_timeout_millis`` if longer.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import pytest
import spanbatch
from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from tests.helpers import RecordingExporter, end_spans, provider_with
from tests.helpers.logs import emit_events, logger_provider_with

pytestmark = pytest.mark.timeout(30)

SPANS = 200
BATCH = 10
EXPORT_SECONDS = 0.05
EXPORT_TIMEOUT_MILLIS = 250  # each export takes a fifth of it (room for a loaded machine); the drain four times it
LONG = 60_000


class SlowExporter(RecordingExporter):
    def export(self, spans: Sequence[ReadableSpan]) -> Any:
        time.sleep(EXPORT_SECONDS)
        return super().export(spans)


def batching(exporter: Any, **settings: Any) -> spanbatch.BatchSpanProcessor:
    """A processor exporting full batches of ``BATCH`` (the rest at a flush), by default within the file's timeout."""
    defaults = {"max_export_batch_size": BATCH, "export_timeout_millis": EXPORT_TIMEOUT_MILLIS}
    return spanbatch.BatchSpanProcessor(exporter, schedule_delay_millis=LONG, **{**defaults, **settings})


def _queued(make: Callable[[SlowExporter], Any]) -> tuple[Any, SlowExporter]:
    exporter = SlowExporter()
    processor = make(exporter)
    end_spans(provider_with(processor), SPANS)
    return processor, exporter


@pytest.mark.parametrize(
    "make",
    [
        batching,
        lambda exporter: spanbatch.Pipeline(
            {"slow": exporter},
            schedule_delay_millis=LONG,
            max_export_batch_size=BATCH,
            export_timeout_millis=EXPORT_TIMEOUT_MILLIS,
        ),
    ],
    ids=["processor", "pipeline"],
)
@pytest.mark.parametrize("ending", ["shutdown", "force_flush"])
def test_a_drain_of_exports_that_each_keep_the_export_timeout_delivers_everything(
    make: Callable[[SlowExporter], Any], ending: str, shutdown_later: Callable[[Any], Any]
) -> None:
    processor, exporter = _queued(make)
    shutdown_later(processor)
    if ending == "shutdown":
        processor.shutdown()
    else:
        assert processor.force_flush() is True
    assert len(exporter.spans) == SPANS
    stats = processor.stats()
    assert (stats.exported, sum(stats.dropped.values())) == (SPANS, 0)


class SlowLogExporter(LogRecordExporter):
    def __init__(self) -> None:
        self.bodies: list[object] = []

    def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        time.sleep(EXPORT_SECONDS)
        self.bodies += [record.log_record.body for record in batch]
        return LogRecordExportResult.SUCCESS

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


def test_the_log_processors_shutdown_delivers_everything_under_a_short_export_timeout(
    shutdown_later: Callable[[Any], Any],
) -> None:
    exporter = SlowLogExporter()
    processor = shutdown_later(
        spanbatch.BatchLogRecordProcessor(
            exporter,
            schedule_delay_millis=LONG,
            max_export_batch_size=BATCH,
            export_timeout_millis=EXPORT_TIMEOUT_MILLIS,
        )
    )
    bodies = emit_events(logger_provider_with(processor), SPANS)
    processor.shutdown()
    assert exporter.bodies == bodies
    assert sum(processor.stats().dropped.values()) == 0


def test_the_exit_delivers_everything_under_a_short_otel_bsp_export_timeout() -> None:
    app = textwrap.dedent(
        f"""
        import sys, time
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
        import spanbatch

        class Slow(SpanExporter):
            exported = 0
            def export(self, spans):
                time.sleep({EXPORT_SECONDS})
                Slow.exported += len(spans)
                return SpanExportResult.SUCCESS
            def shutdown(self):
                print("exported", Slow.exported, flush=True)

        provider = TracerProvider()
        provider.add_span_processor(spanbatch.BatchSpanProcessor(Slow()))
        tracer = provider.get_tracer("exit")
        for _ in range({SPANS}):
            tracer.start_span("s").end()
        """
    )
    env = {
        "OTEL_BSP_EXPORT_TIMEOUT": str(EXPORT_TIMEOUT_MILLIS),
        "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": str(BATCH),
        "OTEL_BSP_SCHEDULE_DELAY": str(LONG),
    }
    done = subprocess.run(
        [sys.executable, "-c", app], env={**os.environ, **env}, capture_output=True, text=True, timeout=25, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["exported", str(SPANS)], done.stderr


class OneHangs(RecordingExporter):
    """The first export hangs until ``release``; the others take 20 ms."""

    def __init__(self) -> None:
        super().__init__()
        self.entered, self.release = threading.Event(), threading.Event()
        self.first = True

    def export(self, spans: Sequence[ReadableSpan]) -> Any:
        if self.first:
            self.first = False
            self.entered.set()
            self.release.wait(20)
        else:
            time.sleep(0.02)
        return super().export(spans)


def test_one_hung_export_thread_does_not_stop_the_others_drain(shutdown_later: Callable[[Any], Any]) -> None:
    exporter = OneHangs()
    processor = shutdown_later(batching(exporter, export_timeout_millis=500, max_concurrent_exports=4))
    try:
        provider = provider_with(processor)
        end_spans(provider, BATCH)
        assert exporter.entered.wait(10)
        time.sleep(0.6)  # the hung export is past its timeout before the others begin
        end_spans(provider, 400)
        processor.shutdown()
        stats = processor.stats()
        assert (stats.exported, stats.in_flight, sum(stats.dropped.values())) == (400, BATCH, 0)
    finally:
        exporter.release.set()


class Slower(RecordingExporter):
    """Each export takes 800 ms, more than its 500 ms timeout; what happened, in order."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = threading.Event()
        self.events: list[str] = []

    def export(self, spans: Sequence[ReadableSpan]) -> Any:
        self.entered.set()
        time.sleep(0.8)
        self.events.append("exported")
        return super().export(spans)

    def shutdown(self, timeout_millis: float = 30000) -> None:
        self.events.append("shut down")
        super().shutdown(timeout_millis)


def test_a_shutdown_during_an_export_past_its_timeout_still_waits_the_timeout_for_it(
    shutdown_later: Callable[[Any], Any],
) -> None:
    exporter = Slower()
    processor = shutdown_later(batching(exporter, export_timeout_millis=500))
    end_spans(provider_with(processor), 3 * BATCH)
    assert exporter.entered.wait(10)
    time.sleep(0.6)  # the export has run past its timeout when shutdown() is called, and returns 200 ms later
    processor.shutdown()
    assert exporter.events[:2] == ["exported", "shut down"]


class ExportsManySlowly(RecordingExporter):
    def export_many(self, batches: Sequence[Sequence[ReadableSpan]]) -> list[Any]:
        return [self.export(batch) for batch in batches]

    def export(self, spans: Sequence[ReadableSpan]) -> Any:
        time.sleep(EXPORT_SECONDS)
        return super().export(spans)


def test_an_export_many_call_may_take_the_timeout_per_batch(shutdown_later: Callable[[Any], Any]) -> None:
    exporter = ExportsManySlowly()
    processor = shutdown_later(batching(exporter))
    end_spans(provider_with(processor), SPANS)
    processor.shutdown()
    assert len(exporter.spans) == SPANS
    assert sum(processor.stats().dropped.values()) == 0


class BlocksItsLoop(SpanExporter):
    """An ``async def export`` that blocks its loop's thread (a blocking client in it): no cancellation reaches it."""

    def __init__(self) -> None:
        self.release = threading.Event()

    async def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:  # type: ignore[override]
        self.release.wait(20)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass


def test_an_async_export_that_blocks_its_loop_is_given_up_soon_after_its_timeout(
    shutdown_later: Callable[[Any], Any],
) -> None:
    exporter = BlocksItsLoop()
    processor = shutdown_later(batching(exporter, max_export_batch_size=1, export_timeout_millis=500))
    try:
        end_spans(provider_with(processor), 2)
        time.sleep(0.1)
        started = time.monotonic()
        processor.shutdown()
        # Its timeout, the cancellation grace the lane's loop gives it, twice, and its shutdown: not the drain's 30 s.
        assert time.monotonic() - started < 5
        assert processor.stats().in_flight == 1
    finally:
        exporter.release.set()


@pytest.mark.timeout(20)
def test_a_flush_behind_one_hung_export_thread_gives_up_at_its_timeout_while_the_others_export(
    shutdown_later: Callable[[Any], Any],
) -> None:
    exporter = OneHangs()
    processor = shutdown_later(batching(exporter, export_timeout_millis=500, max_concurrent_exports=4))
    provider = provider_with(processor)
    ending = threading.Event()

    def traffic() -> None:  # the other export threads keep exporting meanwhile
        while not ending.wait(0.005):
            end_spans(provider, BATCH)

    producer = threading.Thread(target=traffic)
    try:
        end_spans(provider, BATCH)
        assert exporter.entered.wait(10)
        producer.start()
        started = time.monotonic()
        # The flush waits for the hung batch, which no other thread's progress brings nearer.
        assert processor.force_flush() is False
        assert time.monotonic() - started < 3
    finally:
        ending.set()
        exporter.release.set()
        if producer.is_alive():
            producer.join(10)
