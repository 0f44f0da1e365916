"""A gRPC channel's own send limit, ``("grpc.max_send_message_length", N)`` in ``channel_options``.

The channel refuses a message over N before it leaves the process (RESOURCE_EXHAUSTED, which the stock
exporter retries until its timeout): the batch is lost. spanbatch's gRPC exporter cuts its requests to a
byte limit, so it takes the smaller of ``max_export_batch_bytes`` and N, and every span arrives.
"""

from __future__ import annotations

import pytest

pytest.importorskip("opentelemetry.exporter.otlp.common.http", reason="needs the OTLP exporters >= 1.45")

from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as StockGrpcExporter
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter
from spanbatch import BatchSpanProcessor
from spanbatch.exporter import grpc as spanbatch_grpc

from tests.helpers import balanced, provider_with
from tests.helpers.receivers import GrpcRecorder

KIB = 1 << 10
LIMIT = 256 * KIB  # the channel's send limit: far below the server's 4 MiB
SPANS = 12  # of 64 KiB each: one request of about 770 KiB, three times the limit


def channel_limited(limit: object = LIMIT) -> tuple[tuple[str, object], ...]:
    return (("grpc.max_send_message_length", limit),)


def end_spans(provider: TracerProvider, count: int = SPANS) -> None:
    tracer = provider.get_tracer("agent")
    for i in range(count):
        with tracer.start_as_current_span(f"llm-{i}") as span:
            span.set_attribute("gen_ai.prompt", "x" * (64 * KIB))


def deliver(exporter: SpanExporter) -> BatchSpanProcessor:
    bsp = BatchSpanProcessor(exporter, schedule_delay_millis=60_000)
    end_spans(provider_with(bsp))
    bsp.force_flush(30_000)
    return bsp


@pytest.mark.timeout(60)
def test_every_span_arrives_in_requests_under_the_channel_limit(grpc_recorder: GrpcRecorder) -> None:
    exporter = spanbatch_grpc.OTLPSpanExporter(
        endpoint=grpc_recorder.endpoint, insecure=True, timeout=10, channel_options=channel_limited()
    )
    bsp = deliver(exporter)
    stats = bsp.stats()
    bsp.shutdown()
    sizes = [request.ByteSize() for request in grpc_recorder.decoded()]
    assert balanced(stats)
    assert (stats.exported, stats.dropped_total) == (SPANS, 0)
    assert grpc_recorder.span_count() == SPANS
    assert len(sizes) >= 3, sizes
    assert max(sizes) <= LIMIT, sizes
    assert exporter.max_export_batch_bytes == LIMIT


@pytest.mark.timeout(60)
def test_the_stock_exporter_loses_the_batch_to_the_channel_limit(grpc_recorder: GrpcRecorder) -> None:
    # The stock behaviour this improves on: the channel refuses the one request, retried until the timeout.
    bsp = deliver(
        StockGrpcExporter(endpoint=grpc_recorder.endpoint, insecure=True, timeout=2, channel_options=channel_limited())
    )
    stats = bsp.stats()
    bsp.shutdown()
    assert (stats.exported, stats.dropped["export_failed"]) == (0, SPANS)
    assert grpc_recorder.span_count() == 0


@pytest.mark.parametrize(
    ("options", "argument", "expected"),
    [
        (channel_limited(), 128 * KIB, 128 * KIB),  # the smaller of the two: the argument
        (channel_limited(8 << 20), None, 4 << 20),  # a channel limit over the default changes nothing
        (channel_limited(-1), None, 4 << 20),  # -1: no channel limit
        (channel_limited(0), None, 4 << 20),  # 0: gRPC refuses every request, as it does the stock exporter's
        (channel_limited("262144"), None, 4 << 20),  # not an integer: gRPC ignores it, so does spanbatch
        # Given twice: the smaller, whichever of the two gRPC takes (the first, in grpcio 1.85).
        ((("grpc.max_send_message_length", 512 * KIB), *channel_limited()), None, LIMIT),
        ((("grpc.max_receive_message_length", 1024),), None, 4 << 20),  # another option
    ],
)
def test_the_limit_is_the_smaller_of_the_argument_and_the_channel_option(
    options: tuple[tuple[str, object], ...], argument: int | None, expected: int
) -> None:
    exporter = spanbatch_grpc.OTLPSpanExporter(
        endpoint="127.0.0.1:1", insecure=True, channel_options=options, max_export_batch_bytes=argument
    )
    try:
        assert exporter.max_export_batch_bytes == expected
    finally:
        exporter.shutdown()


def test_the_variable_is_bounded_by_the_channel_limit_too(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPANBATCH_MAX_EXPORT_BATCH_BYTES", str(1 << 20))
    exporter = spanbatch_grpc.OTLPSpanExporter(endpoint="127.0.0.1:1", insecure=True, channel_options=channel_limited())
    try:
        assert exporter.max_export_batch_bytes == LIMIT
    finally:
        exporter.shutdown()
