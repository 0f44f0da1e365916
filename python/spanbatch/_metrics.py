"""OpenTelemetry self-metrics, read from the exact counters instead of counted on the hot path.

The instruments are the stock processor's kinds, so that a reader's temporality per kind and a view's
``instrument_type`` treat them alike: ``processed`` a Counter, ``queue.capacity`` an UpDownCounter, ``queue.size`` an
observable UpDownCounter. The counters are read at each collection, from that observable's callback (the SDK runs
every callback before it collects the synchronous instruments): what they grew by since is added to ``processed``,
and a lane's capacity is added the first time (given back once the lane is gone). An observable instrument keeps
only the first callback registered under its name, so each meter provider gets one set of instruments whose callback
reports every registered lane. One provider may be reached two ways (the global one given explicitly before it
was set, and the API's proxy or the default after): the instruments made through each are merged at collection,
where it shows which provider collects them.
"""

from __future__ import annotations

import collections
import importlib
import os
import threading
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from opentelemetry.metrics import CallbackOptions, MeterProvider, Observation, get_meter_provider

from spanbatch import _settings
from spanbatch._core import DROP_REASONS, BatchCore, Stats
from spanbatch._fork import PerProcess
from spanbatch._lane import Lane, weak_method
from spanbatch._releases import installed_release
from spanbatch._setting import read
from spanbatch._signals import Signal

# SDK 1.41's processors record their metrics always; from 1.42 only with OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED
# (before 1.41 they have none, and spanbatch's record theirs with it too).
_SDK_RECORDS_ALWAYS = installed_release("opentelemetry-sdk") == (1, 41)
# The stock processor's meter: dashboards and views select its metrics by this scope.
_METER_NAME = "opentelemetry-sdk"
# The reasons that drop items straight from the queue, as the semantic conventions' error.type.
_ERROR_TYPES = {reason.name: reason.error_type for reason in DROP_REASONS if reason.error_type is not None}
# The reasons that drop items already handed to the exporter: the stock processor counts those as
# processed without an error (its encoder fails a whole batch where ours leaves one span out).
_HANDED_TO_EXPORTER = tuple(reason.name for reason in DROP_REASONS if reason.error_type is None)
# The process's own locks: a child forked while another thread held one must not wait on it for ever.
_numbers_lock = PerProcess(threading.Lock)


def _component_numbers() -> collections.Counter[str]:
    """The next number per component type (batching_span_processor/0, batching_log_processor/0, …): the stock
    processors' own count where the SDK keeps one (those with processor metrics), so that a stock and a spanbatch
    processor in one process, maybe on one meter provider, never report under one name."""
    try:
        stock = importlib.import_module("opentelemetry.sdk._shared_internal._processor_metrics")
    except ImportError:
        return collections.Counter()
    numbers = getattr(stock, "_component_counter", None)
    return numbers if isinstance(numbers, collections.Counter) else collections.Counter()


_numbers = _component_numbers()


def internal_metrics_enabled() -> bool:
    return _SDK_RECORDS_ALWAYS or read(_settings.INTERNAL_METRICS)


def component_name(signal: Signal) -> str:
    """A name of its own for a processor whose lanes the user did not name, as the stock processor's."""
    with _numbers_lock.get():
        number = _numbers[signal.component_type]
        _numbers[signal.component_type] = number + 1
    return f"{signal.component_type}/{number}"


@dataclass
class _Source:
    attributes: dict[str, str]
    read_core: Callable[[], BatchCore | None]  # None once the lane is gone
    capacity: int
    counted: bool = False  # whether ``capacity`` was added (at the first collection that found the lane)
    # What ``processed`` was given so far per error.type, from the counters of a core made in process ``core_pid``:
    # a forked child's lane counts from zero on a core of its own, on top of the series it inherited (a lane shut
    # down before the fork keeps its parent's core, and its counters).
    reported: dict[str | None, int] = field(default_factory=dict)
    core_pid: int | None = None
    # The last core of a lane collected: read until it holds nothing (what it settles after the lane went counts,
    # as stock's count, added as it exports, keeps it), then the source goes.
    outlived: BatchCore | None = None
    # Whether the lane's finalizer has told its last core: it runs once the lane's weak reference is dead, maybe on
    # another thread, so a collection between the two finds the lane gone and its last core not yet there.
    told: bool = False
    gone: bool = False  # taken out: its capacity given back (or never added)

    def lane_collected(self, core: BatchCore) -> None:
        # Kept whether or not a reader has collected this source yet (stock's count of a processor freed before the
        # first collection is there), as a core at rest: it shares the counters but holds no queue, so where nothing
        # ever collects a freed lane leaves only that little. Only a core of this process: a forked child's
        # inherited one never drains.
        if core.pid == os.getpid():
            self.outlived = core.at_rest()
        self.told = True


