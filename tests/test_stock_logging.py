"""Where spanbatch does what the stock processor does, it logs what the stock processor logs, where it logs it,
so users' logging filters and alerts keep working; its own extra lines stay on the ``spanbatch`` logger."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import pytest
import spanbatch
from opentelemetry.sdk._logs import LogRecordProcessor
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor as StockBatchLogRecordProcessor
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter
from opentelemetry.sdk.trace import ReadableSpan
from spanbatch import _drops
from spanbatch.log_processor import LOGS
from spanbatch.processor import SPANS

from tests.helpers import PROCESSORS, HangingExporter, RaisingExporter, RecordingExporter, make_span
from tests.helpers.logs import emit_events, logger_provider_with

STOCK_LOGGER = "opentelemetry.sdk._shared_internal"


def stock_lines(caplog: pytest.LogCaptureFixture) -> list[tuple[int, str, bool]]:
    return [(r.levelno, r.getMessage(), r.exc_info is not None) for r in caplog.records if r.name == STOCK_LOGGER]


class RaisingManyExporter(RaisingExporter):
    """Declares ``export_many`` on its class, and raises from it too."""

    def export_many(self, batches: Sequence[Sequence[ReadableSpan]]) -> Any:
        raise RuntimeError("backend exploded")


@pytest.mark.timeout(20)
@pytest.mark.parametrize("exporter_cls", [RaisingExporter, RaisingManyExporter])
@pytest.mark.parametrize("name", ["stock", "spanbatch"])
def test_an_exception_from_the_exporter_is_logged_as_stock_logs_it(
    caplog: pytest.LogCaptureFixture, name: str, exporter_cls: type[RaisingExporter]
) -> None:
    processor = PROCESSORS[name](exporter_cls())
    processor.on_end(make_span())
    with caplog.at_level(logging.WARNING):
        processor.force_flush(5_000)
    processor.shutdown()
    assert stock_lines(caplog) == [(logging.ERROR, "Exception while exporting Span.", True)]


@pytest.mark.timeout(20)
@pytest.mark.parametrize("name", ["stock", "spanbatch"])
def test_a_full_queue_is_logged_as_stock_logs_it(
    caplog: pytest.LogCaptureFixture, hanging_exporter: HangingExporter, name: str
) -> None:
    processor = PROCESSORS[name](hanging_exporter, max_queue_size=2, max_export_batch_size=1)
    processor.on_end(make_span())
    assert hanging_exporter.entered.wait(5)
    with caplog.at_level(logging.WARNING):
        for _ in range(5):
            processor.on_end(make_span())
        hanging_exporter.release.set()
        processor.force_flush(5_000)
        processor.shutdown()
    # Stock's DuplicateFilter lets one line through per 20 s; spanbatch reports drops at most every 10 s.
    assert set(stock_lines(caplog)) == {(logging.WARNING, "Queue full, dropping Span.", False)}
    if name == "spanbatch":
        # The first drop told at once while the export hangs, with those ended before the line came, the rest once
        # the export returns: the split is the threads' timing, each drop told once.
        told = [r.getMessage() for r in caplog.records if r.name == "spanbatch" and "queue full" in r.getMessage()]
        assert sum(int(line.split("dropped ")[1].split()[0]) for line in told) == 3, told


@pytest.fixture
def fresh_duplicate_filter() -> None:
    """The stock logger's DuplicateFilter lets one line with a given message through per 20 s, whichever test
    logged it first: each test starts with it forgotten."""
    for log_filter in logging.getLogger(STOCK_LOGGER).filters:
        vars(log_filter).pop("last_log", None)


@pytest.mark.timeout(20)
@pytest.mark.usefixtures("fresh_duplicate_filter")
@pytest.mark.parametrize("name", ["stock", "spanbatch"])
def test_a_span_ended_after_shutdown_is_logged_as_stock_logs_it(caplog: pytest.LogCaptureFixture, name: str) -> None:
    processor = PROCESSORS[name](RecordingExporter())
    processor.shutdown()
    with caplog.at_level(logging.INFO, logger=STOCK_LOGGER):
        processor.on_end(make_span())
        processor.on_end(make_span())
    assert stock_lines(caplog) == [(logging.INFO, "Shutdown called, ignoring Span.", False)]


@pytest.mark.timeout(20)
@pytest.mark.usefixtures("fresh_duplicate_filter")
@pytest.mark.parametrize(
    "processor_cls", [StockBatchLogRecordProcessor, spanbatch.BatchLogRecordProcessor], ids=["stock", "spanbatch"]
)
def test_a_record_emitted_after_shutdown_is_logged_as_stock_logs_it(
    caplog: pytest.LogCaptureFixture, processor_cls: type[LogRecordProcessor]
) -> None:
    exporter = InMemoryLogRecordExporter()
    processor = processor_cls(exporter)  # type: ignore[call-arg]
    provider = logger_provider_with(processor)
    processor.shutdown()
    with caplog.at_level(logging.INFO, logger=STOCK_LOGGER):
        emit_events(provider, 2)
    assert stock_lines(caplog) == [(logging.INFO, "Shutdown called, ignoring Log.", False)]
    assert exporter.get_finished_logs() == ()


OLD_SPAN_LOGGER, OLD_SPAN_LINE = "opentelemetry.sdk.trace.export", "Already shutdown, dropping span."


@pytest.mark.parametrize(
    ("installed", "signal", "expected"),
    [
        ("shared without the line", SPANS, []),
        ("shared without the line", LOGS, []),
        ("before the shared processor", SPANS, [(OLD_SPAN_LOGGER, logging.WARNING, OLD_SPAN_LINE)]),
        ("before the shared processor", LOGS, []),
    ],
)
def test_after_shutdown_each_sdk_version_logs_what_its_stock_processor_logs(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, installed: str, signal: Any, expected: list[Any]
) -> None:
    # The SDKs 1.34-1.39 share a BatchProcessor that ignores an item after shutdown silently; older ones do not.
    monkeypatch.setattr(_drops, "_SHARED_PROCESSOR", installed == "shared without the line")
    monkeypatch.setattr(_drops, "_SHARED_LINES", False)
    line = _drops.stock_after_shutdown(signal)
    with caplog.at_level(logging.INFO):
        if line is not None:
            line()
    assert [(r.name, r.levelno, r.getMessage()) for r in caplog.records] == expected
