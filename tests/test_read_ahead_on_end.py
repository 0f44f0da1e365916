"""Read-ahead on the application thread: once a worker reads its lane's spans with a SpanEncoder, the
thread that ends a span reads each queued chunk into the open request itself, so spans are freed
without waiting for the worker to get the GIL; the worker only completes each batch.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from typing import Any, ClassVar

import pytest
import spanbatch
from opentelemetry.sdk.trace import ReadableSpan
from spanbatch._core import BatchCore, SpanEncoder, SpanRequest
from spanbatch._export import READ_AHEAD_SPANS

from tests.helpers import LONG, EncodingExporter, balanced, make_span, provider_with

Later = Callable[[Any], Any]  # the ``shutdown_later`` fixture


def stats(core: BatchCore) -> spanbatch.SpanStats:
    return spanbatch.SpanStats.of(core)


class RequestTaker(threading.Thread):
    """Calls ``next_requests`` as the worker does until it returns None, keeping what it returned; the
    first batch's "export" waits for ``release``."""

    def __init__(self, core: BatchCore, encoder: SpanEncoder, read_ahead: int) -> None:
        super().__init__(daemon=True)
        self.core, self.encoder, self.read_ahead = core, encoder, read_ahead
        self.requests: list[SpanRequest] = []
        self.exporting, self.release = threading.Event(), threading.Event()

    def run(self) -> None:
        self.core.enter_export_thread()
        while (requests := self.core.next_requests(self.encoder, 8, self.read_ahead)) is not None:
            for request in requests:
                self.exporting.set()
                self.release.wait(20)
                self.requests.append(request)
                self.core.finish_batch(request, True)


@pytest.mark.timeout(30)
def test_spans_ended_while_the_worker_exports_are_read_by_the_thread_that_ends_them() -> None:
    core = BatchCore(100, LONG, 16)
    taker = RequestTaker(core, SpanEncoder(), read_ahead=4)
    taker.start()
    for i in range(16):
        core.on_end(make_span(span_id=i + 1))
    assert taker.exporting.wait(10)  # the first batch is out; the worker waits in its export
    refs = []
    for i in range(10):
        span = make_span(span_id=100 + i)
        refs.append(weakref.ref(span))
        core.on_end(span)
    del span
    # Two chunks of 4 read into the next request by this thread and freed; 2 wait for a chunk.
    assert [ref() is None for ref in refs] == [True] * 8 + [False] * 2
    now = stats(core)
    assert (core.queue_len(), now.queued, now.in_flight) == (2, 2, 24)
    assert balanced(now)
    taker.release.set()
    core.begin_shutdown()
    taker.join(10)
    assert [len(request) for request in taker.requests] == [16, 10]
    assert stats(core).exported == 26


@pytest.mark.timeout(60)
def test_threads_reading_ahead_together_deliver_every_span_once_in_full_batches(shutdown_later: Later) -> None:
    exporter = EncodingExporter()
    # Room for every span: a worker slowed by a busy machine drops none (counted drops are another test's).
    processor = shutdown_later(spanbatch.BatchSpanProcessor(exporter, max_queue_size=8192, schedule_delay_millis=LONG))
    provider = provider_with(processor)
    tracer = provider.get_tracer("t")
    readings: list[bool] = []
    done = threading.Event()

    def watch() -> None:  # the accounting holds at every read, while threads read ahead
        while not done.is_set():
            readings.append(balanced(processor.stats()))
            time.sleep(0.0005)

    def work(thread: int) -> None:
        for i in range(1500):
            tracer.start_span(f"s{thread}-{i}").end()

    watcher = threading.Thread(target=watch)
    watcher.start()
    workers = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(30)
    assert processor.force_flush(30_000)
    done.set()
    watcher.join(10)
    assert readings
    assert all(readings)
    assert exporter.exported == 6000
    assert all(isinstance(batch, SpanRequest) for batch in exporter.batches)
    # Full batches while the threads ran; only the flush sends a short one.
    assert [len(batch) for batch in exporter.batches[:-1]] == [512] * (len(exporter.batches) - 1)
    final = processor.stats()
    assert (final.exported, final.dropped_total, final.queued, final.in_flight) == (6000, 0, 0, 0)


@pytest.mark.timeout(30)
def test_values_left_out_by_the_thread_that_ends_spans_are_logged(
    caplog: pytest.LogCaptureFixture, shutdown_later: Later
) -> None:
    exporter = EncodingExporter()
    processor = shutdown_later(spanbatch.BatchSpanProcessor(exporter, schedule_delay_millis=LONG))
    processor.on_end(make_span(span_id=1))
    assert processor.force_flush(5000)  # the worker has read with the exporter's encoder
    bad = make_span(span_id=7)
    bad._attributes = {"fine": 1, "bad": object()}  # type: ignore[assignment]
    unreadable = make_span(span_id=9)
    unreadable._start_time = "soon"  # type: ignore[assignment]
    with caplog.at_level(logging.WARNING, logger="spanbatch.exporter"):
        for span in [bad, unreadable, *(make_span(span_id=100 + i) for i in range(READ_AHEAD_SPANS))]:
            processor.on_end(span)
        assert processor.force_flush(5000)
    assert exporter.exported == 1 + 2 + READ_AHEAD_SPANS
    assert (exporter.encoder.skipped_values, exporter.encoder.skipped_spans) == (1, 1)
    assert "Left out 1 attribute value(s)" in caplog.text
    assert "Left out 1 span(s) that could not be read" in caplog.text


