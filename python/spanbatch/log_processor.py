"""Log records: the engine as an SDK ``LogRecordProcessor`` (``LogEngine``, which a pipeline's log side is
too), and ``BatchLogRecordProcessor``, the stock log processor's contract on it."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, cast

from opentelemetry.metrics import MeterProvider
from opentelemetry.sdk._logs import LogRecordProcessor
from opentelemetry.sdk._logs import export as log_export

from spanbatch._config import resolve_settings
from spanbatch._core import DROP_REASONS
from spanbatch._engine import Engine, OneLane
from spanbatch._log_readable import emitter, emitter_handing_back
from spanbatch._logging_locks import holds_a_handler_lock
from spanbatch._policies import resolve_policies, spells_out
from spanbatch._room import waiting_for_room_if_told, waits_in_python
from spanbatch._settings import LOG_POLICIES, LOGS_BATCH, PolicyArguments
from spanbatch._signals import MetricWords, Signal
from spanbatch._stats import SpanStats

if TYPE_CHECKING:  # named LogExporter, and no ReadableLogRecord, before SDK 1.39
    from opentelemetry.sdk._logs import ReadableLogRecord, ReadWriteLogRecord  # noqa: F401  # for OneLane["ReadableLogRecord"]
    from opentelemetry.sdk._logs.export import LogRecordExporter
    from typing_extensions import Unpack

# LogRecordExportResult is SDK 1.39+; the deprecated LogExportResult is what older exporters return.
_LOG_RESULTS = [
    getattr(log_export, name) for name in ("LogRecordExportResult", "LogExportResult") if hasattr(log_export, name)
]

# The words of the SDK's own log processor metrics (its queue size is described by hand, in "logs").
LOGS = Signal(
    "log",
    "log record",
    "log records",
    "batching_log_processor",
    tuple(result.SUCCESS for result in _LOG_RESULTS),
    tuple(result.FAILURE for result in _LOG_RESULTS),
    "Log",
    "LogRecordExportResult",
    MetricWords(
        "{log_record}",
        "The number of log records for which the processing has finished, either successful or failed.",
        "{log}",
        "The number of logs in the queue of a given instance of an SDK log processor.",
        "The maximum number of log records the queue of a given instance of an SDK Log Record processor can hold.",
    ),
    tuple(reason.name for reason in DROP_REASONS),
)


class LogEngine(Engine["ReadableLogRecord"], LogRecordProcessor):
    """Log records into every lane. A record emitted on a lane's own export thread (the exporter's
    logging, bridged back by a ``LoggingHandler``) is dropped there and counted (``export_thread``):
    it never recurses into the exporter and never waits for the queue it would feed."""

    signal = LOGS
    _policy_keywords = PolicyArguments
    _push: Callable[..., None]

    def _bind_hot_path(self) -> None:
        cores = [lane.core for lane in self._lanes]
        # A greenlet waits for room from Python code (``_room``): the push hands back what a full queue refused.
        if waits_in_python(self._policies):
            push = waiting_for_room_if_told(emitter_handing_back(cores))
        else:
            push = emitter(cores)
        self._push = self._after_shutdown(push)
        if self._policies.drop_policy != "block" and type(self).on_emit is LogEngine.on_emit:
            # The SDK calls ``processor.on_emit(record)`` and lands straight in Rust: no Python frame.
            self.on_emit = self._push  # type: ignore[method-assign]

    def on_emit(self, log_record: ReadWriteLogRecord) -> None:
        """Under ``block`` (and for SDKs that call ``emit``): the bound push, told whether it may wait."""
        # The worker's exporter may log through the handler whose lock this thread holds: waiting for
        # room then would wait out the block timeout, the worker stuck on that lock meanwhile.
        self._push(log_record, wait=self._policies.drop_policy != "block" or not holds_a_handler_lock())

    if not hasattr(LogRecordProcessor, "on_emit"):

        def emit(self, log_data: ReadWriteLogRecord) -> None:
            """What SDKs before 1.28 call: ``on_emit``, a subclass's override included."""
            self.on_emit(log_data)


class BatchLogRecordProcessor(OneLane["ReadableLogRecord"], LogEngine):
    """Batches emitted log records and exports them from a background thread.

    A drop-in for ``opentelemetry.sdk._logs.export.BatchLogRecordProcessor`` (same arguments in the
    same order, ``OTEL_BLRP_*`` variables, defaults and errors) on the engine of
    :class:`~spanbatch.BatchSpanProcessor`: a Rust queue, exact :meth:`stats`, bounded flush and
    shutdown, fork safety and the same keyword-only export policies (see there). The batch settings
    resolve as explicit argument > ``SPANBATCH_LOGS_*`` > ``OTEL_BLRP_*`` > default; the policies as a
    span processor's (``SPANBATCH_*``), with the ``OTEL_BLRP_*`` forms of the proposal's queue-full variables.

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
