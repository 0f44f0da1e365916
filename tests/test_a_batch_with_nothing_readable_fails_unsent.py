"""A batch none of whose items the Rust encoder could read is not sent, and its export fails, as the stock
exporters' export fails when their encoder raises: nothing reached the backend. (An empty batch is still sent,
as stock sends it: an empty request, accepted.)"""

from __future__ import annotations

import pytest

pytest.importorskip("opentelemetry.exporter.otlp.common.http", reason="needs the OTLP exporters >= 1.45")

from typing import Any

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SpanExportResult
from spanbatch import BatchSpanProcessor
from spanbatch.exporter import OTLPSpanExporter
from spanbatch.exporter import grpc as spanbatch_grpc
from spanbatch.testing import OTLPReceiver

from tests.helpers import LONG, balanced


def exporter_for(receiver: OTLPReceiver) -> Any:
    if receiver.protocol == "http":
        return OTLPSpanExporter(endpoint=receiver.endpoint, timeout=10)
    return spanbatch_grpc.OTLPSpanExporter(endpoint=receiver.endpoint, insecure=True, timeout=10)


class _Unreadable(ReadableSpan):
    @property
    def name(self) -> str:
        raise RuntimeError("this span cannot be read")


def unreadable_spans(count: int) -> list[ReadableSpan]:
    span = TracerProvider().get_tracer("t").start_span("readable")
    span.end()
    return [_Unreadable(name="x", context=span.context) for _ in range(count)]


@pytest.mark.timeout(60)
def test_a_batch_of_unreadable_spans_fails_and_sends_no_request(receiver: OTLPReceiver) -> None:
    exporter = exporter_for(receiver)
    try:
        assert exporter.export(unreadable_spans(3)) is SpanExportResult.FAILURE
    finally:
        exporter.shutdown()
    assert receiver.stats().requests == 0


@pytest.mark.timeout(60)
def test_an_empty_batch_is_sent_as_an_empty_request_as_stock_sends_it(receiver: OTLPReceiver) -> None:
    exporter = exporter_for(receiver)
    try:
        assert exporter.export([]) is SpanExportResult.SUCCESS
    finally:
        exporter.shutdown()
    assert receiver.stats().requests == 1


@pytest.mark.timeout(60)
def test_behind_the_processor_they_are_counted_unencodable_once(receiver: OTLPReceiver) -> None:
    processor = BatchSpanProcessor(exporter_for(receiver), schedule_delay_millis=LONG)
    try:
        for span in unreadable_spans(3):
            processor.on_end(span)
        assert processor.force_flush(30_000)
        stats = processor.stats()
    finally:
        processor.shutdown()
    assert (stats.exported, stats.dropped["unencodable"], stats.dropped_total) == (0, 3, 3)
    assert balanced(stats)
    assert receiver.stats().requests == 0