class InterruptingTime:
    """A start time the encoder reads as an integer through ``__index__``, Python code, while Ctrl-C arrives."""

    def __index__(self) -> int:
        if threading.current_thread() is threading.main_thread():  # where Ctrl-C is delivered
            signal.raise_signal(signal.SIGINT)
        return 1


@pytest.fixture
def ctrl_c() -> Iterator[None]:
    """SIGINT raises KeyboardInterrupt, as in an interactive program, even when the suite was started in the
    background (a shell starts background jobs with SIGINT ignored, and Python then leaves it so)."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def interrupted_span(span_id: int) -> ReadableSpan:
    """An SDK span (read on the thread that ends it) whose reading runs Python code that meets a real SIGINT."""
    span = make_span(span_id=span_id)
    span._start_time = InterruptingTime()  # type: ignore[assignment]
    return span


@pytest.mark.timeout(30)
def test_ctrl_c_while_the_thread_that_ends_spans_reads_them_reaches_the_application(
    shutdown_later: Later, ctrl_c: None
) -> None:
    exporter = EncodingExporter()
    processor = shutdown_later(spanbatch.BatchSpanProcessor(exporter, schedule_delay_millis=LONG))
    processor.on_end(make_span(span_id=1))
    assert processor.force_flush(5000)  # the worker has read with the exporter's encoder
    processor.on_end(interrupted_span(2))
    for i in range(READ_AHEAD_SPANS - 1):
        processor.on_end(make_span(span_id=100 + i))
    with pytest.raises(KeyboardInterrupt):  # the span after a whole chunk: this thread reads it before queueing
        processor.on_end(make_span(span_id=99))
    # The chunk was read on (the interrupted span left out and counted), and nothing else was lost.
    assert processor.force_flush(5000)
    final = processor.stats()
    assert balanced(final)
    assert (final.exported, final.dropped["unencodable"], final.queued) == (READ_AHEAD_SPANS + 1, 1, 0)


@pytest.mark.timeout(30)
def test_ctrl_c_while_one_backend_reads_a_chunk_still_gives_the_span_to_every_backend(
    shutdown_later: Later, ctrl_c: None
) -> None:
    a, b = EncodingExporter(), EncodingExporter()
    pipeline = shutdown_later(spanbatch.Pipeline({"a": a, "b": b}, schedule_delay_millis=LONG))
    pipeline.on_end(make_span(span_id=1))
    assert pipeline.force_flush(5000)  # both workers read with their exporter's encoder
    pipeline.on_end(interrupted_span(2))
    for i in range(READ_AHEAD_SPANS - 1):
        pipeline.on_end(make_span(span_id=100 + i))
    with pytest.raises(KeyboardInterrupt):  # lane a reads its chunk first and is interrupted
        pipeline.on_end(make_span(span_id=99))
    assert pipeline.force_flush(5000)
    by_backend = pipeline.stats_by_backend()
    assert [stats.enqueued for stats in by_backend.values()] == [READ_AHEAD_SPANS + 2] * 2
    assert all(balanced(stats) for stats in by_backend.values())


class SpanWithPythonProperties(ReadableSpan):
    """A span class whose fields are read through Python code (its own property), which records the thread."""

    readers: ClassVar[list[str]] = []

    @property
    def name(self) -> str:
        SpanWithPythonProperties.readers.append(threading.current_thread().name)
        return "subclass"


@pytest.mark.timeout(30)
def test_a_span_whose_reading_runs_python_code_is_read_by_the_worker_not_the_thread_that_ends_it(
    shutdown_later: Later,
) -> None:
    # Python code run mid-read on the application thread could meet a signal handler that flushes (and waits
    # for this very read) or, on a daemon thread at exit, be unwound through Rust frames.
    exporter = EncodingExporter()
    processor = shutdown_later(spanbatch.BatchSpanProcessor(exporter, schedule_delay_millis=LONG))
    processor.on_end(make_span(span_id=1))
    assert processor.force_flush(5000)  # the worker reads with the exporter's encoder
    SpanWithPythonProperties.readers.clear()
    for i in range(3 * READ_AHEAD_SPANS):
        span = make_span(span_id=100 + i)
        processor.on_end(SpanWithPythonProperties(name="x", context=span.context) if i == 0 else span)
    assert processor.force_flush(5000)
    assert exporter.exported == 1 + 3 * READ_AHEAD_SPANS
    assert SpanWithPythonProperties.readers
    assert threading.main_thread().name not in SpanWithPythonProperties.readers
