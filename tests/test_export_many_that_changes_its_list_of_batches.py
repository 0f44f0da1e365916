"""An exporter's ``export_many`` may change the list of batches it is given, as ``export`` may change its list
of spans: the worker counts from what it handed over and goes on exporting (found by a chaos sampler)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pytest
import spanbatch
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from tests.helpers import LONG, balanced, end_spans

pytestmark = pytest.mark.timeout(60)
Later = Callable[[Any], Any]  # the ``shutdown_later`` fixture


class BatchListChanger(SpanExporter):
    """Answers for the batches it was given, then changes the list of them as ``change`` says."""

    def __init__(self, change: Callable[[list[Sequence[ReadableSpan]]], object]) -> None:
        self.change = change
        self.calls = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS

    def export_many(self, batches: list[Sequence[ReadableSpan]]) -> list[SpanExportResult]:
        self.calls += 1
        results = [SpanExportResult.SUCCESS] * len(batches)
        self.change(batches)
        return results


CHANGES: dict[str, Callable[[list[Sequence[ReadableSpan]]], object]] = {
    "clear": lambda batches: batches.clear(),
    "pop": lambda batches: batches.pop(),
    "append": lambda batches: batches.append([]),
}


@pytest.mark.parametrize("change", sorted(CHANGES))
def test_an_export_many_that_changes_its_list_of_batches_leaves_the_worker_and_the_books_intact(
    change: str, shutdown_later: Later
) -> None:
    exporter = BatchListChanger(CHANGES[change])
    processor = shutdown_later(
        spanbatch.BatchSpanProcessor(exporter, max_export_batch_size=2, schedule_delay_millis=LONG)
    )
    end_spans(processor, 7)  # four batches, handed over in one call
    assert processor.force_flush(10_000)
    stats = processor.stats()
    assert (stats.exported, stats.queued, stats.in_flight) == (7, 0, 0)
    end_spans(processor, 3)  # the worker is still there for the next ones
    assert processor.force_flush(10_000)
    stats = processor.stats()
    assert (stats.exported, stats.queued, stats.in_flight) == (10, 0, 0)
    assert balanced(stats)


class AnswersWithGarbage(SpanExporter):
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS

    def export_many(self, batches: list[Sequence[ReadableSpan]]) -> object:
        return None


def test_an_export_many_that_always_answers_with_garbage_is_reported_once_not_per_call(
    caplog: pytest.LogCaptureFixture, shutdown_later: Later
) -> None:
    # As an export that returns something other than a result: one line per exporter class and kind of answer,
    # the count in stats().
    processor = shutdown_later(spanbatch.BatchSpanProcessor(AnswersWithGarbage(), schedule_delay_millis=LONG))
    for _ in range(5):
        end_spans(processor, 1)
        assert processor.force_flush(10_000)
    assert processor.stats().dropped["export_failed"] == 5
    lines = [r for r in caplog.records if "export_many returned" in r.getMessage()]
    assert len(lines) == 1, [r.getMessage() for r in lines]
