"""OTLP log encoding: stock vs spanbatch, side by side, on GenAI-style event records.

Run with ``pytest tests/benchmarks/test_bench_otlp_logs.py -p no:cacheprovider --benchmark-only``
(on a release build: ``maturin develop --release``).
"""

from __future__ import annotations

import pytest

pytest.importorskip("opentelemetry.exporter.otlp.common.http", reason="needs the OTLP exporters >= 1.45")

from typing import Any

from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
from opentelemetry.sdk._logs import ReadableLogRecord
from spanbatch._core import LogEncoder

from tests.helpers.otlp_logs import genai_batch

BATCH = 512


@pytest.fixture(scope="module")
def batch() -> list[ReadableLogRecord]:
    return genai_batch(BATCH)


def record_per_log(benchmark: Any, label: str) -> None:
    benchmark.extra_info["records_per_call"] = BATCH
    benchmark.extra_info["implementation"] = label


@pytest.mark.benchmark(group="otlp-encode-512-genai-logs")
def test_encode_logs_stock(benchmark: Any, batch: list[ReadableLogRecord]) -> None:
    record_per_log(benchmark, "stock encode_logs().SerializeToString()")
    data = benchmark(lambda: encode_logs(batch).SerializeToString())
    benchmark.extra_info["bytes"] = len(data)
    benchmark.extra_info["us_per_record"] = benchmark.stats.stats.mean / BATCH * 1e6


@pytest.mark.benchmark(group="otlp-encode-512-genai-logs")
def test_encode_logs_spanbatch(benchmark: Any, batch: list[ReadableLogRecord]) -> None:
    record_per_log(benchmark, "spanbatch LogEncoder.encode()")
    encoder = LogEncoder()
    data = benchmark(lambda: encoder.encode(batch))
    benchmark.extra_info["bytes"] = len(data)
    benchmark.extra_info["identical_to_stock"] = data == encode_logs(batch).SerializeToString()
    benchmark.extra_info["us_per_record"] = benchmark.stats.stats.mean / BATCH * 1e6
    assert benchmark.extra_info["identical_to_stock"]
