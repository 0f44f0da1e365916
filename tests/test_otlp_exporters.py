"""spanbatch's OTLP exporters against small local receivers, and against the stock exporters' settings."""

from __future__ import annotations

import pytest

# spanbatch's encoder and exporters follow the 1.45 generation of the stock OTLP packages
# (None attribute values, the shared HTTP client); older releases (Python 3.9) differ.
pytest.importorskip("opentelemetry.exporter.otlp.common.http", reason="needs the OTLP exporters >= 1.45")

import logging
import time
from collections.abc import Callable
from typing import Any

import grpc
import requests
from opentelemetry.exporter.http.transport._requests import RequestsHTTPTransport
from opentelemetry.exporter.otlp.common import http as stock_http_client
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as StockGrpcExporter
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as StockHttpExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace.export import SpanExportResult
from spanbatch import BatchSpanProcessor
from spanbatch.exporter import OTLPSpanExporter
from spanbatch.exporter import grpc as spanbatch_grpc

from tests.helpers import provider_with
from tests.helpers.net import free_port
from tests.helpers.otlp_spans import corpus, stock_bytes
from tests.helpers.receivers import GrpcRecorder, HttpRecorder


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    import os  # noqa: PLC0415

    for name in list(os.environ):
        if name.startswith(("OTEL_EXPORTER_OTLP", "OTEL_PYTHON_EXPORTER_OTLP")):
            monkeypatch.delenv(name)
    return monkeypatch


def dead_endpoint() -> str:
    return f"http://127.0.0.1:{free_port()}/v1/traces"  # a port nobody listens on


# ---- HTTP ---------------------------------------------------------------------------------------------


@pytest.mark.timeout(30)
def test_http_sends_the_stock_bytes(http_recorder: HttpRecorder, clean_env: pytest.MonkeyPatch) -> None:
    spans = corpus()
    exporter = OTLPSpanExporter(endpoint=http_recorder.endpoint)
    assert exporter.export(spans) is SpanExportResult.SUCCESS
    (sent,) = http_recorder.received
    assert sent.path == "/v1/traces"
    assert sent.headers["content-type"] == "application/x-protobuf"
    assert "content-encoding" not in sent.headers
    assert sent.body == stock_bytes(spans)
    exporter.shutdown()


@pytest.mark.timeout(30)
@pytest.mark.parametrize(
    ("compression", "env", "expected"),
    [
        (Compression.Gzip, {}, "gzip"),
        (Compression.Deflate, {}, "deflate"),
        (None, {"OTEL_EXPORTER_OTLP_TRACES_COMPRESSION": "gzip", "OTEL_EXPORTER_OTLP_COMPRESSION": "deflate"}, "gzip"),
        (None, {"OTEL_EXPORTER_OTLP_COMPRESSION": "deflate"}, "deflate"),
        (Compression.NoCompression, {"OTEL_EXPORTER_OTLP_TRACES_COMPRESSION": "gzip"}, None),
    ],
)
def test_http_compression_in_rust(
    http_recorder: HttpRecorder,
    clean_env: pytest.MonkeyPatch,
    compression: Compression | None,
    env: dict[str, str],
    expected: str | None,
) -> None:
    for name, value in env.items():
        clean_env.setenv(name, value)
    spans = corpus()
    exporter = OTLPSpanExporter(endpoint=http_recorder.endpoint, compression=compression)
    assert type(exporter._client).__name__ == "_RustCompressingClient"
    assert exporter.export(spans) is SpanExportResult.SUCCESS
    (sent,) = http_recorder.received
    assert sent.headers.get("content-encoding") == expected
    # gzip/deflate bytes differ from Python's (level, header time); the payload inside does not.
    assert sent.request().SerializeToString() == stock_bytes(spans)
    assert sent.request() == ExportTraceServiceRequest.FromString(stock_bytes(spans))


