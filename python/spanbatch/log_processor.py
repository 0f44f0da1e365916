"""``BatchLogRecordProcessor``: the stock log processor's contract on spanbatch's engine."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from opentelemetry.metrics import MeterProvider

from spanbatch._config import BatchSettings, resolve_settings
from spanbatch._lane import Backend
from spanbatch._logs import LogEngine
from spanbatch._policies import DropPolicyName, policy_arguments, resolve_policies
from spanbatch._settings import LOGS_BATCH
from spanbatch._stats import SpanStats

if TYPE_CHECKING:  # named LogExporter before SDK 1.39
    from opentelemetry.sdk._logs.export import LogRecordExporter


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

    def __init__(
        self,
        exporter: LogRecordExporter,
        schedule_delay_millis: float | None = None,
        max_export_batch_size: int | None = None,
        export_timeout_millis: float | None = None,
        max_queue_size: int | None = None,
        *,
        meter_provider: MeterProvider | None = None,
        drop_policy: DropPolicyName | None = None,
        block_timeout_millis: float | None = None,
        max_retries: int | None = None,
        retry_initial_backoff_millis: float | None = None,
        retry_max_backoff_millis: float | None = None,
        linger_millis: float | None = None,
        max_concurrent_exports: int | None = None,
    ) -> None:
        settings = resolve_settings(
            max_queue_size, schedule_delay_millis, max_export_batch_size, export_timeout_millis, registry=LOGS_BATCH
        )
        # export_span_start is a span policy: a log record is queued once, when emitted.
        policies = resolve_policies(policy_arguments({**locals(), "export_span_start": False}))
        super().__init__(
            [Backend(type(exporter).__name__, exporter, settings)],
            policies,
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
            f"max_queue_size={s.max_queue_size}, drop_policy={self._policies.drop_policy!r}, "
            f"max_retries={self._policies.retry.max_retries}, linger_millis={self._policies.linger_millis}, "
            f"max_concurrent_exports={self._policies.max_concurrent_exports}, stats={self.stats()})"
        )
