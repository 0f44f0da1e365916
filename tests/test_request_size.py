"""Requests bounded by bytes: spanbatch's OTLP exporters cut a batch so that no request exceeds a limit.

Agent spans carry prompts and completions of a megabyte or more; a batch of them is more than a
backend takes (HTTP 413, gRPC's 4 MiB message limit). The stock exporters send the batch whole
and lose it; spanbatch's send it in parts, each part once, and drop only a span that alone is over
the limit (``too_large``, counted and warned about).
"""

from __future__ import annotations

import pytest

pytest.importorskip("opentelemetry.exporter.otlp.common.http", reason="needs the OTLP exporters >= 1.45")

import logging
import re
from collections.abc import Iterator
from typing import Any

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from spanbatch import BatchSpanProcessor
from spanbatch.exporter import OTLPSpanExporter as HttpExporter
from spanbatch.exporter import grpc as spanbatch_grpc
from spanbatch.testing import OTLPReceiver

from tests.helpers import balanced, provider_with

MIB = 1 << 20
LONG = 60_000
# One string object shared by every span: the test process holds 1 MB, not 200.
MEGABYTE = "x" * MIB


def spanbatch_exporter(rx: OTLPReceiver, **kwargs: Any) -> SpanExporter:
    if rx.protocol == "http":
        return HttpExporter(endpoint=rx.endpoint, timeout=30, **kwargs)
    return spanbatch_grpc.OTLPSpanExporter(endpoint=rx.endpoint, insecure=True, timeout=30, **kwargs)


@pytest.fixture(params=["http", "grpc"])
def limited(request: pytest.FixtureRequest) -> Iterator[OTLPReceiver]:
    """A receiver that refuses requests over 4 MiB: HTTP answers 413, gRPC refuses the message."""
    with OTLPReceiver(request.param, max_request_bytes=4 * MIB) as rx:
        yield rx


def end_spans(provider: TracerProvider, count: int, payload: str, name: str = "llm") -> None:
    tracer = provider.get_tracer("agent")
    for i in range(count):
        with tracer.start_as_current_span(f"{name}-{i}") as span:
            span.set_attribute("gen_ai.prompt", payload)


def deliver(exporter: SpanExporter, count: int, payload: str, **processor: Any) -> BatchSpanProcessor:
    """``count`` spans with ``payload`` through spanbatch's processor to ``exporter``, flushed."""
    bsp = BatchSpanProcessor(exporter, schedule_delay_millis=LONG, export_timeout_millis=120_000, **processor)
    provider = provider_with(bsp)
    end_spans(provider, count, payload)
    assert bsp.force_flush(120_000)
    return bsp


@pytest.mark.timeout(180)
def test_two_hundred_one_megabyte_spans_arrive_exactly_once(limited: OTLPReceiver) -> None:
    # HTTP's default limit is the stock max_request_size (64 MiB): this backend needs less.
    limit = {"max_export_batch_bytes": 4 * MIB} if limited.protocol == "http" else {}
    bsp = deliver(spanbatch_exporter(limited, **limit), 200, MEGABYTE)
    stats = bsp.stats()
    bsp.shutdown()
    received = limited.stats()
    print(f"spanbatch {limited.protocol}: {stats}; receiver {received}")
    assert (stats.exported, stats.dropped_total) == (200, 0)
    assert balanced(stats)
    assert (received.unique_spans, received.duplicates, received.rejected) == (200, 0, 0)
    assert received.requests >= 200 // 4  # about four 1 MB spans per 4 MiB request


@pytest.mark.timeout(180)
def test_the_stock_exporters_lose_them(limited: OTLPReceiver, caplog: pytest.LogCaptureFixture) -> None:
    # The stock gRPC exporter retries the refusal (RESOURCE_EXHAUSTED) until its timeout: 5 s is enough to lose them.
    # Over the backend's 4 MiB for gRPC; over the stock HTTP exporter's own 64 MiB for HTTP. No more: encoding
    # 200 MB in Python took the gRPC exporter past its 5 s on a loaded machine (DEADLINE_EXCEEDED instead).
    count = 80 if limited.protocol == "http" else 8
    with caplog.at_level(logging.WARNING):
        bsp = deliver(limited.span_exporter(timeout=5), count, MEGABYTE)
    stats = bsp.stats()
    bsp.shutdown()
    received = limited.stats()
    print(f"stock {limited.protocol}: {stats}; receiver {received}")
    assert (stats.exported, stats.dropped["export_failed"]) == (0, count)
    assert received.spans == 0
    # Lost to the size limit, not to the timeout or anything else.
    assert ("exceeds max_request_size" if limited.protocol == "http" else "RESOURCE_EXHAUSTED") in caplog.text


