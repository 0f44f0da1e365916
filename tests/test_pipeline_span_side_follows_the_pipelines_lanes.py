"""The span side ``install()`` gives the ``TracerProvider`` (``PipelineSpans``) pushes into the pipeline's lanes as
they are now: a forked child's own, and after the provider's shutdown the ones that count a late span as the
stock processor's log line says, while the log side goes on."""

from __future__ import annotations

import logging
import os
from typing import Any

import pytest
import spanbatch
from opentelemetry._logs import LogRecord
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter
from opentelemetry.sdk.trace import TracerProvider
from spanbatch.pipeline import PipelineSpans

from tests.helpers import LONG, RecordingExporter, balanced, in_child

pytestmark = pytest.mark.timeout(60)


def installed(
    logs: InMemoryLogRecordExporter | None = None, logger_provider: LoggerProvider | None = None
) -> tuple[TracerProvider, spanbatch.Pipeline, RecordingExporter]:
    provider, exporter = TracerProvider(shutdown_on_exit=False), RecordingExporter()
    pipeline = spanbatch.install(
        provider,
        {"a": exporter},
        logger_provider=logger_provider,
        log_exporters={"a": logs} if logs else None,
        schedule_delay_millis=LONG,
    )
    return provider, pipeline, exporter


def test_install_adds_the_pipelines_span_side() -> None:
    provider, pipeline, _ = installed()
    processors = provider._active_span_processor._span_processors
    assert [type(p) for p in processors] == [PipelineSpans]
    assert repr(processors[0]).startswith("PipelineSpans(Pipeline(a, ")
    pipeline.shutdown()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_ends_spans_into_its_own_lanes() -> None:
    provider, pipeline, exporter = installed()
    provider.get_tracer("t").start_span("parent").end()

    def child() -> dict[str, Any]:
        provider.get_tracer("t").start_span("child").end()
        flushed = provider.force_flush(10_000)
        return {"flushed": flushed, "names": exporter.names(), "balanced": balanced(pipeline.stats())}

    report = in_child(child)
    assert report == {"flushed": True, "names": ["child"], "balanced": True}
    assert provider.force_flush(10_000)
    assert exporter.names() == ["parent"]
    pipeline.shutdown()


def test_after_the_providers_shutdown_a_late_span_is_dropped_as_stock_logs_it_and_logs_go_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    logs, logger_provider = InMemoryLogRecordExporter(), LoggerProvider(shutdown_on_exit=False)
    provider, pipeline, exporter = installed(logs, logger_provider)
    tracer = provider.get_tracer("t")
    tracer.start_span("before").end()
    provider.shutdown()
    with caplog.at_level(logging.INFO):
        tracer.start_span("late").end()
    assert pipeline.stats().dropped["shutdown"] == 1
    assert any(record.name.startswith("opentelemetry") for record in caplog.records), caplog.text
    assert exporter.names() == ["before"]
    logger_provider.get_logger("t").emit(LogRecord(body="after the spans"))
    assert logger_provider.force_flush(10_000)
    assert [data.log_record.body for data in logs.get_finished_logs()] == ["after the spans"]
    logger_provider.shutdown()
    assert pipeline.logs is not None
    assert balanced(pipeline.stats())
    assert balanced(pipeline.logs.stats())
