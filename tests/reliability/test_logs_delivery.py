"""Log records end to end: spanbatch's log processor and its OTLP log exporters (HTTP and gRPC) to a
receiver in another process, every record exactly once, and the span side's faults with exact accounting.

These are the log counterparts of test_receiver_faults.py and test_exporter_faults.py, kept apart on
purpose: they build a LoggerProvider, emit through the SDK logger or a ``LoggingHandler``, and send
with spanbatch's own log exporters, where the span cases use the stock span exporters. The last test is
a pipeline's log side beside its spans (test_pipeline_otlp.py's counterpart).
"""

from __future__ import annotations

import pytest

pytest.importorskip("opentelemetry.exporter.otlp.common.http", reason="needs the OTLP exporters >= 1.45")

import logging
import time
from collections.abc import Callable
from typing import Any

import spanbatch
from opentelemetry.sdk._logs.export import LogRecordExportResult
from spanbatch import BatchLogRecordProcessor
from spanbatch.testing import OTLPReceiver

from tests.helpers import ScriptedExporter, balanced, end_spans, provider_with, run_in_threads, wait_until
from tests.helpers.logs import bridged_logger, emit_events, genai_text, logger_provider_with, spanbatch_log_exporter
from tests.helpers.scenarios import flush_then_shut_down_while_stuck

pytestmark = pytest.mark.timeout(60)
Later = Callable[[Any], Any]  # the ``shutdown_later`` fixture

THREADS = 4
PER_THREAD = 40
SIZES = (2_000, 10_000, 30_000, 100_000)  # characters: a short prompt up to a long completion


def test_every_record_from_several_threads_arrives_exactly_once(receiver: OTLPReceiver, shutdown_later: Later) -> None:
    processor = shutdown_later(BatchLogRecordProcessor(spanbatch_log_exporter(receiver, timeout=10)))
    provider = logger_provider_with(processor)
    logger, handler = bridged_logger(provider, f"genai.{receiver.protocol}")
    expected: dict[str, int] = {}

    def work(thread: int) -> Callable[[], None]:
        bodies = [genai_text(f"t{thread}-{i}", SIZES[i % len(SIZES)]) for i in range(PER_THREAD)]
        expected.update(dict.fromkeys(bodies, 1))

        def emit() -> None:
            for i, body in enumerate(bodies):
                # A GenAI event as instrumentations log it: its name and attributes in ``extra``.
                extra = {"event.name": "gen_ai.choice", "gen_ai.system": "openai", "gen_ai.choice.index": i}
                logger.info("%s", body, extra=extra)

        return emit

    try:
        run_in_threads([work(t) for t in range(THREADS)])
        # And the SDK logger's own event API beside the bridge.
        expected.update(dict.fromkeys(emit_events(provider, 200, "event"), 1))
        assert processor.force_flush(30_000)
        stats = processor.stats()
    finally:
        logger.removeHandler(handler)
    provider.shutdown()

    total = THREADS * PER_THREAD + 200
    assert receiver.wait_for_log_records(total, timeout=20)
    assert receiver.log_bodies() == expected
    assert receiver.stats().log_records == total
    assert (stats.enqueued, stats.exported, stats.dropped_total) == (total, total, 0)
    assert balanced(stats)


def test_receiver_down_from_the_start(receiver: OTLPReceiver, shutdown_later: Later) -> None:
    receiver.set_behaviour("down")
    processor = shutdown_later(
        BatchLogRecordProcessor(spanbatch_log_exporter(receiver, timeout=1), export_timeout_millis=3_000)
    )
    provider = logger_provider_with(processor)
    emit_events(provider, 100)

    started = time.monotonic()
    flushed = processor.force_flush(5_000)
    flush_seconds = time.monotonic() - started
    emit_events(provider, 20, "late")
    started = time.monotonic()
    provider.shutdown()
    shutdown_seconds = time.monotonic() - started
    stats = processor.stats()

    # The exporter gives up on its own 1 s timeout: the flush completes, as a failure.
    assert flushed
    assert flush_seconds < 4.0
    assert shutdown_seconds < 4.0
    assert (stats.enqueued, stats.exported) == (120, 0)
    assert stats.dropped["export_failed"] == stats.dropped_total == 120
    assert balanced(stats)
    receiver.set_behaviour("ok")
    assert receiver.stats().requests == 0


