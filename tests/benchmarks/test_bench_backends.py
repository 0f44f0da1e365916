"""1, 2 and 4 back ends on one TracerProvider: N stock processors against one spanbatch pipeline of N lanes.

Each back end gets a counting exporter, so the figures are the fan-out's cost to the application
thread; every lane's exported and dropped spans are recorded.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import spanbatch
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor as StockBatchSpanProcessor

from tests.benchmarks.contenders import FLUSH_MILLIS
from tests.helpers import CountingExporter

SPANS_PER_ROUND = 4000
ROUNDS = 10


def install_stock(provider: TracerProvider, exporters: dict[str, CountingExporter]) -> Callable[[], dict[str, int]]:
    for exporter in exporters.values():
        provider.add_span_processor(StockBatchSpanProcessor(exporter))
    return dict


def install_spanbatch(provider: TracerProvider, exporters: dict[str, CountingExporter]) -> Callable[[], dict[str, int]]:
    install = getattr(spanbatch, "install", None)
    if install is None:
        pytest.skip("spanbatch.install (one pipeline, a lane per back end) is not in this build yet")
    pipeline = install(provider, exporters)
    return lambda: {name: stats.dropped_total for name, stats in pipeline.stats_by_backend().items()}


@pytest.mark.timeout(300)
@pytest.mark.parametrize("name", ["stock", "spanbatch"])
@pytest.mark.parametrize("backends", [1, 2, 4])
def test_backends(benchmark: Any, name: str, backends: int) -> None:
    benchmark.group = f"start+end x{SPANS_PER_ROUND}, {backends} back end{'s' if backends > 1 else ''}"
    exporters = {f"backend-{i}": CountingExporter() for i in range(backends)}
    provider = TracerProvider(shutdown_on_exit=False)
    dropped_by_backend = (install_stock if name == "stock" else install_spanbatch)(provider, exporters)
    tracer = provider.get_tracer("bench")
    spans = range(SPANS_PER_ROUND)

    def produce() -> None:
        for _ in spans:
            tracer.start_span("work").end()

    try:
        benchmark.pedantic(produce, rounds=ROUNDS, iterations=1, warmup_rounds=1)
        provider.force_flush(FLUSH_MILLIS)
        produced = (ROUNDS + 1) * SPANS_PER_ROUND
        exported = {backend: exporter.count for backend, exporter in exporters.items()}
        benchmark.extra_info.update(
            spans_per_call=SPANS_PER_ROUND,
            produced=produced * backends,
            exported=sum(exported.values()),
            dropped=produced * backends - sum(exported.values()),
            exported_by_backend=exported,
        )
        reasons = dropped_by_backend()
        if reasons:
            benchmark.extra_info["dropped_by_backend"] = reasons
    finally:
        provider.shutdown()
