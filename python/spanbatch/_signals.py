"""The kinds of telemetry the engine batches, and what differs between them outside the Rust core."""

from __future__ import annotations

from dataclasses import dataclass

from opentelemetry.sdk._logs import export as log_export
from opentelemetry.sdk.trace.export import SpanExportResult

from spanbatch._core import DROP_REASONS

# LogRecordExportResult is SDK 1.39+; the deprecated LogExportResult is what older exporters return.
_LOG_RESULTS = [
    getattr(log_export, name) for name in ("LogRecordExportResult", "LogExportResult") if hasattr(log_export, name)
]

# Only log records are dropped for being emitted on their own export thread (a span ended there is queued).
_LOG_ONLY_REASONS = ("export_thread",)


@dataclass(frozen=True)
class MetricWords:
    """How the SDK's processor metrics of one signal describe themselves (units and descriptions)."""

    unit: str
    processed: str
    queue_size_unit: str
    queue_size: str
    queue_capacity: str


@dataclass(frozen=True)
class Signal:
    """One kind of telemetry, as its exporters answer and the SDK's processor metrics name it.

    ``successes`` and ``failures`` are what its exporters' ``export`` returns. ``item`` names the
    metrics (``otel.sdk.processor.<item>.*``), described by ``metric_words``; ``items`` counts
    them in spanbatch's own warnings; ``component_type`` is the ``otel.component.type`` of a
    processor of this kind; ``exporting`` is the word the stock processor's log lines use for
    them and ``result_type`` the name of their export result. ``drop_reasons`` are those its
    ``stats().dropped`` lists.
    """

    item: str
    items: str
    component_type: str
    successes: tuple[object, ...]
    failures: tuple[object, ...]
    exporting: str
    result_type: str
    metric_words: MetricWords
    drop_reasons: tuple[str, ...]


SPANS = Signal(
    "span",
    "spans",
    "batching_span_processor",
    (SpanExportResult.SUCCESS,),
    (SpanExportResult.FAILURE,),
    "Span",
    "SpanExportResult",
    MetricWords(
        "{span}",
        "The number of spans for which the processing has finished, either successful or failed.",
        "{span}",
        "The number of spans in the queue of a given instance of an SDK span processor.",
        "The maximum number of spans the queue of a given instance of an SDK span processor can hold.",
    ),
    tuple(reason.name for reason in DROP_REASONS if reason.name not in _LOG_ONLY_REASONS),
)

# The words of the SDK's own log processor metrics (its queue size is described by hand, in "logs").
LOGS = Signal(
    "log",
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
