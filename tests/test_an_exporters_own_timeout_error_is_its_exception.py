"""An exporter that raises ``TimeoutError`` itself (a socket timeout) is an exporter that raised: logged as the stock
processor logs it, with its traceback, on the stock logger. Only an async export that spanbatch cancels at
``export_timeout_millis`` is told as timed out."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import pytest
import spanbatch
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from tests.helpers import end_spans

pytestmark = pytest.mark.timeout(30)


class RaisesTimeout(SpanExporter):
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        raise TimeoutError("timed out reading from the socket")


class ManyRaisesTimeout(RaisesTimeout):
    def export_many(self, batches: Sequence[Sequence[ReadableSpan]]) -> list[SpanExportResult]:
        raise TimeoutError("timed out reading from the socket")


@pytest.mark.parametrize("exporter", [RaisesTimeout(), ManyRaisesTimeout()], ids=["export", "export_many"])
def test_an_exporters_own_timeout_error_is_logged_as_stock_logs_an_exception(
    exporter: Any, caplog: pytest.LogCaptureFixture
) -> None:
    processor = spanbatch.BatchSpanProcessor(exporter)
    try:
        with caplog.at_level(logging.ERROR):
            end_spans(processor, 5)
            processor.force_flush(10_000)
    finally:
        processor.shutdown()
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not any("timed out after" in r.getMessage() for r in errors), [r.getMessage() for r in errors]
    stock = [r for r in errors if r.name == "opentelemetry.sdk._shared_internal"]
    assert stock, [(r.name, r.getMessage()) for r in errors]
    assert stock[0].exc_info is not None
    assert processor.stats().dropped["export_failed"] == 5
