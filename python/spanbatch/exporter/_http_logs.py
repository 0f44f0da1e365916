"""OTLP/HTTP (protobuf) log exporter: the stock log exporter's transport, retries and settings, Rust encoding.

Relies on the same private parts of the stock exporter as the span exporter (see ``_http``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from opentelemetry.exporter.otlp.proto.http import _log_exporter as _stock
from opentelemetry.sdk._logs.export import LogRecordExportResult

from spanbatch import _settings
from spanbatch._core import LogEncoder
from spanbatch._setting import read
from spanbatch.exporter._declared import DeclaredEncoder
from spanbatch.exporter._http import RustEncodedHTTP

if TYPE_CHECKING:
    from spanbatch._encoding import LogBatch

# The stock exporter's logger: the lines below are its lines, for the same events.
logger = logging.getLogger(_stock.__name__)


class OTLPLogExporter(RustEncodedHTTP, _stock.OTLPLogExporter):
    """Drop-in for ``opentelemetry.exporter.otlp.proto.http._log_exporter.OTLPLogExporter``.

    Same arguments, ``OTEL_EXPORTER_OTLP_*`` / ``OTEL_EXPORTER_OTLP_LOGS_*`` variables,
    compression choices, retries and results: those are the stock exporter's own code. Only
    the request body is made differently, by spanbatch's Rust encoder, and gzip/deflate run
    in Rust too. Works with any log record processor.
    """

    _encoder_class = LogEncoder
    _signal = "logs"
    _results = LogRecordExportResult
    _logger = logger

    def _credential_provider_set(self) -> bool:
        return bool(read(_settings.HTTP_LOGS_CREDENTIAL_PROVIDER))

    log_encoder = DeclaredEncoder(LogEncoder)
    # Declared with the ``export`` below it: spanbatch's processors count what it spills (see ``_capabilities``).
    spill_counts = RustEncodedHTTP.spill_counts

    def export(self, batch: LogBatch) -> LogRecordExportResult:
        result: LogRecordExportResult = self._export_batches([batch])[0]
        return result

    # Declared with the ``export_many`` below it: it tells as each batch ends (see ``_export_clock``).
    reports_batch_ends = True

    def export_many(self, batches: Sequence[LogBatch]) -> list[LogRecordExportResult]:
        """Export each batch as its own request; spanbatch's processors call this with several at once.

        A batch is log records, or a ``LogRequest`` this exporter's ``log_encoder`` read them into.
        """
        return self._export_batches(batches)
