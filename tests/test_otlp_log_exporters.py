"""spanbatch's OTLP log exporters against the ``spanbatch.testing`` receivers, and against the stock exporters."""

from __future__ import annotations

import pytest

pytest.importorskip("opentelemetry.exporter.otlp.common.http", reason="needs the OTLP exporters >= 1.45")

import gzip
import logging
import os
from collections.abc import Sequence
from typing import Any

from opentelemetry._logs import SeverityNumber
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter as StockGrpcLogExporter
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter as StockHttpLogExporter
from opentelemetry.sdk._logs import LoggerProvider, ReadableLogRecord
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor, LogRecordExportResult
from opentelemetry.sdk.resources import Resource
from opentelemetry.trace import SpanContext, TraceFlags
from spanbatch._capabilities import encodes_logs, encodes_spans, exports_many
from spanbatch._core import BatchCore, LogEncoder, LogRequest
from spanbatch.exporter import OTLPLogExporter
from spanbatch.exporter import grpc as spanbatch_grpc
from spanbatch.testing import OTLPReceiver

from tests.helpers.logs import spanbatch_log_exporter
from tests.helpers.otlp_logs import corpus, record, stock_bytes
from tests.helpers.receivers import HttpRecorder


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in list(os.environ):
        if name.startswith(("OTEL_EXPORTER_OTLP", "OTEL_PYTHON_EXPORTER_OTLP")):
            monkeypatch.delenv(name)
    return monkeypatch


def numbered(count: int, prefix: str = "log") -> list[ReadableLogRecord]:
    return [record(f"{prefix}-{i}", attributes={"i": i}) for i in range(count)]


@pytest.mark.timeout(60)
def test_every_record_arrives_exactly_once(receiver: OTLPReceiver, clean_env: pytest.MonkeyPatch) -> None:
    exporter = spanbatch_log_exporter(receiver, timeout=5)
    batches = [numbered(300, "a"), numbered(5, "b"), corpus()]
    for batch in batches:
        assert exporter.export(batch) is LogRecordExportResult.SUCCESS
    total = sum(len(b) for b in batches)
    assert receiver.wait_for_log_records(total, timeout=20)
    bodies = receiver.log_bodies()
    assert all(bodies[f"{p}-{i}"] == 1 for p, n in (("a", 300), ("b", 5)) for i in range(n))
    assert receiver.stats().log_records == total
    assert receiver.stats().spans == 0
    exporter.shutdown()


@pytest.mark.timeout(60)
def test_behind_the_stock_batch_processor(receiver: OTLPReceiver, clean_env: pytest.MonkeyPatch) -> None:
    provider = LoggerProvider(resource=Resource.create({"service.name": "logs"}), shutdown_on_exit=False)
    provider.add_log_record_processor(BatchLogRecordProcessor(spanbatch_log_exporter(receiver, timeout=5)))
    logger = provider.get_logger("test.logs")
    from opentelemetry._logs import LogRecord  # noqa: PLC0415

    for i in range(1000):
        logger.emit(LogRecord(body=f"emitted-{i}", severity_number=SeverityNumber.WARN, attributes={"n": i}))
    provider.shutdown()
    assert receiver.wait_for_log_records(1000, timeout=20)
    assert receiver.log_bodies() == {f"emitted-{i}": 1 for i in range(1000)}


@pytest.mark.timeout(30)
@pytest.mark.parametrize("compression", [Compression.NoCompression, Compression.Gzip, Compression.Deflate])
def test_http_sends_the_stock_bytes(
    http_recorder: HttpRecorder, clean_env: pytest.MonkeyPatch, compression: Compression
) -> None:
    records = corpus()
    endpoint = http_recorder.endpoint.replace("/v1/traces", "/v1/logs")
    exporter = OTLPLogExporter(endpoint=endpoint, compression=compression)
    assert exporter.sends_natively
    assert exporter.export(records) is LogRecordExportResult.SUCCESS
    (sent,) = http_recorder.received
    assert sent.path == "/v1/logs"
    assert sent.headers["content-type"] == "application/x-protobuf"
    body = sent.body
    if compression is Compression.Gzip:
        body = gzip.decompress(body)
    elif compression is Compression.Deflate:
        import zlib  # noqa: PLC0415

        body = zlib.decompress(body)
    assert body == stock_bytes(records)


