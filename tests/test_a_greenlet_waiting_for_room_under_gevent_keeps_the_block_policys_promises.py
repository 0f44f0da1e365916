"""Under gevent on 3.11+, a greenlet's wait for room in a full ``drop_policy="block"`` queue is made from Python code,
between tries that never wait (``_room``: paused from inside the Rust push, it crashed exits, see the test of real
threads waiting for room at exit). It keeps every promise of the native wait, which 3.10 still makes: the waiting item
counts as ``queued`` (the stats balance meanwhile), it is queued once there is room, dropped as ``queue_full`` after
``block_timeout_millis`` or a Ctrl-C (raised), as ``shutdown`` once shutdown begins; a pipeline's blocked lanes each
wait, and a log processor's too. Without gevent, ``on_end`` is still the Rust push itself."""

from __future__ import annotations

import json
import sys

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from spanbatch import BatchSpanProcessor, Pipeline
from spanbatch._core import BatchCore, FanOut

from tests.helpers.apps import clean_env, run_app
from tests.helpers.spans import make_span

pytestmark = pytest.mark.timeout(120)

# A lane of one whose export is held until ``open()``: one span in flight, one queued, the next waits for room.
APP = """
from gevent import monkey

monkey.patch_all()
import json
import os
import signal
import sys
import time

import gevent
import spanbatch
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs import export as log_export
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

real_lock = monkey.get_original("_thread", "allocate_lock")


LOG_RESULT = getattr(log_export, "LogRecordExportResult", None) or log_export.LogExportResult


class Held:
    result = SpanExportResult.SUCCESS

    def __init__(self):
        self.gate = real_lock()
        self.gate.acquire()
        self.exported = 0

    def export(self, items):
        with self.gate:
            self.exported += len(items)
        return self.result

    def open(self):
        self.gate.release()

    def shutdown(self):
        pass

    def force_flush(self, timeout_millis=30000):
        return True


BLOCK = dict(max_queue_size=1, max_export_batch_size=1, schedule_delay_millis=1, drop_policy="block")


def filled(timeout_millis, **named):
    exporters = {name: Held() for name in named or {"held": True}}
    for name, full in named.items():
        if not full:
            exporters[name].open()
    if named:
        processor = spanbatch.Pipeline(exporters, block_timeout_millis=timeout_millis, **BLOCK)
        held = [lane for lane in processor.lanes if named[lane.name]]
    else:
        processor = spanbatch.BatchSpanProcessor(exporters["held"], block_timeout_millis=timeout_millis, **BLOCK)
        held = processor.lanes
    provider = TracerProvider()
    provider.add_span_processor(processor)
    tracer = provider.get_tracer("t")
    for name in ("in flight", "queued"):
        tracer.start_span(name).end()
        while sum(lane.core.stats().in_flight for lane in held) < len(held):
            gevent.sleep(0.001)
    return exporters, processor, tracer


def counts(stats):
    balanced = stats.enqueued == stats.exported + stats.queued + stats.in_flight + sum(stats.dropped.values())
    return {"enqueued": stats.enqueued, "queued": stats.queued, "exported": stats.exported, "balanced": balanced,
            **{reason: n for reason, n in stats.dropped.items() if n}}


def end_interrupted(tracer):
    # Ends a span whose wait for room a Ctrl-C interrupts 0.1 s in; records how the end came out and how long.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    gevent.spawn_later(0.1, os.kill, os.getpid(), signal.SIGINT)
    started = time.monotonic()
    try:
        tracer.start_span("interrupted").end()
        report["outcome"] = "returned"
    except KeyboardInterrupt:
        report["outcome"] = "KeyboardInterrupt"
    report["seconds"] = time.monotonic() - started


report = {"python_frame": None}
case = sys.argv[1]
if case == "room":
    exporters, processor, tracer = filled(30_000)
    report["python_frame"] = not type(processor.on_end).__name__.startswith("builtin")
    waiter = gevent.spawn(lambda: tracer.start_span("waits").end())
    gevent.sleep(0.1)
    report["waiting"] = not waiter.dead
    report["meanwhile"] = counts(processor.stats())
    exporters["held"].open()
    waiter.join(10)
    report["flushed"] = processor.force_flush(10_000)
    report["after"] = counts(processor.stats())
elif case == "timeout":
    exporters, processor, tracer = filled(100)
    started = time.monotonic()
    tracer.start_span("gives up").end()
    report["seconds"] = time.monotonic() - started
    report["after"] = counts(processor.stats())
    exporters["held"].open()
elif case == "shutdown":
    exporters, processor, tracer = filled(30_000)
    waiter = gevent.spawn(lambda: tracer.start_span("waits").end())
    gevent.sleep(0.1)
    started = time.monotonic()
    processor.shutdown(300)
    waiter.join(5)
    report["seconds"] = time.monotonic() - started
    report["waiting"] = not waiter.dead
    report["after"] = counts(processor.stats())
    exporters["held"].open()
elif case == "ctrl_c":
    exporters, processor, tracer = filled(30_000)
    end_interrupted(tracer)
    report["after"] = counts(processor.stats())
    exporters["held"].open()
elif case == "pipeline_ctrl_c":
    exporters, processor, tracer = filled(30_000, full=True, also_full=True)
    end_interrupted(tracer)
    report["after"] = {name: counts(stats) for name, stats in processor.stats_by_backend().items()}
    exporters["full"].open()
    exporters["also_full"].open()
elif case == "pipeline":
    exporters, processor, tracer = filled(100, full=True, free=False, also_full=True)
    report["python_frame"] = not type(processor.on_end).__name__.startswith("builtin")
    started = time.monotonic()
    tracer.start_span("waits twice").end()
    report["seconds"] = time.monotonic() - started
    processor.flush_by_backend(50)
    report["after"] = {name: counts(stats) for name, stats in processor.stats_by_backend().items()}
    exporters["full"].open()
    exporters["also_full"].open()
elif case == "logs":
    exporter = Held()
    processor = spanbatch.BatchLogRecordProcessor(exporter, block_timeout_millis=100, **BLOCK)
    provider = LoggerProvider()
    provider.add_log_record_processor(processor)
    logger = provider.get_logger("t")
    logger.emit(body="in flight")
    while processor.stats().in_flight == 0:
        gevent.sleep(0.001)
    logger.emit(body="queued")
    waiter = gevent.spawn(lambda: logger.emit(body="waits"))
    gevent.sleep(0.05)
    report["meanwhile"] = counts(processor.stats())
    waiter.join(5)
    report["after"] = counts(processor.stats())
    exporter.open()
elif case == "pipeline_logs":
    exporters = {"full": Held(), "free": Held()}
    for exporter in exporters.values():
        exporter.result = LOG_RESULT.SUCCESS
    exporters["free"].open()
    pipeline = spanbatch.Pipeline({"full": Held()}, log_exporters=exporters, block_timeout_millis=100, **BLOCK)
    provider = LoggerProvider()
    provider.add_log_record_processor(pipeline.logs)
    logger = provider.get_logger("t")
    full = [lane for lane in pipeline.logs.lanes if lane.name == "full"]
    logger.emit(body="in flight")
    while full[0].core.stats().in_flight == 0:
        gevent.sleep(0.001)
    logger.emit(body="queued")
    started = time.monotonic()
    logger.emit(body="waits")
    report["seconds"] = time.monotonic() - started
    free = [lane for lane in pipeline.logs.lanes if lane.name == "free"]
    while free[0].core.stats().exported < 3 and time.monotonic() < started + 5:
        gevent.sleep(0.005)
    report["after"] = {name: counts(stats) for name, stats in pipeline.logs.stats_by_backend().items()}
    exporters["full"].open()
print(json.dumps(report))
"""

