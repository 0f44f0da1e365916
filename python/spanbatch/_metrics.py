"""OpenTelemetry self-metrics, read from the exact counters instead of counted on the hot path.

An observable instrument keeps only the first callback registered under its name, so each
meter provider gets one set of instruments whose callbacks report every registered lane.
"""

from __future__ import annotations

import itertools
import threading
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from opentelemetry.metrics import CallbackOptions, MeterProvider, Observation, get_meter_provider

from spanbatch import _settings
from spanbatch._core import DROP_REASONS, Stats
from spanbatch._setting import read
from spanbatch._signals import Signal

# The stock processor's meter: dashboards and views select its metrics by this scope.
_METER_NAME = "opentelemetry-sdk"
# The reasons that drop items straight from the queue, as the semantic conventions' error.type.
_ERROR_TYPES = {reason.name: reason.error_type for reason in DROP_REASONS if reason.error_type is not None}
# The reasons that drop items already handed to the exporter: the stock processor counts those as
# processed without an error (its encoder fails a whole batch where ours leaves one span out).
_HANDED_TO_EXPORTER = tuple(reason.name for reason in DROP_REASONS if reason.error_type is None)
_instances = itertools.count()


def internal_metrics_enabled() -> bool:
    return read(_settings.INTERNAL_METRICS)


def component_name(signal: Signal) -> str:
    """A name of its own for a processor whose lanes the user did not name, as the stock processor's."""
    return f"{signal.component_type}/{next(_instances)}"


@dataclass(frozen=True)
class _Source:
    attributes: dict[str, str]
    read_stats: Callable[[], Stats | None]  # None once the lane is gone
    capacity: int


class _Instruments:
    """The three instruments of one signal on one meter provider, reporting every registered source."""

    def __init__(self, meter_provider: MeterProvider, signal: Signal) -> None:
        self._sources: list[_Source] = []
        self._lock = threading.Lock()
        meter = meter_provider.get_meter(_METER_NAME)
        name, words = f"otel.sdk.processor.{signal.item}", signal.metric_words
        meter.create_observable_counter(
            f"{name}.processed", callbacks=[self._processed], unit=words.unit, description=words.processed
        )
        meter.create_observable_up_down_counter(
            f"{name}.queue.size",
            callbacks=[self._queue_size],
            unit=words.queue_size_unit,
            description=words.queue_size,
        )
        meter.create_observable_up_down_counter(
            f"{name}.queue.capacity",
            callbacks=[self._queue_capacity],
            unit=words.unit,
            description=words.queue_capacity,
        )

    def add(self, source: _Source) -> None:
        with self._lock:
            self._sources.append(source)

    def _live(self) -> list[tuple[_Source, Stats]]:
        with self._lock:
            sources = list(self._sources)
        read = [(source, source.read_stats()) for source in sources]
        live = [(source, stats) for source, stats in read if stats is not None]
        if len(live) < len(read):
            with self._lock:
                gone = {id(source) for source, stats in read if stats is None}
                self._sources = [s for s in self._sources if id(s) not in gone]
        return live

    def _processed(self, _options: CallbackOptions) -> Iterable[Observation]:
        observations = []
        for source, stats in self._live():
            # Like the stock processor: a span is processed once it is handed to the exporter (spilled ones too),
            # here once it is in flight. A counter never goes down, so spans shutdown gave up on while in flight
            # (read ahead into a request) stay counted here, not under already_shutdown.
            dropped = stats.dropped
            handed = (
                stats.exported
                + stats.spilled
                + stats.in_flight
                + stats.abandoned
                + sum(dropped.get(r, 0) for r in _HANDED_TO_EXPORTER)
            )
            observations.append(Observation(handed, source.attributes))
            dropped["shutdown"] -= stats.abandoned
            for reason, error_type in _ERROR_TYPES.items():
                if dropped.get(reason):
                    attributes = {**source.attributes, "error.type": error_type}
                    observations.append(Observation(dropped[reason], attributes))
        return observations

    def _queue_size(self, _options: CallbackOptions) -> Iterable[Observation]:
        return [Observation(stats.queued, source.attributes) for source, stats in self._live()]

    def _queue_capacity(self, _options: CallbackOptions) -> Iterable[Observation]:
        return [Observation(source.capacity, source.attributes) for source, _ in self._live()]


_by_provider: weakref.WeakKeyDictionary[MeterProvider, dict[Signal, _Instruments]] = weakref.WeakKeyDictionary()
_registry_lock = threading.Lock()


def register_processor_metrics(
    signal: Signal,
    read_stats: Callable[[], Stats | None],
    capacity: int,
    meter_provider: MeterProvider | None,
    component: str,
) -> None:
    """Record the stock processor's metrics for one lane; ``read_stats`` returns None once it is gone."""
    provider = meter_provider or get_meter_provider()
    with _registry_lock:
        by_signal = _by_provider.setdefault(provider, {})
        instruments = by_signal.get(signal)
        if instruments is None:
            instruments = by_signal[signal] = _Instruments(provider, signal)
    attributes = {"otel.component.type": signal.component_type, "otel.component.name": component}
    instruments.add(_Source(attributes, read_stats, capacity))
