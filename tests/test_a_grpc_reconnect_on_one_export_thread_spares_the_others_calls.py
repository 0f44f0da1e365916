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