FRAME = sys.version_info >= (3, 11)


def run(case: str) -> dict[str, object]:
    pytest.importorskip("gevent")
    done = run_app(APP, case, env=clean_env(), timeout=60)
    assert done.returncode == 0, (done.returncode, done.stderr[-3000:])
    report: dict[str, object] = json.loads(done.stdout.splitlines()[-1])
    return report


def test_a_waiting_span_counts_as_queued_and_is_queued_once_there_is_room() -> None:
    report = run("room")
    assert report["python_frame"] is FRAME
    assert report["waiting"] is True
    assert report["meanwhile"] == {"enqueued": 3, "queued": 2, "exported": 0, "balanced": True}
    assert report["flushed"] is True
    assert report["after"] == {"enqueued": 3, "queued": 0, "exported": 3, "balanced": True}


def test_a_wait_without_room_ends_at_the_block_timeout_as_queue_full() -> None:
    report = run("timeout")
    assert isinstance(report["seconds"], float)
    assert 0.09 <= report["seconds"] < 3, report
    assert report["after"] == {"enqueued": 3, "queued": 1, "exported": 0, "balanced": True, "queue_full": 1}


def test_shutdown_ends_the_wait_and_counts_the_span_as_shutdown() -> None:
    report = run("shutdown")
    assert report["waiting"] is False
    assert isinstance(report["seconds"], float)
    assert report["seconds"] < 5, report
    # The waiting span and the queued one; the one in flight stays there (its export is held).
    assert report["after"] == {"enqueued": 3, "queued": 0, "exported": 0, "balanced": True, "shutdown": 2}