class _Instruments:
    """The three instruments of one signal on one meter provider, reporting every registered source."""

    def __init__(self, meter_provider: MeterProvider, signal: Signal, *, is_global: bool) -> None:
        self.signal = signal
        # The provider whose collections run the callback: the global one's instruments (the API's proxy's, made
        # before it was set) are collected by whichever provider is global then.
        self._provider = None if is_global else weakref.ref(meter_provider)
        self._sources: list[_Source] = []
        # The instruments now reporting this set's sources, once they turned out to share its meter provider.
        self._merged_into: _Instruments | None = None
        self._locks = PerProcess(threading.Lock)
        meter = meter_provider.get_meter(_METER_NAME)
        name, words = f"otel.sdk.processor.{signal.item}", signal.metric_words
        self._processed = meter.create_counter(f"{name}.processed", unit=words.unit, description=words.processed)
        self._capacity = meter.create_up_down_counter(
            f"{name}.queue.capacity", unit=words.unit, description=words.queue_capacity
        )
        queue_size = meter.create_observable_up_down_counter(
            f"{name}.queue.size",
            callbacks=[self._collect],
            unit=words.queue_size_unit,
            description=words.queue_size,
        )
        _run_at_collection(queue_size, self._collect)

    def collected_by(self) -> object | None:
        return get_meter_provider() if self._provider is None else self._provider()

    def add(self, source: _Source) -> None:
        """Called under the merge lock, as merges are made."""
        instruments = self
        while instruments._merged_into is not None:
            instruments = instruments._merged_into
        with instruments._locks.get():
            instruments._sources.append(source)

    def _merge_the_same_providers(self) -> bool:
        """Takes the sources of every other set of instruments its provider collects: that provider's meter kept
        only the first ``queue.size`` callback made under the name (this one, which runs), so theirs never run.
        False if this set was merged into another (a meter that keeps every callback): that one reports them."""
        collector = self.collected_by()
        with _merge_lock.get():
            if self._merged_into is not None:
                return False
            others = [
                instruments
                for instruments in list(_every_instruments)
                if instruments.signal is self.signal
                and instruments is not self
                and instruments._merged_into is None
                and instruments.collected_by() is collector
            ]
            for other in others:
                with other._locks.get():
                    sources, other._sources, other._merged_into = other._sources, [], self
                with self._locks.get():
                    self._sources.extend(sources)
        return True

    def _live(self) -> list[tuple[_Source, BatchCore, Stats]]:
        with self._locks.get():
            sources = list(self._sources)
        live: list[tuple[_Source, BatchCore, Stats]] = []
        gone: list[_Source] = []
        for source in sources:
            core = source.read_core()
            if core is None and source.outlived is not None:
                core = source.outlived
                stats = core.stats()
                live.append((source, core, stats))  # what it settled since counts once more
                if stats.queued == 0 and stats.in_flight == 0:
                    gone.append(source)
            elif core is None and source.told:
                gone.append(source)
            elif core is None:
                continue  # its lane's finalizer is on its way: the next collection reads its last core
            else:
                live.append((source, core, core.stats()))
        if gone:
            # Taken out once, whoever else collects meanwhile, and under the lock the first collection to find a lane
            # adds its capacity under: deciding outside it, one that found the lane alive could add it after this
            # one gave nothing back. A lane gone takes its capacity along (a Pipeline rebuilt under the same backend
            # names reports only the live one's; 0 for a lane never collected, as for one collected); what it
            # processed stays counted.
            with self._locks.get():
                gone = [source for source in gone if any(source is s for s in self._sources)]
                self._sources = [s for s in self._sources if all(s is not g for g in gone)]
                for source in gone:
                    self._capacity.add(-source.capacity if source.counted else 0, source.attributes)
                    source.gone = True
        return live

    def _collect(self, _options: CallbackOptions) -> Iterable[Observation]:
        if not self._merge_the_same_providers():
            return []
        live = self._live()
        with self._locks.get():  # two readers collecting at once add each growth once
            for source, core, stats in live:
                if not source.counted and not source.gone and source.outlived is None:  # its lane lives
                    # Added when first collected, not when made: through a ProxyMeterProvider (the global one
                    # before it is set) an add made then would be lost, and nothing else can see the difference.
                    source.counted = True
                    self._capacity.add(source.capacity, source.attributes)
                self._add_processed(source, core.pid, stats)
        return [Observation(stats.queued, source.attributes) for source, _, stats in live]

    def _add_processed(self, source: _Source, core_pid: int, stats: Stats) -> None:
        if source.core_pid != core_pid:
            if source.core_pid is not None:  # a forked child's core of its own: its counters start from zero
                source.reported = {}
            source.core_pid = core_pid
        for error_type, total in _processed(stats).items():
            grown = total - source.reported.get(error_type, 0)
            if grown > 0:
                source.reported[error_type] = total
                attributes = (
                    source.attributes if error_type is None else {**source.attributes, "error.type": error_type}
                )
                self._processed.add(grown, attributes)


