"""spanbatch's OTLP/HTTP exporters send the batches of one ``export_many`` call in turn, each within its own
timeout, and tell the processor as each ends: a batch hung past ``export_timeout_millis`` is given up then, not
once the whole call has had the timeout once per batch.

Before, a flush and a shutdown waited behind such a call for ``export_timeout_millis`` per batch of it: with a
500 ms timeout and 8 batches in the call, 4 s, where its first batch had been past its timeout for 3.5 s.
A user's ``export_many`` (which tells nothing) still has the timeout per batch (see
``test_a_short_export_timeout_does_not_cut_a_drain``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest
import spanbatch
from spanbatch._export import BATCHES_PER_CALL
from spanbatch._export_clock import ExportClock, paced_progress
from spanbatch.exporter import OTLPSpanExporter

from tests.helpers import end_spans, provider_with
from tests.helpers.receivers import serving

pytestmark = pytest.mark.timeout(30)

BATCH = 10
TIMEOUT_MILLIS = 500
LONG = 60_000


class Backend:
    """Holds the first request until ``first_answers``; answers the later ones after ``delay`` seconds (None:
    never, until the test ends)."""

    def __init__(self, delay: float | None) -> None:
        self.delay = delay
        self.received = 0
        self.first_answers, self.ending = threading.Event(), threading.Event()
        self.cond = threading.Condition()

    def take(self) -> None:
        with self.cond:
            self.received += 1
            first = self.received == 1
            self.cond.notify_all()
        if first:
            self.first_answers.wait(20)
        elif self.delay is None:
            self.ending.wait(20)
        else:
            time.sleep(self.delay)

    def wait_for(self, requests: int) -> bool:
        with self.cond:
            return self.cond.wait_for(lambda: self.received >= requests, 10)


@contextmanager
def backend(delay: float | None) -> Iterator[tuple[Backend, str]]:
    state = Backend(delay)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            state.take()
            try:
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()
            except OSError:
                pass  # the client gave up on it

        def log_message(self, format: str, *args: Any) -> None:
            pass

    with serving(Handler) as port:
        try:
            yield state, f"http://127.0.0.1:{port}/v1/traces"
        finally:
            state.ending.set()
            state.first_answers.set()


def in_one_call(state: Backend, endpoint: str, shutdown_later: Callable[[Any], Any]) -> spanbatch.BatchSpanProcessor:
    """A processor whose second ``export_many`` call carries ``BATCHES_PER_CALL`` batches, its first request sent."""
    # The exporter's own timeout is far longer: only the processor's can end the wait.
    exporter = OTLPSpanExporter(endpoint=endpoint, timeout=30)
    assert exporter.sends_natively
    processor = shutdown_later(
        spanbatch.BatchSpanProcessor(
            exporter,
            max_queue_size=1000,
            max_export_batch_size=BATCH,
            schedule_delay_millis=LONG,
            export_timeout_millis=TIMEOUT_MILLIS,
        )
    )
    provider = provider_with(processor)
    end_spans(provider, BATCH)
    assert state.wait_for(1)  # the first call is held: what ends meanwhile queues up for one call
    end_spans(provider, BATCH * BATCHES_PER_CALL)
    state.first_answers.set()
    assert state.wait_for(2)
    return processor


@pytest.mark.parametrize("ending", ["shutdown", "force_flush"])
def test_a_hung_export_many_call_of_our_exporter_is_given_up_at_one_export_timeout(
    ending: str, shutdown_later: Callable[[Any], Any]
) -> None:
    with backend(delay=None) as (state, endpoint):
        processor = in_one_call(state, endpoint, shutdown_later)
        started = time.monotonic()
        if ending == "shutdown":
            processor.shutdown()
        else:
            assert processor.force_flush() is False
        took = time.monotonic() - started
        # One timeout (0.5 s) and room for a loaded machine; the whole call's was 8 of them (4 s).
        assert took < 2.0, took
        processor.shutdown()  # while the backend still holds the call (a refused retry would back off)
        assert processor.stats().in_flight == BATCH * BATCHES_PER_CALL  # the call held every batch


def test_an_export_many_call_of_our_exporter_whose_batches_each_keep_the_timeout_is_waited_for(
    shutdown_later: Callable[[Any], Any],
) -> None:
    # Each request answered in 0.2 s: the call of 8 takes 1.6 s, more than one timeout, and is not given up.
    with backend(delay=0.2) as (state, endpoint):
        processor = in_one_call(state, endpoint, shutdown_later)
        processor.shutdown()
        stats = processor.stats()
        assert (stats.exported, stats.in_flight, stats.dropped_total) == (BATCH * (1 + BATCHES_PER_CALL), 0, 0)


def test_an_export_nested_in_a_paced_call_does_not_mark_its_batches() -> None:
    # revJ: the stock client's "retrying" warning, bridged to a SimpleLogRecordProcessor on spanbatch's log exporter,
    # was exported on the span export thread inside the paced call, and its send marked the span call as moving
    # (idle 1.17 s back to 0). The progress now goes to the first to ask, the paced call's own exporter.
    clock = ExportClock(500)
    with clock.timing(BATCHES_PER_CALL, paced=True):
        outer = paced_progress()
        assert outer is not None
        assert paced_progress() is None  # the nested export's ask
    with clock.timing(BATCHES_PER_CALL):
        assert paced_progress() is None  # a call the processor does not pace
