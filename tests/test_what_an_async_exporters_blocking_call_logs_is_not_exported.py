"""A line an async exporter's blocking call logs (in ``asyncio.to_thread``, where README runs its sends, as urllib3
logs each connection) comes back through a LoggingHandler on the root logger from that call's thread. It is the
export's own output, as a line logged on the export thread is: dropped and counted (``export_thread``), never
queued, or each export feeds the next one its own line, for ever (opentelemetry-python #3193)."""

from __future__ import annotations

import asyncio
import logging
import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pytest
import spanbatch
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler, ReadableLogRecord
from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult

from tests.helpers import LONG, balanced

pytestmark = pytest.mark.timeout(60)
Later = Callable[[Any], Any]  # the ``shutdown_later`` fixture


class SendsInAThread(LogRecordExporter):
    """Sends each batch from ``asyncio.to_thread``; the send logs a line, as an HTTP client does."""

    def __init__(self) -> None:
        self.bodies: list[object] = []

    def _send(self, batch: Sequence[ReadableLogRecord]) -> None:
        logging.getLogger("tests.http_client").warning("Starting new HTTP connection (1): backend:4318")
        self.bodies.extend(record.log_record.body for record in batch)

    async def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:  # type: ignore[override]
        await asyncio.to_thread(self._send, batch)
        return LogRecordExportResult.SUCCESS

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


@pytest.fixture
def bridged_root(shutdown_later: Later) -> Iterator[tuple[spanbatch.BatchLogRecordProcessor, SendsInAThread]]:
    """The processor behind a real LoggingHandler on the root logger: every logger's records reach it."""
    exporter = SendsInAThread()
    processor = shutdown_later(
        spanbatch.BatchLogRecordProcessor(exporter, schedule_delay_millis=LONG, max_export_batch_size=4)
    )
    provider = LoggerProvider(shutdown_on_exit=False)
    provider.add_log_record_processor(processor)
    with warnings.catch_warnings():  # SDK 1.45 points to the contrib handler; the SDK's is what apps still use
        warnings.simplefilter("ignore", DeprecationWarning)
        handler = LoggingHandler(logger_provider=provider)
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield processor, exporter
    finally:
        root.removeHandler(handler)


def test_a_line_logged_in_to_thread_during_an_export_is_dropped_and_counted_never_exported(
    bridged_root: tuple[spanbatch.BatchLogRecordProcessor, SendsInAThread],
) -> None:
    processor, exporter = bridged_root
    app = logging.getLogger("tests.app")
    for i in range(6):
        app.warning("app %d", i)
    assert processor.force_flush(10_000)  # two exports (4 and 2 records), a line from each send
    assert processor.force_flush(10_000)  # nothing queued: the sends' lines were not
    assert sorted(exporter.bodies) == sorted(f"app {i}" for i in range(6))
    stats = processor.stats()
    assert (stats.enqueued, stats.exported, stats.batches, stats.dropped["export_thread"]) == (8, 6, 2, 2)
    assert stats.queued == 0
    assert balanced(stats)
