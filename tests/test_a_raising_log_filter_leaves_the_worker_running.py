"""A user's ``logging.Filter`` that raises, on a logger the worker logs through, does not take the worker down:
it goes on exporting, every item stays accounted for, and the failure is told once on stderr (as ``logging`` tells
of a handler that raised)."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
import spanbatch
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, LogRecordExportResult
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExportResult
from spanbatch import _safe_log

from tests.helpers import RecordingExporter, balanced, provider_with
from tests.helpers.logs import emit_events, logger_provider_with

STOCK_LOGGER = "opentelemetry.sdk._shared_internal"
NOTICE = "spanbatch: a logging call raised"


class FilterBug(Exception):
    pass


class RaisingFilter(logging.Filter):
    """A user's filter with a bug: it raises for every record it sees."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def filter(self, record: logging.LogRecord) -> bool:
        self.calls += 1
        raise FilterBug(record.getMessage())


@pytest.fixture
def raising_filter(request: pytest.FixtureRequest) -> Iterator[RaisingFilter]:
    """A raising filter on the logger named by the test's ``logger_name`` parameter, removed afterwards."""
    logger = logging.getLogger(request.param)
    bug = RaisingFilter()
    logger.addFilter(bug)
    try:
        yield bug
    finally:
        logger.removeFilter(bug)


@pytest.fixture(autouse=True)
def no_notice_yet(monkeypatch: pytest.MonkeyPatch) -> None:
    """The notice is printed once per process: each test starts as if none had been."""
    monkeypatch.setattr(_safe_log, "_notices", itertools.count())


class FailsOnce(RecordingExporter):
    """Raises from its first export (the worker logs the stock line), then records and succeeds."""

    def export(self, spans: Sequence[ReadableSpan]) -> Any:
        first = not self.batches
        super().export(spans)
        if first:
            raise RuntimeError("backend exploded")
        return SpanExportResult.SUCCESS


def odd_once_exporter() -> RecordingExporter:
    """Answers its first export with None (the worker warns on ``spanbatch`` once per exporter class and answer
    type: the class is made anew for each test), then succeeds."""

    class AnswersNoneOnce(RecordingExporter):
        def export(self, spans: Sequence[ReadableSpan]) -> Any:
            first = not self.batches
            super().export(spans)
            return None if first else SpanExportResult.SUCCESS

    return AnswersNoneOnce()


@pytest.mark.timeout(30)
@pytest.mark.parametrize(
    ("raising_filter", "make_exporter"),
    [(STOCK_LOGGER, FailsOnce), ("spanbatch", odd_once_exporter)],
    ids=["stock-export-exception-line", "spanbatch-odd-answer-line"],
    indirect=["raising_filter"],
)
def test_spans_go_on_being_exported_after_a_filter_raised_on_the_workers_line(
    raising_filter: RaisingFilter, make_exporter: Any, capfd: pytest.CaptureFixture[str]
) -> None:
    exporter = make_exporter()
    processor = spanbatch.BatchSpanProcessor(exporter, schedule_delay_millis=60_000)
    provider = provider_with(processor)
    tracer = provider.get_tracer("tests")
    with tracer.start_as_current_span("first"):
        pass
    # The first batch fails and the worker's line meets the raising filter.
    processor.force_flush(5_000)
    assert raising_filter.calls >= 1
    for i in range(20):
        with tracer.start_as_current_span(f"after-{i}"):
            pass
    assert processor.force_flush(5_000), processor.stats()
    assert exporter.names() == ["first"] + [f"after-{i}" for i in range(20)]
    stats = processor.stats()
    assert (stats.exported, stats.queued, stats.in_flight, stats.dropped_total) == (20, 0, 0, 1)
    assert balanced(stats)
    provider.shutdown()
    assert balanced(processor.stats())
    assert processor.stats().queued == 0
    # Told once, on stderr, with the filter's exception.
    err = capfd.readouterr().err
    assert err.count(NOTICE) == 1, err
    assert "FilterBug" in err


class LogFailsOnce(InMemoryLogRecordExporter):
    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def export(self, batch: Sequence[Any]) -> LogRecordExportResult:
        self.calls += 1
        if self.calls == 1:
            raise RuntimeError("backend exploded")
        return super().export(batch)


@pytest.mark.timeout(30)
@pytest.mark.parametrize("raising_filter", [STOCK_LOGGER], indirect=True)
def test_log_records_go_on_being_exported_after_a_filter_raised_on_the_workers_line(
    raising_filter: RaisingFilter, capfd: pytest.CaptureFixture[str]
) -> None:
    exporter = LogFailsOnce()
    processor = spanbatch.BatchLogRecordProcessor(exporter, schedule_delay_millis=60_000)
    provider = logger_provider_with(processor)
    emit_events(provider, 1, "first")
    processor.force_flush(5_000)
    assert raising_filter.calls >= 1
    bodies = emit_events(provider, 20, "after")
    assert processor.force_flush(5_000), processor.stats()
    assert [r.log_record.body for r in exporter.get_finished_logs()] == bodies
    stats = processor.stats()
    assert (stats.exported, stats.queued, stats.in_flight, stats.dropped_total) == (20, 0, 0, 1)
    assert balanced(stats)
    provider.shutdown()
    assert balanced(processor.stats())
    err = capfd.readouterr().err
    assert err.count(NOTICE) == 1, err


class Unmeasurable(Sequence[SpanExportResult]):
    """An answer of the user's making whose length cannot be read."""

    def __len__(self) -> int:
        raise RuntimeError("no length")

    def __getitem__(self, index: Any) -> Any:
        raise IndexError(index)


class AnswersUnmeasurablyOnce(RecordingExporter):
    """Declares ``export_many``; its first answer raises when the worker reads it, outside the export call."""

    def export_many(self, batches: Sequence[Sequence[ReadableSpan]]) -> Any:
        first = not self.batches
        for batch in batches:
            self.export(batch)
        return Unmeasurable() if first else [SpanExportResult.SUCCESS] * len(batches)


@pytest.mark.timeout(30)
def test_spans_go_on_being_exported_after_the_worker_met_an_error_outside_the_export() -> None:
    exporter = AnswersUnmeasurablyOnce()
    processor = spanbatch.BatchSpanProcessor(exporter, schedule_delay_millis=60_000)
    tracer = provider_with(processor).get_tracer("tests")
    tracer.start_span("first").end()
    processor.force_flush(5_000)
    for i in range(5):
        tracer.start_span(f"after-{i}").end()
    assert processor.force_flush(5_000), processor.stats()
    stats = processor.stats()
    assert (stats.exported, stats.queued, stats.in_flight, stats.dropped["export_failed"]) == (5, 0, 0, 1)
    assert balanced(stats)
    processor.shutdown()
