"""A pipeline ships log records beside its spans: a log lane per backend, one session, one deadline."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

import pytest
import spanbatch
from opentelemetry._logs import LogRecord, NoOpLoggerProvider
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, LogRecordExporter, LogRecordExportResult
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tests.helpers import LONG, balanced

pytestmark = pytest.mark.timeout(30)
Later = Callable[[Any], Any]  # the ``shutdown_later`` fixture


class HangingLogExporter(LogRecordExporter):
    """Blocks every export until ``release`` is set."""

    def __init__(self) -> None:
        self.release = threading.Event()

    def export(self, batch: Sequence[Any]) -> LogRecordExportResult:
        self.release.wait(20)
        return LogRecordExportResult.SUCCESS

    def shutdown(self) -> None:
        self.release.set()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


def bodies(exporter: InMemoryLogRecordExporter) -> list[object]:
    return [record.log_record.body for record in exporter.get_finished_logs()]


def test_install_ships_spans_and_log_records_to_every_backend_in_one_session(shutdown_later: Later) -> None:
    tracer_provider, logger_provider = TracerProvider(), LoggerProvider()
    spans = {"a": InMemorySpanExporter(), "b": InMemorySpanExporter()}
    logs = {"a": InMemoryLogRecordExporter(), "b": InMemoryLogRecordExporter()}
    pipeline = shutdown_later(
        spanbatch.install(
            tracer_provider, spans, logger_provider=logger_provider, log_exporters=logs, schedule_delay_millis=LONG
        )
    )
    with pipeline.session(), tracer_provider.get_tracer("t").start_as_current_span("turn"):
        logger_provider.get_logger("t").emit(LogRecord(body="said"))
    # The session's end flushed both signals: nothing waits for the (long) schedule delay.
    assert [[s.name for s in exporter.get_finished_spans()] for exporter in spans.values()] == [["turn"], ["turn"]]
    assert [bodies(exporter) for exporter in logs.values()] == [["said"], ["said"]]
    assert pipeline.logs is not None
    assert set(pipeline.logs.stats_by_backend()) == {"a", "b"}
    log_stats = pipeline.logs.stats()
    assert (log_stats.enqueued, log_stats.exported) == (2, 2)
    assert balanced(log_stats)
    assert balanced(pipeline.stats())


def test_a_backend_is_flushed_only_when_both_its_signals_are(shutdown_later: Later) -> None:
    tracer_provider, logger_provider = TracerProvider(), LoggerProvider()
    hanging = HangingLogExporter()
    pipeline = shutdown_later(
        spanbatch.install(
            tracer_provider,
            {"a": InMemorySpanExporter(), "b": InMemorySpanExporter()},
            logger_provider=logger_provider,
            log_exporters={"a": InMemoryLogRecordExporter(), "b": hanging},
            schedule_delay_millis=LONG,
        )
    )
    tracer_provider.get_tracer("t").start_span("s").end()
    logger_provider.get_logger("t").emit(LogRecord(body="stuck"))
    try:
        assert pipeline.end_session(300) == {"a": True, "b": False}
    finally:
        hanging.release.set()
    pipeline.shutdown()  # both signals' lanes, as end_session flushes both
    assert pipeline.logs is not None
    assert all(lane.core.is_shutdown for lane in pipeline.logs.lanes)
    assert pipeline.logs.stats_by_backend()["b"].exported == 1


def test_log_exporters_need_an_sdk_logger_provider(shutdown_later: Later) -> None:
    with pytest.raises(TypeError, match="LoggerProvider"):
        spanbatch.install(
            TracerProvider(),
            {"a": InMemorySpanExporter()},
            logger_provider=NoOpLoggerProvider(),  # type: ignore[arg-type]
            log_exporters={"a": InMemoryLogRecordExporter()},
        )
    pipeline = shutdown_later(spanbatch.Pipeline({"a": InMemorySpanExporter()}))
    assert pipeline.logs is None


def test_a_pipelines_log_lanes_read_the_log_processors_queue_full_variables(
    monkeypatch: pytest.MonkeyPatch, shutdown_later: Later
) -> None:
    monkeypatch.setenv("OTEL_BSP_ON_QUEUE_FULL", "block")
    monkeypatch.setenv("OTEL_BLRP_ON_QUEUE_FULL", "drop")
    pipeline = shutdown_later(
        spanbatch.Pipeline({"a": InMemorySpanExporter()}, log_exporters={"a": InMemoryLogRecordExporter()})
    )
    assert pipeline.logs is not None
    assert (pipeline.lanes[0].policies.drop_policy, pipeline.logs.lanes[0].policies.drop_policy) == ("block", "oldest")