@pytest.mark.timeout(30)
def test_http_export_many_and_a_log_request(http_recorder: HttpRecorder, clean_env: pytest.MonkeyPatch) -> None:
    endpoint = http_recorder.endpoint.replace("/v1/traces", "/v1/logs")
    exporter = OTLPLogExporter(endpoint=endpoint)
    batches: list[Sequence[ReadableLogRecord] | LogRequest] = [numbered(3), exporter.log_encoder.read(numbered(2))]
    assert exporter.export_many(batches) == [LogRecordExportResult.SUCCESS] * 2
    assert [r.body for r in http_recorder.received] == [stock_bytes(numbered(3)), stock_bytes(numbered(2))]


@pytest.mark.timeout(30)
def test_http_retries_then_succeeds(http_recorder: HttpRecorder, clean_env: pytest.MonkeyPatch) -> None:
    http_recorder.statuses = [503, 503]
    exporter = OTLPLogExporter(endpoint=http_recorder.endpoint.replace("/v1/traces", "/v1/logs"), timeout=10)
    assert exporter.export(numbered(4)) is LogRecordExportResult.SUCCESS
    assert [r.body for r in http_recorder.received] == [stock_bytes(numbered(4))] * 3


@pytest.mark.timeout(30)
def test_http_reports_records_it_could_not_encode(
    http_recorder: HttpRecorder, clean_env: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    exporter = OTLPLogExporter(endpoint=http_recorder.endpoint.replace("/v1/traces", "/v1/logs"))
    good = numbered(2)
    with caplog.at_level(logging.WARNING, logger="spanbatch.exporter"):
        assert exporter.export([good[0], record(object()), good[1]]) is LogRecordExportResult.SUCCESS
    assert [r.body for r in http_recorder.received] == [stock_bytes(good)]
    assert exporter.log_encoder.skipped_records == 1
    assert "Left out 1 log record(s)" in caplog.text


@pytest.mark.timeout(30)
def test_http_request_size_limit_and_shutdown(http_recorder: HttpRecorder, clean_env: pytest.MonkeyPatch) -> None:
    exporter = OTLPLogExporter(endpoint=http_recorder.endpoint.replace("/v1/traces", "/v1/logs"), max_request_size=100)
    assert exporter.export(numbered(50)) is LogRecordExportResult.FAILURE
    assert http_recorder.received == []
    exporter.shutdown()
    assert exporter.export(numbered(1)) is LogRecordExportResult.FAILURE


@pytest.mark.parametrize(
    "env",
    [
        {},
        {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://h:1", "OTEL_EXPORTER_OTLP_TIMEOUT": "3"},
        {"OTEL_EXPORTER_OTLP_LOGS_ENDPOINT": "http://t:2/x", "OTEL_EXPORTER_OTLP_LOGS_COMPRESSION": "gzip"},
        {"OTEL_EXPORTER_OTLP_LOGS_HEADERS": "a=b", "OTEL_EXPORTER_OTLP_LOGS_TIMEOUT": "4"},
    ],
)
def test_http_settings_match_stock(clean_env: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    for name, value in env.items():
        clean_env.setenv(name, value)
    ours, stock = OTLPLogExporter(), StockHttpLogExporter()
    for attribute in ("_endpoint", "_headers", "_timeout", "_compression"):
        assert getattr(ours._client, attribute) == getattr(stock._client, attribute), attribute
    assert ours._max_request_size == stock._max_request_size


def test_http_credential_provider_variables_are_the_logs_ones(clean_env: pytest.MonkeyPatch) -> None:
    # Where the stock log exporter would load a session from a provider, requests go through it, not Rust.
    exporter = OTLPLogExporter(endpoint="http://127.0.0.1:9/v1/logs")
    assert exporter.sends_natively
    clean_env.setenv("OTEL_PYTHON_EXPORTER_OTLP_HTTP_TRACES_CREDENTIAL_PROVIDER", "p")
    assert not exporter._credential_provider_set()
    for variable in (
        "OTEL_PYTHON_EXPORTER_OTLP_HTTP_LOGS_CREDENTIAL_PROVIDER",
        "OTEL_PYTHON_EXPORTER_OTLP_HTTP_CREDENTIAL_PROVIDER",
    ):
        clean_env.setenv(variable, "p")
        assert exporter._credential_provider_set()
        clean_env.delenv(variable)


def test_grpc_settings_match_stock(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT", "http://t:2")
    clean_env.setenv("OTEL_EXPORTER_OTLP_LOGS_HEADERS", "a=b")
    ours, stock = spanbatch_grpc.OTLPLogExporter(), StockGrpcLogExporter()
    for attribute in ("_endpoint", "_headers", "_timeout", "_compression"):
        assert getattr(ours, attribute) == getattr(stock, attribute), attribute


class _Filtering(OTLPLogExporter):
    """A user's subclass that overrides ``export``: it must get lists, never a ``LogRequest``."""

    def export(self, batch: Any) -> LogRecordExportResult:
        assert isinstance(batch, list)
        return super().export([r for r in batch if r.log_record.body != "secret"])


class _FilteringGrpc(spanbatch_grpc.OTLPLogExporter):
    def export(self, batch: Any) -> Any:
        return super().export(batch)


class _Redeclared(_Filtering):
    """Declaring the fast path again below the override turns it back on."""

    @property
    def log_encoder(self) -> LogEncoder:
        return super().log_encoder


def test_fast_path_is_declared_on_the_class(clean_env: pytest.MonkeyPatch) -> None:
    endpoint = "http://127.0.0.1:9/v1/logs"
    assert encodes_logs(OTLPLogExporter(endpoint=endpoint))
    assert exports_many(OTLPLogExporter(endpoint=endpoint))
    assert encodes_logs(spanbatch_grpc.OTLPLogExporter(endpoint="127.0.0.1:9", insecure=True))
    assert not encodes_spans(OTLPLogExporter(endpoint=endpoint))
    assert not encodes_logs(_Filtering(endpoint=endpoint))
    assert not encodes_logs(_FilteringGrpc(endpoint="127.0.0.1:9", insecure=True))
    assert encodes_logs(_Redeclared(endpoint=endpoint))
    assert not encodes_logs(StockHttpLogExporter(endpoint=endpoint))


@pytest.mark.timeout(30)
def test_a_subclass_overriding_export_gets_lists(http_recorder: HttpRecorder, clean_env: pytest.MonkeyPatch) -> None:
    exporter = _Filtering(endpoint=http_recorder.endpoint.replace("/v1/traces", "/v1/logs"))
    batch = [record("public"), record("secret")]
    assert exporter.export(batch) is LogRecordExportResult.SUCCESS
    assert [r.body for r in http_recorder.received] == [stock_bytes([record("public")])]


@pytest.mark.timeout(30)
def test_the_core_reads_log_records_into_log_requests() -> None:
    # Until the core has a push of its own for log records, a record carrying a sampled context goes in as a span would.
    sampled = SpanContext(1, 2, False, TraceFlags(TraceFlags.SAMPLED))

    class _Carried(ReadableLogRecord):
        context = sampled

    records = [_Carried(r.log_record, r.resource, r.instrumentation_scope) for r in numbered(10)]
    records.insert(4, _Carried(record(object()).log_record, records[0].resource))
    core = BatchCore(64, 10_000.0, 8)
    encoder = LogEncoder()
    for log in records:
        core.on_end(log)
    core.request_flush()
    received: list[LogRequest] = []
    while sum(len(r) for r in received) < len(records):
        got = core.next_requests(encoder, 4, 3)
        assert got is not None
        received += got
    assert all(isinstance(r, LogRequest) for r in received)
    assert b"".join(r.to_bytes() for r in received) != b""
    for request in received:
        core.finish_batch(request, True)
    stats = core.stats()
    assert (stats.exported, stats.dropped_total, stats.queued, stats.in_flight) == (10, 1, 0, 0)
    assert encoder.skipped_records == 1
