"""The one lifecycle engine behind every processor: lanes, fork recovery, metrics, exit, flush, shutdown, stats.

Generic over the kind of telemetry it batches, as the SDK's own ``BatchProcessor[Telemetry]`` is.
A processor class is this engine with a ``signal``, the backends of its lanes, and
``_bind_hot_path``: its SDK method (``on_end`` for spans) bound straight to the Rust push, so
that the application's thread runs no Python code per item.
"""

from __future__ import annotations

import logging
import math
from abc import abstractmethod
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from typing import Any, ClassVar, Generic, TypeVar, cast

from opentelemetry.metrics import MeterProvider

from spanbatch import _exit, _fork
from spanbatch._capabilities import Exporter
from spanbatch._config import BatchSettings
from spanbatch._drops import stock_after_shutdown
from spanbatch._lane import Backend, Lane, weak_method
from spanbatch._metrics import component_name, internal_metrics_enabled, register_processor_metrics
from spanbatch._own_lines import own_lines, telling
from spanbatch._settings import ExportPolicies, PolicyArguments
from spanbatch._signals import Signal
from spanbatch._stats import SpanStats
from spanbatch._stderr_lines import debug_enabled

Telemetry = TypeVar("Telemetry")

logger = logging.getLogger("spanbatch")
# The types of flush timeouts already warned of: a flush per request would otherwise log a line per request (by
# type, not value: a new value per call must not grow this set for ever).
_odd_timeouts: set[type] = set()


def given_timeout(timeout_millis: object, default_millis: float) -> float:
    """The deadline a flush or shutdown was given, as a float, or ``default_millis`` for none: None, NaN (a deadline
    no clock reading passes: the wait spun until the export returned), or what is not a number.

    The stock processor ignores its timeout: a ``Decimal`` (``TracerProvider.force_flush`` passes one on) or a string
    read from a setting, used as given, raised a ``TypeError`` about our arithmetic where stock returns True.
    """
    if timeout_millis is None or isinstance(timeout_millis, str | bytes):
        millis = math.nan
    else:
        try:
            millis = float(timeout_millis)  # type: ignore[arg-type]
        except OverflowError:  # an int past a float's range: as long or as short as a float can say
            millis = math.inf if cast(int, timeout_millis) > 0 else -math.inf
        except (TypeError, ValueError):
            millis = math.nan
    odd = math.isnan(millis) and not (timeout_millis is None or isinstance(timeout_millis, float))
    if odd and type(timeout_millis) not in _odd_timeouts:
        _odd_timeouts.add(type(timeout_millis))
        logger.warning(
            "A flush or shutdown timeout_millis=%r is not a number: waiting up to the default %g ms.",
            timeout_millis,
            default_millis,
        )
    return default_millis if math.isnan(millis) else millis


