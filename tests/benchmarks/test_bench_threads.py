"""Span start + end through each processor, from 1, 4 and 8 producer threads, at default settings."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider

from tests.benchmarks.contenders import CONTENDERS, counting_contender, record_delivery

SPANS_PER_ROUND = 4000
ROUNDS = 20
JOIN_SECONDS = 60


@pytest.mark.timeout(300)
@pytest.mark.parametrize("name", CONTENDERS)
@pytest.mark.parametrize("threads", [1, 4, 8])
def test_start_end(benchmark: Any, request: pytest.FixtureRequest, name: str, threads: int) -> None:
    benchmark.group = f"start+end x{SPANS_PER_ROUND}, {threads} thread{'s' if threads > 1 else ''}"
    contender = counting_contender(name, request)
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(contender.processor)
    tracer = provider.get_tracer("bench")
    per_thread = range(SPANS_PER_ROUND // threads)

    def produce() -> None:
        for _ in per_thread:
            tracer.start_span("work").end()

    def round_of_threads() -> None:
        # The same total per round whatever the thread count, so per-span figures compare across groups.
        workers = [threading.Thread(target=produce) for _ in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(JOIN_SECONDS)

    benchmark.pedantic(round_of_threads, rounds=ROUNDS, iterations=1, warmup_rounds=1)
    benchmark.extra_info["spans_per_call"] = SPANS_PER_ROUND
    record_delivery(benchmark, contender, (ROUNDS + 1) * SPANS_PER_ROUND)
