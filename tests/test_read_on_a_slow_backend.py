"""Reading on to a slow backend: before its first large send a lane expects one to take five times a gigabit's time,
and after it as long as its sends took; either way a burst is held while the first request is out.

The worker of an exporter that takes several batches per call reads the next batches before it sends while sending
would let the queue overflow first (see ``test_read_on.py``). Once it has read a batch it reads on if
2 * rate * send time > free slots (``Pace::reads_on``), the rate counted since the first record of the burst woke it.

300 KB records, batches of 8 (2.4 MB) and a queue of 16; the receiver reads 2 MB a second. With the queue empty, the
first batch reads on from 417 records a second at a gigabit (16 / (2 * 19 ms)), from 83 at the 25 MB/s a lane expects
before its first large send (96 ms), and from 7 once a send has shown 2 MB/s (1.2 s; ``send_time.rs``).

The test sets that pace, not the machine: one record every 1/pace s, each at its own due time (a late wake is made
up), until the worker has taken the first batch and decided (``stats().in_flight``). Records keep coming while it
wakes and reads, so the pace it counts is the test's (to 8/7 of it: 8 records, 7 intervals) however fast the machine.
The first test paces 24 a second (3.6 times the 2 MB/s threshold, under a third of the 25 MB/s one); the second, 190
(2.3 times the 25 MB/s threshold, half the gigabit one). The rest of the 56 records then come at once: the worker
reading on waits 20 ms for each chunk of 8 once it has read the last (``CHUNK_WAIT``); from one chunk's last record to
the next's took 3-4 ms here, 12-26 ms (its reading included) pinned to one CPU beside four busy loops. Read on, the 56
go out in 7 batches; sent alone, the first batch keeps the worker away 1.2 s and 32 records find the queue full (so
both tests fail with the send time a gigabit's, the first with sends teaching nothing, the second with a gigabit's
before the first send).
"""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Callable, Iterator
from functools import partial
from http.server import BaseHTTPRequestHandler
from typing import Any, BinaryIO

import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from spanbatch.exporter import OTLPLogExporter

from tests.helpers.logs import ChatEvents, assert_held_burst_delivered, chat_events_to
from tests.helpers.receivers import serving

pytestmark = pytest.mark.timeout(120)  # not "alone": the test, not the machine, sets the pace
Later = Callable[[Any], Any]  # the ``shutdown_later`` fixture

BYTES_PER_SECOND = 2_000_000  # the backend's pace while throttled
BATCH, QUEUE = 8, 16
RECORDS = 56  # more than the queue and a batch, fewer than the queue and the eight batches one call reads
BODY = "x" * 300_000
POLL = 0.001  # how often the paced records look whether the worker took its first batch


class SlowBackend:
    """An OTLP/HTTP log receiver on 127.0.0.1 that reads request bodies at ``BYTES_PER_SECOND`` while
    ``throttled`` is set (a request being read speeds up once it is cleared), and counts the records it got."""

    def __init__(self) -> None:
        self.throttled = threading.Event()
        self.throttled.set()
        self.records = 0
        self.received = threading.Condition()
        self.port = 0

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1/logs"

    def read(self, length: int, stream: BinaryIO) -> bytes:
        body = bytearray()
        while len(body) < length:
            piece = min(64 * 1024, length - len(body))
            if self.throttled.is_set():
                time.sleep(piece / BYTES_PER_SECOND)
            body += stream.read(piece)
        return bytes(body)

    def count(self, body: bytes) -> None:
        request = ExportLogsServiceRequest.FromString(body)
        with self.received:
            self.records += sum(len(sl.log_records) for rl in request.resource_logs for sl in rl.scope_logs)
            self.received.notify_all()

    def wait_for_records(self, count: int, timeout: float) -> bool:
        with self.received:
            return self.received.wait_for(lambda: self.records >= count, timeout)


@pytest.fixture
def slow_backend() -> Iterator[SlowBackend]:
    backend = SlowBackend()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            backend.count(backend.read(int(self.headers["Content-Length"]), self.rfile))
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    with serving(Handler) as port:
        backend.port = port
        try:
            yield backend
        finally:
            backend.throttled.clear()  # a request still being read ends now: the server's shutdown waits for none


def emit_burst(events: ChatEvents, *, pace: float) -> None:
    """``RECORDS`` records: ``pace`` a second until the worker has taken a batch of them, then the rest at once.

    A full collection of what earlier tests left (the suite's heap) in the middle of the burst would stall it: collected
    before it."""
    gc.collect()
    start = time.monotonic()
    for i in range(RECORDS):
        events.logger.emit(body=BODY, event_name="gen_ai.choice", attributes={"i": i})
        due = start + (i + 1) / pace
        while (left := due - time.monotonic()) > 0 and events.processor.stats().in_flight < BATCH:
            time.sleep(min(left, POLL))


def test_a_burst_of_large_records_to_a_slow_backend_is_held_while_the_first_request_is_out(
    slow_backend: SlowBackend, shutdown_later: Later
) -> None:
    events = chat_events_to(
        OTLPLogExporter(endpoint=slow_backend.endpoint), queue=QUEUE, batch=BATCH, delay_millis=5000
    )
    processor, logger = shutdown_later(events.processor), events.logger
    for i in range(BATCH // 2):  # one request of 1.2 MB, sent and answered: the lane has measured its backend
        logger.emit(body=BODY, event_name="gen_ai.choice", attributes={"i": i})
    assert processor.force_flush(30_000)
    assert slow_backend.records == BATCH // 2
    emit_burst(events, pace=24)
    assert_held_burst_delivered(
        events,
        release=slow_backend.throttled.clear,
        delivered=partial(slow_backend.wait_for_records, BATCH // 2 + RECORDS, timeout=30),
    )


def test_a_burst_of_large_records_before_any_send_is_held_while_the_first_request_is_out(
    slow_backend: SlowBackend, shutdown_later: Later
) -> None:
    events = chat_events_to(
        OTLPLogExporter(endpoint=slow_backend.endpoint), queue=QUEUE, batch=BATCH, delay_millis=5000
    )
    shutdown_later(events.processor)
    emit_burst(events, pace=190)
    assert_held_burst_delivered(
        events,
        release=slow_backend.throttled.clear,
        delivered=partial(slow_backend.wait_for_records, RECORDS, timeout=30),
    )
