"""The accounting invariant under random mixes of export policies, failures and delays."""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections.abc import Sequence
from typing import Any

import pytest
import spanbatch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExportResult

from tests.helpers import balanced, make_span, run_in_threads

OUTCOMES = st.sampled_from(["ok", "failure", "raise", "junk"])


class CyclingExporter:
    """Plays ``outcomes`` in a loop, after ``delay`` seconds; counts the spans it accepted."""

    def __init__(self, outcomes: list[str], delay: float, is_async: bool) -> None:
        self.outcomes = itertools.cycle(outcomes)
        self.delay = delay
        self.is_async = is_async
        self.accepted = 0
        self.lock = threading.Lock()

    def _play(self, spans: Sequence[ReadableSpan]) -> Any:
        outcome = next(self.outcomes)
        if outcome == "raise":
            raise ConnectionError("scripted")
        if outcome == "ok":
            with self.lock:
                self.accepted += len(spans)
            return SpanExportResult.SUCCESS
        return SpanExportResult.FAILURE if outcome == "failure" else "junk"

    def export(self, spans: Sequence[ReadableSpan]) -> Any:
        if not self.is_async:
            time.sleep(self.delay)
            return self._play(spans)

        async def run() -> Any:
            await asyncio.sleep(self.delay)
            return self._play(spans)

        return run()

    def shutdown(self) -> None:
        pass


@pytest.mark.timeout(300)
@settings(max_examples=75, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    queue=st.integers(1, 8),
    batch_share=st.floats(0.0, 1.0),
    drop_policy=st.sampled_from(["oldest", "newest", "block"]),
    max_retries=st.integers(0, 2),
    linger=st.one_of(st.none(), st.floats(1, 20)),
    outcomes=st.lists(OUTCOMES, min_size=1, max_size=5),
    delay=st.sampled_from([0.0, 0.001, 0.005]),
    is_async=st.booleans(),
    plan=st.lists(st.sampled_from(["end", "end", "end", "unsampled", "flush", "stats"]), max_size=40),
    producers=st.integers(1, 3),
    concurrency=st.integers(1, 3),
)
def test_every_span_is_accounted_for_under_any_mix_of_policies(
    *,
    queue: int,
    batch_share: float,
    drop_policy: str,
    max_retries: int,
    linger: float | None,
    outcomes: list[str],
    delay: float,
    is_async: bool,
    plan: list[str],
    producers: int,
    concurrency: int,
) -> None:
    exporter = CyclingExporter(outcomes, delay, is_async)
    processor = spanbatch.BatchSpanProcessor(
        exporter,  # type: ignore[arg-type]
        queue,
        50,
        max(1, round(queue * batch_share)),
        5000,
        drop_policy=drop_policy,  # type: ignore[arg-type]
        block_timeout_millis=5,
        max_retries=max_retries,
        retry_initial_backoff_millis=1,
        retry_max_backoff_millis=2,
        linger_millis=linger,
        max_concurrent_exports=concurrency,
    )
    unbalanced: list[spanbatch.SpanStats] = []

    def produce() -> None:
        for step in plan:
            if step in ("end", "unsampled"):
                processor.on_end(make_span(sampled=step == "end"))
            elif step == "flush":
                processor.force_flush(5000)
            elif not balanced(stats := processor.stats()):
                unbalanced.append(stats)

    try:
        run_in_threads([produce] * producers)
    finally:
        processor.shutdown(10_000)
    stats = processor.stats()

    assert unbalanced == []
    assert balanced(stats)
    assert stats.enqueued == producers * plan.count("end")
    assert (stats.queued, stats.in_flight) == (0, 0)
    assert stats.exported == exporter.accepted
    assert stats.retried <= max_retries * stats.batches
    assert stats.dropped["fork"] == 0
