"""Reading on to a backend much slower than a gigabit link: the lane tells from its own sends how long one takes, and
expects a large request to be slow before its first (the last test).

The worker of an exporter that takes several batches per call reads the next batches before it sends while
sending would let the queue overflow first (see ``test_read_on.py``). How long a send takes, it learns from the
sends it made: a backend over the internet at a few MB a second takes a third of a second for a 1.2 MB request,
not the 10 ms of a gigabit, and a burst the gigabit figure would send through loses records meanwhile.

The receiver here reads request bodies at 4 MB a second (a 32 Mbit/s uplink). After one request sent and
answered, a burst of 300 KB records comes, two then a millisecond's sleep, 1,500-1,900 a second (measured,
pinned to one CPU beside two busy ones too; the sleep bounds it above on any machine). Batches of 4 (1.2 MB)
and a queue of 96: the first batch reads on from about 4,900 records a second at a gigabit (2.6 times the
burst's most), and from about 150 a second at the measured 4 MB/s (the burst makes 10 times that; reading on
waits 20 ms for each chunk of 4, which comes every 2-3 ms). 116 records: more than the queue and a batch, fewer
than the queue and the eight batches one call reads on. Sent at the gigabit figure, the first batch leaves 16
records without room: lost in every run.
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

from tests.helpers.logs import assert_held_burst_delivered, chat_events_to
from tests.helpers.receivers import serving

pytestmark = [pytest.mark.timeout(120), pytest.mark.alone]  # a burst: the worker must be scheduled during it
Later = Callable[[Any], Any]  # the ``shutdown_later`` fixture

BYTES_PER_SECOND = 4_000_000  # the backend's pace while throttled
BATCH, QUEUE = 4, 96
RECORDS = 116
BODY = "x" * 300_000  # a batch is 1.2 MB: 300 ms to send while throttled


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


def test_a_burst_of_large_records_to_a_slow_backend_is_held_while_the_first_request_is_out(
    slow_backend: SlowBackend, shutdown_later: Later
) -> None:
    events = chat_events_to(
        OTLPLogExporter(endpoint=slow_backend.endpoint), queue=QUEUE, batch=BATCH, delay_millis=5000
    )
    processor, logger = shutdown_later(events.processor), events.logger
    for i in range(BATCH):  # one request, sent and answered: the lane has measured its backend
        logger.emit(body=BODY, event_name="gen_ai.choice", attributes={"i": i})
    assert processor.force_flush(30_000)
    assert slow_backend.records == BATCH
    # A full collection of what earlier tests left (the suite's heap) in the middle of the burst would read as a slow
    # loop (as in test_read_on.py): collected before it.
    gc.collect()
    for i in range(RECORDS):
        logger.emit(body=BODY, event_name="gen_ai.choice", attributes={"i": i})
        if i % 2 == 1:
            time.sleep(0.001)
    assert_held_burst_delivered(
        events,
        release=slow_backend.throttled.clear,
        delivered=partial(slow_backend.wait_for_records, BATCH + RECORDS, timeout=30),
    )


# A lane that has sent nothing yet: the same backend, a steady burst of 100 KB records (one, then 0.3 ms asleep),
# batches of 24 (2.4 MB) and a queue of 136. At a gigabit the first batch reads on from 3,500 records a second, and
# goes out alone, then takes 600 ms while the queue fills (60 lost in 8 runs of 8); at the 25 MB/s a lane expects of
# a request that large before its first one, from 700 a second. The burst makes 1,850-2,150 (the worker's reading
# included; with 300 KB records, 450-1,200). 220 records: more than the queue and a batch, fewer than the queue and
# eight batches.
FIRST_BATCH, FIRST_QUEUE = 24, 136
FIRST_RECORDS = 220
FIRST_BODY = "z" * 100_000


def test_a_burst_of_large_records_before_any_send_is_held_while_the_first_request_is_out(
    slow_backend: SlowBackend, shutdown_later: Later
) -> None:
    events = chat_events_to(
        OTLPLogExporter(endpoint=slow_backend.endpoint), queue=FIRST_QUEUE, batch=FIRST_BATCH, delay_millis=5000
    )
    shutdown_later(events.processor)
    logger = events.logger
    gc.collect()  # as above
    for i in range(FIRST_RECORDS):
        logger.emit(body=FIRST_BODY, event_name="gen_ai.choice", attributes={"i": i})
        time.sleep(0.0003)
    assert_held_burst_delivered(
        events,
        release=slow_backend.throttled.clear,
        delivered=partial(slow_backend.wait_for_records, FIRST_RECORDS, timeout=30),
    )