def test_receiver_goes_down_and_comes_back(receiver: OTLPReceiver, shutdown_later: Later) -> None:
    processor = shutdown_later(
        BatchLogRecordProcessor(spanbatch_log_exporter(receiver, timeout=3), schedule_delay_millis=50)
    )
    provider = logger_provider_with(processor)

    before = emit_events(provider, 200, "before")
    assert processor.force_flush(10_000)
    assert receiver.wait_for_log_records(200)
    receiver.set_behaviour("down")
    emit_events(provider, 300, "gap")
    assert processor.force_flush(10_000)
    receiver.set_behaviour("ok")
    after = emit_events(provider, 400, "after")
    assert processor.force_flush(10_000)
    stats = processor.stats()
    provider.shutdown()

    assert receiver.wait_for_log_records(600)
    assert receiver.log_bodies() == dict.fromkeys(before + after, 1)
    assert stats.exported == 600
    assert stats.dropped["export_failed"] == stats.dropped_total == 300
    assert balanced(stats)


@pytest.mark.parametrize("status", [503, 429])
def test_transient_rejection_is_retried_once_per_rejection(
    receiver: OTLPReceiver, status: int, shutdown_later: Later
) -> None:
    receiver.set_behaviour("status", status=status, retry_after=0.2, times=2)
    processor = shutdown_later(BatchLogRecordProcessor(spanbatch_log_exporter(receiver, timeout=10)))
    provider = logger_provider_with(processor)
    bodies = emit_events(provider, 150)

    assert processor.force_flush(15_000)
    stats = processor.stats()
    provider.shutdown()
    received = receiver.stats()

    assert (received.rejected, received.accepted) == (2, 1)
    assert receiver.log_bodies() == dict.fromkeys(bodies, 1)
    assert (stats.exported, stats.export_errors, stats.dropped_total) == (150, 0, 0)
    assert balanced(stats)


def test_permanent_503_is_counted_as_export_failed(receiver: OTLPReceiver, shutdown_later: Later) -> None:
    receiver.set_behaviour("status", status=503, retry_after=0.3)
    processor = shutdown_later(
        BatchLogRecordProcessor(spanbatch_log_exporter(receiver, timeout=1), export_timeout_millis=2_000)
    )
    provider = logger_provider_with(processor)
    emit_events(provider, 80)

    started = time.monotonic()
    assert processor.force_flush(5_000)
    elapsed = time.monotonic() - started
    stats = processor.stats()
    provider.shutdown()

    assert elapsed < 3.0
    assert receiver.stats().rejected >= 1
    assert receiver.stats().log_records == 0
    assert stats.exported == 0
    assert stats.dropped["export_failed"] == stats.dropped_total == 80
    assert balanced(stats)


def test_receiver_that_never_answers(receiver: OTLPReceiver, shutdown_later: Later) -> None:
    receiver.set_behaviour("hang")
    # The exporter's own timeout (3 s) is longer than the processor's deadline (1 s).
    processor = shutdown_later(
        BatchLogRecordProcessor(spanbatch_log_exporter(receiver, timeout=3), export_timeout_millis=1_000)
    )
    provider = logger_provider_with(processor)
    emit_events(provider, 100, "hung")
    assert receiver.wait_for_requests(1)

    flush_seconds, shutdown_seconds, at_shutdown = flush_then_shut_down_while_stuck(
        processor, provider, lambda: emit_events(provider, 40, "queued")
    )
    # The exporter gives up on its own timeout; the abandoned batch is then counted as failed.
    assert wait_until(lambda: processor.stats().in_flight == 0, timeout=10)
    final = processor.stats()
    receiver.set_behaviour("ok")

    assert 0.25 <= flush_seconds < 1.0
    assert shutdown_seconds < 2.0
    assert at_shutdown.in_flight + at_shutdown.dropped["export_failed"] == 100
    assert at_shutdown.dropped["shutdown"] == 40
    assert balanced(at_shutdown)
    assert final.exported == 0
    assert (final.dropped["shutdown"], final.dropped["export_failed"], final.dropped_total) == (40, 100, 140)
    assert balanced(final)
    assert receiver.stats().log_records == 0


