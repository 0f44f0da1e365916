"""Accounting and flush under exporters that do what exporters may do (issue 13, items 3, 6, 7).

An exporter may keep, mutate or extend the list it is given, end spans of its own while it
exports, or finish its batches out of order on several threads; an encoder may leave a span
out. ``enqueued == exported + queued + in_flight + dropped_total`` holds through all of it,
and a flush waits for the spans queued before it, not for an empty queue.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any

import pytest
import spanbatch
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from spanbatch._core import SpanRequest
from spanbatch.testing import OTLPReceiver

from tests.helpers import LONG, EncodingExporter, balanced, end_spans, provider_with, wait_until
from tests.helpers.metrics import metric_points

Later = Callable[[Any], Any]  # the ``shutdown_later`` fixture
BAD_NAME = "bad-\ud800"  # a lone surrogate: no UTF-8 encoding exists for it


class StatsWatcher:
    """Reads the processor's stats from inside ``export``, while the batch is in flight."""

    def __init__(self) -> None:
        self.processor: spanbatch.BatchSpanProcessor | None = None
        self.during: list[spanbatch.SpanStats] = []

    def look(self) -> None:
        if self.processor is not None:
            self.during.append(self.processor.stats())


class MutatingExporter(SpanExporter, StatsWatcher):
    """Changes the list it is given, as an exporter may."""

    def __init__(self, mutate: Callable[[list[ReadableSpan]], object]) -> None:
        StatsWatcher.__init__(self)
        self.mutate = mutate
        self.handed: list[int] = []

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.handed.append(len(spans))
        self.look()
        self.mutate(spans)  # type: ignore[arg-type]
        return SpanExportResult.SUCCESS


MUTATIONS: dict[str, Callable[[list[ReadableSpan]], object]] = {
    "pop": lambda spans: spans.pop(),
    "clear": lambda spans: spans.clear(),
    "append": lambda spans: spans.extend(list(spans)),
}


@pytest.mark.timeout(60)
@pytest.mark.parametrize("mutation", sorted(MUTATIONS))
def test_an_exporter_that_changes_its_list_leaves_accounting_and_flush_intact(
    mutation: str, shutdown_later: Later
) -> None:
    exporter = MutatingExporter(MUTATIONS[mutation])
    processor = shutdown_later(
        spanbatch.BatchSpanProcessor(exporter, max_export_batch_size=10, schedule_delay_millis=LONG)
    )
    exporter.processor = processor
    provider = provider_with(processor)
    end_spans(provider, 25)
    assert processor.force_flush(10_000)
    end_spans(provider, 3)
    assert processor.force_flush(10_000)
    final = processor.stats()
    assert (final.enqueued, final.exported, final.queued, final.in_flight, final.dropped_total) == (28, 28, 0, 0, 0)
    assert exporter.handed == [10, 10, 5, 3]
    # While each export ran, its whole batch (as handed over) was in flight.
    assert [s.in_flight for s in exporter.during] == exporter.handed
    assert all(balanced(s) for s in exporter.during)
    processor.shutdown()


class SelfTracingExporter(SpanExporter, StatsWatcher):
    """Ends a span of its own in every export, as an instrumented HTTP client would."""

    def __init__(self) -> None:
        StatsWatcher.__init__(self)
        self.tracer: Any = None
        self.calls = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.calls += 1
        self.look()
        self.tracer.start_span("exporter's own").end()
        return SpanExportResult.SUCCESS


@pytest.mark.timeout(60)
def test_a_flush_is_not_held_up_by_spans_the_exporter_ends_itself(shutdown_later: Later) -> None:
    exporter = SelfTracingExporter()
    processor = shutdown_later(spanbatch.BatchSpanProcessor(exporter, schedule_delay_millis=LONG))
    exporter.processor = processor
    provider = provider_with(processor)
    exporter.tracer = provider.get_tracer("instrumented client")
    end_spans(provider, 5)
    flushes = 10
    for _ in range(flushes):
        # A generous timeout: a flush that waits for an empty queue would spin to it.
        assert processor.force_flush(10_000)
    # The first flush exports the 5 spans; each flush after it, the one span the export before it ended.
    assert exporter.calls <= flushes
    assert all(balanced(s) for s in exporter.during)
    now = processor.stats()
    assert balanced(now)
    assert now.queued == 1  # the last export's own span waits for its delay
    processor.shutdown()
    assert balanced(processor.stats())


class GatedExporter(SpanExporter, StatsWatcher):
    """Each batch waits until the test opens the gate named after its first span."""

    def __init__(self, names: Sequence[str]) -> None:
        StatsWatcher.__init__(self)
        self.entered = {name: threading.Event() for name in names}
        self.gates = {name: threading.Event() for name in names}
        self.finished: list[str] = []

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        name = spans[0].name
        self.entered[name].set()
        self.look()
        self.gates[name].wait(30)
        self.finished.append(name)
        return SpanExportResult.SUCCESS