@pytest.mark.timeout(180)
def test_the_stock_http_exporter_without_its_own_limit_meets_the_413() -> None:
    with OTLPReceiver("http", max_request_bytes=4 * MIB) as rx:
        bsp = deliver(rx.span_exporter(timeout=30, max_request_size=0), 200, MEGABYTE)
        stats = bsp.stats()
        bsp.shutdown()
        received = rx.stats()
    print(f"stock http, no max_request_size: {stats}; receiver {received}")
    assert (stats.exported, stats.dropped["export_failed"]) == (0, 200)
    assert (received.requests, received.rejected, received.spans) == (1, 1, 0)


@pytest.mark.timeout(60)
def test_the_limit_comes_from_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPANBATCH_MAX_EXPORT_BATCH_BYTES", str(MIB))
    with OTLPReceiver("http", max_request_bytes=MIB) as rx:
        bsp = deliver(spanbatch_exporter(rx), 12, "y" * 300_000)
        stats = bsp.stats()
        bsp.shutdown()
        received = rx.stats()
    assert (stats.exported, stats.dropped_total) == (12, 0)
    assert (received.unique_spans, received.duplicates, received.rejected) == (12, 0, 0)
    assert received.requests == 4  # three 300 kB spans per 1 MiB request


@pytest.mark.timeout(60)
def test_a_span_over_the_limit_is_dropped_and_counted(limited: OTLPReceiver, caplog: pytest.LogCaptureFixture) -> None:
    exporter = spanbatch_exporter(limited, max_export_batch_bytes=MIB)
    bsp = BatchSpanProcessor(exporter, schedule_delay_millis=LONG)
    provider = provider_with(bsp)
    with caplog.at_level(logging.WARNING):
        end_spans(provider, 3, "small", name="before")
        end_spans(provider, 1, "z" * (2 * MIB), name="huge")
        end_spans(provider, 3, "small", name="after")
        assert bsp.force_flush(30_000)
    stats = bsp.stats()
    bsp.shutdown()
    assert stats.exported == 6
    assert stats.dropped["too_large"] == 1
    assert stats.dropped_total == 1
    assert balanced(stats)
    assert sorted(limited.span_names()) == ["after-0", "after-1", "after-2", "before-0", "before-1", "before-2"]
    (warning,) = [r.getMessage() for r in caplog.records if "request limit" in r.getMessage()]
    found = re.search(r"1 span\(s\) over the (\d+)-byte request limit \(the largest: (\d+) bytes\)", warning)
    assert found, warning
    assert int(found[1]) == MIB
    assert 2 * MIB < int(found[2]) < 2 * MIB + 1000


@pytest.mark.timeout(60)
@pytest.mark.parametrize(("status", "processor_retries"), [(400, 1), (503, 0)])
def test_a_failed_part_is_retried_without_resending_the_accepted_ones(
    limited: OTLPReceiver, status: int, processor_retries: int
) -> None:
    # Six 300 kB spans make two 1 MiB parts; the backend refuses the second once. A 400 is not
    # retried by the exporter: the processor's retry sends only that part again. A 503 the
    # exporter's own (stock) retry sends again, that part only.
    limited.set_behaviour("status", status=status, after=1, times=1)
    exporter = spanbatch_exporter(limited, max_export_batch_bytes=MIB)
    bsp = deliver(exporter, 6, "w" * 300_000, max_retries=3, retry_initial_backoff_millis=1)
    stats = bsp.stats()
    bsp.shutdown()
    received = limited.stats()
    assert (stats.exported, stats.dropped_total, stats.retried) == (6, 0, processor_retries)
    assert (received.unique_spans, received.duplicates, received.rejected) == (6, 0, 1)
    assert received.requests == 3  # part 1, part 2 refused, part 2 again


@pytest.mark.timeout(60)
def test_a_direct_export_sends_each_part_once(limited: OTLPReceiver) -> None:
    """Without spanbatch's processor too: the exporter's own ``export`` cuts the list it is given."""
    provider = TracerProvider()
    tracer = provider.get_tracer("agent")
    spans = []
    for i in range(9):
        with tracer.start_as_current_span(f"s{i}") as span:
            span.set_attribute("gen_ai.prompt", "v" * 300_000)
        spans.append(span)
    exporter = spanbatch_exporter(limited, max_export_batch_bytes=MIB)
    assert exporter.export(spans) is SpanExportResult.SUCCESS  # type: ignore[arg-type]
    exporter.shutdown()
    received = limited.stats()
    assert (received.unique_spans, received.duplicates, received.requests) == (9, 0, 3)


@pytest.mark.parametrize("protocol", ["http", "grpc"])
@pytest.mark.parametrize(
    ("value", "error"),
    [(0, ValueError), (-1, ValueError), ("4MiB", TypeError), (1.5, TypeError), (True, TypeError)],
)
def test_a_bad_argument_is_refused(protocol: str, value: object, error: type[Exception]) -> None:
    exporter_class = HttpExporter if protocol == "http" else spanbatch_grpc.OTLPSpanExporter
    with pytest.raises(error, match="max_export_batch_bytes"):
        exporter_class(endpoint="http://127.0.0.1:9/v1/traces", max_export_batch_bytes=value)


