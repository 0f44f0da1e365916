"""OTLP/HTTP (protobuf) span exporter: the stock exporter's transport, retries and settings, Rust encoding.

Private parts of the stock exporter this relies on (checked by the tests, 1.45.2):
``_OTLPHTTPClient`` and its ``_compress(bytes) -> bytes`` / ``_compression`` / ``_endpoint`` /
``_headers`` / ``_timeout`` / ``_transport``, the transport classes in
``opentelemetry.exporter.http.transport``, the exporter's ``_client``, ``_endpoint``,
``_metrics.export_operation``, ``_max_request_size`` and ``_shutdown``, and
``_common._is_request_too_large`` / ``RequestPayloadTooLargeError``.
"""

from __future__ import annotations

import copy
import logging
import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

try:
    from opentelemetry.exporter.otlp.common import http as _http
    from opentelemetry.exporter.otlp.proto.http import Compression
    from opentelemetry.exporter.otlp.proto.http import trace_exporter as _stock
    from opentelemetry.exporter.otlp.proto.http._common import RequestPayloadTooLargeError, _is_request_too_large
except ImportError as error:  # the stock exporter before 1.45 has another shape, without these hooks
    raise ImportError(
        "spanbatch.exporter.OTLPSpanExporter needs opentelemetry-exporter-otlp-proto-http>=1.45.2 "
        "(Python >= 3.10): pip install 'spanbatch[otlp-http]'"
    ) from error
from opentelemetry.exporter.http.transport._base import BaseHTTPTransport
from opentelemetry.exporter.http.transport._requests import RequestsHTTPTransport
from opentelemetry.exporter.otlp.common._exporter_metrics import NoOpExporterMetrics
from opentelemetry.metrics import MeterProvider
from opentelemetry.sdk.trace.export import SpanExportResult
from opentelemetry.semconv.attributes.http_attributes import HTTP_RESPONSE_STATUS_CODE

from spanbatch import _settings
from spanbatch._core import SpanEncoder, SpanRequest, compress
from spanbatch._encoding import Batch, encode_batch, read_batch
from spanbatch._spill import Sent, SpillCounts
from spanbatch.exporter._spilling import Spiller, spiller_for
from spanbatch.exporter._transport import NativeHTTPResult, NativeHTTPTransport, NotSentError

if TYPE_CHECKING:
    import requests
    from opentelemetry.exporter.http.transport._base import BaseHTTPTransport

# The stock exporter's logger: the lines below are its lines, for the same events.
logger = logging.getLogger(_stock.__name__)


class _RustCompressingClient(_http._OTLPHTTPClient):
    """The stock HTTP client, compressing request bodies in Rust without holding the GIL.

    With a spill directory, a request that still fails after the client's retries (or that
    comes while its backend is known to be down) is stored on disk and reported as sent.
    """

    _spiller: Spiller | None = None

    def _compress(self, serialized_data: bytes) -> bytes:
        if self._compression is _http.Compression.NONE:
            return serialized_data
        return compress(serialized_data, self._compression.value)

    def export(self, data: bytes) -> _http._ExportResult:
        spiller = self._spiller
        if spiller is None:
            return super().export(data)
        if not spiller.down:
            result = super().export(data)
            # Only what a later attempt could deliver: a request the backend refused (a 400) stays refused.
            if result.success or (result.status_code is not None and not _http._is_retryable(result.status_code)):
                return result
        if spiller.spill(data):
            return _http._ExportResult(True, None, "spilled", None)
        return _http._ExportResult(False, None, "spill failed", None)


