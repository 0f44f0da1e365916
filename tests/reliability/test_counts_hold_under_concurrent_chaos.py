"""The books balance at every moment a user can look, whatever runs at once.

A sampler thread reads the stats in a tight loop (``stats()``, ``stats_by_backend()``, the ``repr``, the
self-metrics) while producers end spans, several threads flush, an exporter misbehaves every way an exporter
may (raises, returns garbage, hangs past its timeout, clears its list, flushes or shuts down its own processor,
ends spans of its own) and shutdown races all of it. Every reading must balance
(``enqueued == exported + queued + in_flight + dropped_total``) and no counter may go backwards; a flush that
returns True has settled every span whose ``on_end`` returned before it was called; nothing hangs.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import pytest
import spanbatch
from opentelemetry._logs import LogRecord, SeverityNumber
from opentelemetry.sdk._logs import ReadWriteLogRecord
from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from spanbatch import SpanStats

from tests.helpers import balanced, make_span, wait_until

PRODUCERS, PER_PRODUCER, FLUSHERS, FLUSHES = 3, 150, 2, 15
MONOTONIC = ("enqueued", "exported", "batches", "export_errors", "retried", "spilled")
KEEP_LOGS_QUIET = {"spanbatch", "opentelemetry.sdk._shared_internal", "opentelemetry.sdk._logs._internal.export"}


class Misbehaves:
    """What a chaotic exporter does with each batch, drawn from its own seeded generator."""

    def __init__(self, seed: int, success: object, failure: object) -> None:
        self.rng = random.Random(seed)
        self.lock = threading.Lock()
        self.success, self.failure = success, failure
        self.processor: Any = None  # set once the processor exists: the exporter calls back into it

    def draw(self) -> float:
        with self.lock:  # several export threads may draw at once
            return self.rng.random()

    def act(self, items: list[Any], own_item: Callable[[], Any]) -> object:
        r, processor = self.draw(), self.processor
        if r < 0.08:
            raise RuntimeError("export failure injected by the chaos test")
        if r < 0.14:
            return None
        if r < 0.18:
            return 0
        if r < 0.22:
            return self.failure.__class__  # a type, not a member
        if r < 0.28:
            items.clear()
            return self.success
        if r < 0.32:
            time.sleep(0.25)  # past the export timeout
            return self.success
        if r < 0.35 and processor is not None:
            processor.force_flush(50)
        elif r < 0.38 and processor is not None:
            processor.on_end(own_item()) if hasattr(processor, "on_end") else processor.on_emit(own_item())
        elif r < 0.385 and processor is not None:
            processor.shutdown()
        return self.failure if r < 0.5 else self.success


class ChaosSpanExporter(SpanExporter):
    def __init__(self, seed: int) -> None:
        self.chaos = Misbehaves(seed, SpanExportResult.SUCCESS, SpanExportResult.FAILURE)

    def export(self, spans: Sequence[Any]) -> Any:
        return self.chaos.act(spans, make_span)  # type: ignore[arg-type]


class ChaosManySpanExporter(ChaosSpanExporter):
    """Declares ``export_many``, and answers it with garbage as often as with results."""

    def export_many(self, batches: list[Sequence[Any]]) -> Any:
        r = self.chaos.draw()
        if r < 0.1:
            raise RuntimeError("export_many failure injected by the chaos test")
        if r < 0.2:
            return [SpanExportResult.SUCCESS] * (len(batches) + 2)
        if r < 0.3:
            batches.clear()
            return []
        if r < 0.4:
            return None
        return [self.export(batch) for batch in batches]


def log_record() -> ReadWriteLogRecord:
    return ReadWriteLogRecord(
        LogRecord(body="chaos", severity_number=SeverityNumber.WARN),
        resource=Resource.create({"service.name": "tests"}),
        instrumentation_scope=InstrumentationScope("tests"),
    )


class ChaosLogExporter(LogRecordExporter):
    def __init__(self, seed: int) -> None:
        self.chaos = Misbehaves(seed, LogRecordExportResult.SUCCESS, LogRecordExportResult.FAILURE)

    def export(self, batch: Sequence[Any]) -> Any:
        return self.chaos.act(batch, log_record)  # type: ignore[arg-type]

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True


class Sampler:
    """Reads every ``look`` in a tight loop until stopped; keeps what was wrong with any reading."""

    def __init__(self, looks: dict[str, Callable[[], SpanStats]]) -> None:
        self.looks = looks
        self.wrong: list[tuple[Any, ...]] = []
        self.readings = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        last: dict[str, SpanStats] = {}
        deadline = time.monotonic() + 60
        while not self._stop.is_set() and time.monotonic() < deadline:
            for name, look in self.looks.items():
                try:
                    stats = look()
                except Exception as error:  # a look that fails is a finding, not a dead sampler
                    self.wrong.append((name, "raised", error))
                    continue
                if not balanced(stats):
                    self.wrong.append((name, "unbalanced", stats))
                if name in last:
                    self.wrong.extend((name, "went back", last[name], stats) for _ in went_back(last[name], stats))
                last[name] = stats
            self.readings += 1

    def stop(self) -> list[tuple[Any, ...]]:
        self._stop.set()
        self._thread.join(10)
        assert not self._thread.is_alive()
        assert self.readings > 0
        return self.wrong


def went_back(before: SpanStats, after: SpanStats) -> list[str]:
    fields = [f for f in MONOTONIC if getattr(after, f) < getattr(before, f)]
    return fields + [r for r, n in before.dropped.items() if after.dropped.get(r, 0) < n]


def from_repr(processor: object) -> SpanStats:
    """The stats a processor's ``repr`` shows: its last field, ``stats=SpanStats(...)``."""
    text = repr(processor)
    shown = text[text.index("stats=SpanStats(") + len("stats=") : -1]
    return eval(shown, {"SpanStats": SpanStats})  # our own repr, parsed back


