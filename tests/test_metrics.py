"""Self-metrics: the stock processor's instruments, names, units and attributes, fed by exact counters."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import spanbatch
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from spanbatch import _metrics

from tests.helpers import PROCESSORS, HangingExporter, RecordingExporter, end_spans, make_span
from tests.helpers.metrics import metric_points


def run(processor_cls: Any, spans: int) -> dict[str, list[tuple[dict[str, Any], int]]]:
    reader = InMemoryMetricReader()
    processor = processor_cls(RecordingExporter(), meter_provider=MeterProvider(metric_readers=[reader]))
    try:
        end_spans(processor, spans)
        processor.force_flush(5000)
        return metric_points(reader)
    finally:
        processor.shutdown()


@pytest.fixture
def metrics_enabled(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED", "true")


@pytest.mark.usefixtures("metrics_enabled")
def test_same_instruments_and_values_as_the_stock_processor() -> None:
    stock, ours = run(PROCESSORS["stock"], 5), run(PROCESSORS["spanbatch"], 5)
    assert (
        set(ours)
        == set(stock)
        == {
            "otel.sdk.processor.span.processed",
            "otel.sdk.processor.span.queue.size",
            "otel.sdk.processor.span.queue.capacity",
        }
    )
    for name in stock:
        assert [value for _, value in ours[name]] == [value for _, value in stock[name]], name
        for attributes, _ in ours[name]:
            assert attributes["otel.component.type"] == "batching_span_processor"
            assert attributes["otel.component.name"].startswith("batching_span_processor/")


@pytest.mark.usefixtures("metrics_enabled")
@pytest.mark.timeout(20)
def test_drops_are_reported_with_their_error_type(
    hanging_exporter: HangingExporter, shutdown_later: Callable[[Any], Any]
) -> None:
    reader = InMemoryMetricReader()
    processor = shutdown_later(
        spanbatch.BatchSpanProcessor(
            hanging_exporter, 4, 60_000, 4, 200, meter_provider=MeterProvider(metric_readers=[reader])
        )
    )
    end_spans(processor, 4)
    assert hanging_exporter.entered.wait(5)
    end_spans(processor, 10)
    processor.shutdown()
    processor.on_end(make_span())
    processed = {a.get("error.type"): v for a, v in metric_points(reader)["otel.sdk.processor.span.processed"]}
    stats = processor.stats()
    assert processed == {None: 4, "queue_full": 6, "already_shutdown": stats.dropped["shutdown"]}
    assert stats.dropped["shutdown"] == 5  # 4 given up at the deadline, 1 after shutdown


def test_metrics_stay_off_unless_enabled(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED", raising=False)
    assert run(spanbatch.BatchSpanProcessor, 3) == {}


def scopes(processor_cls: Any) -> set[tuple[str, str | None]]:
    reader = InMemoryMetricReader()
    processor = processor_cls(RecordingExporter(), meter_provider=MeterProvider(metric_readers=[reader]))
    processor.on_end(make_span())
    processor.force_flush(5000)
    data = reader.get_metrics_data()
    processor.shutdown()
    return {(s.scope.name, s.scope.version) for r in data.resource_metrics for s in r.scope_metrics}


@pytest.mark.usefixtures("metrics_enabled")
def test_metrics_are_under_the_stock_meter_scope() -> None:
    # Dashboards and views select the processor's metrics by this scope.
    assert scopes(spanbatch.BatchSpanProcessor) == scopes(PROCESSORS["stock"]) == {("opentelemetry-sdk", None)}


def test_with_an_sdk_whose_processors_always_record_them_they_are_on_without_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # SDK 1.41 records its processors' metrics with or without OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED (the variable
    # came in 1.42): switching to spanbatch there lost them (revY). The installed release stood in for.
    monkeypatch.delenv("OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED", raising=False)
    monkeypatch.setattr(_metrics, "_SDK_RECORDS_ALWAYS", True)
    assert "otel.sdk.processor.span.processed" in run(spanbatch.BatchSpanProcessor, 3)
