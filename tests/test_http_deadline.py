"""One deadline per OTLP/HTTP export: a slow collector costs at most one ``timeout`` and one send.

The stock client gives each ``export`` one deadline, ``timeout`` seconds from its start, and
retries within it: a timed-out attempt that used the whole deadline is not sent again. spanbatch's
exporter makes its first attempt from Rust and must carry that same deadline into the stock
client's retries, not start a fresh one.
"""

from __future__ import annotations

import pytest

pytest.importorskip("opentelemetry.exporter.otlp.common.http", reason="needs the OTLP exporters >= 1.45")

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import requests
from opentelemetry.sdk.trace.export import SpanExportResult
from spanbatch.exporter import OTLPSpanExporter

from tests.otlp_spans import corpus

TIMEOUT = 1.0  # the exporter's timeout, seconds
SLACK = 0.4  # scheduling and connection set-up on a busy 2-core machine; far below another TIMEOUT


class SlowCollector:
    """Counts requests; answers each after ``delay`` seconds with the next scripted status (then 200)."""

    def __init__(self, delay: float, statuses: list[int] | None = None) -> None:
        self.delay = delay
        self.statuses = list(statuses or [])
        self.requests = 0
        self.lock = threading.Lock()
        self.closing = threading.Event()
        self.port = 0

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1/traces"

    def take(self) -> int:
        with self.lock:
            self.requests += 1
            return self.statuses.pop(0) if self.statuses else 200


@pytest.fixture
def slow_collector(request: pytest.FixtureRequest) -> Iterator[SlowCollector]:
    collector = SlowCollector(*request.param)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            status = collector.take()
            collector.closing.wait(collector.delay)
            try:
                self.send_response(status)
                if status != 200:
                    self.send_header("Retry-After", "0")
                self.send_header("Content-Length", "0")
                self.end_headers()
            except OSError:
                pass  # the client gave up on this request: as a collector would, carry on

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    collector.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield collector
    collector.closing.set()
    server.shutdown()
    server.server_close()
    thread.join(5)


def timed_export(exporter: OTLPSpanExporter) -> tuple[SpanExportResult, float]:
    started = time.monotonic()
    result = exporter.export(corpus())
    return result, time.monotonic() - started


@pytest.mark.timeout(60)
@pytest.mark.parametrize("slow_collector", [(3 * TIMEOUT,)], indirect=True)
def test_a_collector_slower_than_the_timeout_gets_one_request_within_one_timeout(
    slow_collector: SlowCollector,
) -> None:
    exporter = OTLPSpanExporter(endpoint=slow_collector.endpoint, timeout=TIMEOUT)
    assert exporter.sends_natively
    result, elapsed = timed_export(exporter)
    assert result is SpanExportResult.FAILURE
    assert slow_collector.requests == 1  # the batch may have arrived: not sent twice
    assert elapsed < TIMEOUT + SLACK


@pytest.mark.timeout(60)
@pytest.mark.parametrize("slow_collector", [(3 * TIMEOUT,)], indirect=True)
def test_export_many_gives_each_batch_one_deadline(slow_collector: SlowCollector) -> None:
    exporter = OTLPSpanExporter(endpoint=slow_collector.endpoint, timeout=TIMEOUT)
    spans = corpus()
    started = time.monotonic()
    # The first batch times out; the second, not sent with it, gets its own export and deadline.
    assert exporter.export_many([spans[:2], spans[2:]]) == [SpanExportResult.FAILURE] * 2
    elapsed = time.monotonic() - started
    assert slow_collector.requests == 2
    assert elapsed < 2 * TIMEOUT + SLACK


@pytest.mark.timeout(60)
@pytest.mark.parametrize("slow_collector", [(0.6 * TIMEOUT, [503])], indirect=True)
def test_a_retry_after_a_slow_rejection_stays_within_the_first_deadline(slow_collector: SlowCollector) -> None:
    # 503 after 0.6 s, retried at once (Retry-After: 0) with the 0.4 s left, which run out
    # before the second answer: the stock retry rules, one deadline.
    exporter = OTLPSpanExporter(endpoint=slow_collector.endpoint, timeout=TIMEOUT)
    result, elapsed = timed_export(exporter)
    assert result is SpanExportResult.FAILURE
    assert slow_collector.requests == 2
    assert elapsed < TIMEOUT + SLACK


@pytest.mark.timeout(60)
@pytest.mark.parametrize("slow_collector", [(3 * TIMEOUT,), (0.6 * TIMEOUT, [503])], indirect=True)
def test_the_stock_transport_makes_the_same_attempts(slow_collector: SlowCollector) -> None:
    # The reference the tests above hold spanbatch to: the stock client over requests.
    exporter = OTLPSpanExporter(endpoint=slow_collector.endpoint, timeout=TIMEOUT, session=requests.Session())
    assert not exporter.sends_natively
    result, elapsed = timed_export(exporter)
    assert result is SpanExportResult.FAILURE
    assert slow_collector.requests == (1 if slow_collector.delay > TIMEOUT else 2)
    assert elapsed < TIMEOUT + SLACK