@pytest.mark.parametrize("protocol", ["http", "grpc"])
@pytest.mark.parametrize("value", ["0", "-5", "lots"])
def test_a_bad_variable_is_ignored_with_a_warning(
    protocol: str, value: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("SPANBATCH_MAX_EXPORT_BATCH_BYTES", value)
    monkeypatch.setattr("spanbatch._setting._warned", set())
    exporter_class = HttpExporter if protocol == "http" else spanbatch_grpc.OTLPSpanExporter
    with caplog.at_level(logging.WARNING, logger="spanbatch._config"):
        exporter = exporter_class(endpoint="http://127.0.0.1:9/v1/traces")
    expected = 64 * MIB if protocol == "http" else 4 * MIB
    assert exporter.max_export_batch_bytes == expected  # type: ignore[attr-defined]
    # The warning names the limit this exporter really uses instead.
    assert [r.getMessage() for r in caplog.records if "SPANBATCH_MAX_EXPORT_BATCH_BYTES" in r.getMessage()] == [
        f"Ignoring SPANBATCH_MAX_EXPORT_BATCH_BYTES={value.strip()!r}: "
        f"{'not an integer' if value == 'lots' else 'must be positive'}; using {expected} instead."
    ]
    exporter.shutdown()


def test_the_http_default_is_the_stock_max_request_size() -> None:
    assert HttpExporter(endpoint="http://127.0.0.1:9/v1/traces").max_export_batch_bytes == 64 * MIB
    small = HttpExporter(endpoint="http://127.0.0.1:9/v1/traces", max_request_size=MIB)
    assert small.max_export_batch_bytes == MIB
    # A part never goes over max_request_size, which the stock client would refuse to send.
    assert HttpExporter(max_request_size=MIB, max_export_batch_bytes=4 * MIB).max_export_batch_bytes == MIB


def test_a_request_cut_in_parts_reads_back_as_the_batch_less_the_spans_too_large() -> None:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest  # noqa: PLC0415
    from spanbatch._core import SpanEncoder  # noqa: PLC0415

    provider = TracerProvider()
    tracer = provider.get_tracer("agent")
    spans = []
    for i, size in enumerate([10, 400_000, 10, 2 * MIB, 600_000, 10, 700_000]):
        with tracer.start_as_current_span(f"s{i}") as span:
            span.set_attribute("gen_ai.prompt", "q" * size)
        spans.append(span)
    request = SpanEncoder(max_request_bytes=MIB).read(spans)
    assert (len(request), request.left_out, request.too_large) == (7, 1, 1)
    parts = [ExportTraceServiceRequest.FromString(request.part_to_bytes(i)) for i in range(request.parts)]
    assert all(part.ByteSize() <= MIB for part in parts)
    names = [s.name for part in parts for rs in part.resource_spans for ss in rs.scope_spans for s in ss.spans]
    assert names == ["s0", "s1", "s2", "s4", "s5", "s6"]
    assert [request.part_items(i) for i in range(request.parts)] == [5, 1]  # 1,000,030 bytes of values, then 700,000
    # Whole, it is the parts one after the other: one message to protobuf.
    whole = ExportTraceServiceRequest.FromString(request.to_bytes())
    assert [s.name for rs in whole.resource_spans for ss in rs.scope_spans for s in ss.spans] == names
    assert request.pending_parts() == [0, 1]
    request.accept(0)
    assert request.pending_parts() == [1]
    with pytest.raises(IndexError):
        request.accept(2)


def test_a_bad_variable_is_told_again_for_an_exporter_that_falls_back_to_another_limit(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Each limit used instead is told (revM: the HTTP exporter's 64 MiB was, the gRPC one's 4 MiB after it not)."""
    monkeypatch.setenv("SPANBATCH_MAX_EXPORT_BATCH_BYTES", "lots")
    monkeypatch.setattr("spanbatch._setting._warned", set())
    with caplog.at_level(logging.WARNING, logger="spanbatch._config"):
        exporters = [
            exporter_class(endpoint="http://127.0.0.1:9/v1/traces")
            for exporter_class in (HttpExporter, spanbatch_grpc.OTLPSpanExporter, HttpExporter)
        ]
    told = [r.getMessage() for r in caplog.records if "SPANBATCH_MAX_EXPORT_BATCH_BYTES" in r.getMessage()]
    assert [message.rsplit("using ", 1)[1] for message in told] == [f"{64 * MIB} instead.", f"{4 * MIB} instead."]
    for exporter in exporters:
        exporter.shutdown()
