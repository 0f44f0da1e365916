"""The cases of the stock OTLP/HTTP exporter's own tests that answer through mocket (which patches Python's
sockets), made again against spanbatch's Rust transport with a real loopback receiver; and the exporters'
drop-in surface those tests found (the stock ``_transport`` argument, the stock logger)."""

from __future__ import annotations

import pytest

pytest.importorskip("opentelemetry.exporter.otlp.common.http", reason="needs the OTLP exporters >= 1.45")

import gzip
import logging
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from unittest.mock import Mock

from opentelemetry.exporter.http.transport._urllib3 import Urllib3HTTPTransport
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.version import __version__
from opentelemetry.sdk.trace.export import SpanExportResult
from spanbatch.exporter import OTLPSpanExporter

from tests.helpers.otlp_spans import corpus, stock_bytes
from tests.test_otlp_exporters import clean_env

__all__ = ["clean_env"]  # a fixture, used by name

STOCK_LOGGER = "opentelemetry.exporter.otlp.proto.http.trace_exporter"


@dataclass
class HttpReceiver:
    """Answers with the scripted statuses in order (then 200), with ``retry_after`` on the others."""

    statuses: list[int] = field(default_factory=list)
    retry_after: str | None = None
    received: list[dict[str, str]] = field(default_factory=list)
    port: int = 0

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1/traces"


@pytest.fixture
def http_receiver() -> Iterator[HttpReceiver]:
    receiver = HttpReceiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            receiver.received.append({k.lower(): v for k, v in self.headers.items()})
            status = receiver.statuses.pop(0) if receiver.statuses else 200
            self.send_response(status)
            if status != 200 and receiver.retry_after is not None:
                self.send_header("Retry-After", receiver.retry_after)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield receiver
    server.shutdown()
    server.server_close()
    thread.join(5)


def native(endpoint: str, **kwargs: object) -> OTLPSpanExporter:
    exporter = OTLPSpanExporter(endpoint=endpoint, **kwargs)  # type: ignore[arg-type]
    assert exporter.sends_natively
    return exporter


def exporter_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name.startswith(("opentelemetry.exporter", "spanbatch"))]


def no_waiting(exporter: OTLPSpanExporter) -> Mock:
    """Makes the stock client's backoff return at once, recording what it waited for (as the upstream tests do)."""
    event = Mock(spec=threading.Event)
    event.is_set.return_value = False
    event.wait.return_value = False
    exporter._client._shutdown_event = event
    return event


@pytest.mark.timeout(30)
def test_the_stock_private_transport_argument_is_taken(
    http_receiver: HttpReceiver, clean_env: pytest.MonkeyPatch
) -> None:
    transport = Urllib3HTTPTransport()
    exporter = OTLPSpanExporter(endpoint=http_receiver.endpoint, _transport=transport)
    assert exporter._client._transport is transport
    assert not exporter.sends_natively
    assert exporter.export(corpus()) is SpanExportResult.SUCCESS
    assert len(http_receiver.received) == 1


