"""``otel.sdk.processor.span.processed`` is a counter: no series of it ever goes down, whatever happens to the
spans it already counted. Spans application threads read ahead into an export's open request count as processed
once read (they are in flight); when shutdown gives up on that request they stay counted there, and only the
spans shutdown took from the queue count as ``already_shutdown`` (found by a chaos sampler)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import spanbatch
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from spanbatch._export import READ_AHEAD_SPANS

from tests.helpers import LONG, HangingEncodingExporter, balanced, make_span

Later = Callable[[Any], Any]  # the ``shutdown_later`` fixture


def processed(reader: InMemoryMetricReader) -> dict[str | None, int]:
    data = reader.get_metrics_data()
    assert data is not None
    return {
        (point.attributes or {}).get("error.type"): point.value  # type: ignore[union-attr]
        for resource_metrics in data.resource_metrics
        for scope_metrics in resource_metrics.scope_metrics
        for metric in scope_metrics.metrics
        if metric.name == "otel.sdk.processor.span.processed"
        for point in metric.data.data_points
    }


@pytest.mark.timeout(60)
def test_spans_read_ahead_then_given_up_at_shutdown_are_not_taken_back_from_the_processed_count(
    monkeypatch: pytest.MonkeyPatch, shutdown_later: Later
) -> None:
    monkeypatch.setenv("OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED", "true")
    reader = InMemoryMetricReader()
    exporter = HangingEncodingExporter()
    processor = shutdown_later(
        spanbatch.BatchSpanProcessor(
            exporter,
            max_export_batch_size=64,
            schedule_delay_millis=LONG,
            export_timeout_millis=1000,
            meter_provider=MeterProvider(metric_readers=[reader]),
        )
    )
    processor.on_end(make_span(span_id=1))
    assert processor.force_flush(5000)
    for i in range(64):
        processor.on_end(make_span(span_id=10 + i))
    assert exporter.exporting.wait(10)  # 64 in the hung export
    for i in range(40):  # this thread reads a chunk of them into the next request; the rest wait in the queue
        processor.on_end(make_span(span_id=200 + i))
    before = processed(reader)
    assert before == {None: 1 + 64 + READ_AHEAD_SPANS}
    processor.shutdown()
    after = processed(reader)
    try:
        assert after[None] >= before[None], (before, after)
        # Every span counted once: the read-ahead ones as processed, the rest of the 40 as already_shutdown.
        assert after == {None: 1 + 64 + READ_AHEAD_SPANS, "already_shutdown": 40 - READ_AHEAD_SPANS}
        stats = processor.stats()
        assert stats.dropped["shutdown"] == 40  # the stats still say where each span went
        assert balanced(stats)
    finally:
        exporter.release.set()
