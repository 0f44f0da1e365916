"""``on_end`` per span: the cost a processor adds to the application thread."""

from __future__ import annotations

from typing import Any

import pytest

from tests.benchmarks.conftest import CONTENDERS, counting_contender, record_delivery
from tests.conftest import make_span

SPANS_PER_ROUND = 1000
ROUNDS = 100
SETTINGS = {
    "default settings": {},
    "idle worker": {"max_queue_size": 1 << 18, "max_export_batch_size": 1 << 18, "schedule_delay_millis": 60_000},
}


@pytest.mark.parametrize("name", CONTENDERS)
@pytest.mark.parametrize("setting", sorted(SETTINGS))
def test_on_end(benchmark: Any, request: pytest.FixtureRequest, name: str, setting: str) -> None:
    benchmark.group = f"on_end x{SPANS_PER_ROUND} ({setting})"
    contender = counting_contender(name, request, **SETTINGS[setting])
    on_end, span, spans = contender.processor.on_end, make_span(), range(SPANS_PER_ROUND)

    def end_many() -> None:
        for _ in spans:
            on_end(span)

    benchmark.pedantic(end_many, rounds=ROUNDS, iterations=1, warmup_rounds=2)
    benchmark.extra_info["spans_per_call"] = SPANS_PER_ROUND
    record_delivery(benchmark, contender, (ROUNDS + 2) * SPANS_PER_ROUND)
