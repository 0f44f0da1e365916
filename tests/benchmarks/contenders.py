"""The benchmarks' contenders: the processors side by side, and spans counted so a lossy run shows it."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
import spanbatch
from opentelemetry.sdk.trace import SpanProcessor
from opentelemetry.sdk.trace.export import BatchSpanProcessor as StockBatchSpanProcessor
from spanbatch.testing import OTLPReceiver

from tests.helpers import CountingExporter, make_span

# fastotel's OTLPSpanProcessor is a processor and an OTLP/HTTP exporter in one: it always sends to a receiver.
CONTENDERS = ["stock", "spanbatch", "fastotel"]
FLUSH_MILLIS = 30_000


@dataclass
class Contender:
    """A processor under test and how many spans it delivered so far."""

    processor: SpanProcessor
    delivered: Callable[[], int]
    dropped_by_reason: Callable[[], dict[str, int]] = dict


def fastotel_processor_class() -> Any:
    if sys.version_info < (3, 11):
        pytest.skip("fastotel needs CPython >= 3.11")
    module = pytest.importorskip("fastotel", reason="fastotel is not installed (pip install fastotel)")
    return module.OTLPSpanProcessor


def received_since_reset(rx: OTLPReceiver) -> Callable[[], int]:
    rx.reset()
    return lambda: rx.stats().spans


def spanbatch_drops(processor: spanbatch.BatchSpanProcessor) -> Callable[[], dict[str, int]]:
    return lambda: {reason: n for reason, n in processor.stats().dropped.items() if n}


def counting_contender(name: str, request: pytest.FixtureRequest, **settings: Any) -> Contender:
    """stock and spanbatch with a counting exporter; fastotel sending to the loopback receiver."""
    if name == "fastotel":
        fastotel = fastotel_processor_class()
        rx: OTLPReceiver = request.getfixturevalue("receiver")
        return Contender(fastotel(endpoint=rx.endpoint, **settings), received_since_reset(rx))
    exporter = CountingExporter()  # only counts, so the benchmark measures the processor
    shutdown_later = request.getfixturevalue("shutdown_later")
    if name == "stock":
        return Contender(shutdown_later(StockBatchSpanProcessor(exporter, **settings)), lambda: exporter.count)
    processor = shutdown_later(spanbatch.BatchSpanProcessor(exporter, **settings))
    return Contender(processor, lambda: exporter.count, spanbatch_drops(processor))


def record_delivery(benchmark: Any, contender: Contender, produced: int) -> None:
    """Flush, then store exported and dropped counts next to the timing."""
    contender.processor.force_flush(FLUSH_MILLIS)
    exported = contender.delivered()
    benchmark.extra_info["produced"] = produced
    benchmark.extra_info["exported"] = exported
    benchmark.extra_info["dropped"] = produced - exported
    reasons = contender.dropped_by_reason()
    if reasons:
        benchmark.extra_info["dropped_by_reason"] = reasons
    contender.processor.shutdown()


ON_END_SPANS_PER_ROUND = 1000
ON_END_ROUNDS = 100


def time_on_end(benchmark: Any, contender: Contender) -> int:
    """Time rounds of ``on_end`` on one ended span; how many spans it was given."""
    on_end, span, spans = contender.processor.on_end, make_span(), range(ON_END_SPANS_PER_ROUND)

    def end_many() -> None:
        for _ in spans:
            on_end(span)

    benchmark.pedantic(end_many, rounds=ON_END_ROUNDS, iterations=1, warmup_rounds=2)
    benchmark.extra_info["spans_per_call"] = ON_END_SPANS_PER_ROUND
    return (ON_END_ROUNDS + 2) * ON_END_SPANS_PER_ROUND


def bench_on_end(benchmark: Any, contender: Contender) -> None:
    """``time_on_end``, then record what was delivered."""
    record_delivery(benchmark, contender, time_on_end(benchmark, contender))
