"""spanbatch's OTLP/gRPC exporter behind several export threads (``max_concurrent_exports``) shares one channel.

The stock ``_export`` answers a first ``UNAVAILABLE`` by closing that channel and making a new one. Closed under
them, the calls other threads have in flight end ``CANCELLED`` ("Channel closed!") though the backend may have them
already (the stock retry then sends them twice), and a call started on it meanwhile raises ``ValueError`` ("Cannot
invoke RPC on closed channel!"). The backend must get each batch exactly once.
"""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

import grpc
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import TracerProvider
from spanbatch import BatchSpanProcessor
from spanbatch.exporter import grpc as spanbatch_grpc

from tests.helpers import balanced, end_spans
from tests.helpers.otlp_spans import corpus
from tests.test_grpc_exporter_matches_stock import ScriptedServer, held, unavailable

pytestmark = pytest.mark.timeout(60)


def span_names(requests: list[bytes]) -> Counter[str]:
    """How many times the backend got each span, by name."""
    names: Counter[str] = Counter()
    for request in requests:
        parsed = ExportTraceServiceRequest.FromString(request)
        spans = (span for resource in parsed.resource_spans for scope in resource.scope_spans for span in scope.spans)
        names.update(span.name for span in spans)
    return names


def test_a_call_in_flight_when_another_export_thread_reconnects_is_answered_by_the_backend_once() -> None:
    """Two export threads, one span each: the backend holds the first call until the second thread's retry has
    arrived (its first attempt answered ``UNAVAILABLE``, so the stock ``_export`` reconnected in between), then
    answers it OK. Before: the reconnect closed the channel under the held call, which ended ``CANCELLED`` on the
    client, and its stock retry sent the span again: the backend got it twice."""
    server = ScriptedServer()

    def held_until_the_retry(context: grpc.ServicerContext) -> None:
        with server.arrived:
            server.arrived.wait_for(lambda: len(server.requests) >= 3, 10)

    server.script = [held_until_the_retry, unavailable]
    exporter = spanbatch_grpc.OTLPSpanExporter(endpoint=server.endpoint, insecure=True, timeout=10)
    processor = BatchSpanProcessor(exporter, max_export_batch_size=1, schedule_delay_millis=1, max_concurrent_exports=2)
    try:
        provider = TracerProvider(shutdown_on_exit=False)
        provider.add_span_processor(processor)
        end_spans(provider, 2, numbered=True)
        assert processor.force_flush(30_000)
        stats = processor.stats()
    finally:
        processor.shutdown()
        server.stop()
    assert balanced(stats)
    assert (stats.exported, stats.dropped_total) == (2, 0), stats
    refused = server.requests[1]  # the one answered UNAVAILABLE
    assert span_names([request for request in server.requests if request is not refused]) == {"span0": 1, "span1": 1}


def test_a_call_started_on_a_stub_of_the_channel_a_reconnect_replaced_reaches_the_backend_once() -> None:
    """The same race a step earlier: a thread that took the exporter's stub (the stock ``_export`` reads
    ``self._client.Export`` before it encodes the request) calls it after another thread's reconnect replaced its
    channel. Before: ``ValueError`` out of ``export`` (the channel closed), which no retry and no spill catches."""
    server = ScriptedServer()
    server.script = [unavailable]
    exporter = spanbatch_grpc.OTLPSpanExporter(endpoint=server.endpoint, insecure=True, timeout=5)
    try:
        taken = exporter._client  # what the other thread holds
        request = exporter.span_encoder.read(corpus())
        assert exporter.export(request).name == "SUCCESS"  # answered UNAVAILABLE once: reconnected, then sent
        assert exporter._client is not taken
        taken.Export(request.part_to_bytes(0), timeout=5)
    finally:
        exporter.shutdown()
        server.stop()
    assert len(server.requests) == 3
    assert server.requests[2] == server.requests[1]


def test_shutdown_ends_a_call_in_flight_on_a_channel_a_reconnect_replaced() -> None:
    """A call held by the backend on the channel another export's reconnect replaced (which stays open for it):
    the exporter's shutdown ends it at once, as the stock shutdown ends every call in flight; it is not sent again."""
    server = ScriptedServer()
    server.script = [held(server), unavailable]
    exporter = spanbatch_grpc.OTLPSpanExporter(endpoint=server.endpoint, insecure=True, timeout=60)
    results: list[Any] = []
    request = exporter.span_encoder.read(corpus())
    holding = threading.Thread(target=lambda: results.append(exporter.export(request)))
    try:
        holding.start()
        server.wait_for_requests(1)
        assert exporter.export(exporter.span_encoder.read(corpus())).name == "SUCCESS"  # reconnected, then sent
        exporter.shutdown()
        holding.join(20)  # well within the held call's 60 s timeout
        assert not holding.is_alive()
    finally:
        server.stop()
        holding.join(10)
    assert [result.name for result in results] == ["FAILURE"]
    assert len(server.requests) == 3


class _WrappingStub:
    """A stub around the exporter's, as a subclass may set (tests/upstream's ``_SerializingStub`` is one): it has no
    ``_channel`` of its own."""

    def __init__(self, stub: Any) -> None:
        self._stub = stub

    def Export(self, request: bytes, **kwargs: Any) -> Any:
        return self._stub.Export(request, **kwargs)


class _SlowToReconnect(spanbatch_grpc.OTLPSpanExporter):
    """Wraps its stub, and its reconnect takes a while before the stock one (new credentials fetched, say)."""

    def __init__(self, **kwargs: Any) -> None:
        self.reconnecting = threading.Event()
        self.reconnect = threading.Event()
        super().__init__(**kwargs)

    def _initialize_channel_and_stub(self) -> None:
        if self._client is not None:  # a reconnect, not the constructor's first channel
            self.reconnecting.set()
            self.reconnect.wait(10)
        super()._initialize_channel_and_stub()
        self._client = _WrappingStub(self._client)  # type: ignore[assignment]


def test_a_call_on_a_replaced_channel_waits_for_the_new_stub_of_a_subclass_that_wraps_its_stub() -> None:
    """While another export thread's reconnect is under way (its channel retired, the new one not made yet), a call
    on a stub of the old channel waits for the new stub, whatever ``_client`` a subclass made of it. Before: the
    wrapper has no ``_channel``, so the call took it as the new stub at once and called itself again and again:
    ``RecursionError``, which no stock retry and no spill catches."""
    server = ScriptedServer()
    server.script = [unavailable]
    exporter = _SlowToReconnect(endpoint=server.endpoint, insecure=True, timeout=10)
    taken = exporter._client  # what the other export thread holds
    errors: list[BaseException] = []

    def call_taken() -> None:
        try:
            taken.Export(exporter.span_encoder.read(corpus()).part_to_bytes(0), timeout=10)
        except BaseException as error:  # told by the assertion below
            errors.append(error)

    reconnecting = threading.Thread(target=lambda: exporter.export(exporter.span_encoder.read(corpus())))
    calling = threading.Thread(target=call_taken)
    try:
        reconnecting.start()
        assert exporter.reconnecting.wait(10)  # its first attempt answered UNAVAILABLE: the old channel retired
        calling.start()
        calling.join(0.5)  # the call either failed by now or waits for the new stub
        exporter.reconnect.set()
        reconnecting.join(10)
        calling.join(10)
    finally:
        exporter.reconnect.set()
        exporter.shutdown()
        server.stop()
    assert errors == []
    assert len(server.requests) == 3  # the refused attempt, its retry, the call that waited
