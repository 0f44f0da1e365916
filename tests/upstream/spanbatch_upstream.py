"""A pytest plugin that runs OpenTelemetry's own tests against spanbatch's classes.

Loaded with ``-p spanbatch_upstream`` by the nox session ``upstream``, which runs the tests of the
opentelemetry-sdk and OTLP exporter sdists from PyPI. At configure time, before any test module
is imported, it puts spanbatch's classes where those tests import the stock ones from:

- ``opentelemetry.sdk.trace.export.BatchSpanProcessor`` -> :class:`UpstreamBatchSpanProcessor`;
- ``opentelemetry.sdk._logs.export.BatchLogRecordProcessor`` -> :class:`UpstreamBatchLogRecordProcessor`;
- ``opentelemetry.exporter.otlp.proto.http.trace_exporter.OTLPSpanExporter`` -> spanbatch's, on the stock
  requests transport (the tests answer through mocket, which patches Python's sockets);
- ``opentelemetry.exporter.otlp.proto.grpc.trace_exporter.OTLPSpanExporter`` -> :class:`UpstreamGrpcSpanExporter`,
  which is also the span exporter of the gRPC mixin tests (in place of their ``OTLPSpanExporterForTesting``);
- the log exporters of both (``..._log_exporter.OTLPLogExporter``) -> spanbatch's HTTP one and
  :class:`UpstreamGrpcLogExporter`.

The adapters add only what the upstream tests read of the stock classes' private state, each
mapped to spanbatch's public API (see their docstrings). Tests that cannot apply to spanbatch are
deselected by the nox session, each listed with its reason in the README.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
import spanbatch
from opentelemetry.exporter.otlp.proto.grpc import _log_exporter as grpc_stock_logs
from opentelemetry.exporter.otlp.proto.grpc import trace_exporter as grpc_stock
from opentelemetry.exporter.otlp.proto.http import _log_exporter as http_stock_logs
from opentelemetry.exporter.otlp.proto.http import trace_exporter as http_stock
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk._logs import export as stock_log_export
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace import export as stock_export
from opentelemetry.trace import SpanContext, TraceFlags
from spanbatch.exporter import _http, _http_logs
from spanbatch.exporter import grpc as spanbatch_grpc

# Stock's BatchProcessor.emit sits below the sampled check of BatchSpanProcessor.on_end, and the
# upstream tests emit spans without any context; such a span gets this one (see ``emit``).
_SAMPLED = SpanContext(trace_id=1, span_id=1, is_remote=False, trace_flags=TraceFlags(TraceFlags.SAMPLED))


class _StockBatchProcessorView:
    """What the upstream tests read of a stock processor's ``_batch_processor`` (a ``BatchProcessor``), for either
    signal: ``shutdown(timeout_millis)`` is ``shutdown(timeout_millis)``; ``_shutdown`` is
    ``lanes[0].core.is_shutdown``; ``_worker_thread`` is ``lanes[0].worker``; the ``_max_queue_size`` /
    ``_max_export_batch_size`` / ``_export_timeout_millis`` attributes are the resolved ``settings``.
    """

    def __init__(self, processor: spanbatch.BatchSpanProcessor | spanbatch.BatchLogRecordProcessor) -> None:
        self._processor = processor

    def shutdown(self, timeout_millis: float = 30000) -> None:
        self._processor.shutdown(timeout_millis)

    @property
    def _shutdown(self) -> bool:
        return self._processor.lanes[0].core.is_shutdown

    @property
    def _worker_thread(self) -> Any:
        return self._processor.lanes[0].worker

    @property
    def _max_queue_size(self) -> int:
        return self._processor.settings.max_queue_size

    @property
    def _max_export_batch_size(self) -> int:
        return self._processor.settings.max_export_batch_size

    @property
    def _export_timeout_millis(self) -> float:
        return self._processor.settings.export_timeout_millis


class _BatchProcessorView(_StockBatchProcessorView):
    """The stock ``BatchSpanProcessor._batch_processor``: ``emit(span)`` is ``on_end(span)`` (stock's emit
    skips the sampled check; a span without a context is given a sampled one first), and
    ``_schedule_delay_millis`` is the resolved setting."""

    def emit(self, span: ReadableSpan) -> None:
        if span.context is None:
            span._context = _SAMPLED
        self._processor.lanes[0].core.on_end(span)

    @property
    def _schedule_delay_millis(self) -> float:
        return self._processor.settings.schedule_delay_millis


class UpstreamBatchSpanProcessor(spanbatch.BatchSpanProcessor):
    """spanbatch's processor plus ``_batch_processor`` (see :class:`_BatchProcessorView`)."""

    @property
    def _batch_processor(self) -> _BatchProcessorView:
        # Made on each read: holding one would tie the processor into a reference cycle.
        return _BatchProcessorView(self)