@pytest.mark.parametrize("action", ["fail", "raise", "exit", "none", "junk"])
def test_failed_export_drops_its_batch_and_the_worker_goes_on(
    action: str, caplog: pytest.LogCaptureFixture, shutdown_later: Later
) -> None:
    exporter = ScriptedExporter(action, results=LogRecordExportResult)
    processor = shutdown_later(
        BatchLogRecordProcessor(exporter, max_export_batch_size=50, schedule_delay_millis=10_000)
    )
    provider = logger_provider_with(processor)

    emit_events(provider, 50, "first")
    assert processor.force_flush(5_000)
    second = emit_events(provider, 30, "second")
    assert processor.force_flush(5_000)
    stats = processor.stats()
    provider.shutdown()

    assert exporter.calls == 2
    assert [r.log_record.body for r in exporter.spans] == second
    assert (stats.enqueued, stats.exported, stats.export_errors) == (80, 30, 1)
    assert stats.dropped["export_failed"] == stats.dropped_total == 50
    assert balanced(stats)
    if action != "fail":
        # Every failure that is not a plain FAILURE says what happened.
        assert any(r.levelno >= logging.WARNING and r.name == "spanbatch" for r in caplog.records)


def test_hanging_exporter_bounds_flush_and_shutdown(shutdown_later: Later) -> None:
    exporter = ScriptedExporter("block", results=LogRecordExportResult)
    processor = shutdown_later(
        BatchLogRecordProcessor(exporter, max_export_batch_size=100, export_timeout_millis=1_000)
    )
    provider = logger_provider_with(processor)
    stuck = emit_events(provider, 100, "stuck")
    assert wait_until(lambda: exporter.calls == 1)

    flush_seconds, shutdown_seconds, at_shutdown = flush_then_shut_down_while_stuck(
        processor, provider, lambda: emit_events(provider, 40, "queued")
    )
    exporter.release.set()
    # The abandoned export finishes later; its records count as exported when it returns.
    assert wait_until(lambda: processor.stats().in_flight == 0)
    final = processor.stats()

    assert 0.25 <= flush_seconds < 1.0
    assert 0.9 <= shutdown_seconds < 2.0
    assert (at_shutdown.in_flight, at_shutdown.dropped["shutdown"]) == (100, 40)
    assert balanced(at_shutdown)
    assert (final.exported, final.dropped_total) == (100, 40)
    assert balanced(final)
    assert [r.log_record.body for r in exporter.spans] == stuck


@pytest.mark.parametrize("grpc_fault", ["ok", "hang"])
def test_pipeline_ships_every_record_beside_the_spans_to_each_backend(grpc_fault: str, shutdown_later: Later) -> None:
    with OTLPReceiver("http") as http, OTLPReceiver("grpc") as grpc:
        grpc.set_behaviour(grpc_fault)  # type: ignore[arg-type]
        tracer_provider, logger_provider = provider_with(), logger_provider_with()
        pipeline = shutdown_later(
            spanbatch.install(
                tracer_provider,
                {"http": http.span_exporter(timeout=5), "grpc": grpc.span_exporter(timeout=2)},
                logger_provider=logger_provider,
                log_exporters={
                    "http": spanbatch_log_exporter(http, timeout=5),
                    "grpc": spanbatch_log_exporter(grpc, timeout=2),
                },
            )
        )
        ids = end_spans(tracer_provider, 500)
        bodies = emit_events(logger_provider, 1000)
        started = time.monotonic()
        ended = pipeline.end_session(1_000 if grpc_fault == "hang" else 10_000)
        session_seconds = time.monotonic() - started
        assert pipeline.logs is not None
        logs = pipeline.logs.stats_by_backend()
        pipeline.shutdown(500)

        assert ended == {"http": True, "grpc": grpc_fault == "ok"}
        assert session_seconds < 3.0
        assert http.log_bodies() == dict.fromkeys(bodies, 1)
        assert http.span_ids() == ids
        assert (logs["http"].exported, logs["http"].dropped_total) == (1000, 0)
        assert all(balanced(stats) for stats in logs.values())
        if grpc_fault == "ok":
            assert grpc.log_bodies() == dict.fromkeys(bodies, 1)
            assert grpc.span_ids() == ids
            assert logs["grpc"].exported == 1000
        else:
            grpc.set_behaviour("ok")
            assert logs["grpc"].exported == 0
            assert grpc.stats().log_records == 0
