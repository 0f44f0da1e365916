"""OTLP/HTTP (protobuf) span exporter: the stock exporter's transport, retries and settings, Rust encoding.

Private parts of the stock exporter this relies on (checked by the tests, 1.45.2):
``_OTLPHTTPClient`` and its ``_compress(bytes) -> bytes`` / ``_compression``, the exporter's
``_client``, ``_metrics.export_operation``, ``_max_request_size`` and ``_shutdown``, and
``_common._is_request_too_large`` / ``RequestPayloadTooLargeError``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

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
from opentelemetry.metrics import MeterProvider
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExportResult
from opentelemetry.semconv.attributes.http_attributes import HTTP_RESPONSE_STATUS_CODE

from spanbatch._core import SpanEncoder, compress
from spanbatch.exporter._encoding import encode_batch

if TYPE_CHECKING:
    import requests

logger = logging.getLogger("spanbatch.exporter")


class _RustCompressingClient(_http._OTLPHTTPClient):
    """The stock HTTP client, compressing request bodies in Rust without holding the GIL."""

    def _compress(self, serialized_data: bytes) -> bytes:
        if self._compression is _http.Compression.NONE:
            return serialized_data
        return compress(serialized_data, self._compression.value)


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
    ) -> None:
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
        )
        self._encoder = SpanEncoder()
        # Same object, same settings; only ``_compress`` changes (see _RustCompressingClient).
        if type(self._client) is _http._OTLPHTTPClient:
            self._client.__class__ = _RustCompressingClient

    @property
    def span_encoder(self) -> SpanEncoder:
        """The Rust encoder, with its ``skipped_values`` / ``skipped_spans`` counters."""
        return self._encoder

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        # The stock ``export`` with ``encode_spans(...).SerializePartialToString()`` swapped out.
        if self._shutdown:
            logger.warning("Exporter already shutdown, ignoring batch")
            return SpanExportResult.FAILURE
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