@pytest.mark.timeout(30)
def test_export_after_shutdown_warns_on_the_stock_logger(
    http_receiver: HttpReceiver, clean_env: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    exporter, spans = native(http_receiver.endpoint), corpus()
    exporter.shutdown()
    with caplog.at_level(logging.WARNING):
        assert exporter.export(spans) is SpanExportResult.FAILURE
    assert [(r.name, r.getMessage()) for r in exporter_records(caplog)] == [
        (STOCK_LOGGER, "Exporter already shutdown, ignoring batch")
    ]
    assert http_receiver.received == []


@pytest.mark.timeout(30)
def test_a_batch_whose_every_span_is_over_the_request_size_fails(
    http_receiver: HttpReceiver, clean_env: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # The stock exporter drops a request over max_request_size whole; spanbatch's cuts it into
    # parts that fit, and only a span over the limit alone is left out: here, every span.
    exporter, spans = native(http_receiver.endpoint, max_request_size=1), corpus()
    with caplog.at_level(logging.WARNING):
        assert exporter.export(spans) is SpanExportResult.FAILURE
    [record] = exporter_records(caplog)
    assert record.name == "spanbatch.exporter"
    assert record.getMessage().startswith(f"Left out {len(spans)} span(s) over the 1-byte request limit")
    assert http_receiver.received == []


@pytest.mark.timeout(30)
@pytest.mark.parametrize("limit", [0, -1])
def test_a_request_size_limit_of_zero_or_less_is_no_limit(
    http_receiver: HttpReceiver, clean_env: pytest.MonkeyPatch, limit: int
) -> None:
    assert native(http_receiver.endpoint, max_request_size=limit).export(corpus()) is SpanExportResult.SUCCESS
    assert len(http_receiver.received) == 1


@pytest.mark.timeout(30)
def test_the_request_size_is_measured_before_compression(
    http_receiver: HttpReceiver, clean_env: pytest.MonkeyPatch
) -> None:
    spans = corpus() * 20
    uncompressed = stock_bytes(spans)
    limit = (len(gzip.compress(uncompressed)) + len(uncompressed)) // 2
    exporter = native(http_receiver.endpoint, max_request_size=limit, compression=Compression.Gzip)
    assert exporter.export(spans) is SpanExportResult.SUCCESS
    # Compressed, the whole would fit in one request: it was cut, in two, because it is measured before.
    assert len(http_receiver.received) == 2


@pytest.mark.timeout(30)
def test_the_stock_content_type_and_user_agent_are_sent(
    http_receiver: HttpReceiver, clean_env: pytest.MonkeyPatch
) -> None:
    assert native(http_receiver.endpoint).export(corpus()) is SpanExportResult.SUCCESS
    headers = http_receiver.received[0]
    assert headers["content-type"] == "application/x-protobuf"
    assert headers["user-agent"] == f"OTel-OTLP-Exporter-Python/{__version__}"


@pytest.mark.timeout(30)
@pytest.mark.parametrize("status", [400, 401, 403, 404, 408, 500, 501])
def test_statuses_the_stock_client_does_not_retry_are_sent_once(
    http_receiver: HttpReceiver, clean_env: pytest.MonkeyPatch, status: int
) -> None:
    http_receiver.statuses = [status]
    assert native(http_receiver.endpoint).export(corpus()) is SpanExportResult.FAILURE
    assert len(http_receiver.received) == 1


@pytest.mark.timeout(30)
def test_the_stock_number_of_attempts_is_made(http_receiver: HttpReceiver, clean_env: pytest.MonkeyPatch) -> None:
    http_receiver.statuses = [503] * 10
    exporter = native(http_receiver.endpoint, timeout=1000.0)
    no_waiting(exporter)
    assert exporter.export(corpus()) is SpanExportResult.FAILURE
    assert len(http_receiver.received) == 6  # the first attempt and the stock client's 5 retries


@pytest.mark.timeout(30)
def test_a_retry_after_header_is_waited_for(http_receiver: HttpReceiver, clean_env: pytest.MonkeyPatch) -> None:
    http_receiver.statuses = [429]
    http_receiver.retry_after = "5"
    exporter = native(http_receiver.endpoint, timeout=60.0)
    event = no_waiting(exporter)
    assert exporter.export(corpus()) is SpanExportResult.SUCCESS
    assert len(http_receiver.received) == 2
    event.wait.assert_called_once_with(5.0)


@pytest.fixture
def resetting_server() -> Iterator[tuple[str, list[bytes]]]:
    """Resets the first connection after reading its request, then answers 200: a broken connection, retried."""
    server = socket.create_server(("127.0.0.1", 0))
    requests: list[bytes] = []

    def serve() -> None:
        for attempt in range(2):
            connection, _ = server.accept()
            with connection:
                requests.append(connection.recv(1 << 20))
                if attempt == 0:
                    connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                    continue
                connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}/v1/traces", requests
    server.close()
    thread.join(5)


@pytest.mark.timeout(30)
def test_a_broken_connection_is_retried(
    resetting_server: tuple[str, list[bytes]], clean_env: pytest.MonkeyPatch
) -> None:
    endpoint, requests = resetting_server
    exporter = native(endpoint, timeout=5.0)
    no_waiting(exporter)
    assert exporter.export(corpus()) is SpanExportResult.SUCCESS
    assert len(requests) == 2


@pytest.mark.timeout(30)
def test_shutdown_interrupts_the_retry_backoff(http_receiver: HttpReceiver, clean_env: pytest.MonkeyPatch) -> None:
    http_receiver.statuses = [503] * 10
    exporter = native(http_receiver.endpoint, timeout=30.0)
    thread = threading.Thread(target=exporter.export, args=(corpus(),))
    thread.start()
    while not http_receiver.received:
        time.sleep(0.01)
    started = time.monotonic()
    exporter.shutdown()
    thread.join(10)
    assert not thread.is_alive()
    assert time.monotonic() - started < 5  # the backoff alone is about 1 s, then 2 s, 4 s...


@dataclass
class ParentOnly:
    """What the stock encoder reads of a span's parent: its span id and whether it is remote; nothing else."""

    span_id: int
    is_remote: bool


@dataclass
class LinkedOnly:
    """What the stock encoder reads of a link's context: no trace state, no trace flags."""

    trace_id: int
    span_id: int
    is_remote: bool


def test_the_encoder_reads_a_parent_and_a_link_as_the_stock_one_does() -> None:
    # The stock gRPC exporter's tests give spans Mock parents with only span_id set.
    from opentelemetry.sdk.resources import Resource  # noqa: PLC0415
    from opentelemetry.sdk.trace import ReadableSpan  # noqa: PLC0415
    from opentelemetry.trace import Link, SpanContext  # noqa: PLC0415
    from spanbatch._core import SpanEncoder  # noqa: PLC0415

    span = ReadableSpan(
        "child",
        context=SpanContext(7, 8, is_remote=False),
        parent=ParentOnly(12345, True),  # type: ignore[arg-type]
        links=[Link(LinkedOnly(1, 2, False))],  # type: ignore[arg-type]
        resource=Resource({}),
    )
    encoder = SpanEncoder()
    assert encoder.encode([span]) == stock_bytes([span])
    assert encoder.skipped_spans == 0