class Flusher(threading.Thread):
    """Waits on a flush ticket taken by the test's own thread, so its place among the spans is exact."""

    def __init__(self, core: Any) -> None:
        super().__init__(daemon=True)
        self.core = core
        self.ticket = core.request_flush()
        self.result: bool | None = None
        self.start()

    def run(self) -> None:
        self.result = self.core.wait_flush(self.ticket, 30_000)


def gated_processor(
    shutdown_later: Later, names: Sequence[str]
) -> tuple[GatedExporter, spanbatch.BatchSpanProcessor, TracerProvider]:
    exporter = GatedExporter(names)
    # One span per batch, exported at once on one of three threads.
    processor = shutdown_later(
        spanbatch.BatchSpanProcessor(
            exporter, max_export_batch_size=1, schedule_delay_millis=LONG, max_concurrent_exports=3
        )
    )
    exporter.processor = processor
    return exporter, processor, provider_with(processor)


@pytest.mark.timeout(60)
def test_a_flush_does_not_wait_for_batches_taken_after_it(shutdown_later: Later) -> None:
    exporter, processor, provider = gated_processor(shutdown_later, ["p", "q"])
    core = processor.lanes[0].core
    end_spans(provider, 1, name="p")
    assert exporter.entered["p"].wait(10)
    first = Flusher(core)  # waits for p only
    end_spans(provider, 1, name="q")
    assert exporter.entered["q"].wait(10)
    second = Flusher(core)  # waits for p and q
    exporter.gates["p"].set()
    first.join(20)
    # Done while q, taken after it, is still being exported.
    assert first.result is True
    assert not exporter.gates["q"].is_set()
    assert second.is_alive()
    assert all(balanced(s) for s in exporter.during)
    exporter.gates["q"].set()
    second.join(20)
    assert second.result is True
    processor.shutdown()
    final = processor.stats()
    assert (final.exported, final.in_flight, final.queued) == (2, 0, 0)


@pytest.mark.timeout(60)
def test_a_flush_waits_for_an_earlier_batch_that_finishes_last(shutdown_later: Later) -> None:
    exporter, processor, provider = gated_processor(shutdown_later, ["p", "q"])
    core = processor.lanes[0].core
    end_spans(provider, 1, name="p")
    end_spans(provider, 1, name="q")
    assert exporter.entered["p"].wait(10)
    assert exporter.entered["q"].wait(10)
    flusher = Flusher(core)
    exporter.gates["q"].set()
    assert wait_until(lambda: exporter.finished == ["q"])
    flusher.join(0.5)
    assert flusher.is_alive(), "p, queued before the flush, is still being exported"
    now = processor.stats()
    assert (now.exported, now.in_flight) == (1, 1)
    assert balanced(now)
    exporter.gates["p"].set()
    flusher.join(20)
    assert flusher.result is True
    processor.shutdown()


@pytest.mark.timeout(60)
def test_a_flush_waiting_when_shutdown_gives_up_returns_false_at_once(shutdown_later: Later) -> None:
    exporter, processor, provider = gated_processor(shutdown_later, ["stuck"])
    end_spans(provider, 1, name="stuck")
    assert exporter.entered["stuck"].wait(10)
    result: list[bool] = []
    flusher = threading.Thread(target=lambda: result.append(processor.force_flush(40_000)), daemon=True)
    flusher.start()
    processor.shutdown(timeout_millis=200)  # gives up on the stuck export
    flusher.join(20)  # far less than the flush's own 40 s
    assert result == [False]
    assert balanced(processor.stats())
    exporter.gates["stuck"].set()


class RequestExporter(EncodingExporter, StatsWatcher):
    """Gets SpanRequests and reads the stats while exporting."""

    # Declared again next to the ``export`` override: spanbatch hands requests only to an ``export``
    # whose own class declares the encoder.
    span_encoder = EncodingExporter.span_encoder

    def __init__(self) -> None:
        EncodingExporter.__init__(self)
        StatsWatcher.__init__(self)

    def export(self, spans: Any) -> SpanExportResult:
        self.look()
        return super().export(spans)


@pytest.mark.timeout(60)
def test_a_span_the_encoder_leaves_out_is_dropped_as_unencodable(
    caplog: pytest.LogCaptureFixture, shutdown_later: Later
) -> None:
    exporter = RequestExporter()
    processor = shutdown_later(spanbatch.BatchSpanProcessor(exporter, schedule_delay_millis=LONG))
    exporter.processor = processor
    provider = provider_with(processor)
    end_spans(provider, 4)
    end_spans(provider, 1, name=BAD_NAME)
    assert processor.force_flush(10_000)
    with caplog.at_level(logging.WARNING, logger="spanbatch"):
        processor.shutdown()
    final = processor.stats()
    assert (final.enqueued, final.exported, final.in_flight, final.queued) == (5, 4, 0, 0)
    assert dict(final.dropped) == {
        "queue_full": 0,
        "shutdown": 0,
        "export_failed": 0,
        "fork": 0,
        "unencodable": 1,
        "too_large": 0,
    }
    # While it was exported, the request stood for all 5 spans read into it.
    assert all(isinstance(batch, SpanRequest) for batch in exporter.batches)
    assert [len(batch) for batch in exporter.batches] == [5]
    assert [s.in_flight for s in exporter.during] == [5]
    assert balanced(exporter.during[0])
    assert "could not be encoded — dropped 1 span " in caplog.text