@pytest.mark.timeout(30)
def test_http_env_endpoint_and_headers_precedence(http_recorder: HttpRecorder, clean_env: pytest.MonkeyPatch) -> None:
    base = f"http://127.0.0.1:{http_recorder.port}"
    clean_env.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", base + "/base/")
    clean_env.setenv("OTEL_EXPORTER_OTLP_HEADERS", "x-general=1,x-both=general")
    assert OTLPSpanExporter().export(corpus()[:1]) is SpanExportResult.SUCCESS
    clean_env.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", base + "/traces-only")
    clean_env.setenv("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "x-both=traces")
    assert OTLPSpanExporter().export(corpus()[:1]) is SpanExportResult.SUCCESS
    assert OTLPSpanExporter(base + "/argument", headers={"X-Both": "arg"}).export(corpus()[:1]) is (
        SpanExportResult.SUCCESS
    )
    first, second, third = http_recorder.received
    assert (first.path, first.headers["x-general"], first.headers["x-both"]) == ("/base/v1/traces", "1", "general")
    assert (second.path, second.headers["x-both"]) == ("/traces-only", "traces")
    assert "x-general" not in second.headers  # the signal-specific variable replaces the general one
    assert (third.path, third.headers["x-both"]) == ("/argument", "arg")


@pytest.mark.parametrize(
    "env",
    [
        {},
        {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://h:1", "OTEL_EXPORTER_OTLP_TIMEOUT": "3"},
        {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://t:2/x", "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT": "4"},
        {"OTEL_EXPORTER_OTLP_TRACES_HEADERS": "a=b", "OTEL_EXPORTER_OTLP_COMPRESSION": "gzip"},
    ],
)
def test_http_settings_match_stock(clean_env: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    for name, value in env.items():
        clean_env.setenv(name, value)
    ours, stock = OTLPSpanExporter(), StockHttpExporter()
    assert ours._endpoint == stock._endpoint
    assert ours._compression == stock._compression
    assert ours._max_request_size == stock._max_request_size
    assert (ours._client._timeout, ours._client._headers) == (stock._client._timeout, stock._client._headers)


@pytest.mark.timeout(30)
@pytest.mark.parametrize("status", [429, 502, 503, 504])
def test_http_retries_transient_statuses(
    http_recorder: HttpRecorder, clean_env: pytest.MonkeyPatch, status: int
) -> None:
    http_recorder.statuses = [status, status]
    spans = corpus()
    assert OTLPSpanExporter(endpoint=http_recorder.endpoint).export(spans) is SpanExportResult.SUCCESS
    assert len(http_recorder.received) == 3
    assert {r.body for r in http_recorder.received} == {stock_bytes(spans)}


@pytest.mark.timeout(30)
def test_http_does_not_retry_a_bad_request(http_recorder: HttpRecorder, clean_env: pytest.MonkeyPatch) -> None:
    http_recorder.statuses = [400]
    assert OTLPSpanExporter(endpoint=http_recorder.endpoint).export(corpus()) is SpanExportResult.FAILURE
    assert len(http_recorder.received) == 1


@pytest.mark.timeout(30)
def test_http_connection_refused_fails_within_the_timeout(clean_env: pytest.MonkeyPatch) -> None:
    exporter = OTLPSpanExporter(endpoint=dead_endpoint(), timeout=0.5)
    started = time.monotonic()
    assert exporter.export(corpus()) is SpanExportResult.FAILURE
    assert time.monotonic() - started < 5


@pytest.mark.timeout(30)
def test_http_request_size_limit_and_shutdown(http_recorder: HttpRecorder, clean_env: pytest.MonkeyPatch) -> None:
    exporter = OTLPSpanExporter(endpoint=http_recorder.endpoint, max_request_size=10)
    assert exporter.export(corpus()) is SpanExportResult.FAILURE
    assert http_recorder.received == []
    exporter.shutdown()
    assert exporter.export(corpus()) is SpanExportResult.FAILURE
    assert exporter.force_flush() is True


@pytest.mark.timeout(30)
def test_http_reports_spans_it_could_not_read(
    http_recorder: HttpRecorder, clean_env: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from opentelemetry.sdk.trace import ReadableSpan  # noqa: PLC0415

    exporter = OTLPSpanExporter(endpoint=http_recorder.endpoint)
    spans = [*corpus(), ReadableSpan("no context", None, resource=Resource({}))]
    assert exporter.export(spans) is SpanExportResult.SUCCESS
    assert exporter.span_encoder.skipped_spans == 1
    assert "Left out 1 span(s) that could not be read" in caplog.text
    assert http_recorder.span_count() == len(spans) - 1


@pytest.mark.timeout(60)
def test_http_behind_any_processor(
    http_recorder: HttpRecorder,
    clean_env: pytest.MonkeyPatch,
    processor_class: Any,
    shutdown_later: Callable[[Any], Any],
) -> None:
    exporter = OTLPSpanExporter(endpoint=http_recorder.endpoint, compression=Compression.Gzip)
    provider = provider_with(shutdown_later(processor_class(exporter)), service="t")
    tracer = provider.get_tracer("t")
    for i in range(1000):
        with tracer.start_as_current_span("s", attributes={"i": i}):
            pass
    assert provider.force_flush(10_000)
    provider.shutdown()
    assert http_recorder.span_count() == 1000


def test_http_client_hook_is_still_there() -> None:
    # We rely on _OTLPHTTPClient._compress(bytes) -> bytes and on the exporter's _client,
    # _compression, _metrics, _max_request_size and _shutdown: fail loudly if they move.
    assert callable(stock_http_client._OTLPHTTPClient.__dict__["_compress"])
    exporter = StockHttpExporter()
    for name in ("_client", "_compression", "_metrics", "_max_request_size", "_shutdown"):
        assert hasattr(exporter, name), name
    assert type(exporter._client) is stock_http_client._OTLPHTTPClient


def test_http_sends_from_rust_over_plain_http_only(clean_env: pytest.MonkeyPatch) -> None:
    assert OTLPSpanExporter(endpoint="http://127.0.0.1:9/v1/traces").sends_natively
    # TLS, and sessions (a user's own, or a credential provider's), stay on the stock transport.
    for exporter in (
        OTLPSpanExporter(endpoint="https://127.0.0.1:9/v1/traces"),
        OTLPSpanExporter(endpoint="http://127.0.0.1:9/v1/traces", session=requests.Session()),
    ):
        assert not exporter.sends_natively
        assert type(exporter._client._transport) is RequestsHTTPTransport


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    ("statuses", "outcome"),
    [
        ([503, 503], (SpanExportResult.SUCCESS, 3)),
        ([429, 502, 504], (SpanExportResult.SUCCESS, 4)),
        ([400], (SpanExportResult.FAILURE, 1)),
        ([500], (SpanExportResult.FAILURE, 1)),
    ],
)
def test_http_rust_transport_answers_as_requests_does(
    http_recorder: HttpRecorder,
    clean_env: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    statuses: list[int],
    outcome: tuple[SpanExportResult, int],
) -> None:
    seen = {}
    for name, session in (("rust", None), ("requests", requests.Session())):
        http_recorder.received.clear()
        http_recorder.statuses = list(statuses)
        caplog.clear()
        exporter = OTLPSpanExporter(endpoint=http_recorder.endpoint, session=session)
        with caplog.at_level(logging.WARNING):
            result = exporter.export(corpus())
        seen[name] = (result, len(http_recorder.received), [r.getMessage() for r in caplog.records])
    assert seen["rust"] == seen["requests"]
    assert seen["rust"][:2] == outcome  # (result, requests made)


@pytest.mark.timeout(60)
# A dead port, and a network without a route: the kernel refuses a TCP connection to the broadcast address
# (ENETUNREACH) before any packet leaves, as it does to a network it has no route to (EHOSTUNREACH, ENETDOWN
# alike). requests retries both as connection errors.
@pytest.mark.parametrize(
    "endpoint", [dead_endpoint, lambda: "http://255.255.255.255:4318/v1/traces"], ids=["dead-port", "no-route"]
)
def test_http_rust_transport_fails_like_requests_on_a_dead_port(
    clean_env: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, endpoint: Callable[[], str]
) -> None:
    seen = {}
    for name, session in (("rust", None), ("requests", requests.Session())):
        caplog.clear()
        exporter = OTLPSpanExporter(endpoint=endpoint(), timeout=0.5, session=session)
        started = time.monotonic()
        with caplog.at_level(logging.WARNING):
            result = exporter.export(corpus())
        assert time.monotonic() - started < 5
        seen[name] = (result, [r.msg for r in caplog.records])  # the texts of the errors differ
    assert seen["rust"] == seen["requests"]
    assert seen["rust"][0] is SpanExportResult.FAILURE


@pytest.mark.timeout(30)
def test_http_export_many_sends_each_batch_as_its_own_request(
    http_recorder: HttpRecorder, clean_env: pytest.MonkeyPatch
) -> None:
    spans = corpus()
    batches = [spans[:3], spans[3:], spans[:1]]
    exporter = OTLPSpanExporter(endpoint=http_recorder.endpoint, compression=Compression.Gzip)
    assert exporter.export_many(batches) == [SpanExportResult.SUCCESS] * 3
    assert [r.request().SerializeToString() for r in http_recorder.received] == [stock_bytes(b) for b in batches]
    assert {r.headers["content-encoding"] for r in http_recorder.received} == {"gzip"}


@pytest.mark.timeout(30)
def test_http_export_many_retries_a_rejected_batch_through_the_stock_client(
    http_recorder: HttpRecorder, clean_env: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    spans = corpus()
    batches = [spans[:3], spans[3:]]
    http_recorder.statuses = [503]
    exporter = OTLPSpanExporter(endpoint=http_recorder.endpoint)
    with caplog.at_level(logging.WARNING):
        assert exporter.export_many(batches) == [SpanExportResult.SUCCESS] * 2
    # The rejected first batch is sent again after the second, as the stock client's retry.
    assert [r.body for r in http_recorder.received] == [
        stock_bytes(batches[0]),
        stock_bytes(batches[1]),
        stock_bytes(batches[0]),
    ]
    assert "Transient error Service Unavailable encountered while exporting spans batch" in caplog.text


@pytest.mark.timeout(60)
def test_http_export_many_to_a_dead_port_fails_every_batch_in_bounded_time(clean_env: pytest.MonkeyPatch) -> None:
    spans = corpus()
    exporter = OTLPSpanExporter(endpoint=dead_endpoint(), timeout=0.3)
    started = time.monotonic()
    assert exporter.export_many([spans, spans, spans]) == [SpanExportResult.FAILURE] * 3
    assert time.monotonic() - started < 10


@pytest.mark.timeout(30)
def test_http_export_many_cuts_a_batch_over_max_request_size(
    http_recorder: HttpRecorder, clean_env: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # The stock exporter drops such a batch whole; spanbatch's sends it in parts that fit
    # (max_export_batch_bytes defaults to max_request_size) and leaves out the spans over it alone.
    spans = corpus()
    small, large = spans[:1], spans
    limit = len(stock_bytes(small))
    exporter = OTLPSpanExporter(endpoint=http_recorder.endpoint, max_request_size=limit)
    with caplog.at_level(logging.WARNING):
        assert exporter.export_many([large, small]) == [SpanExportResult.SUCCESS] * 2
    bodies = [r.body for r in http_recorder.received]
    assert bodies[0] == stock_bytes(small) == bodies[-1]  # the large batch's first span fits alone
    assert all(len(body) <= limit for body in bodies)
    assert f"over the {limit}-byte request limit" in caplog.text


@pytest.mark.timeout(30)
def test_http_export_many_with_internal_metrics_times_each_batch(
    http_recorder: HttpRecorder, clean_env: pytest.MonkeyPatch
) -> None:
    from opentelemetry.sdk.metrics import MeterProvider  # noqa: PLC0415
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader  # noqa: PLC0415

    clean_env.setenv("OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED", "true")
    reader = InMemoryMetricReader()
    exporter = OTLPSpanExporter(endpoint=http_recorder.endpoint, meter_provider=MeterProvider([reader]))
    spans = corpus()
    assert exporter.export_many([spans[:2], spans[2:]]) == [SpanExportResult.SUCCESS] * 2
    assert len(http_recorder.received) == 2
    data = reader.get_metrics_data()
    assert data is not None
    (durations,) = (
        m
        for rm in data.resource_metrics
        for sm in rm.scope_metrics
        for m in sm.metrics
        if m.name == "otel.sdk.exporter.operation.duration"
    )
    assert sum(point.count for point in durations.data.data_points) == 2  # one timed export per batch


# ---- gRPC ---------------------------------------------------------------------------------------------


@pytest.mark.timeout(30)
@pytest.mark.parametrize("compression", [None, grpc.Compression.Gzip])
def test_grpc_export_decodes_to_the_stock_request(
    grpc_recorder: GrpcRecorder, clean_env: pytest.MonkeyPatch, compression: grpc.Compression | None
) -> None:
    spans = corpus()
    exporter = spanbatch_grpc.OTLPSpanExporter(
        endpoint=f"127.0.0.1:{grpc_recorder.port}", insecure=True, compression=compression, headers={"x-k": "v"}
    )
    assert exporter.export(spans) is SpanExportResult.SUCCESS
    (request,) = grpc_recorder.requests
    assert request.SerializeToString() == stock_bytes(spans)
    assert grpc_recorder.metadata[0]["x-k"] == "v"
    exporter.shutdown()
    assert exporter.export(spans) is SpanExportResult.FAILURE


@pytest.mark.timeout(30)
def test_grpc_retries_unavailable_on_a_new_channel(grpc_recorder: GrpcRecorder, clean_env: pytest.MonkeyPatch) -> None:
    grpc_recorder.failures = 2
    clean_env.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", f"http://127.0.0.1:{grpc_recorder.port}")
    exporter = spanbatch_grpc.OTLPSpanExporter()
    first_channel = exporter._channel
    spans = corpus()
    assert exporter.export(spans) is SpanExportResult.SUCCESS
    # UNAVAILABLE rebuilds the channel through _initialize_channel_and_stub: still our stub.
    assert exporter._channel is not first_channel
    assert type(exporter._client).__name__ == "_EncodedServiceStub"
    assert len(grpc_recorder.requests) == 3
    assert {r.SerializeToString() for r in grpc_recorder.requests} == {stock_bytes(spans)}


@pytest.mark.parametrize(
    "env",
    [
        {},
        {"OTEL_EXPORTER_OTLP_ENDPOINT": "https://h:1", "OTEL_EXPORTER_OTLP_TIMEOUT": "3"},
        {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://t:2", "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION": "gzip"},
        {"OTEL_EXPORTER_OTLP_TRACES_HEADERS": "a=b", "OTEL_EXPORTER_OTLP_TRACES_INSECURE": "true"},
    ],
)
# A deliberate twin of test_http_settings_match_stock: the two exporters keep their settings in different places.
def test_grpc_settings_match_stock(clean_env: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    for name, value in env.items():
        clean_env.setenv(name, value)
    ours, stock = spanbatch_grpc.OTLPSpanExporter(), StockGrpcExporter()
    for name in ("_endpoint", "_insecure", "_headers", "_timeout", "_compression", "_retryable_error_codes"):
        assert getattr(ours, name) == getattr(stock, name), name


@pytest.mark.timeout(60)
def test_grpc_behind_spanbatch_processor(
    grpc_recorder: GrpcRecorder, clean_env: pytest.MonkeyPatch, shutdown_later: Callable[[Any], Any]
) -> None:
    exporter = spanbatch_grpc.OTLPSpanExporter(endpoint=grpc_recorder.endpoint, insecure=True)
    provider = provider_with(shutdown_later(BatchSpanProcessor(exporter)))
    tracer = provider.get_tracer("t")
    for _ in range(700):
        tracer.start_span("s").end()
    assert provider.force_flush(10_000)
    provider.shutdown()
    assert grpc_recorder.span_count() == 700


@pytest.mark.timeout(60)
def test_grpc_exporter_needs_no_http_package() -> None:
    import subprocess  # noqa: PLC0415
    import sys  # noqa: PLC0415

    script = (
        "import sys; sys.modules['opentelemetry.exporter.otlp.proto.http'] = None\n"
        "from spanbatch.exporter.grpc import OTLPSpanExporter\n"
        "OTLPSpanExporter(insecure=True).shutdown()\n"
        "try:\n"
        "    from spanbatch.exporter import OTLPSpanExporter\n"
        "except ImportError:\n"
        "    print('http needs its package')\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=50, check=True)
    assert done.stdout.strip() == "http needs its package"
