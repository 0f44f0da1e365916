"""A spanbatch processor reports its metrics on a meter provider where a stock batch processor of the same signal
registered its instruments first: a zero-code set-up's stock processor, and spanbatch's added for a second backend.
The meter keeps the first callback made under an observable instrument's name, and spanbatch reads its counters in
that callback (``_metrics``): the stock one's was kept, and spanbatch's lanes reported nothing at all, no
``processed``, no capacity, no queue size, while ``stats()`` showed them exporting (revV: 6 of 6 runs). A second
stock processor there loses only its queue size."""

from __future__ import annotations

import pytest
import spanbatch
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor as StockLogProcessor
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace.export import BatchSpanProcessor as StockSpanProcessor

from tests.helpers import RecordingExporter, end_spans
from tests.helpers.logs import emit_events, logger_provider_with
from tests.helpers.metrics import metric_points


@pytest.fixture(autouse=True)
def metrics_enabled(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED", "true")


def per_component(points: list[tuple[dict[str, object], int]]) -> list[int]:
    """The values of the processors' series, in order: the stock one's and spanbatch's."""
    assert len({attributes["otel.component.name"] for attributes, _ in points}) == len(points), points
    return sorted(value for _, value in points)


@pytest.mark.timeout(30)
def test_spans_after_a_stock_span_processor() -> None:
    reader = InMemoryMetricReader()
    meters = MeterProvider(metric_readers=[reader])
    stock = StockSpanProcessor(RecordingExporter(), meter_provider=meters)
    ours = spanbatch.BatchSpanProcessor(
        RecordingExporter(), max_queue_size=64, max_export_batch_size=64, meter_provider=meters
    )
    try:
        end_spans(stock, 3)
        end_spans(ours, 5)
        assert stock.force_flush(5000)
        assert ours.force_flush(5000)
        points = metric_points(reader)
        assert per_component(points["otel.sdk.processor.span.processed"]) == [3, 5], points
        assert per_component(points["otel.sdk.processor.span.queue.capacity"]) == [64, 2048], points
        # The stock one's queue size and spanbatch's.
        assert per_component(points["otel.sdk.processor.span.queue.size"]) == [0, 0], points
        assert ours.stats().exported == 5
    finally:
        stock.shutdown()
        ours.shutdown()


@pytest.mark.timeout(30)
def test_log_records_after_a_stock_log_processor() -> None:
    reader = InMemoryMetricReader()
    meters = MeterProvider(metric_readers=[reader])
    stock = StockLogProcessor(InMemoryLogRecordExporter(), meter_provider=meters)
    ours = spanbatch.BatchLogRecordProcessor(InMemoryLogRecordExporter(), meter_provider=meters)
    try:
        emit_events(logger_provider_with(ours), 4)
        assert ours.force_flush(5000)
        points = metric_points(reader)
        assert per_component(points["otel.sdk.processor.log.processed"]) == [4], points
    finally:
        stock.shutdown()
        ours.shutdown()
