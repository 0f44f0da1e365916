"""Bursts into a full queue: every lost span is counted as ``queue_full``, and the policy picks which."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from spanbatch import BatchSpanProcessor

from tests.helpers import ScriptedExporter, balanced, end_spans, provider_with, run_in_threads, wait_until

pytestmark = pytest.mark.timeout(60)
Later = Callable[[Any], Any]  # the ``shutdown_later`` fixture


def blocked_processor(
    shutdown_later: Later, drop_policy: str = "oldest"
) -> tuple[BatchSpanProcessor, ScriptedExporter]:
    """A processor whose worker holds one batch of 10 in a blocked export, with room for 100 more."""
    exporter = ScriptedExporter("block")
    processor = shutdown_later(
        BatchSpanProcessor(
            exporter,
            max_queue_size=100,
            max_export_batch_size=10,
            drop_policy=drop_policy,  # type: ignore[arg-type]
        )
    )
    return processor, exporter


@pytest.mark.parametrize(("policy", "kept"), [("oldest", range(900, 1000)), ("newest", range(100))])
def test_burst_drops_exactly_the_overflow(policy: str, kept: range, shutdown_later: Later) -> None:
    processor, exporter = blocked_processor(shutdown_later, policy)
    provider = provider_with(processor)
    tracer = provider.get_tracer("burst")
    end_spans(provider, 10, name="in-flight")
    assert wait_until(lambda: processor.stats().in_flight == 10)

    for index in range(1000):
        tracer.start_span(str(index)).end()
    during = processor.stats()
    exporter.release.set()
    assert processor.force_flush(10_000)
    after = processor.stats()
    provider.shutdown()

    assert during.queued == 100
    assert during.in_flight == 10
    assert dict(during.dropped) == {
        "queue_full": 900,
        "shutdown": 0,
        "export_failed": 0,
        "fork": 0,
        "unencodable": 0,
        "too_large": 0,
    }
    assert balanced(during)
    assert after.exported == 110
    assert after.dropped_total == 900
    assert balanced(after)
    assert exporter.names() == ["in-flight"] * 10 + [str(i) for i in kept]


@pytest.mark.timeout(120)
def test_burst_from_many_threads_keeps_the_books_exact(shutdown_later: Later) -> None:
    processor, exporter = blocked_processor(shutdown_later)
    provider = provider_with(processor)
    end_spans(provider, 10)
    assert wait_until(lambda: processor.stats().in_flight == 10)
    per_thread, threads = 5_000, 8
    start = threading.Barrier(threads)
    invariant_broken: list[object] = []

    def burst() -> None:
        start.wait(10)
        for _ in range(per_thread // 500):
            end_spans(provider, 500)
            stats = processor.stats()
            if not balanced(stats):
                invariant_broken.append(stats)

    run_in_threads([burst] * threads, timeout=60)
    during = processor.stats()
    exporter.release.set()
    assert processor.force_flush(10_000)
    after = processor.stats()
    provider.shutdown()

    assert invariant_broken == []
    total = 10 + per_thread * threads
    assert during.enqueued == total
    assert during.queued == 100
    assert during.dropped["queue_full"] == total - 110
    assert after.exported == 110
    assert len(exporter.spans) == 110
    assert balanced(after)
