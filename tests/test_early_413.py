"""A backend (or proxy) that answers ``413 Payload Too Large`` after the headers of a large request.

Such a server reads the request headers, answers 413 with ``Connection: close`` and closes, with most of
the body unread: the client's send then fails (reset, broken pipe) while the answer waits in its socket.
The stock client (urllib3) reads that answer: one request, FAILURE, the batch dropped. spanbatch's exporter
must do no worse than resend a large body on each "connection error" until its deadline.
"""

from __future__ import annotations

import pytest

pytest.importorskip("opentelemetry.exporter.otlp.common.http", reason="needs the OTLP exporters >= 1.45")

import socket
import threading
import time
from collections.abc import Iterator

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as StockHttpExporter
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from spanbatch import BatchSpanProcessor
from spanbatch.exporter import OTLPSpanExporter

from tests.helpers.accounting import balanced

MIB = 1 << 20
ANSWER = (
    b"HTTP/1.1 413 Payload Too Large\r\nContent-Type: text/plain\r\nContent-Length: 17\r\n"
    b"Connection: close\r\n\r\nPayload Too Large"
)


class EarlyRefusal:
    """A raw-socket server on 127.0.0.1 that answers every request 413 once it has read its headers.

    ``drain=False`` closes at once (the unread body makes the kernel send a reset); ``drain=True`` shuts
    down writing first, then reads a little of the body (at most 256 KiB or 0.2 s) before closing.
    """

    def __init__(self, *, drain: bool) -> None:
        self.drain = drain
        self.requests = 0  # requests whose headers arrived: each an attempt to send the body
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.05)
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="early-413", daemon=True)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self._listener.getsockname()[1]}/v1/traces"

    def __enter__(self) -> EarlyRefusal:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stopping.set()
        self._thread.join(5)
        self._listener.close()

    def _serve(self) -> None:
        while not self._stopping.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            with conn:
                self._answer(conn)

    def _answer(self, conn: socket.socket) -> None:
        conn.settimeout(2)
        head = b""
        try:
            while b"\r\n\r\n" not in head:
                chunk = conn.recv(4096)
                if not chunk:
                    return  # a connection probed and closed, no request
                head += chunk
        except OSError:
            return
        self.requests += 1
        conn.sendall(ANSWER)
        if self.drain:
            conn.shutdown(socket.SHUT_WR)
            read, until = 0, time.monotonic() + 0.2
            conn.settimeout(0.05)
            while read < 256 * 1024 and time.monotonic() < until:
                try:
                    chunk = conn.recv(65536)
                except TimeoutError:
                    continue
                except OSError:
                    break
                if not chunk:
                    break
                read += len(chunk)


@pytest.fixture(params=["close", "drain"])
def refusal(request: pytest.FixtureRequest) -> Iterator[EarlyRefusal]:
    with EarlyRefusal(drain=request.param == "drain") as server:
        yield server


def large_spans(count: int = 5, size: int = MIB) -> list[ReadableSpan]:
    """``count`` spans of ``size`` bytes of attribute each: a request of about ``count * size`` bytes."""
    recorded = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(recorded))
    tracer = provider.get_tracer("agent")
    for i in range(count):
        with tracer.start_as_current_span(f"llm-{i}") as span:
            span.set_attribute("gen_ai.prompt", "x" * size)
    provider.shutdown()
    return list(recorded.get_finished_spans())


def exporter_for(kind: str, endpoint: str) -> SpanExporter:
    if kind == "stock":
        return StockHttpExporter(endpoint=endpoint, timeout=10)
    exporter = OTLPSpanExporter(endpoint=endpoint, timeout=10)
    assert exporter.sends_natively  # the Rust sender, whose case this is
    return exporter


@pytest.mark.timeout(60)
@pytest.mark.parametrize("kind", ["stock", "spanbatch"])
def test_an_early_413_is_one_request_and_a_failure(refusal: EarlyRefusal, kind: str) -> None:
    exporter = exporter_for(kind, refusal.endpoint)
    try:
        result = exporter.export(large_spans())
    finally:
        exporter.shutdown()
    assert (result, refusal.requests) == (SpanExportResult.FAILURE, 1)


@pytest.mark.timeout(60)
def test_an_early_413_drops_the_batch_as_export_failed_once_sent(refusal: EarlyRefusal) -> None:
    processor = BatchSpanProcessor(exporter_for("spanbatch", refusal.endpoint), schedule_delay_millis=60_000)
    provider = TracerProvider()
    provider.add_span_processor(processor)
    tracer = provider.get_tracer("agent")
    for i in range(5):
        with tracer.start_as_current_span(f"llm-{i}") as span:
            span.set_attribute("gen_ai.prompt", "x" * MIB)
    processor.force_flush(30_000)
    stats = processor.stats()
    provider.shutdown()
    assert balanced(stats)
    assert (stats.exported, stats.dropped["export_failed"], refusal.requests) == (0, 5, 1)
