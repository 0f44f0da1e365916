"""``on_end`` per span under each export policy: the ones that do not block must not cost more."""

from __future__ import annotations

from typing import Any

import pytest

from tests.benchmarks.contenders import ON_END_SPANS_PER_ROUND, bench_on_end, counting_contender

IDLE_WORKER = {"max_queue_size": 1 << 18, "max_export_batch_size": 1 << 18, "schedule_delay_millis": 60_000}
VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    "stock": ("stock", {}),
    "spanbatch defaults": ("spanbatch", {}),
    "spanbatch linger+retries": ("spanbatch", {"linger_millis": 50_000, "max_retries": 3}),
    "spanbatch drop newest": ("spanbatch", {"drop_policy": "newest"}),
    "spanbatch block (room left)": ("spanbatch", {"drop_policy": "block", "block_timeout_millis": 100}),
}


@pytest.mark.parametrize("name", list(VARIANTS))
def test_on_end_by_policy(benchmark: Any, request: pytest.FixtureRequest, name: str) -> None:
    benchmark.group = f"on_end x{ON_END_SPANS_PER_ROUND} by export policy (idle worker)"
    processor, policy = VARIANTS[name]
    contender = counting_contender(processor, request, **IDLE_WORKER, **policy)
    bench_on_end(benchmark, contender)
