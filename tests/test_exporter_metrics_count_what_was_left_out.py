"""The OTLP exporters' own metrics (``otel.sdk.exporter.*``, behind ``OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED``) count
what spanbatch's Rust encoder left out of a request as failed, as stock counts a batch it could not send.

Stock refuses a whole batch over ``max_request_size`` (``error.type`` ``RequestPayloadTooLargeError``) or one it
cannot encode (the encoding error's type). spanbatch leaves out only the item over the limit, or the one it
could not read (``UnencodableItemError``, its drop reason ``unencodable``), and sends the rest: the items sent
are counted without an error, those left out with one.
"""

from __future__ import annotations

import pytest

pytest.importorskip("opentelemetry.exporter.otlp.common.http", reason="needs the OTLP exporters >= 1.45")

from collections import Counter
from typing import Any

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SpanExportResult
from spanbatch.exporter import OTLPSpanExporter
from spanbatch.exporter import grpc as spanbatch_grpc
from spanbatch.testing import OTLPReceiver

LIMIT = 2_000


# What each exporter counts an item over its limit as: the stock HTTP exporter's error for its whole batch; the
# stock gRPC exporter has no limit of its own (the server refuses the message), so spanbatch's error.
TOO_LARGE = {"http": "RequestPayloadTooLargeError", "grpc": "RequestTooLargeError"}


def exported_counts(reader: InMemoryMetricReader) -> Counter[str | None]:
    """``otel.sdk.exporter.span.exported`` by ``error.type`` (None: sent without an error)."""
    counts: Counter[str | None] = Counter()
    data = reader.get_metrics_data()
    assert data is not None
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                if metric.name == "otel.sdk.exporter.span.exported":
                    for point in metric.data.data_points:
                        counts[point.attributes.get("error.type")] += point.value  # type: ignore[union-attr]
    return +counts


def spans(*payloads: str) -> list[ReadableSpan]:
    tracer = TracerProvider().get_tracer("metrics")
    ended = []
    for i, payload in enumerate(payloads):
        span = tracer.start_span(f"span-{i}", attributes={"payload": payload})
        span.end()
        ended.append(span)
    return ended


def exporter_for(receiver: OTLPReceiver, reader: InMemoryMetricReader, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED", "true")
    meter_provider = MeterProvider(metric_readers=[reader])
    if receiver.protocol == "http":
        return OTLPSpanExporter(
            endpoint=receiver.endpoint, max_request_size=LIMIT, timeout=10, meter_provider=meter_provider
        )
    return spanbatch_grpc.OTLPSpanExporter(
        endpoint=receiver.endpoint,
        insecure=True,
        max_export_batch_bytes=LIMIT,
        timeout=10,
        meter_provider=meter_provider,
    )


@pytest.mark.timeout(60)
def test_a_span_over_the_limit_is_counted_failed_and_the_others_exported(
    receiver: OTLPReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    reader = InMemoryMetricReader()
    exporter = exporter_for(receiver, reader, monkeypatch)
    assert exporter.export(spans("small", "x" * (2 * LIMIT), "small")) is SpanExportResult.SUCCESS
    exporter.shutdown()
    assert sorted(receiver.span_names()) == ["span-0", "span-2"]
    assert exported_counts(reader) == Counter({None: 2, TOO_LARGE[receiver.protocol]: 1})


@pytest.mark.timeout(60)
def test_a_batch_of_only_a_span_over_the_limit_is_counted_as_stock_counts_it(
    receiver: OTLPReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    reader = InMemoryMetricReader()
    exporter = exporter_for(receiver, reader, monkeypatch)
    assert exporter.export(spans("x" * (2 * LIMIT))) is SpanExportResult.FAILURE
    exporter.shutdown()
    assert receiver.stats().requests == 0
    assert exported_counts(reader) == Counter({TOO_LARGE[receiver.protocol]: 1})


class _UnreadableName(ReadableSpan):
    @property
    def name(self) -> str:
        raise RuntimeError("this span cannot be read")


@pytest.mark.timeout(60)
def test_a_span_that_cannot_be_read_is_counted_failed_as_unencodable(
    receiver: OTLPReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    reader = InMemoryMetricReader()
    exporter = exporter_for(receiver, reader, monkeypatch)
    good = spans("a", "b")
    unreadable = _UnreadableName(name="unreadable", context=good[0].context)
    assert exporter.export([good[0], unreadable, good[1]]) is SpanExportResult.SUCCESS
    exporter.shutdown()
    assert sorted(receiver.span_names()) == ["span-0", "span-1"]
    assert exported_counts(reader) == Counter({None: 2, "UnencodableItemError": 1})


@pytest.mark.timeout(60)
def test_a_batch_cut_in_parts_counts_the_parts_delivered_before_one_failed_as_exported(
    receiver: OTLPReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    reader = InMemoryMetricReader()
    exporter = exporter_for(receiver, reader, monkeypatch)
    receiver.set_behaviour("status", status=400, after=1)  # not retried: the second part fails at once
    # Each span alone fills most of a request: three parts.
    assert exporter.export(spans(*("y" * (LIMIT // 2),) * 3)) is SpanExportResult.FAILURE
    exporter.shutdown()
    assert receiver.span_names() == {"span-0": 1}
    counts = exported_counts(reader)
    # The part never sent: NotSentError, as send_all's. The part refused: stock's HTTP metrics give a refusal with
    # a status code no error.type (its client's result carries the status, not an error); gRPC's, the RpcError's.
    assert counts.pop("NotSentError") == 1
    if receiver.protocol == "http":
        assert counts == Counter({None: 2})
    else:
        assert counts.pop(None) == 1
        assert list(counts.values()) == [1], counts
