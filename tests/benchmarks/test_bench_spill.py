"""The disk spill: what an outage costs with it (written to disk) and without it (dropped), how fast the
files go back to a live backend, and that a spill directory costs nothing while the backend answers.

Each round exports ``REQUESTS`` batches of 512 realistic spans through spanbatch's OTLP/HTTP exporter.
``MB/s`` in ``extra_info`` is the serialized requests' bytes over the median round.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("opentelemetry.exporter.otlp.common.http", reason="needs the OTLP exporters >= 1.45")

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExportResult
from spanbatch._core import SpanEncoder
from spanbatch._spill import Sent
from spanbatch.exporter import OTLPSpanExporter
from spanbatch.testing import OTLPReceiver

from tests.helpers.net import free_port
from tests.helpers.otlp_spans import realistic_batch

BATCH = 512
REQUESTS = 20


@pytest.fixture(scope="module")
def batch() -> list[ReadableSpan]:
    return realistic_batch(BATCH)


def request_bytes(batch: list[ReadableSpan]) -> int:
    return len(SpanEncoder().encode(batch)) * REQUESTS


def record(benchmark: Any, moved: int, *, exported: int = 0, dropped: int = 0, **more: Any) -> None:
    benchmark.extra_info.update(
        spans_per_call=BATCH * REQUESTS,
        produced=BATCH * REQUESTS,
        exported=exported,
        dropped=dropped,
        mb_per_second=round(moved / benchmark.stats.stats.median / 1e6, 1),
        **more,
    )


def export_all(exporter: OTLPSpanExporter, batch: list[ReadableSpan]) -> list[SpanExportResult]:
    return [exporter.export(batch) for _ in range(REQUESTS)]


@pytest.mark.timeout(300)
@pytest.mark.parametrize("name", ["drop", "spill"])
def test_outage(benchmark: Any, name: str, batch: list[ReadableSpan], tmp_path: Path) -> None:
    """A backend that refuses connections: without a spill each request fails and is dropped (the stock
    client gives up at once: its first backoff is longer than the 0.5 s timeout); with one, written to disk."""
    benchmark.group = f"outage: {REQUESTS} requests of {BATCH} spans, backend refusing connections"
    endpoint = f"http://127.0.0.1:{free_port()}/v1/traces"
    exporter = OTLPSpanExporter(endpoint=endpoint, timeout=0.5, spill_dir=tmp_path if name == "spill" else None)
    try:
        exporter.export(batch)  # the first failure: from now on the backend is known down
        results = benchmark(export_all, exporter, batch)
        succeeded = results.count(SpanExportResult.SUCCESS)
        assert succeeded == (REQUESTS if name == "spill" else 0)
        counts = exporter.spill_counts()
        record(
            benchmark,
            request_bytes(batch),
            dropped=0 if name == "spill" else BATCH * REQUESTS,
            spilled_files_total=0 if counts is None else len(list(tmp_path.glob("*/*.spill"))),
        )
    finally:
        exporter.shutdown()


@pytest.mark.timeout(300)
@pytest.mark.parametrize("name", ["direct", "replay"])
def test_delivery(benchmark: Any, name: str, batch: list[ReadableSpan], receiver: OTLPReceiver, tmp_path: Path) -> None:
    """To a live backend: the same requests sent by the exporter, and replayed from spill files."""
    benchmark.group = f"delivery: {REQUESTS} requests of {BATCH} spans to a live backend"
    exporter = OTLPSpanExporter(endpoint=receiver.endpoint, spill_dir=tmp_path)
    spiller = exporter._spiller
    assert spiller is not None
    payload = SpanEncoder().encode(batch)
    try:
        if name == "direct":
            results = benchmark(export_all, exporter, batch)
            assert results == [SpanExportResult.SUCCESS] * REQUESTS
        else:
            delivered: list[int] = []

            def fill() -> tuple[tuple[Any, ...], dict[str, Any]]:
                for _ in range(REQUESTS):
                    spiller.store.write(payload, BATCH)
                return (), {}

            def replay() -> None:
                delivered.append(spiller.store.replay(exporter._send_spilled))

            benchmark.pedantic(replay, setup=fill, rounds=10, iterations=1)
            assert delivered == [REQUESTS] * len(delivered)
            assert exporter._send_spilled(payload) is Sent.DELIVERED
        record(benchmark, request_bytes(batch), exported=BATCH * REQUESTS)
    finally:
        exporter.shutdown()


@pytest.mark.timeout(300)
@pytest.mark.parametrize("name", ["spill-off", "spill-on"])
def test_healthy_backend(
    benchmark: Any, name: str, batch: list[ReadableSpan], receiver: OTLPReceiver, tmp_path: Path
) -> None:
    """A backend that answers: a spill directory adds one check per request and writes nothing."""
    benchmark.group = f"healthy backend: {REQUESTS} requests of {BATCH} spans, spill off and on"
    exporter = OTLPSpanExporter(endpoint=receiver.endpoint, spill_dir=tmp_path if name == "spill-on" else None)
    try:
        results = benchmark(export_all, exporter, batch)
        assert results == [SpanExportResult.SUCCESS] * REQUESTS
        assert list(tmp_path.glob("*/*.spill")) == []
        record(benchmark, request_bytes(batch), exported=BATCH * REQUESTS)
    finally:
        exporter.shutdown()