class Engine(Generic[Telemetry]):
    """Lanes that batch one kind of telemetry, each to its own backend, under one lifecycle.

    Not an ``ABC``: a processor's metaclass is the stock one's (``type`` for spans), so that it mixes with whatever
    class the stock one mixes with (a plugin base of another metaclass would otherwise be a "metaclass conflict").

    ``named`` lanes are a Pipeline's: their names label drop warnings and metrics. A processor's
    one unnamed lane is reported as the stock processor is, under a component name of its own.
    """

    signal: ClassVar[Signal]
    _policy_keywords: ClassVar[type[PolicyArguments]]
    """The policies a processor of this kind takes as keywords."""

    def __init__(
        self,
        backends: Sequence[Backend],
        policies: ExportPolicies,
        *,
        named: bool,
        meter_provider: MeterProvider | None,
    ) -> None:
        debug = debug_enabled()
        self._policies = policies
        self._lanes = [
            Lane(
                backend,
                policies,
                self.signal,
                debug=debug,
                named=named,
                on_core_change=weak_method(self._bind_hot_path),
            )
            for backend in backends
        ]
        self._bind_hot_path()
        _fork.watch(self)
        if internal_metrics_enabled():
            for lane in self._lanes:
                component = lane.name if named else component_name(self.signal)
                register_processor_metrics(self.signal, lane, meter_provider, component)
        _exit.register(self)

    @abstractmethod
    def _bind_hot_path(self) -> None:
        """Point the SDK's per-item method at the Rust push into every lane's current core (unless the
        class overrides that method: then the SDK calls the override, which calls the push)."""

    def _after_shutdown(self, push: Callable[..., None]) -> Callable[..., None]:
        """``push`` while a lane runs; once every lane is shut down, ``push`` (which counts the item as
        ``shutdown``), then the line the installed SDK's stock processor logs for such an item, then spanbatch's
        drop warning: the first such drop at once, as no worker is left to tell of it (``report_refused``).

        Logged from Python, never called back from the Rust push: at exit, daemon threads still end
        spans, and CPython unwinds one that waits for the GIL during finalization, which aborts the
        process when the unwinding meets Rust frames.
        """
        if not all(lane.core.is_shutdown for lane in self._lanes):
            return push
        line = stock_after_shutdown(self.signal)
        lanes = list(self._lanes)  # not ``self``: the hot path it is bound to would keep it in a cycle

        def refused(item: object, *args: Any, **kwargs: Any) -> None:
            # Counted first: a logging filter may raise.
            own_line = telling()
            if own_line:  # one of spanbatch's own lines, handed back: counted, and no news (``_own_lines``)
                with ExitStack() as echo:
                    for lane in lanes:
                        echo.enter_context(lane.drops.echo(lane.dropped))
                    push(item, *args, **kwargs)
            else:
                push(item, *args, **kwargs)
            try:
                # Not for one of spanbatch's own lines handed back: the stock processor has no such line to log it for.
                if line is not None and not own_line and line.enabled():
                    # A LoggingHandler on the root hands the line to log processors shut down: not news.
                    with own_lines():
                        line()
            finally:
                exited = _exit.past_last_hook()
                for lane in lanes:
                    lane.drops.report_refused(lane.dropped, exited=exited)

        return refused

    @property
    def lanes(self) -> list[Lane]:
        return list(self._lanes)

    def _stats_by_lane(self) -> dict[str, SpanStats]:
        return {lane.name: lane.stats() for lane in self._lanes}

    def stats(self) -> SpanStats:
        """Every lane's exact counters, summed: an item sent to three lanes counts three times."""
        return sum(self._stats_by_lane().values(), SpanStats())

    def _timeout_millis(self, timeout_millis: float | None) -> float:
        """``timeout_millis``, by default the longest ``drain_timeout_millis`` of the lanes."""
        return given_timeout(timeout_millis, max(lane.settings.drain_timeout_millis for lane in self._lanes))

    def _flush_by_lane(self, timeout_millis: float | None) -> dict[str, bool]:
        return _exit.flush(self._lanes, self._timeout_millis(timeout_millis))

    def force_flush(self, timeout_millis: int | None = None) -> bool:
        """Flush every lane in parallel under one deadline; True only if all finished in time."""
        return all(self._flush_by_lane(timeout_millis).values())

    def shutdown(self, timeout_millis: float | None = None) -> None:
        """Drain and shut down every lane in parallel within one deadline. Idempotent."""
        _exit.shutdown(self._lanes, self._timeout_millis(timeout_millis))

    def __repr__(self) -> str:
        """``Pipeline(a, b, ExportPolicies(...), stats=...)``: the backends, the resolved policies, the summed stats."""
        names = ", ".join(lane.name for lane in self._lanes)
        return f"{type(self).__name__}({names}, {self._policies.shown(self._policy_keywords)}, stats={self.stats()})"


class OneLane(Engine[Telemetry]):
    """A stock processor's shape: one exporter in one unnamed lane, reported as the stock processor is.

    What ``BatchSpanProcessor`` and ``BatchLogRecordProcessor`` share; each puts it before its
    signal's adapter (``SpanEngine``, ``LogEngine``) and spells out the stock constructor.
    """

    def __init__(
        self,
        exporter: Exporter[Telemetry],
        settings: BatchSettings,
        policies: ExportPolicies,
        meter_provider: MeterProvider | None,
    ) -> None:
        super().__init__(
            [Backend(type(exporter).__name__, exporter, settings)], policies, named=False, meter_provider=meter_provider
        )

    @property
    def settings(self) -> BatchSettings:
        return self._lanes[0].settings

    def force_flush(self, timeout_millis: int | None = None) -> bool:
        """Export everything queued before this call; False if ``timeout_millis`` passes first.

        ``None`` waits up to ``drain_timeout_millis`` (30 s, or ``export_timeout_millis`` if longer), and not for
        exports that stalled (see ``ExportClock``). An export still running then goes on in the background.
        """
        return super().force_flush(timeout_millis)

    def shutdown(self, timeout_millis: float | None = None) -> None:
        """Export what is queued, then shut the exporter down, all within ``timeout_millis`` (by default
        ``drain_timeout_millis``); exports that stalled (see ``ExportClock``) are given up.

        Idempotent. What is still queued at the deadline is dropped and counted (``shutdown``).
        """
        super().shutdown(timeout_millis)

    def __repr__(self) -> str:
        s = self.settings
        return (
            f"{type(self).__name__}({self._lanes[0].name}, max_queue_size={s.max_queue_size}, "
            f"schedule_delay_millis={s.schedule_delay_millis:g}, max_export_batch_size={s.max_export_batch_size}, "
            f"export_timeout_millis={s.export_timeout_millis:g}, {self._policies.shown(self._policy_keywords)},"
            f" stats={self.stats()})"
        )
