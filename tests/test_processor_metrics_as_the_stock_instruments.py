"""The processors' self-metrics are the stock processors' instruments, as a metrics pipeline sees them: the same
instrument kinds (so a reader's temporality per kind and a view's ``instrument_type`` apply alike), component names
numbered per component type, and a processed count that a forked child carries on from its parent's."""

from __future__ import annotations

import gc
import json
import logging
import os
import re
import subprocess
import sys
import threading
import weakref
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
import spanbatch
from opentelemetry.metrics import CallbackOptions, CallbackT, Meter, NoOpMeter, NoOpMeterProvider, NoOpUpDownCounter
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter
from opentelemetry.sdk.metrics import Counter, MeterProvider, UpDownCounter
from opentelemetry.sdk.metrics.export import AggregationTemporality, InMemoryMetricReader, Sum
from opentelemetry.sdk.metrics.view import DropAggregation, View
from spanbatch import _metrics
from spanbatch._core import BatchCore

from tests.helpers import PROCESSORS, RecordingExporter, end_spans, wait_until
from tests.helpers.fork import collect_child, start_child

PROCESSED = "otel.sdk.processor.span.processed"
CAPACITY = "otel.sdk.processor.span.queue.capacity"
QUEUE_SIZE = "otel.sdk.processor.span.queue.size"


