"""OTLP/gRPC span exporter: the stock exporter's channel, retries and settings, Rust encoding.

Private parts of the stock exporter this relies on (checked by the tests, 1.41.1 and 1.45.2):
``OTLPExporterMixin._initialize_channel_and_stub`` (called at construction and again on
reconnect), ``_channel``, ``_client`` (whose ``Export(request=..., metadata=..., timeout=...)``
``_export`` calls) and ``_translate_data``.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Sequence
from typing import Any

import grpc
from opentelemetry.exporter.otlp.proto.grpc import exporter as _exporter
from opentelemetry.exporter.otlp.proto.grpc import trace_exporter as _stock
from opentelemetry.metrics import MeterProvider
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from opentelemetry.sdk.trace.export import SpanExportResult

from spanbatch._core import SpanEncoder
from spanbatch._encoding import Batch, encode_batch
from spanbatch._spill import Sent, SpillCounts
from spanbatch.exporter._spilling import spiller_for

_EXPORT_METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


class _EncodedTraceServiceStub:
    """A TraceService stub whose ``Export`` sends an already serialized request as is.

    It notes, per thread, the last request it sent and the code it failed with: what the
    spill stores once the stock retries give up.
    """

    def __init__(self, channel: grpc.Channel, last: threading.local) -> None:
        # No request serializer: gRPC then sends the bytes it is given.
        self._call = channel.unary_unary(
            _EXPORT_METHOD,
            request_serializer=None,
            response_deserializer=ExportTraceServiceResponse.FromString,
        )
        self._last = last

    def Export(self, request: bytes, metadata: Any = None, timeout: float | None = None) -> Any:
        self._last.request, self._last.code = request, None
        try:
            return self._call(request, metadata=metadata, timeout=timeout)
        except grpc.RpcError as error:
            self._last.code = error.code()
            raise


class OTLPSpanExporter(_stock.OTLPSpanExporter):
    """Drop-in for ``opentelemetry.exporter.otlp.proto.grpc.trace_exporter.OTLPSpanExporter``.

    Same arguments, ``OTEL_EXPORTER_OTLP_*`` / ``OTEL_EXPORTER_OTLP_TRACES_*`` variables,
    channel, compression (done by gRPC's C core), retries and results: those are the
    stock exporter's own code. Only the request is made differently, by spanbatch's
    Rust encoder. Works with any span processor.
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
        spill_dir: str | os.PathLike[str] | None = None,
        spill_max_bytes: int | None = None,
    ) -> None:
        self._encoder = SpanEncoder()
        self._last = threading.local()
        # Stock releases before 1.45 have neither of these two parameters: pass them only when given.
        extra: dict[str, Any] = {}
        if retryable_error_codes is not None:
            extra["retryable_error_codes"] = retryable_error_codes
        if meter_provider is not None:
            extra["meter_provider"] = meter_provider
        super().__init__(endpoint, insecure, credentials, headers, timeout, compression, channel_options, **extra)
        # At exit the stock backoff is cut short (its shutdown event, which nothing else reads), so a
        # failing request reaches the disk before the exit deadline.
        self._spiller = spiller_for(
            spill_dir,
            spill_max_bytes,
            protocol="grpc",
            endpoint=self._endpoint,
            send_once=self._send_spilled,
            cut_retries=self._shutdown_in_progress.set,
        )

    @property
    def span_encoder(self) -> SpanEncoder:
        """The Rust encoder, with its ``skipped_values`` / ``skipped_spans`` counters.

        spanbatch's processors read each batch with it while the batch fills, and export the
        ``SpanRequest`` it made.
        """
        return self._encoder

    def _initialize_channel_and_stub(self) -> None:
        # Called by the stock constructor and again when it reconnects after UNAVAILABLE.
        super()._initialize_channel_and_stub()  # type: ignore[no-untyped-call]
        self._client = _EncodedTraceServiceStub(self._channel, self._last)  # type: ignore[assignment]

    def _translate_data(self, data: Batch) -> bytes:  # type: ignore[override]
        return encode_batch(self._encoder, data)

    def _export(self, data: Batch) -> SpanExportResult:
        spiller = self._spiller
        if spiller is None or self._shutdown:
            return super()._export(data)  # type: ignore[arg-type]
        if spiller.down:  # behind what waits on disk, without a try the backend is known to refuse
            return self._spill(self._translate_data(data))
        self._last.request = self._last.code = None
        result: SpanExportResult = super()._export(data)  # type: ignore[arg-type]
        request, code = self._last.request, self._last.code
        # Only what a later attempt could deliver: a request the backend refused for good stays refused.
        if result is SpanExportResult.SUCCESS or request is None or code not in self._retryable_codes():
            return result
        return self._spill(request)

    def _retryable_codes(self) -> Iterable[grpc.StatusCode]:
        # The stock set is configurable from 1.45 on; before, it is the module's constant.
        codes: Iterable[grpc.StatusCode] | str | None = getattr(self, "_retryable_error_codes", None)
        if codes is None or isinstance(codes, str):
            codes = getattr(_exporter, "_RETRYABLE_ERROR_CODES", (grpc.StatusCode.UNAVAILABLE,))
        return codes or ()

    def _spill(self, request: bytes) -> SpanExportResult:
        assert self._spiller is not None
        return SpanExportResult.SUCCESS if self._spiller.spill(request) else SpanExportResult.FAILURE

    def _send_spilled(self, payload: bytes) -> Sent:
        """One attempt at a stored request, from the replay thread (a gRPC channel takes calls from any thread)."""
        stub = self._client
        try:
            if stub is None:
                return Sent.RETRY_LATER
            stub.Export(request=payload, metadata=self._headers, timeout=self._timeout)
        except grpc.RpcError as error:
            if error.code() in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.UNIMPLEMENTED):
                return Sent.REJECTED
            return Sent.RETRY_LATER
        except Exception:
            return Sent.RETRY_LATER
        return Sent.DELIVERED

    def take_spilled_spans(self) -> int:
        """Spans this thread's exports stored on disk since it last asked; spanbatch's processors count them."""
        return 0 if self._spiller is None else self._spiller.take_spilled_spans()

    def spill_counts(self) -> SpillCounts | None:
        """What the spill directory did in this process (None: no spill directory)."""
        return None if self._spiller is None else self._spiller.counts()

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        if self._spiller is not None:
            self._spiller.stop()
        super().shutdown(timeout_millis, **kwargs)
