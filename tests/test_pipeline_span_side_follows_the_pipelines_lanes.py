"""The span side ``install()`` gives the ``TracerProvider`` (``PipelineSpans``) pushes into the pipeline's lanes as
they are now: a forked child's own, and after the provider's shutdown the ones that count a late span as the
stock processor's log line says, while the log side goes on. That shutdown waits the span lanes' own export
timeout, as the stock processor's, not a log backend's."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from typing import Any

import pytest
import spanbatch
from opentelemetry._logs import LogRecord
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter

from tests.helpers import LONG, HangingExporter, RecordingExporter, balanced, in_child

pytestmark = pytest.mark.timeout(60)
Later = Callable[[Any], Any]  # the ``shutdown_later`` fixture


def installed(
    shutdown_later: Later,
    exporter: SpanExporter,
    logs: dict[str, InMemoryLogRecordExporter] | None = None,
    logger_provider: LoggerProvider | None = None,
) -> tuple[TracerProvider, spanbatch.Pipeline]:
    provider = TracerProvider(shutdown_on_exit=False)
    pipeline = spanbatch.install(
        provider, {"a": exporter}, logger_provider=logger_provider, log_exporters=logs, schedule_delay_millis=LONG
    )
    return provider, shutdown_later(pipeline)


def test_install_adds_the_pipelines_span_side(shutdown_later: Later) -> None:
    provider, pipeline = installed(shutdown_later, RecordingExporter())
    (side,) = provider._active_span_processor._span_processors
    assert isinstance(side, spanbatch.PipelineSpans)
    assert side.pipeline is pipeline
    assert side.on_end is pipeline.on_end  # the Rust push itself
    assert repr(side).startswith("PipelineSpans(Pipeline(a, ")


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_ends_spans_into_its_own_lanes(shutdown_later: Later) -> None:
    exporter = RecordingExporter()
    provider, pipeline = installed(shutdown_later, exporter)
    provider.get_tracer("t").start_span("parent").end()

    def child() -> dict[str, Any]:
        provider.get_tracer("t").start_span("child").end()
        flushed = provider.force_flush(10_000)
        return {"flushed": flushed, "names": exporter.names(), "balanced": balanced(pipeline.stats())}

    report = in_child(child)
    assert report == {"flushed": True, "names": ["child"], "balanced": True}
    assert provider.force_flush(10_000)
    assert exporter.names() == ["parent"]


def test_after_the_providers_shutdown_a_late_span_is_dropped_as_stock_logs_it_and_logs_go_on(
    shutdown_later: Later, caplog: pytest.LogCaptureFixture
) -> None:
    exporter, logs, logger_provider = RecordingExporter(), InMemoryLogRecordExporter(), LoggerProvider()
    provider, pipeline = installed(shutdown_later, exporter, {"a": logs}, logger_provider)
    tracer = provider.get_tracer("t")
    tracer.start_span("before").end()
    provider.shutdown()
    with caplog.at_level(logging.INFO):
        tracer.start_span("late").end()
    assert pipeline.stats().dropped["shutdown"] == 1
    assert "Shutdown called, ignoring Span." in caplog.text
    assert exporter.names() == ["before"]
    logger_provider.get_logger("t").emit(LogRecord(body="after the spans"))
    assert logger_provider.force_flush(10_000)
    assert [data.log_record.body for data in logs.get_finished_logs()] == ["after the spans"]
    logger_provider.shutdown()
    assert pipeline.logs is not None
    assert balanced(pipeline.stats())
    assert balanced(pipeline.logs.stats())


def test_the_providers_shutdown_waits_the_span_lanes_export_timeout(
    shutdown_later: Later, hanging_exporter: HangingExporter, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SPANBATCH_A_EXPORT_TIMEOUT_MS", "200")
    monkeypatch.setenv("SPANBATCH_SLOW_EXPORT_TIMEOUT_MS", "5000")  # a backend of log records alone
    provider, _ = installed(
        shutdown_later, hanging_exporter, {"slow": InMemoryLogRecordExporter()}, LoggerProvider(shutdown_on_exit=False)
    )
    provider.get_tracer("t").start_span("s").end()
    provider.force_flush(50)
    assert hanging_exporter.entered.wait(10)
    started = time.monotonic()
    provider.shutdown()
    assert time.monotonic() - started < 2.0  # 0.2 s and the span lane's own wind-down; the log lane's is 5 s
