"""Many threads, real OTLP exporters: every span arrives exactly once and the counters agree."""

from __future__ import annotations

import threading

import pytest
from reliability_helpers import assert_accounted, end_spans, provider_with
from spanbatch import BatchSpanProcessor
from spanbatch.testing import OTLPReceiver

THREADS = 8


def run_threads(receiver: OTLPReceiver, total: int) -> None:
    # The queue holds every span, so any loss or duplicate is a bug, not back-pressure.
    processor = BatchSpanProcessor(receiver.span_exporter(timeout=30), max_queue_size=total, schedule_delay_millis=200)
    provider = provider_with(processor)
    per_thread = total // THREADS
    ids: list[set[bytes]] = [set() for _ in range(THREADS)]
    start = threading.Barrier(THREADS)

    def work(index: int) -> None:
        start.wait(10)
        ids[index] = end_spans(provider, per_thread, name=f"thread-{index}")

    threads = [threading.Thread(target=work, args=(i,)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
        assert not thread.is_alive()

    assert processor.force_flush(60_000)
    stats = processor.stats()
    assert receiver.wait_for_spans(total, timeout=30)
    received = receiver.stats()
    provider.shutdown()

    assert stats.enqueued == total
    assert stats.exported == total
    assert stats.dropped_total == 0
    assert stats.queued == stats.in_flight == 0
    assert_accounted(stats)
    assert received.spans == total
    assert received.unique_spans == total
    assert received.duplicates == 0
    assert received.services == {"reliability": total}
    assert receiver.span_names() == {f"thread-{i}": per_thread for i in range(THREADS)}
    assert receiver.span_ids() == set().union(*ids)


@pytest.mark.timeout(180)
def test_hundred_thousand_spans_from_eight_threads_arrive_exactly_once(receiver: OTLPReceiver) -> None:
    run_threads(receiver, 100_000)
