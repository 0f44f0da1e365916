"""The user's code calling back into spanbatch at awkward moments: a Ctrl-C while several lanes wait for room,
an exporter that shuts its own processor down, an async exporter torn through by a KeyboardInterrupt.

Cases with a signal run in a child process, so that a hang fails the test instead of the run.
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import pytest
import spanbatch
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider

from tests.helpers import LONG, PROCESSORS, RecordingExporter, balanced, make_span, wait_until

pytestmark = pytest.mark.timeout(120)

# Far below the block timeout (10 s): only an interrupted wait returns this soon.
PROMPT_SECONDS = 3.0

_PRELUDE = """
import json, os, signal, sys, threading, time
from opentelemetry._logs import LogRecord
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
import spanbatch

# A shell starts background jobs with SIGINT ignored, and children inherit that.
signal.signal(signal.SIGINT, signal.default_int_handler)

class Hanging:
    def __init__(self):
        self.entered = threading.Event()
        self.gate = threading.Event()

    def export(self, batch):
        self.entered.set()
        self.gate.wait(60)
        return self.success

    def shutdown(self):
        self.gate.set()

class HangingSpans(Hanging, SpanExporter):
    success = SpanExportResult.SUCCESS

class HangingLogs(Hanging, LogRecordExporter):
    success = LogRecordExportResult.SUCCESS

    def force_flush(self, timeout_millis=30000):
        return True

def measure_interrupt(blocked, stats):
    sent = []

    def interrupt():
        time.sleep(0.5)  # the main thread waits for room by then
        sent.append(time.monotonic())
        os.kill(os.getpid(), signal.SIGINT)

    threading.Thread(target=interrupt, daemon=True).start()
    try:
        blocked()
        outcome = "returned"
    except KeyboardInterrupt:
        outcome = "KeyboardInterrupt"
    seconds = time.monotonic() - sent[0] if sent else None
    s = stats()
    print(json.dumps({"outcome": outcome, "seconds": seconds,
                      "balanced": s.enqueued == s.exported + s.queued + s.in_flight + sum(s.dropped.values())}),
          flush=True)
    os._exit(0)  # measured: an exit would wait out its deadline for the hanging exports

BLOCKING = dict(max_queue_size=1, max_export_batch_size=1, schedule_delay_millis=1, drop_policy="block",
                block_timeout_millis=10_000)