@pytest.fixture(autouse=True)
def _metrics_enabled(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED", "true")


def sums(reader: InMemoryMetricReader) -> dict[str, tuple[AggregationTemporality, list[tuple[str | None, int]]]]:
    """The processor's sums collected now: temporality and (error.type, value) points by metric name."""
    data = reader.get_metrics_data()
    found = {}
    for resource_metrics in data.resource_metrics if data else []:
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                if metric.name.startswith("otel.sdk.processor.") and isinstance(metric.data, Sum):
                    points = sorted(
                        (str((p.attributes or {}).get("error.type")), int(p.value)) for p in metric.data.data_points
                    )
                    found[metric.name] = (metric.data.aggregation_temporality, points)
    return found


def collections(processor_cls: Any, reader: InMemoryMetricReader, **provider: Any) -> list[dict[str, Any]]:
    provider_of_reader = MeterProvider(metric_readers=[reader], **provider)
    processor = processor_cls(
        RecordingExporter(), max_queue_size=64, max_export_batch_size=8, meter_provider=provider_of_reader
    )
    try:
        seen = []
        for count in (3, 2, 0):
            end_spans(processor, count)
            assert processor.force_flush(5000)
            seen.append(sums(reader))
        return seen
    finally:
        processor.shutdown()


@pytest.mark.timeout(30)
def test_processed_and_capacity_follow_a_readers_temporality_for_their_kinds_as_stocks_do() -> None:
    # Stock's processed is a Counter and its capacity an UpDownCounter, both synchronous; queue.size is observable.
    def reader() -> InMemoryMetricReader:
        delta = AggregationTemporality.DELTA
        return InMemoryMetricReader(preferred_temporality={Counter: delta, UpDownCounter: delta})

    stock = collections(PROCESSORS["stock"], reader())
    ours = collections(spanbatch.BatchSpanProcessor, reader())
    assert stock[0][PROCESSED] == (AggregationTemporality.DELTA, [("None", 3)])
    assert ours == stock


@pytest.mark.timeout(30)
def test_a_view_that_selects_the_stock_instrument_kinds_selects_ours() -> None:
    def reader() -> InMemoryMetricReader:
        return InMemoryMetricReader()

    drop = {"views": [View(instrument_type=Counter, aggregation=DropAggregation())]}
    stock = collections(PROCESSORS["stock"], reader(), **drop)
    ours = collections(spanbatch.BatchSpanProcessor, reader(), **drop)
    assert PROCESSED not in stock[0]
    assert CAPACITY in stock[0]
    assert ours == stock


def component_number(reader: InMemoryMetricReader) -> int:
    data = reader.get_metrics_data()
    assert data is not None
    names = {
        str((p.attributes or {})["otel.component.name"])
        for rm in data.resource_metrics
        for sm in rm.scope_metrics
        for m in sm.metrics
        if m.name.startswith("otel.sdk.processor.")
        for p in m.data.data_points
    }
    assert len(names) == 1, names
    match = re.fullmatch(r"batching_(?:span|log)_processor/(\d+)", names.pop())
    assert match is not None
    return int(match.group(1))


@pytest.mark.timeout(30)
def test_component_names_are_numbered_per_component_type_as_stocks_are() -> None:
    # Stock counts batching_span_processor/N and batching_log_processor/N apart: a log processor made between two
    # span processors leaves their numbers consecutive.
    readers = [InMemoryMetricReader() for _ in range(3)]
    processors = [
        spanbatch.BatchSpanProcessor(RecordingExporter(), meter_provider=MeterProvider(metric_readers=[readers[0]])),
        spanbatch.BatchLogRecordProcessor(
            InMemoryLogRecordExporter(), meter_provider=MeterProvider(metric_readers=[readers[1]])
        ),
        spanbatch.BatchSpanProcessor(RecordingExporter(), meter_provider=MeterProvider(metric_readers=[readers[2]])),
    ]
    try:
        first_span, _, second_span = (component_number(reader) for reader in readers)
        assert second_span == first_span + 1
    finally:
        for processor in processors:
            processor.shutdown()


@pytest.fixture(params=["stock", "spanbatch"])
def five_processed(request: pytest.FixtureRequest) -> Iterator[tuple[Any, InMemoryMetricReader]]:
    """A processor of each kind, and the reader of its metrics, which counted 5 spans processed."""
    reader = InMemoryMetricReader()
    processor = PROCESSORS[request.param](RecordingExporter(), meter_provider=MeterProvider(metric_readers=[reader]))
    try:
        end_spans(processor, 5)
        assert processor.force_flush(5000)
        assert sums(reader)[PROCESSED][1] == [("None", 5)]
        yield processor, reader
    finally:
        processor.shutdown()


@pytest.mark.timeout(60)
def test_a_forked_childs_processed_count_goes_on_from_its_parents(
    five_processed: tuple[Any, InMemoryMetricReader],
) -> None:
    # The child inherits the meter provider and its series: a counter that fell back to the child's own count
    # would go down under the same start time.
    processor, reader = five_processed

    def child() -> dict[str, Any]:
        end_spans(processor, 1)
        assert processor.force_flush(5000)
        return {"processed": sums(reader)[PROCESSED][1]}

    assert collect_child(*start_child(child)) == {"processed": [["None", 6]]}


@pytest.mark.timeout(60)
def test_a_processor_shut_down_before_a_fork_counts_its_spans_once_in_the_child(
    five_processed: tuple[Any, InMemoryMetricReader],
) -> None:
    # A shut-down processor keeps its counters across the fork (no core of the child's own): nothing is new there.
    processor, reader = five_processed
    processor.shutdown()
    assert sums(reader)[PROCESSED][1] == [("None", 5)]

    def child() -> dict[str, Any]:
        return {"processed": sums(reader)[PROCESSED][1]}

    assert collect_child(*start_child(child)) == {"processed": [["None", 5]]}


@pytest.mark.timeout(30)
@pytest.mark.parametrize("value", ["1", "yes", " on "])
def test_a_metrics_switch_neither_true_nor_false_is_warned_of_as_stock_warns(
    value: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED", value)

    def warned(processor_cls: Any) -> list[tuple[str, int, str]]:
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            processor_cls(RecordingExporter()).shutdown()
        return [(r.name, r.levelno, r.getMessage()) for r in caplog.records if r.name.startswith("opentelemetry")]

    stock = warned(PROCESSORS["stock"])
    assert stock == [
        (
            "opentelemetry.sdk.environment_variables._internal",
            logging.WARNING,
            f"Invalid value for OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED: {value!r}. Expected 'true' or 'false'.",
        )
    ]
    assert warned(spanbatch.BatchSpanProcessor) == stock


@pytest.mark.timeout(30)
def test_a_pipeline_rebuilt_under_the_same_backend_names_reports_the_capacity_of_the_one_alive() -> None:
    # A backend's name is its component name: the capacity of a pipeline gone must not add up with its successor's.
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    for size in (64, 32):
        pipeline = spanbatch.Pipeline(
            {"a": RecordingExporter()}, max_queue_size=size, max_export_batch_size=8, meter_provider=meter_provider
        )
        end_spans(pipeline, 3)
        assert pipeline.force_flush(5000)
        pipeline.shutdown()
        sums(reader)  # its spans counted while it lives (a lane gone between two collections takes the rest along)
        gone = weakref.ref(pipeline.lanes[0])
        del pipeline
        gc.collect()
        assert gone() is None
        sums(reader)  # a collection that finds it gone
    pipeline = spanbatch.Pipeline(
        {"a": RecordingExporter()}, max_queue_size=16, max_export_batch_size=8, meter_provider=meter_provider
    )
    try:
        assert sums(reader)[CAPACITY] == (AggregationTemporality.CUMULATIVE, [("None", 16)])
        assert sums(reader)[PROCESSED] == (AggregationTemporality.CUMULATIVE, [("None", 6)])
    finally:
        pipeline.shutdown()


_GLOBAL_PROVIDER_SET_LATER = """
import json, os
os.environ["OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED"] = "true"
from opentelemetry import metrics
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace.export import SpanExportResult
import spanbatch

class Exporter:
    def export(self, spans):
        return SpanExportResult.SUCCESS
    def shutdown(self):
        pass

processor = spanbatch.BatchSpanProcessor(Exporter(), max_queue_size=64, max_export_batch_size=8)
reader = InMemoryMetricReader()
metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
names = {
    metric.name: [point.value for point in metric.data.data_points]
    for rm in reader.get_metrics_data().resource_metrics
    for sm in rm.scope_metrics
    for metric in sm.metrics
}
processor.shutdown()
print(json.dumps(names))
"""


@pytest.mark.timeout(60)
def test_the_capacity_of_a_processor_made_before_the_global_meter_provider_is_set_is_reported() -> None:
    # Made before the application sets its provider, the processor's meter is the API's proxy, which forwards
    # instruments but not what was added to them before: the capacity would be lost.
    done = subprocess.run(
        [sys.executable, "-c", _GLOBAL_PROVIDER_SET_LATER], capture_output=True, text=True, timeout=50, check=False
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[-1])[CAPACITY] == [64]


@pytest.mark.timeout(30)
def test_stock_and_spanbatch_processors_in_one_process_never_share_a_component_name() -> None:
    # One application may batch one exporter with each: on one meter provider, a shared name would add up their
    # counts and capacities in one series.
    readers = [InMemoryMetricReader() for _ in range(3)]
    classes = [PROCESSORS["stock"], spanbatch.BatchSpanProcessor, PROCESSORS["stock"]]
    processors = [
        cls(RecordingExporter(), meter_provider=MeterProvider(metric_readers=[reader]))
        for cls, reader in zip(classes, readers, strict=True)
    ]
    try:
        numbers = [component_number(reader) for reader in readers]
        assert numbers == [numbers[0], numbers[0] + 1, numbers[0] + 2]
    finally:
        for processor in processors:
            processor.shutdown()


# One meter provider reached two ways: given explicitly before it is set as the global one, and as the global one
# (by default after it is set, or through the API's proxy before). Run in a subprocess: the global provider is
# set once.
_ONE_PROVIDER_TWO_WAYS = r"""
import json
from opentelemetry import metrics
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from tests.helpers import PROCESSORS, RecordingExporter, end_spans
from tests.helpers.metrics import metric_points

cls = PROCESSORS[KIND]
reader = InMemoryMetricReader()
provider = MeterProvider(metric_readers=[reader])
if ORDER == "explicit, then the global one once set":
    first = cls(RecordingExporter(), max_queue_size=64, max_export_batch_size=8, meter_provider=provider)
    metrics.set_meter_provider(provider)
    second = cls(RecordingExporter(), max_queue_size=32, max_export_batch_size=8)
else:  # "through the proxy, then explicit, both before it is set"
    first = cls(RecordingExporter(), max_queue_size=64, max_export_batch_size=8)
    second = cls(RecordingExporter(), max_queue_size=32, max_export_batch_size=8, meter_provider=provider)
    metrics.set_meter_provider(provider)
end_spans(first, 2)
end_spans(second, 5)
assert first.force_flush(5000) and second.force_flush(5000)
got = {
    f"{name} {attributes['otel.component.name']}": int(value)
    for name, points in metric_points(reader).items() if name.startswith("otel.sdk.processor.span.")
    for attributes, value in points
}
first.shutdown(); second.shutdown()
print(json.dumps(got))
"""


def _one_provider_two_ways(kind: str, order: str) -> dict[str, int]:
    env = {**os.environ, "OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED": "true"}
    script = f"KIND={kind!r}\nORDER={order!r}\n" + _ONE_PROVIDER_TWO_WAYS
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=50, check=False
    )
    assert done.returncode == 0, done.stderr
    found: dict[str, int] = json.loads(done.stdout.splitlines()[-1])
    return found


@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    "order", ["explicit, then the global one once set", "through the proxy, then explicit, both before it is set"]
)
def test_processors_given_one_meter_provider_two_ways_are_each_reported(order: str) -> None:
    # Stock reports each processor's processed count; its second queue.size callback is dropped as a duplicate
    # (and a capacity added through the proxy before it forwards is lost). Ours reports all three for both.
    stock = _one_provider_two_ways("stock", order)
    ours = _one_provider_two_ways("spanbatch", order)
    first, second = "batching_span_processor/0", "batching_span_processor/1"
    assert stock[f"{PROCESSED} {first}"] == 2
    assert stock[f"{PROCESSED} {second}"] == 5
    assert ours == {
        f"{PROCESSED} {first}": 2,
        f"{PROCESSED} {second}": 5,
        f"{CAPACITY} {first}": 64,
        f"{CAPACITY} {second}": 32,
        f"{QUEUE_SIZE} {first}": 0,
        f"{QUEUE_SIZE} {second}": 0,
    }


