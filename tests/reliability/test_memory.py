"""Four hundred thousand spans through a slow exporter and a small queue: memory stays flat, and everything is freed."""

from __future__ import annotations

import gc
import time
import weakref
from collections.abc import Callable
from typing import Any

import psutil
import pytest
from spanbatch import BatchSpanProcessor

from tests.helpers import CountingExporter, balanced, provider_with

Later = Callable[[Any], Any]  # the ``shutdown_later`` fixture

SPANS = 400_000
WARM_UP = 50_000
SAMPLE_EVERY = 25_000
# The queue holds 2048 spans and one batch is in flight: a few MB. Anything near this bound is a leak (a span
# kept costs about 1 KB: 400 MB at this count).
BOUND_MB = 16.0


def slow_exporter() -> CountingExporter:
    """Takes 100 ms per batch (about 5k spans/s at 512 a batch), slower than spans are made on a slow machine
    busy with other tests too (a 2-core VM made 16k/s here, where 10 ms per batch kept up)."""
    return CountingExporter(delay=0.1)


@pytest.mark.timeout(300)
def test_many_spans_through_a_slow_exporter_stay_bounded_and_are_freed(
    record_property: pytest.RecordProperty, shutdown_later: Later
) -> None:
    exporter = slow_exporter()
    processor = shutdown_later(
        BatchSpanProcessor(exporter, max_queue_size=2048, max_export_batch_size=512, schedule_delay_millis=50)
    )
    provider = provider_with(processor)
    tracer = provider.get_tracer("memory")
    me = psutil.Process()
    span_refs = []

    for _ in range(WARM_UP):
        tracer.start_span("warm-up").end()
    gc.collect()
    baseline = peak = me.memory_info().rss
    started = time.monotonic()
    for index in range(SPANS):
        span = tracer.start_span("m")
        span.end()
        if index % SAMPLE_EVERY == 0:
            span_refs.append(weakref.ref(span))
            peak = max(peak, me.memory_info().rss)
    seconds = time.monotonic() - started
    del span
    growth_mb = (peak - baseline) / 2**20
    stats = processor.stats()
    provider.shutdown()
    final = processor.stats()
    record_property("rss_baseline_mb", round(baseline / 2**20, 1))
    record_property("rss_growth_mb", round(growth_mb, 2))
    record_property("spans_per_second", round(SPANS / seconds))
    print(f"\n{SPANS} spans in {seconds:.1f} s; RSS {baseline / 2**20:.1f} MB, grew at most {growth_mb:.2f} MB")

    assert growth_mb < BOUND_MB
    assert stats.enqueued == WARM_UP + SPANS
    assert stats.dropped["queue_full"] > 0  # the exporter really was the bottleneck
    assert balanced(stats)
    assert final.exported == exporter.count
    assert final.queued == final.in_flight == 0
    assert balanced(final)

    refs = [weakref.ref(processor), weakref.ref(exporter), weakref.ref(provider), *span_refs]
    del processor, exporter, provider, tracer
    gc.collect()
    assert [ref for ref in refs if ref() is not None] == []


@pytest.mark.timeout(60)
def test_processor_dropped_without_shutdown_is_freed_and_its_worker_ends(shutdown_later: Later) -> None:
    exporter = slow_exporter()
    processor = shutdown_later(BatchSpanProcessor(exporter, schedule_delay_millis=10))
    provider = provider_with(processor)
    for _ in range(1000):
        provider.get_tracer("memory").start_span("orphan").end()
    worker = processor.lanes[0].worker
    assert worker is not None
    assert worker.is_alive()
    refs = [weakref.ref(processor), weakref.ref(provider)]
    del processor, provider
    gc.collect()
    worker.join(10)

    assert [ref for ref in refs if ref() is not None] == []
    assert not worker.is_alive()
