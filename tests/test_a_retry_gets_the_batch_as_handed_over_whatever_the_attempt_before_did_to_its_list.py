"""An exporter may change the list it is given (design notes): pop what it sends, extend it with spans of its own,
filter it in place. With ``max_retries``, a batch whose attempt failed is retried with the spans it was handed
over, in the same list: the retry was handed what the failed attempt left in it, so an exporter that emptied it
"succeeded" on nothing and the batch counted as exported, and one that extended it sent its extra spans again."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import spanbatch
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from tests.helpers import LONG, balanced, end_spans, make_span

CHANGES: dict[str, Callable[[list[ReadableSpan]], None]] = {
    "emptied": list.clear,
    "extended": lambda spans: spans.append(make_span("the exporter's own")),
    "reversed": list.reverse,
}


class ChangesItsListAndFailsOnce(SpanExporter):
    def __init__(self, change: Callable[[list[ReadableSpan]], None]) -> None:
        self.change = change
        self.attempts: list[list[str]] = []

    def export(self, spans: list[ReadableSpan]) -> Any:  # type: ignore[override]
        self.attempts.append([span.name for span in spans])
        if len(self.attempts) == 1:
            self.change(spans)
            return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS


@pytest.mark.timeout(60)
@pytest.mark.parametrize("change", sorted(CHANGES))
def test_a_retry_gets_the_spans_the_failed_attempt_was_handed(change: str) -> None:
    exporter = ChangesItsListAndFailsOnce(CHANGES[change])
    processor = spanbatch.BatchSpanProcessor(
        exporter, schedule_delay_millis=LONG, max_retries=1, retry_initial_backoff_millis=1
    )
    try:
        end_spans(processor, 3, numbered=True)
        assert processor.force_flush(10_000)
        assert exporter.attempts == [["span0", "span1", "span2"]] * 2
        stats = processor.stats()
        assert (stats.exported, stats.retried, stats.dropped_total) == (3, 1, 0), stats
        assert balanced(stats)
    finally:
        processor.shutdown()
