"""Benchmark helpers: the processors side by side, and spans counted so a lossy run shows it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult


class CountingExporter(SpanExporter):
    """Accepts everything and only counts, so the benchmark measures the processor."""

    def __init__(self) -> None:
        self.count = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.count += len(spans)
        return SpanExportResult.SUCCESS


def record_delivery(benchmark: Any, processor: Any, exporter: CountingExporter, produced: int) -> None:
    """Flush, then store exported and dropped counts next to the timing."""
    processor.force_flush(30_000)
    benchmark.extra_info["produced"] = produced
    benchmark.extra_info["exported"] = exporter.count
    benchmark.extra_info["dropped"] = produced - exporter.count
    processor.shutdown()
