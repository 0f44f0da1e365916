"""A batch the OTLP/HTTP exporter cuts into several requests keeps to one timeout for the whole export.

The stock ``export`` sends one request within one deadline, ``timeout`` seconds from its start; the gRPC
exporter keeps its parts to that deadline (test_grpc_exporter_matches_stock). The HTTP exporter must too,
whether its parts go out from Rust (``send_all``) or through the stock client (its own metrics on).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from spanbatch.exporter import OTLPSpanExporter

from tests.helpers.otlp_spans import corpus, stock_bytes

pytestmark = pytest.mark.timeout(60)

TIMEOUT, ANSWER_AFTER = 1.5, 0.7


class _SlowBackend(BaseHTTPRequestHandler):
    requests: list[float]

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        self.requests.append(time.monotonic())
        time.sleep(ANSWER_AFTER)
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def backend() -> Iterator[tuple[str, list[float]]]:
    requests: list[float] = []
    handler = type("Handler", (_SlowBackend,), {"requests": requests})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/v1/traces", requests
    server.shutdown()
    server.server_close()
    thread.join(5)


@pytest.mark.parametrize("path", ["native send_all", "stock client (exporter metrics on)"])
def test_a_batch_sent_as_several_requests_keeps_to_one_timeout_as_the_stock_export_of_one(
    backend: tuple[str, list[float]], path: str
) -> None:
    endpoint, requests = backend
    spans = corpus()
    extra = {"meter_provider": MeterProvider()} if path.startswith("stock") else {}
    exporter = OTLPSpanExporter(
        endpoint=endpoint,
        timeout=TIMEOUT,
        max_export_batch_bytes=max(len(stock_bytes([span])) for span in spans) + 64,
        **extra,  # type: ignore[arg-type]
    )
    assert exporter.span_encoder.read(spans).parts >= 4  # cut into at least four requests
    started = time.monotonic()
    exporter.export(spans)
    elapsed = time.monotonic() - started
    exporter.shutdown()
    assert elapsed < TIMEOUT + ANSWER_AFTER  # never a fresh deadline after one part
    assert len(requests) <= 3
