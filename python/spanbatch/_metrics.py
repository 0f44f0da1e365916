"""OpenTelemetry self-metrics, read from the exact counters instead of counted on the hot path."""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterable

from opentelemetry.metrics import CallbackOptions, MeterProvider, Observation, get_meter_provider

from spanbatch._stats import SpanStats

_COMPONENT_TYPE = "batching_span_processor"
# Our drop reasons as the semantic conventions' error.type values.
_ERROR_TYPES = {"queue_full": "queue_full", "shutdown": "already_shutdown", "fork": "fork"}
_instances = itertools.count()


def internal_metrics_enabled() -> bool:
    return os.environ.get("OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED", "").strip().lower() == "true"


def component_name(name: str | None = None) -> str:
    return name if name is not None else f"{_COMPONENT_TYPE}/{next(_instances)}"


def register_processor_metrics(
    read_stats: Callable[[], SpanStats | None],
    capacity: int,
    meter_provider: MeterProvider | None,
    component: str,
) -> None:
    """Record the stock processor's metrics for one lane; ``read_stats`` returns None once it is gone."""
    meter = (meter_provider or get_meter_provider()).get_meter("spanbatch")
    attributes = {"otel.component.type": _COMPONENT_TYPE, "otel.component.name": component}

    def processed(_options: CallbackOptions) -> Iterable[Observation]:
        stats = read_stats()
        if stats is None:
            return []
        # Like the stock processor: a span is processed once it is handed to the exporter.
        handed = stats.exported + stats.in_flight + stats.dropped.get("export_failed", 0)
        observations = [Observation(handed, attributes)]
        for reason, error_type in _ERROR_TYPES.items():
            if stats.dropped.get(reason):
                observations.append(Observation(stats.dropped[reason], {**attributes, "error.type": error_type}))
        return observations

    def queue_size(_options: CallbackOptions) -> Iterable[Observation]:
        stats = read_stats()
        return [] if stats is None else [Observation(stats.queued, attributes)]

    def queue_capacity(_options: CallbackOptions) -> Iterable[Observation]:
        return [] if read_stats() is None else [Observation(capacity, attributes)]

    meter.create_observable_counter(
        "otel.sdk.processor.span.processed",
        callbacks=[processed],
        unit="{span}",
        description="The number of spans for which the processing has finished, either successful or failed.",
    )
    meter.create_observable_up_down_counter(
        "otel.sdk.processor.span.queue.size",
        callbacks=[queue_size],
        unit="{span}",
        description="The number of spans in the queue of a given instance of an SDK span processor.",
    )
    meter.create_observable_up_down_counter(
        "otel.sdk.processor.span.queue.capacity",
        callbacks=[queue_capacity],
        unit="{span}",
        description="The maximum number of spans the queue of a given instance of an SDK span processor can hold.",
    )