"""


def run_child(body: str) -> dict[str, object]:
    code = _PRELUDE + textwrap.dedent(body)
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=90, check=False)
    lines = completed.stdout.strip().splitlines()
    assert lines, completed.stderr
    report: dict[str, object] = json.loads(lines[-1])
    assert completed.returncode == 0, completed.stderr
    return report


# Two backends, each with one item in flight (hanging) and one queued: the next item waits for room in both.
PIPELINE_BLOCKED = {
    "spans": """
        exporters = [HangingSpans(), HangingSpans()]
        provider = TracerProvider(shutdown_on_exit=False)
        pipeline = spanbatch.install(provider, {"a": exporters[0], "b": exporters[1]}, **BLOCKING)
        tracer = provider.get_tracer("t")
        tracer.start_span("in flight").end()
        for exporter in exporters:
            exporter.entered.wait(30)
        tracer.start_span("queued").end()
        measure_interrupt(lambda: tracer.start_span("blocked").end(), pipeline.stats)
        """,
    "logs": """
        exporters = [HangingLogs(), HangingLogs()]
        logger_provider = LoggerProvider(shutdown_on_exit=False)
        pipeline = spanbatch.install(
            TracerProvider(shutdown_on_exit=False), {"a": HangingSpans(), "b": HangingSpans()},
            logger_provider=logger_provider, log_exporters={"a": exporters[0], "b": exporters[1]}, **BLOCKING,
        )
        logger = logger_provider.get_logger("t")
        logger.emit(LogRecord(body="in flight"))
        for exporter in exporters:
            exporter.entered.wait(30)
        logger.emit(LogRecord(body="queued"))
        measure_interrupt(lambda: logger.emit(LogRecord(body="blocked")), pipeline.logs.stats)
        """,
}


@pytest.mark.parametrize("signal_kind", sorted(PIPELINE_BLOCKED))
def test_ctrl_c_ends_a_pipeline_wait_for_room_in_every_lane_at_once(signal_kind: str) -> None:
    # The first lane's wait raised KeyboardInterrupt; the second lane still got the item but waited out its
    # whole block timeout for room before the interrupt reached the application (10 s, per further lane).
    report = run_child(PIPELINE_BLOCKED[signal_kind])
    assert report["outcome"] == "KeyboardInterrupt", report
    assert isinstance(report["seconds"], float)
    assert report["seconds"] < PROMPT_SECONDS, report
    assert report["balanced"], report


class ShutsDownItsProcessor(RecordingExporter):
    """Its first export waits for ``ready``, then shuts down the processor (or provider) exporting it."""

    def __init__(self) -> None:
        super().__init__()
        self.shut_down: Callable[[], object] = lambda: None
        self.errors: list[BaseException] = []
        self.ready = threading.Event()
        self.exports_after_shutdown = 0
        self._calls = 0
        self._lock = threading.Lock()

    def export(self, spans: Sequence[ReadableSpan]) -> Any:
        with self._lock:
            self._calls += 1
            first = self._calls == 1
            if self.shutdown_calls:
                self.exports_after_shutdown += 1
        if first:
            self.ready.wait(10)
            try:
                self.shut_down()
            except Exception as error:  # stock: "cannot join current thread", caught by its export loop too
                self.errors.append(error)
        return super().export(spans)


def shutting_down(processor: SpanProcessor, provider: TracerProvider) -> dict[str, Callable[[], object]]:
    return {"processor": processor.shutdown, "provider": provider.shutdown}


@pytest.mark.timeout(30)
@pytest.mark.parametrize("who", ["processor", "provider"])
@pytest.mark.parametrize(
    ("kind", "concurrency"),
    [("stock", 1), ("spanbatch", 1), ("spanbatch", 2)],
    ids=["stock", "spanbatch", "two-exports"],
)
def test_an_exporter_that_shuts_its_processor_down_still_gets_what_was_queued(
    kind: str, concurrency: int, who: str
) -> None:
    # The stock worker goes on exporting what is queued once the export that asked for the shutdown returns;
    # spanbatch dropped the 8 queued spans at once (counted as shutdown, "deadline passed"), no deadline near.
    exporter = ShutsDownItsProcessor()
    policies = {"max_concurrent_exports": concurrency} if concurrency > 1 else {}
    processor = PROCESSORS[kind](exporter, schedule_delay_millis=LONG, max_export_batch_size=2, **policies)
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(processor)
    exporter.shut_down = shutting_down(processor, provider)[who]
    tracer = provider.get_tracer("reentry")
    for i in range(10):
        tracer.start_span(f"span {i}").end()
    exporter.ready.set()  # all 10 queued or in flight: none is ended after the shutdown
    assert exporter.wait_for(10), exporter.names()
    assert sorted(exporter.names()) == sorted(f"span {i}" for i in range(10))
    if isinstance(processor, spanbatch.BatchSpanProcessor):
        # The exporter is shut down once, after its last export.
        assert wait_until(lambda: exporter.shutdown_calls)
        assert len(exporter.shutdown_calls) == 1
        assert exporter.exports_after_shutdown == 0
        stats = processor.stats()
        assert (stats.enqueued, stats.exported, stats.dropped_total) == (10, 10, 0), stats
        assert balanced(stats)


# The application exits while the shutdown its exporter asked for still drains the queue: exit waits for that
# drain (within its deadline) as for any shutdown of its own. The hook that reports runs after spanbatch's (atexit
# runs the first registered last).
_EXIT_WHILE_SELF_SHUTDOWN_DRAINS = """
import atexit, json, sys, threading, time
def report():
    s = processor.stats()
    print(json.dumps({"exported": len(exported), "exporter_shutdowns": exporter.shutdowns,
                      "stats": [s.enqueued, s.exported, s.queued, s.in_flight, sum(s.dropped.values())]}), flush=True)
atexit.register(report)
import spanbatch
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
exported = []
all_ended, asked = threading.Event(), threading.Event()

class ShutsItsProcessorDown(SpanExporter):
    shutdowns = 0
    def export(self, spans):
        if not asked.is_set():
            all_ended.wait(10)  # a span ended after the shutdown would be refused, as by stock
            processor.shutdown()
            asked.set()
        time.sleep(0.05)
        exported.extend(spans)
        return SpanExportResult.SUCCESS
    def shutdown(self):
        self.shutdowns += 1

exporter = ShutsItsProcessorDown()
processor = spanbatch.BatchSpanProcessor(exporter, max_export_batch_size=2, schedule_delay_millis=60_000)
provider = TracerProvider(shutdown_on_exit=False)
provider.add_span_processor(processor)
tracer = provider.get_tracer("t")
for i in range(20):
    tracer.start_span(str(i)).end()
