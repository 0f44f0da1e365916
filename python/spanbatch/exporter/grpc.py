"""OTLP/gRPC span exporter: the stock exporter's channel, retries and settings, Rust encoding.

Private parts of the stock exporter this relies on (checked by the tests, 1.41.1 and 1.45.2):
``OTLPExporterMixin._initialize_channel_and_stub`` (called at construction and again on
reconnect), ``_channel``, ``_client`` (whose ``Export(request=..., metadata=..., timeout=...)``
``_export`` calls) and ``_translate_data``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import grpc
from opentelemetry.exporter.otlp.proto.grpc import trace_exporter as _stock
from opentelemetry.metrics import MeterProvider
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from opentelemetry.sdk.trace.export import SpanExportResult

from spanbatch._core import SpanEncoder, SpanRequest
from spanbatch._encoding import Batch, encode_batch, read_batch
from spanbatch.exporter import _limits

_EXPORT_METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


class _EncodedTraceServiceStub:
    """A TraceService stub whose ``Export`` sends an already serialized request as is."""

    def __init__(self, channel: grpc.Channel) -> None:
        # No request serializer: gRPC then sends the bytes it is given.
        self.Export = channel.unary_unary(
            _EXPORT_METHOD,
            request_serializer=None,
            response_deserializer=ExportTraceServiceResponse.FromString,
        )


@dataclass(frozen=True)
class _Part:
    """One part of a request cut to the byte limit: what the stock ``_export`` sends, with its retries."""

    request: SpanRequest
    index: int

    def __len__(self) -> int:  # the stock exporter's metrics count the spans of what it sends
        return self.request.part_spans(self.index)


class OTLPSpanExporter(_stock.OTLPSpanExporter):
    """Drop-in for ``opentelemetry.exporter.otlp.proto.grpc.trace_exporter.OTLPSpanExporter``.

    Same arguments, ``OTEL_EXPORTER_OTLP_*`` / ``OTEL_EXPORTER_OTLP_TRACES_*`` variables,
    channel, compression (done by gRPC's C core), retries and results: those are the
    stock exporter's own code. Only the request is made differently, by spanbatch's
    Rust encoder. Works with any span processor.

    ``max_export_batch_bytes`` (keyword; ``SPANBATCH_MAX_EXPORT_BATCH_BYTES``; default 4 MiB,
    gRPC's default max message size): a batch whose request would be larger is sent as several
    requests that each fit, each sent once (with the stock retries); a span larger on its own
    is left out (warned about; spanbatch's processors count it as ``too_large``). The stock
    exporter sends the batch whole, and the server refuses it.
    """

    def __init__(  # noqa: PLR0917 -- the stock exporter's positional parameters, for a drop-in
        self,
        endpoint: str | None = None,
        insecure: bool | None = None,
        credentials: grpc.ChannelCredentials | None = None,
        headers: Sequence[tuple[str, str]] | dict[str, str] | str | None = None,
        timeout: float | None = None,
        compression: grpc.Compression | None = None,
        channel_options: tuple[tuple[str, str]] | None = None,
        retryable_error_codes: Iterable[grpc.StatusCode] | None = None,
        *,
        meter_provider: MeterProvider | None = None,
        max_export_batch_bytes: int | None = None,
    ) -> None:
        limit = _limits.max_export_batch_bytes(_limits.checked(max_export_batch_bytes), _limits.GRPC_DEFAULT_BYTES)
        self._encoder = SpanEncoder(limit)
        # Stock releases before 1.45 have neither of these two parameters: pass them only when given.
        extra: dict[str, Any] = {}
        if retryable_error_codes is not None:
            extra["retryable_error_codes"] = retryable_error_codes
        if meter_provider is not None:
            extra["meter_provider"] = meter_provider
        super().__init__(endpoint, insecure, credentials, headers, timeout, compression, channel_options, **extra)

    @property
    def span_encoder(self) -> SpanEncoder:
        """The Rust encoder, with its ``skipped_values`` / ``skipped_spans`` counters.

        spanbatch's processors read each batch with it while the batch fills, and export the
        ``SpanRequest`` it made.
        """
        return self._encoder

    @property
    def max_export_batch_bytes(self) -> int | None:
        """No request this exporter sends is larger, serialized before compression."""
        return self._encoder.max_request_bytes

    def export(self, spans: Batch) -> SpanExportResult:
        """The stock ``export`` (``_export``, with its retries) for each part the backend has not accepted yet."""
        request = read_batch(self._encoder, spans)
        if not request.parts:  # every span over the limit (warned about): nothing delivered
            return SpanExportResult.FAILURE
        for index in request.pending_parts():
            result = self._export(_Part(request, index))  # type: ignore[arg-type]
            if result is not SpanExportResult.SUCCESS:
                return result
            request.accept(index)
        return SpanExportResult.SUCCESS

    def _initialize_channel_and_stub(self) -> None:
        # Called by the stock constructor and again when it reconnects after UNAVAILABLE.
        super()._initialize_channel_and_stub()  # type: ignore[no-untyped-call]
        self._client = _EncodedTraceServiceStub(self._channel)  # type: ignore[assignment]

    def _translate_data(self, data: Batch | _Part) -> bytes:  # type: ignore[override]
        if isinstance(data, _Part):
            return data.request.part_to_bytes(data.index)
        return encode_batch(self._encoder, data)