def _run_at_collection(instrument: object, callback: Callable[[CallbackOptions], Iterable[Observation]]) -> None:
    """Where a stock processor of this signal made ``queue.size`` first on this meter, the meter hands its instrument
    back without ``callback``, and no spanbatch lane of the provider would report anything (revV). The SDK's instrument
    runs every callback in its list at each collection: ``callback`` joins the stock one's there. An instrument of
    another SDK, or one that kept it, is left as it is."""
    callbacks = getattr(instrument, "_callbacks", None)
    if isinstance(callbacks, list) and callback not in callbacks:
        callbacks.append(callback)


def _processed(stats: Stats) -> dict[str | None, int]:
    """The ``processed`` count of a lane per error.type (None: handed to the exporter)."""
    # Like the stock processor: a span is processed once it is handed to the exporter (spilled ones too),
    # here once it is in flight. A counter never goes down, so spans shutdown gave up on while in flight
    # (read ahead into a request) stay counted here, not under already_shutdown.
    dropped = stats.dropped
    totals: dict[str | None, int] = {
        None: stats.exported
        + stats.spilled
        + stats.in_flight
        + stats.abandoned
        + sum(dropped.get(r, 0) for r in _HANDED_TO_EXPORTER)
    }
    dropped["shutdown"] -= stats.abandoned
    for reason, error_type in _ERROR_TYPES.items():
        totals[error_type] = totals.get(error_type, 0) + dropped.get(reason, 0)
    return totals


_by_provider: weakref.WeakKeyDictionary[object, dict[Signal, _Instruments]] = weakref.WeakKeyDictionary()
# Held while instruments are made, which takes the meter's locks: a collection (which holds them while it runs
# the callbacks) never takes it.
_registry_lock = PerProcess(threading.Lock)
# Where each set of instruments' sources go (see ``_merge_the_same_providers``): taken inside collections, so
# never held while instruments are made.
_merge_lock = PerProcess(threading.Lock)
# Every set of instruments, as ``_by_provider`` holds them, for the merge to read under its lock: that mapping
# changes under the registry lock, which a collection may not take.
_every_instruments: weakref.WeakSet[_Instruments] = weakref.WeakSet()


def register_processor_metrics(
    signal: Signal, lane: Lane, meter_provider: MeterProvider | None, component: str
) -> None:
    """Record the stock processor's metrics for one lane, held weakly (its last core is read once it is gone)."""
    global_provider = get_meter_provider()
    provider = meter_provider or global_provider
    attributes = {"otel.component.type": signal.component_type, "otel.component.name": component}
    source = _Source(attributes, weak_method(lane.current_core), lane.settings.max_queue_size)
    lane.when_collected(source.lane_collected)
    # Keyed by the object given: which provider collects it may show only later (see ``_merge_the_same_providers``).
    with _registry_lock.get():
        by_signal = _by_provider.setdefault(provider, {})
        instruments = by_signal.get(signal)
        if instruments is None:
            instruments = by_signal[signal] = _Instruments(provider, signal, is_global=provider is global_provider)
        with _merge_lock.get():
            _every_instruments.add(instruments)
            instruments.add(source)
