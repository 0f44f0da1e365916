"""A processor shut down and freed between two collections: what it processed since the last one is still
counted (stock adds on export, so its count is there). Found by review."""

from __future__ import annotations

import gc
import weakref

import pytest
import spanbatch
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, Sum

from tests.helpers import PROCESSORS, RecordingExporter, end_spans

PROCESSED = "otel.sdk.processor.span.processed"


@pytest.fixture(autouse=True)
def _metrics_enabled(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED", "true")


def processed(reader: InMemoryMetricReader) -> int:
    data = reader.get_metrics_data()
    total = 0
    for rm in data.resource_metrics if data else []:
        for sm in rm.scope_metrics:
            for m in sm.metrics:
                if m.name == PROCESSED and isinstance(m.data, Sum):
                    total += sum(int(p.value) for p in m.data.data_points)
    return total


@pytest.mark.parametrize("kind", ["stock", "spanbatch"])
@pytest.mark.timeout(30)
def test_counts_of_a_processor_gone_between_collections_are_kept(kind: str) -> None:
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    cls = PROCESSORS["stock"] if kind == "stock" else spanbatch.BatchSpanProcessor
    processor = cls(RecordingExporter(), max_queue_size=64, max_export_batch_size=8, meter_provider=provider)
    end_spans(processor, 3)
    assert processor.force_flush(5000)
    assert processed(reader) == 3
    end_spans(processor, 5)
    processor.shutdown()
    del processor
    gc.collect()
    assert processed(reader) == 8


@pytest.mark.timeout(30)
def test_a_freed_processors_core_is_not_kept_where_nothing_collects_its_metrics() -> None:
    """Its last core is kept for the next collection only: on a meter provider no reader collects (or the API's
    global proxy, never set), every freed processor's core and queue would otherwise stay for good."""
    provider, cores = MeterProvider(), []  # kept, as an application keeps its provider
    for _ in range(5):
        processor = spanbatch.BatchSpanProcessor(
            RecordingExporter(), max_queue_size=64, max_export_batch_size=8, meter_provider=provider
        )
        end_spans(processor, 3)
        assert processor.force_flush(5000)
        processor.shutdown()
        cores.append(weakref.ref(processor.lanes[0].core))  # its last core
        del processor
    gc.collect()
    assert [core() for core in cores] == [None] * 5
