"""A user's test (or an instrumentation) that patches the processor class's ``on_end`` (``on_emit``) after
the processor was made, as ``mock.patch.object(BatchSpanProcessor, "on_end", ...)`` does, sees every span
(log record) the SDK hands over, as with the stock class, and the processor still exports it.
"""

from __future__ import annotations

from typing import Any
from unittest import mock

import pytest
import spanbatch
from opentelemetry._logs import LogRecord
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor as StockBatchLogRecordProcessor
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter


@pytest.mark.timeout(30)
def test_a_class_patch_made_after_the_processor_sees_the_span(processor_class: Any) -> None:
    exporter = InMemorySpanExporter()
    processor = processor_class(exporter)
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(processor)
    with mock.patch.object(processor_class, "on_end", autospec=True, side_effect=processor_class.on_end) as on_end:
        provider.get_tracer(__name__).start_span("patched").end()
    provider.get_tracer(__name__).start_span("unpatched").end()
    assert provider.force_flush(10_000)
    provider.shutdown()
    assert on_end.call_count == 1
    assert [span.name for span in exporter.get_finished_spans()] == ["patched", "unpatched"]


@pytest.mark.timeout(30)
@pytest.mark.parametrize(
    "log_processor_class",
    [StockBatchLogRecordProcessor, spanbatch.BatchLogRecordProcessor],
    ids=["stock", "spanbatch"],
)
def test_a_class_patch_made_after_the_log_processor_sees_the_record(log_processor_class: Any) -> None:
    exporter = InMemoryLogRecordExporter()
    provider = LoggerProvider(shutdown_on_exit=False)
    provider.add_log_record_processor(log_processor_class(exporter))
    original = log_processor_class.on_emit
    with mock.patch.object(log_processor_class, "on_emit", autospec=True, side_effect=original) as on_emit:
        provider.get_logger(__name__).emit(LogRecord(body="patched"))
    provider.get_logger(__name__).emit(LogRecord(body="unpatched"))
    assert provider.force_flush(10_000)
    provider.shutdown()
    assert on_emit.call_count == 1
    assert [record.log_record.body for record in exporter.get_finished_logs()] == ["patched", "unpatched"]
