"""A pipeline with ``log_exporters`` can itself be added to the ``LoggerProvider`` (beside, or instead of,
``pipeline.logs``): it hands log records to its log side, so a user who registers the one object that ships
"spans AND log records" with both providers gets both delivered, and both providers' ``force_flush`` and
``shutdown`` calls work on it. Without log exporters it says what is wrong rather than an AttributeError."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import spanbatch
from opentelemetry._logs import LogRecord
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from spanbatch.testing import OTLPReceiver

from tests.helpers import LONG, balanced

pytestmark = pytest.mark.timeout(60)
Later = Callable[[Any], Any]  # the ``shutdown_later`` fixture


def test_a_pipeline_added_to_both_providers_ships_both_signals(receiver: OTLPReceiver, shutdown_later: Later) -> None:
    tracer_provider, logger_provider = TracerProvider(), LoggerProvider()
    pipeline = shutdown_later(
        spanbatch.Pipeline(
            {"a": receiver.span_exporter(timeout=5)},
            log_exporters={"a": receiver.log_exporter(timeout=5)},
            schedule_delay_millis=LONG,
        )
    )
    tracer_provider.add_span_processor(pipeline)
    logger_provider.add_log_record_processor(pipeline)  # type: ignore[arg-type]
    tracer_provider.get_tracer("t").start_span("s").end()
    logger_provider.get_logger("t").emit(LogRecord(body="said"))

    assert logger_provider.force_flush(10_000)
    assert receiver.log_bodies() == {"said": 1}
    assert receiver.span_names() == {"s": 1}
    logger_provider.shutdown()
    tracer_provider.shutdown()
    assert pipeline.logs is not None
    assert (pipeline.logs.stats().exported, pipeline.stats().exported) == (1, 1)
    assert balanced(pipeline.logs.stats())


def test_a_pipeline_without_log_exporters_refuses_log_records_by_name(shutdown_later: Later) -> None:
    pipeline = shutdown_later(spanbatch.Pipeline({"a": InMemorySpanExporter()}))
    with pytest.raises(TypeError, match="log_exporters"):
        pipeline.on_emit(object())