all_ended.set()
assert asked.wait(10)
"""


@pytest.mark.timeout(60)
def test_exit_waits_for_the_drain_of_a_shutdown_an_export_asked_for() -> None:
    # Before: nobody waited for the thread draining the lane; exit closed the gate under it with 18 spans still
    # queued and 2 in flight, none exported, and the exporter never shut down.
    completed = subprocess.run(
        [sys.executable, "-c", _EXIT_WHILE_SELF_SHUTDOWN_DRAINS],
        capture_output=True,
        text=True,
        timeout=50,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    report = json.loads(completed.stdout.strip().splitlines()[-1])
    assert report == {"exported": 20, "exporter_shutdowns": 1, "stats": [20, 20, 0, 0, 0]}, completed.stderr


class AsyncRaisingOnce(RecordingExporter):
    """An ``async def export`` whose first call raises ``error``; it notes every export it sees through,
    and any overlap of two of its exports (which the OpenTelemetry spec forbids)."""

    def __init__(self, error: BaseException) -> None:
        super().__init__()
        self.error = error
        self.calls = 0
        self.running = 0
        self.overlapped = False

    async def export(self, spans: Sequence[ReadableSpan]) -> Any:  # type: ignore[override]
        self.calls += 1
        self.running += 1
        self.overlapped |= self.running > 1
        try:
            await asyncio.sleep(0.01)
            if self.calls == 1:
                raise self.error
            return super().export(spans)
        finally:
            self.running -= 1


@pytest.mark.timeout(30)
@pytest.mark.parametrize("error", [KeyboardInterrupt(), SystemExit(3)], ids=["KeyboardInterrupt", "SystemExit"])
def test_an_async_exporter_that_raises_a_base_exception_spoils_no_later_export(error: BaseException) -> None:
    # The exception tore through the worker's private event loop, which kept the callback that stops it: the next
    # run_until_complete stopped at once, that batch was counted as failed, and its export went on during the
    # following one (its spans exported but counted export_failed, two exports at once).
    exporter = AsyncRaisingOnce(error)
    processor = spanbatch.BatchSpanProcessor(exporter, schedule_delay_millis=LONG, max_export_batch_size=1)
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(processor)
    tracer = provider.get_tracer("reentry")
    try:
        for i in range(4):
            tracer.start_span(f"span {i}").end()
            processor.force_flush(10_000)
        stats = processor.stats()
        assert exporter.names() == ["span 1", "span 2", "span 3"]
        assert not exporter.overlapped
        assert (stats.exported, stats.dropped["export_failed"]) == (3, 1), stats
        assert balanced(stats)
    finally:
        processor.shutdown()


class AsyncInterruptedWhileAwaiting(RecordingExporter):
    """An ``async def export`` whose first call is torn through while it awaits (a callback of the loop raises
    SystemExit, or the export stops the loop itself); it notes what its own cleanup saw."""

    def __init__(self, how: str) -> None:
        super().__init__()
        self.how = how
        self.calls = 0
        self.cleanup: list[str] = []

    async def export(self, spans: Sequence[ReadableSpan]) -> Any:  # type: ignore[override]
        self.calls += 1
        first = self.calls == 1
        loop = asyncio.get_running_loop()
        try:
            if first and self.how == "stop":
                loop.stop()
            elif first:
                loop.call_soon(sys.exit, 3)
            await asyncio.sleep(0.05)
            return super().export(spans)
        except asyncio.CancelledError:
            self.cleanup.append("cancelled")
            raise


@pytest.mark.timeout(30)
@pytest.mark.parametrize("how", ["callback-raises-SystemExit", "stop"])
def test_an_async_export_torn_through_is_cancelled_into_its_own_cleanup(
    how: str, caplog: pytest.LogCaptureFixture
) -> None:
    # The run's task was cancelled and its loop closed at once: the cancellation never reached the coroutine, whose
    # cleanup (closing a session, say) ran only when the garbage collector got to it, and asyncio logged "Task was
    # destroyed but it is pending!".
    exporter = AsyncInterruptedWhileAwaiting(how)
    processor = spanbatch.BatchSpanProcessor(exporter, schedule_delay_millis=LONG, max_export_batch_size=1)
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(processor)
    tracer = provider.get_tracer("reentry")
    try:
        gc.collect()  # what earlier tests on this worker left (given-up loops' tasks) is not this test's to see
        with caplog.at_level(logging.ERROR, logger="asyncio"):
            tracer.start_span("torn").end()
            processor.force_flush(10_000)
            assert exporter.cleanup == ["cancelled"]
            tracer.start_span("next").end()
            assert processor.force_flush(10_000)
            gc.collect()
        assert exporter.names() == ["next"]
        assert not [r for r in caplog.records if r.name == "asyncio"], caplog.text
        stats = processor.stats()
        assert (stats.exported, stats.dropped["export_failed"]) == (1, 1), stats
    finally:
        processor.shutdown()


@pytest.mark.timeout(60)
def test_an_exporter_whose_shutdown_shuts_its_processor_down_again_does_not_wait_on_itself() -> None:
    # Its export asks for the shutdown, and its own shutdown() asks again: that second call must not wait for the
    # drain, which is waiting for that very shutdown() (before the fix: the whole 10 s export timeout).
    seconds: list[float] = []

    class ShutsDownTwice(RecordingExporter):
        def export(self, spans: Sequence[ReadableSpan]) -> Any:
            if not self.batches:
                all_ended.wait(10)
                processor.shutdown()
            return super().export(spans)

        def shutdown(self, timeout_millis: float = 30000) -> None:
            super().shutdown(timeout_millis)
            started = time.monotonic()
            processor.shutdown()
            seconds.append(time.monotonic() - started)

    all_ended = threading.Event()
    exporter = ShutsDownTwice()
    processor = spanbatch.BatchSpanProcessor(exporter, max_export_batch_size=2, export_timeout_millis=10_000)
    for i in range(6):
        processor.on_end(make_span(f"span {i}"))
    all_ended.set()
    assert wait_until(lambda: seconds, 20)
    assert seconds[0] < 5, seconds
    assert sorted(exporter.names()) == [f"span {i}" for i in range(6)]
