"""Read-ahead for log records: an exporter whose class declares a ``log_encoder`` gets each batch as the
``LogRequest`` that encoder read it into while it filled, byte-identical to the stock request."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pytest
import spanbatch
from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, LogRecordExporter, LogRecordExportResult
from spanbatch._core import LogEncoder, LogRequest

from tests.helpers import LONG, balanced

pytestmark = pytest.mark.timeout(30)
Later = Callable[[Any], Any]  # the ``shutdown_later`` fixture


class LogEncodingExporter(LogRecordExporter):
    """Its class declares a ``log_encoder``: spanbatch hands it LogRequests; records what it got."""

    def __init__(self) -> None:
        self.encoder = LogEncoder()
        self.batches: list[Any] = []

    @property
    def log_encoder(self) -> LogEncoder:
        return self.encoder

    def export(self, batch: Sequence[Any] | LogRequest) -> LogRecordExportResult:
        self.batches.append(batch)
        return LogRecordExportResult.SUCCESS

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


def emit(provider: LoggerProvider, count: int) -> None:
    logger = provider.get_logger("app")
    for i in range(count):
        logger.emit(body=f"record {i}", attributes={"i": i})


def test_a_log_encoder_gets_its_batches_read_into_log_requests(shutdown_later: Later) -> None:
    exporter = LogEncodingExporter()
    processor = shutdown_later(
        spanbatch.BatchLogRecordProcessor(exporter, schedule_delay_millis=LONG, max_export_batch_size=64)
    )
    reference = InMemoryLogRecordExporter()
    provider = LoggerProvider()
    provider.add_log_record_processor(processor)
    stock_side = spanbatch.BatchLogRecordProcessor(reference, schedule_delay_millis=LONG, max_export_batch_size=64)
    provider.add_log_record_processor(shutdown_later(stock_side))
    emit(provider, 64)
    assert processor.force_flush(10_000)
    assert stock_side.force_flush(10_000)
    assert [type(batch) for batch in exporter.batches] == [LogRequest]
    # The request read ahead is the one stock encodes for the same records.
    assert exporter.batches[0].to_bytes() == encode_logs(reference.get_finished_logs()).SerializeToString()
    stats = processor.stats()
    assert (stats.enqueued, stats.exported) == (64, 64)
    assert balanced(stats)