def processed_points(reader: InMemoryMetricReader) -> dict[tuple[Any, ...], int]:
    data = reader.get_metrics_data()
    return {
        tuple(sorted((point.attributes or {}).items())): point.value  # type: ignore[union-attr]
        for resource_metrics in (data.resource_metrics if data else [])
        for scope_metrics in resource_metrics.scope_metrics
        for metric in scope_metrics.metrics
        if metric.name.endswith(".processed")
        for point in metric.data.data_points
    }


def metrics_look(reader: InMemoryMetricReader, read_stats: Callable[[], SpanStats]) -> Callable[[], SpanStats]:
    """A look through the self-metrics: every processed series is a counter, never above what was enqueued."""
    last: dict[tuple[Any, ...], int] = {}

    def look() -> SpanStats:
        points = processed_points(reader)
        stats = read_stats()  # after: nothing counted as processed may be missing from it
        for key, value in points.items():
            assert value >= last.get(key, 0), (key, last.get(key), value)
            last[key] = value
        assert sum(points.values()) <= stats.enqueued, (points, stats)
        return stats

    return look


def run_chaos(
    processor: Any, push: Callable[[], None], looks: dict[str, Callable[[], SpanStats]], seed: int
) -> SpanStats:
    """Producers, flushers and a racing shutdown at once under the sampler; returns the final stats."""
    returned = 0
    count_lock = threading.Lock()
    early: list[tuple[int, SpanStats]] = []
    shutdown_after = random.Random(seed).randrange(PRODUCERS * PER_PRODUCER)

    def produce() -> None:
        nonlocal returned
        for _ in range(PER_PRODUCER):
            push()
            with count_lock:
                returned += 1

    def flush() -> None:
        for _ in range(FLUSHES):
            with count_lock:
                before = returned
            if processor.force_flush(300):
                stats = processor.stats()
                if stats.exported + stats.spilled + stats.dropped_total < before:
                    early.append((before, stats))

    def shut_down() -> None:
        assert wait_until(lambda: returned >= shutdown_after, timeout=30)
        processor.shutdown()

    sampler = Sampler(looks)
    threads = [threading.Thread(target=produce, daemon=True) for _ in range(PRODUCERS)]
    threads += [threading.Thread(target=flush, daemon=True) for _ in range(FLUSHERS)]
    threads.append(threading.Thread(target=shut_down, daemon=True))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(45)
    assert not [t for t in threads if t.is_alive()], "a producer, flush or shutdown hung"
    # Exports that outlived the shutdown deadline settle when they return.
    assert wait_until(lambda: processor.stats().in_flight == 0, timeout=10), processor.stats()
    wrong = sampler.stop()
    assert not wrong, wrong[:3]
    assert not early, early[:3]
    final = processor.stats()
    assert balanced(final)
    assert final.queued == final.in_flight == 0
    assert final.enqueued >= PRODUCERS * PER_PRODUCER  # the exporter's own spans come on top
    return final