def _shut_down_and_freed_before_any_collection(processor_cls: Any) -> dict[str, Any]:
    reader = InMemoryMetricReader()
    processor = processor_cls(
        RecordingExporter(), max_queue_size=64, max_export_batch_size=8, meter_provider=MeterProvider([reader])
    )
    end_spans(processor, 3)
    assert processor.force_flush(5000)
    processor.shutdown()
    del processor
    gc.collect()
    return sums(reader)


@pytest.mark.timeout(30)
def test_a_processor_freed_before_the_first_collection_is_counted_as_stocks_is() -> None:
    # Stock adds as it goes, so what a processor freed before any collection processed is there. Its capacity
    # stays too; ours is given back, as a lane freed after a collection gives it back (no queue is left).
    stock = _shut_down_and_freed_before_any_collection(PROCESSORS["stock"])
    assert stock[PROCESSED] == (AggregationTemporality.CUMULATIVE, [("None", 3)])
    assert stock[CAPACITY] == (AggregationTemporality.CUMULATIVE, [("None", 64)])
    ours = _shut_down_and_freed_before_any_collection(spanbatch.BatchSpanProcessor)
    assert ours[PROCESSED] == stock[PROCESSED]
    assert ours[CAPACITY] == (AggregationTemporality.CUMULATIVE, [("None", 0)])