class OTLPSpanExporter(_stock.OTLPSpanExporter):
    """Drop-in for ``opentelemetry.exporter.otlp.proto.http.trace_exporter.OTLPSpanExporter``.

    Same arguments, ``OTEL_EXPORTER_OTLP_*`` / ``OTEL_EXPORTER_OTLP_TRACES_*`` variables,
    compression choices, retries (429/502/503/504 and connection errors, with backoff)
    and results: those are the stock exporter's own code. Only the request body is
    made differently, by spanbatch's Rust encoder, and gzip/deflate run in Rust too.
    Works with any span processor.
    """

    def __init__(  # noqa: PLR0917 -- the stock exporter's positional parameters, for a drop-in
        self,
        endpoint: str | None = None,
        certificate_file: str | None = None,
        client_key_file: str | None = None,
        client_certificate_file: str | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
        compression: Compression | _http.Compression | None = None,
        session: requests.Session | None = None,
        *,
        max_request_size: int | None = None,
        meter_provider: MeterProvider | None = None,
        spill_dir: str | os.PathLike[str] | None = None,
        spill_max_bytes: int | None = None,
        _transport: BaseHTTPTransport | None = None,
    ) -> None:
        # Passed on only when given: the stock overloads take ``_transport`` without certificate files.
        given: dict[str, Any] = {} if _transport is None else {"_transport": _transport}
        super().__init__(
            endpoint,
            certificate_file,
            client_key_file,
            client_certificate_file,
            headers,
            timeout,
            compression,
            session,
            max_request_size=max_request_size,
            meter_provider=meter_provider,
            **given,
        )
        self._encoder = SpanEncoder()
        # Same object, same settings; only ``_compress`` changes (see _RustCompressingClient).
        if type(self._client) is _http._OTLPHTTPClient:
            self._client.__class__ = _RustCompressingClient
        # A transport the caller gave is theirs to keep: requests go through it, not from Rust.
        self._native = None if _transport is not None else native_transport_for(self, session)
        self._replay_transport: BaseHTTPTransport | None = None  # the replay thread's, made when first needed
        self._spiller = spiller_for(
            spill_dir,
            spill_max_bytes,
            protocol="http",
            endpoint=self._endpoint,
            send_once=self._send_spilled,
            cut_retries=self._client._shutdown_event.set,
        )
        if isinstance(self._client, _RustCompressingClient):
            self._client._spiller = self._spiller

    def _send_spilled(self, payload: bytes) -> Sent:
        """One attempt at a stored request, from the replay thread: its own native transport, else the stock one."""
        client = self._client
        transport = client._transport
        if self._native is not None:
            if self._replay_transport is None:
                self._replay_transport = NativeHTTPTransport()
            transport = self._replay_transport
        try:
            body = client._compress(payload)
            result = transport.request(
                "POST", client._endpoint, headers=client._headers, data=body, timeout=client._timeout
            )
        except Exception:
            return Sent.RETRY_LATER
        status = result.status_code
        if status is not None and 200 <= status < 400:
            return Sent.DELIVERED
        if status is not None and not _http._is_retryable(status) and status < 500:
            return Sent.REJECTED
        return Sent.RETRY_LATER

    def take_spilled_spans(self) -> int:
        """Spans this thread's exports stored on disk since it last asked; spanbatch's processors count them."""
        return 0 if self._spiller is None else self._spiller.take_spilled_spans()

    def spill_counts(self) -> SpillCounts | None:
        """What the spill directory did in this process (None: no spill directory)."""
        return None if self._spiller is None else self._spiller.counts()

    def shutdown(self) -> None:
        if self._spiller is not None:
            self._spiller.stop()
        super().shutdown()  # type: ignore[no-untyped-call]

    @property
    def span_encoder(self) -> SpanEncoder:
        """The Rust encoder, with its ``skipped_values`` / ``skipped_spans`` counters.

        spanbatch's processors read each batch with it while the batch fills, and export the
        ``SpanRequest`` it made.
        """
        return self._encoder

    @property
    def sends_natively(self) -> bool:
        """Whether requests go out from Rust (plain ``http://``, no session) rather than through requests."""
        return self._native is not None

    def export(self, spans: Batch) -> SpanExportResult:
        return self._export_batches([spans])[0]

    def export_many(self, batches: Sequence[Batch]) -> list[SpanExportResult]:
        """Export each batch as its own request; spanbatch's processors call this with several at once.

        A batch is spans, or a ``SpanRequest`` this exporter's ``span_encoder`` read them into.

        With the native transport every first attempt is made in one stretch without the
        GIL; a batch whose attempt failed goes on through the stock client's retries.
        """
        return self._export_batches(batches)

    def _export_batches(self, batches: Sequence[Batch]) -> list[SpanExportResult]:
        # Behind both entry points, so that a subclass overriding one never has it called by the other.
        if self._shutdown:
            logger.warning("Exporter already shutdown, ignoring batch")
            return [SpanExportResult.FAILURE] * len(batches)
        if (
            self._native is None
            or not isinstance(self._metrics, NoOpExporterMetrics)
            or (self._spiller is not None and self._spiller.down)
        ):
            # The exporter's own metrics time each export, so each is made on its own; a backend
            # known down gets no first attempt, each request goes to disk through the client.
            return [self._export_one(batch) for batch in batches]
        read: list[tuple[int, SpanRequest]] = []
        results = [SpanExportResult.FAILURE] * len(batches)
        for index, batch in enumerate(batches):
            try:
                read.append((index, read_batch(self._encoder, batch)))
            except Exception as error:
                logger.error("Failed to encode span batch: %s", error)
        client = self._client
        sent = self._native.send_all(
            client._endpoint,
            client._headers,
            [request for _, request in read],
            encoding=client._compression.value,
            max_request_size=self._max_request_size,
            timeout=client._timeout,
        )
        for (index, request), first_attempt in zip(read, sent, strict=True):
            results[index] = self._settle(request, first_attempt)
        return results

    def _settle(self, request: SpanRequest, first_attempt: NativeHTTPResult) -> SpanExportResult:
        """The result of a request ``send_all`` made (or, on failure, of the stock client's retries after it)."""
        assert self._native is not None
        status = first_attempt.status_code
        if status is not None and 200 <= status < 400:
            return SpanExportResult.SUCCESS
        if isinstance(first_attempt.error, RequestPayloadTooLargeError):
            logger.warning("Dropping span batch: %s", first_attempt.error)
            return SpanExportResult.FAILURE
        if isinstance(first_attempt.error, NotSentError):
            outcome = self._client.export(request.to_bytes())
        else:
            with self._native.replaying(first_attempt):
                outcome = self._client_after(first_attempt.seconds).export(request.to_bytes())
        return SpanExportResult.SUCCESS if outcome.success else SpanExportResult.FAILURE

    def _client_after(self, seconds: float) -> _http._OTLPHTTPClient:
        """The stock client with what an attempt of ``seconds`` left of its timeout.

        One export has one deadline: the stock client's retries after the first attempt must
        keep to it, not start a fresh one (which would resend a timed-out batch at once and
        double the export's time). A shallow copy: same transport, headers and shutdown event.
        """
        client = copy.copy(self._client)
        client._timeout = max(0.0, self._client._timeout - seconds)
        return client

    def _export_one(self, spans: Batch) -> SpanExportResult:
        # The stock ``export`` with ``encode_spans(...).SerializePartialToString()`` swapped out.
        with self._metrics.export_operation(len(spans)) as result:
            try:
                serialized_data = encode_batch(self._encoder, spans)
            except Exception as error:
                logger.error("Failed to encode span batch: %s", error)
                result.error = error
                return SpanExportResult.FAILURE
            if _is_request_too_large(serialized_data, self._max_request_size):
                logger.warning(
                    "Dropping span batch: serialized size %d bytes exceeds max_request_size %d bytes.",
                    len(serialized_data),
                    self._max_request_size,
                )
                result.error = RequestPayloadTooLargeError(
                    f"Serialized span request size {len(serialized_data)} bytes exceeds "
                    f"max_request_size {self._max_request_size} bytes."
                )
                return SpanExportResult.FAILURE
            export_result = self._client.export(serialized_data)
            if not export_result.success:
                result.error = export_result.error
                result.error_attrs = (
                    {HTTP_RESPONSE_STATUS_CODE: export_result.status_code}
                    if export_result.status_code is not None
                    else None
                )
                return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS


def native_transport_for(
    exporter: _stock.OTLPSpanExporter, session: requests.Session | None
) -> NativeHTTPTransport | None:
    """A Rust transport to use instead of the stock one, where it behaves the same: plain HTTP, no session.

    TLS (``https://``, certificates) and custom or credential-provider sessions stay on requests.
    """
    transport = exporter._client._transport
    if (
        session is not None
        or type(transport) is not RequestsHTTPTransport
        or urlsplit(exporter._endpoint).scheme.lower() != "http"
        or _settings.read(_settings.HTTP_CREDENTIAL_PROVIDER)
    ):
        return None
    native = NativeHTTPTransport()
    exporter._client._transport = native
    transport.close()
    return native