@pytest.fixture(autouse=True)
def _quiet(caplog: pytest.LogCaptureFixture) -> None:
    # Every injected failure is logged (as it should be); the test looks at the counts instead.
    for name in KEEP_LOGS_QUIET:
        caplog.set_level(logging.CRITICAL, logger=name)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("seed", [1])
@pytest.mark.parametrize("drop_policy", ["oldest", "newest", "block"])
@pytest.mark.parametrize("exporter_cls", [ChaosSpanExporter, ChaosManySpanExporter], ids=["export", "export_many"])
def test_a_span_processor_keeps_its_books_under_chaos(
    exporter_cls: type[ChaosSpanExporter], drop_policy: str, seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED", "true")
    reader = InMemoryMetricReader()
    exporter = exporter_cls(seed)
    processor = spanbatch.BatchSpanProcessor(
        exporter,
        max_queue_size=8,
        max_export_batch_size=3,
        schedule_delay_millis=2,
        export_timeout_millis=100,
        drop_policy=drop_policy,  # type: ignore[arg-type]
        meter_provider=MeterProvider(metric_readers=[reader]),
    )
    exporter.chaos.processor = processor
    looks = {
        "stats": processor.stats,
        "repr": lambda: from_repr(processor),
        "metrics": metrics_look(reader, processor.stats),
    }
    try:
        run_chaos(processor, lambda: processor.on_end(make_span()), looks, seed)
    finally:
        processor.shutdown()


@pytest.mark.timeout(120)
@pytest.mark.parametrize("drop_policy", ["oldest", "block"])
def test_a_pipeline_keeps_each_backends_books_under_chaos(drop_policy: str) -> None:
    exporters: dict[str, ChaosSpanExporter] = {
        "a": ChaosSpanExporter(1),
        "b": ChaosManySpanExporter(2),
        "c": ChaosSpanExporter(3),
    }
    pipeline = spanbatch.Pipeline(
        exporters,
        max_queue_size=8,
        max_export_batch_size=3,
        schedule_delay_millis=2,
        export_timeout_millis=100,
        drop_policy=drop_policy,  # type: ignore[arg-type]
        max_concurrent_exports=2,
    )
    for exporter in exporters.values():
        exporter.chaos.processor = pipeline
    looks: dict[str, Callable[[], SpanStats]] = {"stats": pipeline.stats, "repr": lambda: from_repr(pipeline)}
    for name in exporters:
        looks[name] = lambda name=name: pipeline.stats_by_backend()[name]  # type: ignore[misc]
    try:
        final = run_chaos(pipeline, lambda: pipeline.on_end(make_span()), looks, 7)
        assert final == sum(pipeline.stats_by_backend().values(), SpanStats())
    finally:
        pipeline.shutdown()


@pytest.mark.timeout(120)
@pytest.mark.parametrize("drop_policy", ["oldest", "block"])
def test_a_log_record_processor_keeps_its_books_under_chaos(drop_policy: str) -> None:
    exporter = ChaosLogExporter(5)
    processor = spanbatch.BatchLogRecordProcessor(
        exporter,
        max_queue_size=8,
        max_export_batch_size=3,
        schedule_delay_millis=2,
        export_timeout_millis=100,
        drop_policy=drop_policy,  # type: ignore[arg-type]
    )
    exporter.chaos.processor = processor
    looks = {"stats": processor.stats, "repr": lambda: from_repr(processor)}
    try:
        run_chaos(processor, lambda: processor.on_emit(log_record()), looks, 5)
    finally:
        processor.shutdown()