@pytest.mark.timeout(30)
def test_a_processor_freed_unflushed_before_the_first_collection_is_counted_once_it_settles() -> None:
    # Stock's worker holds its processor, which is never freed unless shut down; ours stops the lane's worker once
    # the lane is freed, and what it settles then is counted.
    reader = InMemoryMetricReader()
    processor = spanbatch.BatchSpanProcessor(
        RecordingExporter(), max_queue_size=64, max_export_batch_size=8, meter_provider=MeterProvider([reader])
    )
    end_spans(processor, 3)
    del processor
    gc.collect()

    def processed() -> int:
        return sum(value for _, value in sums(reader).get(PROCESSED, (None, []))[1])

    assert wait_until(lambda: processed() == 3), processed()


class _UnlockedMeterProvider(NoOpMeterProvider):
    """A meter provider of another implementation than the SDK's (whose collections take one lock per provider):
    two threads may run its callbacks at once. It keeps the sums added per instrument name."""

    def __init__(self) -> None:
        self.callbacks: list[CallbackT] = []
        self.totals: dict[str, int] = {}

    def get_meter(self, name: str, *args: Any, **kwargs: Any) -> Meter:
        provider = self

        class Adding(NoOpUpDownCounter):
            def __init__(self, name: str) -> None:
                super().__init__(name)
                self.name = name

            def add(self, amount: int | float, attributes: Any = None, context: Any = None) -> None:
                provider.totals[self.name] = provider.totals.get(self.name, 0) + int(amount)

        class UnlockedMeter(NoOpMeter):
            def create_counter(self, name: str, unit: str = "", description: str = "") -> Any:
                return Adding(name)

            def create_up_down_counter(self, name: str, unit: str = "", description: str = "") -> Any:
                return Adding(name)

            def create_observable_up_down_counter(
                self, name: str, callbacks: Sequence[CallbackT] | None = None, unit: str = "", description: str = ""
            ) -> Any:
                provider.callbacks.extend(callbacks or [])
                return super().create_observable_up_down_counter(name, callbacks, unit, description)

        return UnlockedMeter(name)

    def collect(self) -> None:
        for callback in self.callbacks:
            list(callback(CallbackOptions()))  # type: ignore[operator]