class _LogBatchProcessorView(_StockBatchProcessorView):
    """The stock ``BatchLogRecordProcessor._batch_processor``: ``emit(record)`` is the lane core's
    ``on_emit(record)`` (stock's emit queues the record as given, below ``on_emit``'s conversion: the tests
    check the exporter gets that very object); ``_exporter`` is ``exporter``; ``_schedule_delay`` is the
    resolved setting in seconds."""

    def emit(self, record: Any) -> None:
        self._processor.lanes[0].core.on_emit(record)

    @property
    def _exporter(self) -> Any:
        return self._processor.lanes[0].exporter

    @property
    def _schedule_delay(self) -> float:
        return self._processor.settings.schedule_delay_millis / 1000


class UpstreamBatchLogRecordProcessor(spanbatch.BatchLogRecordProcessor):
    """spanbatch's log processor plus ``_batch_processor`` (see :class:`_LogBatchProcessorView`)."""

    @property
    def _batch_processor(self) -> _LogBatchProcessorView:
        # Made on each read, as for spans: no reference cycle.
        return _LogBatchProcessorView(self)


class _SerializingStub:
    """Sends a request message as its bytes; bytes (spanbatch's own requests) as they are."""

    def __init__(self, stub: Any) -> None:
        self._stub = stub

    def Export(self, request: Any, **kwargs: Any) -> Any:
        data = request if isinstance(request, bytes) else request.SerializeToString()
        return self._stub.Export(request=data, **kwargs)


class UpstreamGrpcSpanExporter(spanbatch_grpc.OTLPSpanExporter):
    """spanbatch's gRPC exporter, whose ``_translate_data`` returns the request as a message.

    The upstream tests read the stock ``_translate_data``'s ``ExportTraceServiceRequest``;
    spanbatch's returns the Rust encoder's serialized bytes, so this decodes them (and its
    stub serializes the message again to send it).
    """

    def _initialize_channel_and_stub(self) -> None:
        super()._initialize_channel_and_stub()
        self._client = _SerializingStub(self._client)  # type: ignore[assignment]

    def _translate_data(self, data: Sequence[ReadableSpan]) -> Any:  # type: ignore[override]
        return ExportTraceServiceRequest.FromString(super()._translate_data(data))


class UpstreamGrpcLogExporter(spanbatch_grpc.OTLPLogExporter):
    """spanbatch's gRPC log exporter, whose ``_translate_data`` returns the request as a message (as for spans)."""

    def _initialize_channel_and_stub(self) -> None:
        super()._initialize_channel_and_stub()
        self._client = _SerializingStub(self._client)  # type: ignore[assignment]

    def _translate_data(self, data: Sequence[Any]) -> Any:  # type: ignore[override]
        return ExportLogsServiceRequest.FromString(super()._translate_data(data))


def pytest_configure(config: pytest.Config) -> None:
    stock_export.BatchSpanProcessor = UpstreamBatchSpanProcessor  # type: ignore[misc]
    stock_log_export.BatchLogRecordProcessor = UpstreamBatchLogRecordProcessor  # type: ignore[misc]
    http_stock.OTLPSpanExporter = _http.OTLPSpanExporter  # type: ignore[misc]
    # The HTTP tests answer through mocket, which patches Python's sockets: keep the stock requests
    # transport the exporter's constructor built. The Rust transport is tested against real
    # loopback receivers in spanbatch's own suite (see the README, "Upstream's own tests").
    _http.native_transport_for = lambda exporter, session: None
    grpc_stock.OTLPSpanExporter = UpstreamGrpcSpanExporter  # type: ignore[misc]
    http_stock_logs.OTLPLogExporter = _http_logs.OTLPLogExporter  # type: ignore[misc]
    grpc_stock_logs.OTLPLogExporter = UpstreamGrpcLogExporter  # type: ignore[misc]


@pytest.fixture(autouse=True)
def _spanbatch_exporter_in_mixin_tests(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """The gRPC mixin tests build their own span exporter on the stock mixin: give them spanbatch's."""
    module = getattr(request.node, "module", None)
    if module is not None and hasattr(module, "OTLPSpanExporterForTesting"):
        monkeypatch.setattr(module, "OTLPSpanExporterForTesting", UpstreamGrpcSpanExporter)
