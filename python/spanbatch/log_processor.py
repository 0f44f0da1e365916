"""``BatchLogRecordProcessor``: the stock log processor's contract on spanbatch's engine."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from opentelemetry.metrics import MeterProvider

from spanbatch._config import resolve_settings
from spanbatch._engine import OneLane
from spanbatch._logs import LogEngine
from spanbatch._policies import resolve_policies, spells_out
from spanbatch._settings import LOG_POLICIES, LOGS_BATCH, PolicyArguments
from spanbatch._stats import SpanStats

if TYPE_CHECKING:  # named LogExporter, and no ReadableLogRecord, before SDK 1.39
    from opentelemetry.sdk._logs import ReadableLogRecord  # noqa: F401 -- the base class's subscript
    from opentelemetry.sdk._logs.export import LogRecordExporter
    from typing_extensions import Unpack


class BatchLogRecordProcessor(OneLane["ReadableLogRecord"], LogEngine):
    """Batches emitted log records and exports them from a background thread.

    A drop-in for ``opentelemetry.sdk._logs.export.BatchLogRecordProcessor`` (same arguments in the
    same order, ``OTEL_BLRP_*`` variables, defaults and errors) on the engine of
    :class:`~spanbatch.BatchSpanProcessor`: a Rust queue, exact :meth:`stats`, bounded flush and
    shutdown, fork safety and the same keyword-only export policies (see there). Settings resolve as
    explicit argument > ``SPANBATCH_LOGS_*`` > ``OTEL_BLRP_*`` > default.

    A record emitted on the processor's own export thread (an exporter whose logging reaches this
    processor through a ``LoggingHandler``) is dropped and counted as ``export_thread``: it would
    otherwise feed the exporter its own output.
    """

    @spells_out(PolicyArguments)
    def __init__(
        self,
        exporter: LogRecordExporter,
        schedule_delay_millis: float | None = None,
        max_export_batch_size: int | None = None,
        export_timeout_millis: float | None = None,
        max_queue_size: int | None = None,
        *,
        meter_provider: MeterProvider | None = None,
        **policies: Unpack[PolicyArguments],
    ) -> None:
        super().__init__(
            exporter,
            resolve_settings(
                max_queue_size, schedule_delay_millis, max_export_batch_size, export_timeout_millis, registry=LOGS_BATCH
            ),
            # Every signal's policies: a log record is queued once, when emitted (no span-start export).
            resolve_policies(policies, type(self).__name__, PolicyArguments, LOG_POLICIES),
            meter_provider,
        )

    @property
    def exporter(self) -> LogRecordExporter:
        return cast("LogRecordExporter", self._lanes[0].exporter)

    def stats(self) -> SpanStats:
        """An exact, immutable snapshot of where every emitted log record is."""
        return super().stats()
