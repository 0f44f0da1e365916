"""Many threads, real OTLP exporters: every span arrives exactly once and the counters agree."""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any

import pytest
from spanbatch import BatchSpanProcessor
from spanbatch.testing import OTLPReceiver

from tests.helpers import balanced, end_spans, provider_with, run_in_threads

Later = Callable[[Any], Any]  # the ``shutdown_later`` fixture

THREADS = 8


def run_threads(shutdown_later: Later, receiver: OTLPReceiver, total: int) -> None:
    # The queue holds every span, so any loss or duplicate is a bug, not back-pressure.
    processor = shutdown_later(
        BatchSpanProcessor(receiver.span_exporter(timeout=30), max_queue_size=total, schedule_delay_millis=200)
    )
    provider = provider_with(processor, service="reliability")
    per_thread = total // THREADS
    ids: list[set[bytes]] = [set() for _ in range(THREADS)]
    start = threading.Barrier(THREADS)

    def work(index: int) -> None:
        start.wait(10)
        ids[index] = end_spans(provider, per_thread, name=f"thread-{index}")

    run_in_threads([functools.partial(work, i) for i in range(THREADS)], timeout=120)

    assert processor.force_flush(60_000)
    stats = processor.stats()
    assert receiver.wait_for_spans(total, timeout=30)
    received = receiver.stats()
    provider.shutdown()

    assert stats.enqueued == total
    assert stats.exported == total
    assert stats.dropped_total == 0
    assert stats.queued == stats.in_flight == 0
    assert balanced(stats)
    assert received.spans == total
    assert received.unique_spans == total
    assert received.duplicates == 0
    assert received.services == {"reliability": total}
    assert receiver.span_names() == {f"thread-{i}": per_thread for i in range(THREADS)}
    assert receiver.span_ids() == set().union(*ids)


@pytest.mark.timeout(180)
def test_hundred_thousand_spans_from_eight_threads_arrive_exactly_once(
    receiver: OTLPReceiver, shutdown_later: Later
) -> None:
    run_threads(shutdown_later, receiver, 100_000)


@pytest.mark.alone  # a tight loop: the worker must be scheduled during it
@pytest.mark.timeout(120)
def test_a_tight_loop_at_default_settings_loses_nothing_through_spanbatchs_exporter(shutdown_later: Later) -> None:
    # The stock processor + exporter drop most of these spans (the benchmarks show how many):
    # encoding in Rust and sending without the GIL, several batches per call, keep up. The loop
    # never lets go of the GIL by itself, so the worker gets it from ``on_end`` (a handoff), not
    # 5 ms later at a forced switch.
    pytest.importorskip("opentelemetry.exporter.otlp.common.http", reason="needs the OTLP exporters >= 1.45")
    from spanbatch.exporter import OTLPSpanExporter  # noqa: PLC0415

    total = 20_000
    with OTLPReceiver("http") as receiver:
        exporter = OTLPSpanExporter(endpoint=receiver.endpoint)
        assert exporter.sends_natively
        processor = shutdown_later(BatchSpanProcessor(exporter))
        provider = provider_with(processor)
        tracer = provider.get_tracer("reliability")
        ids = set()
        for i in range(total):
            span = tracer.start_span("chat gpt-4o-mini")
            span.set_attributes(
                {
                    "gen_ai.system": "openai",
                    "gen_ai.request.model": "gpt-4o-mini",
                    "gen_ai.usage.input_tokens": 1200 + i,
                    "gen_ai.usage.output_tokens": 300,
                    "session.id": f"session-{i % 50}",
                    "http.response.status_code": 200,
                    "retry": False,
                    "temperature": 0.2,
                }
            )
            span.add_event("gen_ai.choice", {"gen_ai.response.finish_reason": "stop"})
            span.end()
            ids.add(span.get_span_context().span_id.to_bytes(8, "big"))
        handoffs = processor.lanes[0].core.gil_handoffs
        assert processor.force_flush(30_000)
        stats = processor.stats()
        assert stats.dropped_total == 0, stats
        assert handoffs > 0
        assert receiver.wait_for_spans(total, timeout=30)
        received, received_ids = receiver.stats(), receiver.span_ids()
        provider.shutdown()

    assert stats.exported == stats.enqueued == total
    assert balanced(stats)
    assert (received.spans, received.unique_spans, received.duplicates) == (total, total, 0)
    assert received_ids == ids
