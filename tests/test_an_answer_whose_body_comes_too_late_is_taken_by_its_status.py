"""Once the status line and headers came, the status decides the export, whatever becomes of the body: the backend
has the request and answered it.

Found by review (revD30): a 200 whose body (30 bytes, one every 0.2 s) ran past spanbatch's exporter's timeout was
counted failed as a connection error and sent again (2 requests, both answered 200; with a spill directory the batch
was spilled and replayed as well); the stock exporter, whose timeout is per socket read, took the 200 (one request).
And a frozen process (Lambda between invocations) woke to an HTTP/1.0 answer whose body ends when the server closes:
ureq reads no more once the time is spent, so the body's end could not be seen, and the delivered batch was counted
failed (3 of 3) and spilled to be sent again.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest
from opentelemetry.sdk.trace.export import SpanExportResult
from spanbatch.exporter import OTLPSpanExporter

from tests.helpers.otlp_spans import corpus
from tests.helpers.receivers import serving

pytestmark = pytest.mark.timeout(60)

TIMEOUT_SECONDS = 1.0


class SlowBody:
    """Answers ``status`` at once, then its body's bytes past the client's timeout; counts the requests."""

    def __init__(self, status: int) -> None:
        self.status = status
        self.requests = 0
        self.ending = threading.Event()


@contextmanager
def backend(status: int) -> Iterator[tuple[SlowBody, str]]:
    state = SlowBody(status)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            state.requests += 1
            self.send_response(state.status)
            self.send_header("Content-Length", "30")
            self.end_headers()
            try:
                self.wfile.write(b"x")
                self.wfile.flush()
                state.ending.wait(3 * TIMEOUT_SECONDS)  # the rest comes long after the client's timeout
                self.wfile.write(b"x" * 29)
            except OSError:
                pass  # the client gave up on it
            self.close_connection = True

        def log_message(self, format: str, *args: Any) -> None:
            pass

    with serving(Handler) as port:
        try:
            yield state, f"http://127.0.0.1:{port}/v1/traces"
        finally:
            state.ending.set()


def test_a_200_whose_body_comes_after_the_timeout_is_delivered_once() -> None:
    with backend(200) as (state, endpoint):
        exporter = OTLPSpanExporter(endpoint=endpoint, timeout=TIMEOUT_SECONDS)
        assert exporter.export(corpus()[:5]) is SpanExportResult.SUCCESS
        assert state.requests == 1
        exporter.shutdown()


def test_a_400_whose_body_comes_after_the_timeout_fails_unsent_again() -> None:
    with backend(400) as (state, endpoint):
        exporter = OTLPSpanExporter(endpoint=endpoint, timeout=TIMEOUT_SECONDS)
        assert exporter.export(corpus()[:5]) is SpanExportResult.FAILURE
        assert state.requests == 1  # not retried: the status is final
        exporter.shutdown()
