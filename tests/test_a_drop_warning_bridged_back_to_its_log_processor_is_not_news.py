"""A LoggingHandler on the root logger hands spanbatch's own drop warnings back to the log processor that logged them:
on its export thread, where they are dropped (``export_thread``), or after its shutdown (``shutdown``). Counted, they
must not become the next warning's news: one full queue would otherwise be followed by a warning about that warning at
every interval for as long as the application logs, and by one more at shutdown, each about nothing but the one
before (the stock processor logs its one line about a full queue and nothing after it)."""

from __future__ import annotations

import functools
import logging
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pytest
import spanbatch
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler, ReadableLogRecord
from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult
from spanbatch import _lane
from spanbatch._drops import DropReporter

from tests.helpers import balanced

pytestmark = pytest.mark.timeout(60)

INTERVAL_SECONDS = 0.2  # the drop warnings' interval, 10 s in production: each later report is one interval apart
INTERVALS = 6
STOCK_LOGGER = "opentelemetry.sdk._shared_internal"


class GatedExporter(LogRecordExporter):
    """Exports nothing while ``gate`` is clear (``entered`` says an export began); counts what it took."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.entered = threading.Event()
        self.exported = 0

    def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        self.entered.set()
        self.gate.wait(30)
        self.exported += len(batch)
        return LogRecordExportResult.SUCCESS

    def shutdown(self) -> None:
        self.gate.set()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


class Lines(logging.Handler):
    """Keeps spanbatch's own lines."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []
        self.stock_lines = 0  # the stock processor's, which spanbatch logs with its own (its logger's filter lets some)

    def emit(self, record: logging.LogRecord) -> None:
        if record.name == "spanbatch":
            self.lines.append(record.getMessage())
        self.stock_lines += record.name == STOCK_LOGGER


@pytest.fixture
def bridged(
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[tuple[spanbatch.BatchLogRecordProcessor, GatedExporter, Lines, Callable[[], None]]]:
    """A log processor behind a LoggingHandler on the root logger, its drop warnings kept by ``Lines``."""
    monkeypatch.setattr(_lane, "DropReporter", functools.partial(DropReporter, interval_seconds=INTERVAL_SECONDS))
    exporter = GatedExporter()
    processor = spanbatch.BatchLogRecordProcessor(
        exporter, schedule_delay_millis=10, max_export_batch_size=2, max_queue_size=2
    )
    provider = LoggerProvider(shutdown_on_exit=False)
    provider.add_log_record_processor(processor)
    with warnings.catch_warnings():  # SDK 1.45 points to the contrib handler; the SDK's is what apps still use
        warnings.simplefilter("ignore", DeprecationWarning)
        bridge = LoggingHandler(logger_provider=provider)
    lines = Lines()
    root = logging.getLogger()
    root.addHandler(bridge)
    root.addHandler(lines)
    try:
        yield processor, exporter, lines, provider.shutdown
    finally:
        root.removeHandler(bridge)
        root.removeHandler(lines)
        exporter.gate.set()
        processor.shutdown()


def test_one_full_queue_is_told_once_however_long_the_application_logs_after_it(
    bridged: tuple[spanbatch.BatchLogRecordProcessor, GatedExporter, Lines, Callable[[], None]],
) -> None:
    processor, exporter, lines, shutdown = bridged
    app = logging.getLogger("tests.app")
    app.warning("first")
    assert exporter.entered.wait(10)
    for i in range(5):  # two fit in the queue behind the export, three are dropped
        app.warning("burst %d", i)
    exporter.gate.set()
    assert processor.force_flush(10_000)
    for i in range(INTERVALS):  # the application goes on logging, and nothing more is dropped
        time.sleep(INTERVAL_SECONDS * 1.5)
        app.warning("steady %d", i)
        assert processor.force_flush(10_000)
    shutdown()
    stats: Any = processor.stats()
    assert stats.dropped["queue_full"] == 3
    assert exporter.exported == stats.exported == 3 + INTERVALS
    assert stats.dropped["shutdown"] == 0
    assert balanced(stats)
    # The full queue told at once (by the thread its first drop wakes: one line, or two where that thread came before
    # the last drops, whose line comes once the export returned), each drop once, and nothing about the lines.
    told = [line for line in lines.lines if "dropped" in line]
    assert told == lines.lines
    assert 1 <= len(told) <= 2, told
    assert all("queue full — dropped" in line for line in told), told
    assert sum(int(line.split("dropped ")[1].split()[0]) for line in told) == 3
    # Each line, and the stock line with it, handed back once on one of the lane's own threads: nothing else to tell.
    assert stats.dropped["export_thread"] == len(told) + lines.stock_lines


def test_a_record_after_shutdown_is_told_as_one_though_the_stock_line_for_it_comes_back_too(
    bridged: tuple[spanbatch.BatchLogRecordProcessor, GatedExporter, Lines, Callable[[], None]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The stock processor's INFO line for an item given after shutdown, which spanbatch logs too, comes back through
    # the LoggingHandler as one more record after shutdown: spanbatch's own line, as its drop warning is.
    processor, _, lines, shutdown = bridged
    caplog.set_level(logging.INFO, logger=STOCK_LOGGER)
    shutdown()
    logging.getLogger("tests.app").warning("after shutdown")
    assert [r.getMessage() for r in caplog.records if r.name == STOCK_LOGGER] == ["Shutdown called, ignoring Log."]
    told = [line for line in lines.lines if "dropped" in line]
    assert len(told) == 1, told
    assert "shut down — dropped 1 log record in" in told[0]
    assert balanced(processor.stats())


def test_a_shutdown_that_gives_up_a_hung_export_tells_that_and_nothing_about_its_own_line(
    bridged: tuple[spanbatch.BatchLogRecordProcessor, GatedExporter, Lines, Callable[[], None]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    # revB30: the warning a shutdown logs when it gives up a busy worker came back through the LoggingHandler to the
    # lane it had just shut down, which then told "shut down — dropped 1 log record" (3 of 3 runs) and logged the
    # stock line for a record after shutdown, where the application had logged nothing after it.
    processor, exporter, lines, _ = bridged
    caplog.set_level(logging.INFO, logger=STOCK_LOGGER)
    logging.getLogger("tests.app").warning("hangs in its export")
    assert exporter.entered.wait(10)
    processor.shutdown(timeout_millis=300)
    exporter.gate.set()
    assert len(lines.lines) == 1, lines.lines
    assert "shutdown deadline passed with the worker still busy" in lines.lines[0]
    assert [r.getMessage() for r in caplog.records if r.name == STOCK_LOGGER] == []
    stats: Any = processor.stats()
    assert stats.dropped["shutdown"] == 1  # the line handed back, counted
    assert balanced(stats)