class Wrapper(SpanExporter):
    """Delegates to another exporter: spanbatch's processor then hands it plain lists of spans."""

    def __init__(self, inner: SpanExporter) -> None:
        self.inner = inner

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return self.inner.export(spans)

    def shutdown(self) -> None:
        self.inner.shutdown()


def spanbatch_exporter(rx: OTLPReceiver) -> SpanExporter:
    if rx.protocol == "http":
        from spanbatch.exporter import OTLPSpanExporter  # noqa: PLC0415

        return OTLPSpanExporter(endpoint=rx.endpoint, timeout=5)
    from spanbatch.exporter.grpc import OTLPSpanExporter as GRPCExporter  # noqa: PLC0415

    return GRPCExporter(endpoint=rx.endpoint, insecure=True, timeout=5)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("wrapped", [False, True], ids=["requests", "wrapped-lists"])
def test_unencodable_spans_sent_to_a_real_receiver_are_counted(
    receiver: OTLPReceiver, wrapped: bool, shutdown_later: Later
) -> None:
    exporter = spanbatch_exporter(receiver)
    processor = shutdown_later(
        spanbatch.BatchSpanProcessor(Wrapper(exporter) if wrapped else exporter, schedule_delay_millis=LONG)
    )
    provider = provider_with(processor)
    end_spans(provider, 6)
    end_spans(provider, 2, name=BAD_NAME)
    end_spans(provider, 6)
    assert processor.force_flush(20_000)
    assert receiver.wait_for_spans(12)
    assert receiver.stats().spans == 12
    now = processor.stats()
    assert (now.exported, now.dropped["unencodable"], now.dropped_total, now.in_flight) == (12, 2, 2, 0)
    assert balanced(now)
    processor.shutdown()


@pytest.mark.timeout(60)
def test_unencodable_spans_count_as_processed_like_any_span_handed_over(
    monkeypatch: pytest.MonkeyPatch, shutdown_later: Later
) -> None:
    monkeypatch.setenv("OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED", "true")
    reader = InMemoryMetricReader()
    processor = shutdown_later(
        spanbatch.BatchSpanProcessor(
            RequestExporter(), schedule_delay_millis=LONG, meter_provider=MeterProvider(metric_readers=[reader])
        )
    )
    provider = provider_with(processor)
    end_spans(provider, 3)
    end_spans(provider, 1, name=BAD_NAME)
    assert processor.force_flush(10_000)
    points = metric_points(reader)["otel.sdk.processor.span.processed"]
    processed = {attributes.get("error.type"): value for attributes, value in points}
    # Handed to the exporter, as the stock processor counts it (its encoder fails the whole batch).
    assert processed == {None: 4}
    processor.shutdown()


class SlowExporter(SpanExporter, StatsWatcher):
    """Takes ``delay`` seconds per batch, as a backend across a network does."""

    def __init__(self, delay: float) -> None:
        StatsWatcher.__init__(self)
        self.delay = delay
        self.exported = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.look()
        threading.Event().wait(self.delay)
        self.exported += len(spans)
        return SpanExportResult.SUCCESS


@pytest.mark.timeout(60)
@pytest.mark.parametrize("policy", ["oldest", "newest"])
def test_a_flush_under_a_steady_stream_of_spans_returns_once_what_came_before_it_is_exported(
    policy: str, shutdown_later: Later
) -> None:
    # The exporter is slower than the producer: the queue stays full and is never empty.
    exporter = SlowExporter(0.02)
    processor = shutdown_later(
        spanbatch.BatchSpanProcessor(
            exporter,
            max_queue_size=256,
            max_export_batch_size=64,
            schedule_delay_millis=LONG,
            drop_policy=policy,  # type: ignore[arg-type]
        )
    )
    exporter.processor = processor
    provider = provider_with(processor)
    tracer = provider.get_tracer("steady")
    stop = threading.Event()

    def produce() -> None:
        while not stop.is_set():
            tracer.start_span("steady").end()

    producer = threading.Thread(target=produce, daemon=True)
    producer.start()
    try:
        assert wait_until(lambda: processor.stats().dropped["queue_full"] > 0)
        results = [processor.force_flush(10_000) for _ in range(2)]
        during = processor.stats()
    finally:
        stop.set()
        producer.join(10)
    assert results == [True, True]
    assert balanced(during)
    assert all(balanced(s) for s in exporter.during)
    processor.shutdown()
    assert balanced(processor.stats())