@pytest.mark.timeout(60)
def test_a_lane_gone_while_another_collection_first_finds_it_leaves_no_capacity(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Collection A finds the lane alive (its first collection: A is to add its capacity). The lane is freed, its
    # last core not kept (as a forked child's lane's, inherited, which never drains there), and collection B finds
    # it gone and takes it out. Whichever of A and B decides first, no capacity may stay added for a lane gone.
    a_found_it, b_decides, a_counted_it = threading.Event(), threading.Event(), threading.Event()
    collection_a: list[threading.Thread] = []
    b_pauses = [False]  # armed once B collects; B pauses once, where it asks whether the capacity was added

    class PausingSource(_metrics._Source):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            read_core = self.read_core

            def read_core_then_wait_for_b() -> BatchCore | None:
                core = read_core()
                if core is not None and threading.current_thread() in collection_a:
                    a_found_it.set()
                    assert b_decides.wait(10)
                return core

            self.read_core = read_core_then_wait_for_b

        @property  # type: ignore[override]
        def counted(self) -> bool:
            counted = bool(self.__dict__.get("_counted", False))
            if b_pauses[0] and threading.current_thread() is threading.main_thread():
                b_pauses[0] = False
                b_decides.set()
                # A adds the capacity meanwhile, unless B holds what A needs to (then it waits for B, not B for it).
                a_counted_it.wait(2)
            return counted

        @counted.setter
        def counted(self, value: bool) -> None:
            self.__dict__["_counted"] = value
            if value:
                a_counted_it.set()

        def lane_collected(self, core: BatchCore) -> None:
            super().lane_collected(core)
            self.outlived = None  # as a forked child's inherited core

    monkeypatch.setattr(_metrics, "_Source", PausingSource)
    provider = _UnlockedMeterProvider()
    held = [
        spanbatch.BatchSpanProcessor(
            RecordingExporter(), max_queue_size=64, max_export_batch_size=8, meter_provider=provider
        )
    ]
    held[0].shutdown()
    collection_a.append(threading.Thread(target=provider.collect, daemon=True))
    collection_a[0].start()
    assert a_found_it.wait(10)

    held.clear()
    gc.collect()
    b_pauses[0] = True
    provider.collect()  # B
    collection_a[0].join(10)
    assert not collection_a[0].is_alive()
    provider.collect()
    assert provider.totals[CAPACITY] == 0


@pytest.mark.timeout(60)
def test_a_lane_collected_while_its_finalizer_is_on_its_way_is_counted(monkeypatch: pytest.MonkeyPatch) -> None:
    # A collection may find a freed lane's weak reference dead before the lane's finalizer (on another thread) has
    # told the metrics its last core: what the lane processed must still be counted once it is told.
    finalizer_runs, may_tell = threading.Event(), threading.Event()

    class SlowToBeTold(_metrics._Source):
        def lane_collected(self, core: BatchCore) -> None:
            finalizer_runs.set()
            assert may_tell.wait(10)
            super().lane_collected(core)

    monkeypatch.setattr(_metrics, "_Source", SlowToBeTold)
    reader = InMemoryMetricReader()
    held = [
        spanbatch.BatchSpanProcessor(
            RecordingExporter(), max_queue_size=64, max_export_batch_size=8, meter_provider=MeterProvider([reader])
        )
    ]
    end_spans(held[0], 3)
    assert held[0].force_flush(5000)
    held[0].shutdown()

    def free() -> None:
        held.clear()
        gc.collect()

    freeing = threading.Thread(target=free, daemon=True)
    freeing.start()
    assert finalizer_runs.wait(10)
    sums(reader)  # finds the lane gone, not yet told its last core
    may_tell.set()
    freeing.join(10)
    assert not freeing.is_alive()
    assert sums(reader).get(PROCESSED) == (AggregationTemporality.CUMULATIVE, [("None", 3)])
