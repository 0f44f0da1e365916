"""``BatchLogRecordProcessor``: the stock log processor's contract on spanbatch's engine."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from opentelemetry.metrics import MeterProvider

from spanbatch._config import BatchSettings, resolve_settings
from spanbatch._lane import Backend
from spanbatch._logs import LogEngine
from spanbatch._policies import resolve_policies, spells_out
from spanbatch._settings import LOG_POLICIES, LOGS_BATCH, PolicyArguments
from spanbatch._stats import SpanStats

if TYPE_CHECKING:  # named LogExporter before SDK 1.39
    from opentelemetry.sdk._logs.export import LogRecordExporter
    from typing_extensions import Unpack


class BatchLogRecordProcessor(LogEngine):
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
        settings = resolve_settings(
            max_queue_size, schedule_delay_millis, max_export_batch_size, export_timeout_millis, registry=LOGS_BATCH
        )
        super().__init__(
            [Backend(type(exporter).__name__, exporter, settings)],
            # Every signal's policies: a log record is queued once, when emitted (no span-start export).
            resolve_policies(policies, type(self).__name__, PolicyArguments, LOG_POLICIES),
            named=False,
            meter_provider=meter_provider,
        )

    @property
    def exporter(self) -> LogRecordExporter:
        return cast("LogRecordExporter", self._lanes[0].exporter)

    @property
    def settings(self) -> BatchSettings:
        return self._lanes[0].settings

    def stats(self) -> SpanStats:
        """An exact, immutable snapshot of where every emitted log record is."""
        return super().stats()

    def force_flush(self, timeout_millis: int | None = None) -> bool:
        """Export every record queued before this call; False if ``timeout_millis`` passes first.

        ``None`` waits up to ``export_timeout_millis``.
        """
        return super().force_flush(timeout_millis)

    def shutdown(self, timeout_millis: float | None = None) -> None:
        """Export what is queued, then shut the exporter down, all within ``export_timeout_millis``.

        Idempotent. Records still queued at the deadline are dropped and counted (``shutdown``).
        """
        super().shutdown(timeout_millis)

    def __repr__(self) -> str:
        s = self.settings
        return (
            f"{type(self).__name__}({self._lanes[0].name}, schedule_delay_millis={s.schedule_delay_millis:g}, "
            f"max_export_batch_size={s.max_export_batch_size}, export_timeout_millis={s.export_timeout_millis:g}, "
            f"max_queue_size={s.max_queue_size}, {self._policies}, stats={self.stats()})"
        )
