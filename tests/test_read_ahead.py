"""Read-ahead: an exporter with a SpanEncoder gets its batches read into requests while they fill.

A span read soon after it ends is freed at once; one left in the queue for a whole batch
outlives several garbage collections and gets promoted, which is what made full
collections cost spanbatch's worker more than a span copied in ``on_end`` costs.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from typing import Any

import pytest
import spanbatch
from opentelemetry.sdk.trace import ReadableSpan
from spanbatch._core import BatchCore, SpanEncoder, SpanRequest
from spanbatch._export import READ_AHEAD_SPANS

from tests.helpers import (
    LONG,
    EncodingExporter,
    balanced,
    end_spans,
    make_span,
    provider_with,
    run_in_threads,
    wait_until,
)
from tests.helpers.otlp_spans import corpus, stock_bytes

Later = Callable[[Any], Any]  # the ``shutdown_later`` fixture


def sampled_corpus() -> list[ReadableSpan]:
    return [span for span in corpus() if span.context is not None and span.context.trace_flags.sampled]


def stats(core: BatchCore) -> spanbatch.SpanStats:
    return spanbatch.SpanStats.of(core)


class RequestTaker(threading.Thread):
    """Calls ``next_requests`` once, as the worker does, and keeps what it returned."""

    def __init__(self, core: BatchCore, encoder: SpanEncoder, max_batches: int = 1, read_ahead: int = 4) -> None:
        super().__init__(daemon=True)
        self.core, self.encoder = core, encoder
        self.max_batches, self.read_ahead = max_batches, read_ahead
        self.requests: list[SpanRequest] | None = None

    def run(self) -> None:
        self.requests = self.core.next_requests(self.encoder, self.max_batches, self.read_ahead)


@pytest.mark.timeout(20)
def test_spans_are_read_and_freed_while_their_batch_fills() -> None:
    core = BatchCore(100, LONG, 64)
    taker = RequestTaker(core, SpanEncoder(), read_ahead=4)
    taker.start()
    refs = []
    for i in range(10):
        span = make_span(span_id=i + 1)
        refs.append(weakref.ref(span))
        core.on_end(span)
    del span
    # Two chunks of 4 read ahead; the last 2 wait for more, the batch for its delay or a flush.
    assert wait_until(lambda: core.queue_len() == 2)
    now = stats(core)
    assert (now.queued, now.in_flight) == (2, 8)
    assert balanced(now)
    assert [ref() is None for ref in refs] == [True] * 8 + [False] * 2
    ticket = core.request_flush()
    taker.join(10)
    assert taker.requests is not None
    assert [len(request) for request in taker.requests] == [10]
    assert not core.wait_flush(ticket, 0)  # read ahead, handed out, not yet exported
    core.finish_batch(taker.requests[0], True)
    assert core.wait_flush(ticket, 0)  # its export settled every span queued before the flush
    core.begin_shutdown()
    assert core.next_requests(SpanEncoder(), 1, 4) is None
    assert stats(core).exported == 10


@pytest.mark.timeout(20)
def test_a_batch_read_in_chunks_is_the_stock_request() -> None:
    spans = sampled_corpus()
    assert len(spans) > 6
    core = BatchCore(100, 100, 100)
    for span in spans:
        core.on_end(span)
    encoder = SpanEncoder()
    requests = core.next_requests(encoder, 8, 3)  # two or more chunks, then the rest at the delay
    assert requests is not None
    assert [len(request) for request in requests] == [len(spans)]
    assert requests[0].to_bytes() == stock_bytes(spans)
    assert (encoder.skipped_values, encoder.skipped_spans) == (0, 0)


@pytest.mark.timeout(20)
def test_a_full_batch_is_read_at_once_and_more_full_ones_join_it() -> None:
    core = BatchCore(100, LONG, 10)
    end_spans(core, 25)
    requests = core.next_requests(SpanEncoder(), 8, 4)
    assert requests is not None
    assert [len(request) for request in requests] == [10, 10]
    # The 5 left are younger: no read-ahead starts without waiting, so none is held here.
    assert (core.queue_len(), stats(core).in_flight) == (5, 20)
    core.begin_shutdown()
    assert [len(r) for r in core.next_requests(SpanEncoder(), 8, 4) or []] == [5]
    assert core.next_requests(SpanEncoder(), 8, 4) is None


@pytest.mark.timeout(20)
def test_shutdown_exports_spans_read_ahead_exactly_once(shutdown_later: Later) -> None:
    exporter = EncodingExporter()
    processor = shutdown_later(
        spanbatch.BatchSpanProcessor(exporter, max_export_batch_size=512, schedule_delay_millis=LONG)
    )
    provider = provider_with(processor, service="read-ahead")
    end_spans(provider, 3 * READ_AHEAD_SPANS + 5, "s", numbered=True)
    core = processor.lanes[0].core
    assert wait_until(lambda: core.queue_len() < READ_AHEAD_SPANS)
    assert exporter.batches == []  # read ahead, not sent: the batch is neither full nor due
    provider.shutdown()
    assert all(isinstance(batch, SpanRequest) for batch in exporter.batches)
    assert exporter.exported == 3 * READ_AHEAD_SPANS + 5
    final = processor.stats()
    assert (final.exported, final.in_flight, final.queued, final.dropped_total) == (3 * READ_AHEAD_SPANS + 5, 0, 0, 0)


@pytest.mark.timeout(20)
def test_an_exporter_without_a_span_encoder_gets_spans(shutdown_later: Later) -> None:
    exporter = EncodingExporter()
    exporter.offered = None
    processor = shutdown_later(spanbatch.BatchSpanProcessor(exporter, schedule_delay_millis=LONG))
    end_spans(processor, 40)
    assert processor.force_flush(5000)
    assert [type(batch) for batch in exporter.batches] == [list]
    assert exporter.exported == 40


@pytest.mark.timeout(20)
def test_values_left_out_while_reading_ahead_are_logged(
    caplog: pytest.LogCaptureFixture, shutdown_later: Later
) -> None:
    exporter = EncodingExporter()
    processor = shutdown_later(spanbatch.BatchSpanProcessor(exporter, schedule_delay_millis=LONG))
    bad = make_span(span_id=7)
    bad._attributes = {"fine": 1, "bad": object()}  # type: ignore[assignment]
    unreadable = make_span(span_id=9)
    unreadable._start_time = "soon"  # type: ignore[assignment]
    with caplog.at_level(logging.WARNING, logger="spanbatch.exporter"):
        for span in [bad, unreadable, make_span(span_id=8)]:
            processor.on_end(span)
        assert processor.force_flush(5000)
    assert exporter.exported == 3  # settled as one batch; the unreadable span is counted by the encoder
    assert (exporter.encoder.skipped_values, exporter.encoder.skipped_spans) == (1, 1)
    assert "Left out 1 attribute value(s)" in caplog.text
    assert "Left out 1 span(s) that could not be read" in caplog.text
    processor.shutdown()


@pytest.mark.timeout(30)
@pytest.mark.parametrize("threads", [1, 4])
def test_read_ahead_under_load_delivers_every_span_once(threads: int, shutdown_later: Later) -> None:
    exporter = EncodingExporter()
    processor = shutdown_later(spanbatch.BatchSpanProcessor(exporter, max_queue_size=100_000))
    provider = provider_with(processor)
    tracer = provider.get_tracer("t")

    def produce(index: int) -> None:
        for i in range(2000):
            tracer.start_span(f"{index}-{i}", attributes={"i": i}).end()

    run_in_threads([functools.partial(produce, i) for i in range(threads)])
    assert provider.force_flush(10_000)
    provider.shutdown()
    assert processor.stats().exported == exporter.exported == 2000 * threads
    names = [span.name for body in exporter.bodies for span in decoded_spans(body)]
    assert sorted(names) == sorted(f"{t}-{i}" for t in range(threads) for i in range(2000))


def decoded_spans(body: bytes) -> Sequence[Any]:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest  # noqa: PLC0415

    request = ExportTraceServiceRequest.FromString(body)
    return [span for rs in request.resource_spans for ss in rs.scope_spans for span in ss.spans]


@pytest.mark.timeout(30)
def test_a_full_batch_goes_at_once_whatever_its_size_against_the_read_ahead_chunk() -> None:
    # 36 is not a multiple of the 8-span chunk: once 32 are read ahead, the last 4 fill the batch
    # and must wake the worker, not wait out the 60 s delay.
    core = BatchCore(1000, 60_000, 36)
    taker = RequestTaker(core, SpanEncoder(), read_ahead=8)
    taker.start()
    for i in range(36):
        core.on_end(make_span(span_id=i + 1))
        time.sleep(0.002)  # the worker reads each chunk ahead before the next spans arrive
    taker.join(10)
    assert not taker.is_alive(), "the full batch waited for its delay"
    assert taker.requests is not None
    assert [len(request) for request in taker.requests] == [36]
