"""OTLP/gRPC span and log exporters: the stock exporters' channel, retries and settings, Rust encoding.

Private parts of the stock exporters this relies on (checked by the tests, 1.41.1 and 1.45.2):
``OTLPExporterMixin._initialize_channel_and_stub`` (called at construction and again on
reconnect), ``_channel``, ``_client`` (whose ``Export(request=..., metadata=..., timeout=...)``
``_export`` calls, once per part), ``_result`` and ``_translate_data``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import grpc
from opentelemetry.exporter.otlp.proto.grpc import _log_exporter as _stock_logs
from opentelemetry.exporter.otlp.proto.grpc import trace_exporter as _stock
from opentelemetry.metrics import MeterProvider
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from spanbatch._core import LogEncoder, LogRequest, SpanEncoder, SpanRequest
from spanbatch._encoding import Batch, encode_batch, read_batch
from spanbatch.exporter import _limits
from spanbatch.exporter._declared import DeclaredEncoder

if TYPE_CHECKING:
    from spanbatch._encoding import LogBatch

__all__ = ["OTLPLogExporter", "OTLPSpanExporter"]

_EXPORT_METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
_EXPORT_LOGS_METHOD = "/opentelemetry.proto.collector.logs.v1.LogsService/Export"


class _EncodedServiceStub:
    """A TraceService or LogsService stub whose ``Export`` sends an already serialized request as is."""

    def __init__(self, channel: grpc.Channel, method: str, response: type[Any]) -> None:
        # No request serializer: gRPC then sends the bytes it is given.
        self.Export = channel.unary_unary(
            method,
            request_serializer=None,
            response_deserializer=response.FromString,
        )


@dataclass(frozen=True)
class _Part:
    """One part of a request cut to the byte limit: what the stock ``_export`` sends, with its retries."""

    request: SpanRequest | LogRequest
    index: int

    def __len__(self) -> int:  # the stock exporter's metrics count the items of what it sends
        return self.request.part_items(self.index)


def _newer_parameters(
    retryable_error_codes: Iterable[grpc.StatusCode] | None, meter_provider: MeterProvider | None
) -> dict[str, Any]:
    """Stock releases before 1.45 have neither of these two parameters: passed on only when given."""
    extra: dict[str, Any] = {}
    if retryable_error_codes is not None:
        extra["retryable_error_codes"] = retryable_error_codes
    if meter_provider is not None:
        extra["meter_provider"] = meter_provider
    return extra


class RustEncodedGRPC:
    """What spanbatch's OTLP/gRPC exporters add to a stock exporter (a base listed before it): requests
    encoded by the Rust encoder, sent as they are by the stock exporter's channel.

    ``max_export_batch_bytes`` (keyword; ``SPANBATCH_MAX_EXPORT_BATCH_BYTES``; default 4 MiB,
    gRPC's default max message size): a batch whose request would be larger is sent as several
    requests that each fit, each sent once (with the stock retries); an item (span or log record)
    larger on its own is left out (warned about; spanbatch's processors count it as ``too_large``).
    The stock exporter sends the batch whole, and the server refuses it.
    """

    # What each subclass names: its encoder, and the service method and response its requests go to.
    _encoder_class: ClassVar[type[SpanEncoder | LogEncoder]]
    _method: ClassVar[str]
    _response: ClassVar[type[Any]]
    # The stock exporter's own attributes.
    _channel: grpc.Channel
    _result: Any  # its result enum

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
        self._encoder = self._encoder_class(limit)
        extra = _newer_parameters(retryable_error_codes, meter_provider)
        super().__init__(  # type: ignore[call-arg]  # the stock exporter's, next in the MRO
            endpoint, insecure, credentials, headers, timeout, compression, channel_options, **extra
        )

    @property
    def max_export_batch_bytes(self) -> int | None:
        """No request this exporter sends is larger, serialized before compression."""
        return self._encoder.max_request_bytes

    def export(self, batch: Batch | LogBatch) -> Any:
        """The stock ``export`` (``_export``, with its retries) for each part the backend has not accepted yet."""
        request = read_batch(self._encoder, batch)  # type: ignore[arg-type]
        if not request.parts:  # every item over the limit (warned about): nothing delivered
            return self._result.FAILURE
        for index in request.pending_parts():
            result = self._export(_Part(request, index))  # type: ignore[attr-defined]
            if result is not self._result.SUCCESS:
                return result
            request.accept(index)
        return self._result.SUCCESS

    def _initialize_channel_and_stub(self) -> None:
        # Called by the stock constructor and again when it reconnects after UNAVAILABLE.
        super()._initialize_channel_and_stub()  # type: ignore[misc]
        self._client = _EncodedServiceStub(self._channel, self._method, self._response)

    def _translate_data(self, data: Batch | LogBatch | _Part) -> bytes:
        if isinstance(data, _Part):
            return data.request.part_to_bytes(data.index)
        return encode_batch(self._encoder, data)  # type: ignore[arg-type]


# The stock ``_client`` and ``_translate_data`` are replaced on purpose: bytes in, the same response out.
class OTLPSpanExporter(RustEncodedGRPC, _stock.OTLPSpanExporter):  # type: ignore[misc]
    """Drop-in for ``opentelemetry.exporter.otlp.proto.grpc.trace_exporter.OTLPSpanExporter``.

    Same arguments, ``OTEL_EXPORTER_OTLP_*`` / ``OTEL_EXPORTER_OTLP_TRACES_*`` variables,
    channel, compression (done by gRPC's C core), retries and results: those are the
    stock exporter's own code. Only the request is made differently, by spanbatch's
    Rust encoder. Works with any span processor.
    """

    _encoder_class = SpanEncoder
    _method = _EXPORT_METHOD
    _response = ExportTraceServiceResponse

    span_encoder = DeclaredEncoder(SpanEncoder)


class OTLPLogExporter(RustEncodedGRPC, _stock_logs.OTLPLogExporter):  # type: ignore[misc]
    """Drop-in for ``opentelemetry.exporter.otlp.proto.grpc._log_exporter.OTLPLogExporter``.

    Same arguments, ``OTEL_EXPORTER_OTLP_*`` / ``OTEL_EXPORTER_OTLP_LOGS_*`` variables,
    channel, compression (done by gRPC's C core), retries and results: those are the
    stock exporter's own code. Only the request is made differently, by spanbatch's
    Rust encoder. Works with any log record processor.
    """

    _encoder_class = LogEncoder
    _method = _EXPORT_LOGS_METHOD
    _response = ExportLogsServiceResponse

    log_encoder = DeclaredEncoder(LogEncoder)
