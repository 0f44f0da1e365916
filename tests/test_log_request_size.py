"""Log requests bounded by bytes: the log exporters share the span exporters' constructor and encoder base, so a
batch of large log records (GenAI prompts and completions as bodies) is cut into requests that fit, as spans are."""

from __future__ import annotations

import pytest

pytest.importorskip("opentelemetry.exporter.otlp.common.http", reason="needs the OTLP exporters >= 1.45")

import logging
from collections.abc import Iterator
from typing import Any

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.sdk._logs.export import LogRecordExportResult
from spanbatch import BatchLogRecordProcessor
from spanbatch._core import LogEncoder
from spanbatch.exporter import OTLPLogExporter
from spanbatch.exporter import grpc as spanbatch_grpc
from spanbatch.testing import OTLPReceiver

from tests.helpers import balanced
from tests.helpers.otlp_logs import record

MIB = 1 << 20


def log_exporter(rx: OTLPReceiver, **kwargs: Any) -> Any:
    if rx.protocol == "http":
        return OTLPLogExporter(endpoint=rx.log_endpoint, timeout=30, **kwargs)
    return spanbatch_grpc.OTLPLogExporter(endpoint=rx.log_endpoint, insecure=True, timeout=30, **kwargs)


@pytest.fixture(params=["http", "grpc"])
def limited(request: pytest.FixtureRequest) -> Iterator[OTLPReceiver]:
    """A receiver that refuses requests over 1 MiB."""
    with OTLPReceiver(request.param, max_request_bytes=MIB) as rx:
        yield rx


def test_a_log_request_over_the_limit_reads_back_in_parts() -> None:
    records = [record(f"r{i}-" + "b" * 300_000) for i in range(6)] + [record("huge-" + "h" * (2 * MIB))]
    request = LogEncoder(max_request_bytes=MIB).read(records)
    parts = [ExportLogsServiceRequest.FromString(request.part_to_bytes(i)) for i in range(request.parts)]
    assert all(len(request.part_to_bytes(i)) <= MIB for i in range(request.parts))
    scopes = [scope for part in parts for resource in part.resource_logs for scope in resource.scope_logs]
    bodies = [log.body.string_value[:3] for scope in scopes for log in scope.log_records]
    assert bodies == [f"r{i}-" for i in range(6)]
    assert [request.part_items(i) for i in range(request.parts)] == [3, 3]
    assert (len(request), request.left_out, request.too_large) == (7, 1, 1)


@pytest.mark.timeout(60)
def test_large_log_records_arrive_once_in_requests_that_fit(limited: OTLPReceiver) -> None:
    exporter = log_exporter(limited, max_export_batch_bytes=MIB)
    assert exporter.max_export_batch_bytes == MIB
    records = [record(f"big-{i}-" + "x" * 300_000) for i in range(12)]
    assert exporter.export(records) is LogRecordExportResult.SUCCESS
    exporter.shutdown()
    received = limited.stats()
    assert (received.log_records, received.rejected, received.requests) == (12, 0, 4)  # three per 1 MiB request


@pytest.mark.timeout(60)
def test_a_log_record_over_the_limit_is_dropped_and_counted(
    limited: OTLPReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    processor = BatchLogRecordProcessor(log_exporter(limited, max_export_batch_bytes=MIB), schedule_delay_millis=60_000)
    with caplog.at_level(logging.WARNING):
        for body in ["before", "h" * (2 * MIB), "after"]:
            processor.on_emit(record(body))
        assert processor.force_flush(30_000)
    stats = processor.stats()
    processor.shutdown()
    # The log processor reads records ahead into the exporter's LogRequests, which know why a record was left out.
    assert (stats.exported, stats.dropped["too_large"], stats.dropped_total) == (2, 1, 1)
    assert balanced(stats)
    assert limited.log_bodies() == {"before": 1, "after": 1}
    assert any("1 log record(s) over the" in r.getMessage() for r in caplog.records)
