"""``on_end`` per span: the cost a processor adds to the application thread."""

from __future__ import annotations

from typing import Any

import pytest

from tests.benchmarks.contenders import (
    CONTENDERS,
    ON_END_SPANS_PER_ROUND,
    bench_on_end,
    counting_contender,
    time_on_end,
)

SETTINGS = {
    "default settings": {},
    "idle worker": {"max_queue_size": 1 << 18, "max_export_batch_size": 1 << 18, "schedule_delay_millis": 60_000},
}


@pytest.mark.parametrize("name", CONTENDERS)
@pytest.mark.parametrize("setting", sorted(SETTINGS))
def test_on_end(benchmark: Any, request: pytest.FixtureRequest, name: str, setting: str) -> None:
    benchmark.group = f"on_end x{ON_END_SPANS_PER_ROUND} ({setting})"
    contender = counting_contender(name, request, **SETTINGS[setting])
    bench_on_end(benchmark, contender)


@pytest.mark.parametrize("name", CONTENDERS)
def test_on_end_after_shutdown(benchmark: Any, request: pytest.FixtureRequest, name: str) -> None:
    """A span ended after ``shutdown()`` (daemon threads at exit, a provider shut down early): refused and counted
    (stock: only refused), the drop warning's work skipped while its interval runs."""
    benchmark.group = f"on_end x{ON_END_SPANS_PER_ROUND} after shutdown"
    contender = counting_contender(name, request)
    contender.processor.shutdown()
    produced, exported = time_on_end(benchmark, contender), contender.delivered()
    benchmark.extra_info.update(produced=produced, exported=exported, dropped=produced - exported)