def test_ctrl_c_ends_the_wait_counts_the_span_as_queue_full_and_is_raised() -> None:
    report = run("ctrl_c")
    assert report["outcome"] == "KeyboardInterrupt"
    assert isinstance(report["seconds"], float)
    assert report["seconds"] < 5, report
    assert report["after"] == {"enqueued": 3, "queued": 1, "exported": 0, "balanced": True, "queue_full": 1}


def test_each_full_lane_of_a_pipeline_waits_and_drops_on_its_own() -> None:
    report = run("pipeline")
    assert report["python_frame"] is FRAME
    assert isinstance(report["seconds"], float)
    assert 0.19 <= report["seconds"] < 5, report  # each blocked lane adds its own wait
    after = report["after"]
    assert isinstance(after, dict)
    full = {"enqueued": 3, "queued": 1, "exported": 0, "balanced": True, "queue_full": 1}
    assert after == {
        "full": full,
        "also_full": full,
        "free": {"enqueued": 3, "queued": 0, "exported": 3, "balanced": True},
    }


def test_ctrl_c_in_a_pipelines_wait_spares_the_lanes_after_it_their_wait() -> None:
    report = run("pipeline_ctrl_c")
    assert report["outcome"] == "KeyboardInterrupt"
    assert isinstance(report["seconds"], float)
    assert report["seconds"] < 5, report  # not after the second lane's 30 s
    full = {"enqueued": 3, "queued": 1, "exported": 0, "balanced": True, "queue_full": 1}
    assert report["after"] == {"full": full, "also_full": full}


def test_a_log_record_waits_for_room_as_a_span_does() -> None:
    report = run("logs")
    assert report["meanwhile"] == {"enqueued": 3, "queued": 2, "exported": 0, "balanced": True}
    assert report["after"] == {"enqueued": 3, "queued": 1, "exported": 0, "balanced": True, "queue_full": 1}


def test_a_log_record_waits_in_each_full_lane_of_a_pipelines_log_side() -> None:
    report = run("pipeline_logs")
    assert isinstance(report["seconds"], float)
    assert 0.09 <= report["seconds"] < 5, report
    assert report["after"] == {
        "full": {"enqueued": 3, "queued": 1, "exported": 0, "balanced": True, "queue_full": 1},
        "free": {"enqueued": 3, "queued": 0, "exported": 3, "balanced": True},
    }


def test_without_gevent_on_end_is_still_the_rust_push() -> None:
    processor = BatchSpanProcessor(InMemorySpanExporter(), drop_policy="block")
    pipeline = Pipeline({"a": InMemorySpanExporter(), "b": InMemorySpanExporter()}, drop_policy="block")
    try:
        for engine in (processor, pipeline):
            assert type(engine.on_end).__name__ == "builtin_function_or_method", engine.on_end
        assert processor.on_end == processor.lanes[0].core.on_end
    finally:
        processor.shutdown()
        pipeline.shutdown()


def test_a_refused_span_handed_back_counts_as_queued_until_it_settles_once() -> None:
    # The Rust side alone: a core of one, never drained, under ``block``.
    core = BatchCore(1, 60_000.0, 1, drop_policy="block", block_timeout_millis=1000)
    fan_out = FanOut([core])
    assert fan_out.on_end_handing_back(make_span("queued")) == []
    waits = fan_out.on_end_handing_back(make_span("refused"))
    assert len(waits) == 1
    assert waits[0].block_timeout_millis == 1000
    assert waits[0].try_push() is False
    stats = core.stats()
    assert (stats.enqueued, stats.queued, stats.dropped["queue_full"]) == (2, 2, 0)
    waits[0].give_up()
    waits[0].give_up()
    assert waits[0].try_push() is True  # settled: nothing more to push
    stats = core.stats()
    assert (stats.enqueued, stats.queued, stats.dropped["queue_full"]) == (2, 1, 1)
    # One let go unsettled (its caller interrupted before it could settle it) is dropped as it goes.
    waits = fan_out.on_end_handing_back(make_span("let go"))
    assert core.stats().queued == 2
    del waits
    stats = core.stats()
    assert (stats.enqueued, stats.queued, stats.dropped["queue_full"]) == (3, 1, 2)
    core.begin_shutdown()
    core.abandon()
