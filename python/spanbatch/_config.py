"""Resolving batch settings: explicit argument > ``SPANBATCH_*`` > ``OTEL_BSP_*`` > default."""

from __future__ import annotations

import math
import numbers
import operator
from dataclasses import dataclass

from spanbatch._setting import (
    LARGEST_QUEUE_SIZE,
    LONGEST_MILLIS,
    Setting,
    past_longest_millis,
    read_with_source,
    tell_once,
    warn_once,
)
from spanbatch._settings import BACKEND_BATCH, BATCH

# What the stock processor's ``shutdown()`` waits for its worker to drain the queue; it never reads its export timeout.
STOCK_DRAIN_MILLIS = 30_000.0


@dataclass(frozen=True)
class BatchSettings:
    max_queue_size: int
    schedule_delay_millis: float
    max_export_batch_size: int
    export_timeout_millis: float

    @property
    def drain_timeout_millis(self) -> float:
        """The deadline of ``shutdown()`` and of ``force_flush()`` given none: the stock drain's 30 s, or
        ``export_timeout_millis`` if longer. The export timeout bounds one export (with its retries), as the spec
        means it: taken for the drain's deadline, a 100 ms one cut a drain of 50 ms exports after two batches."""
        return max(STOCK_DRAIN_MILLIS, self.export_timeout_millis)


def _positive(argument: str, value: object, message: str) -> None:
    """The stock constructor's ``value <= 0`` check, on the value as given: its ValueError, or a TypeError."""
    try:
        not_positive = value <= 0  # type: ignore[operator]
    except TypeError:
        raise TypeError(f"{argument} must be a number, not {type(value).__name__!r}.") from None
    if not_positive:
        raise ValueError(message)


def _check_queue_size(value: object) -> int:
    """The queue size as the stock deque takes it: an integer (and a whole float, which it refuses)."""
    if isinstance(value, float):
        if not value.is_integer() or value > LARGEST_QUEUE_SIZE:
            raise TypeError(f"max_queue_size must be an integer, not {value!r}.")
        return int(value)
    try:
        number = operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        raise TypeError(f"max_queue_size must be an integer, not {type(value).__name__!r}.") from None
    if number <= 0:  # an object whose comparison and __index__ disagree
        raise ValueError("max_queue_size must be a positive integer.")
    if number > LARGEST_QUEUE_SIZE:
        raise OverflowError(f"max_queue_size must be at most {LARGEST_QUEUE_SIZE} (sys.maxsize).")
    return number


def _batch_size(value: object, queue: int, default: int) -> int:
    """A batch size the stock processor takes (any positive real number) as the whole number its worker needs.

    Stock's worker passes it to ``range()``, which fails on a fraction; a fraction here is rounded down and a
    NaN means the default, with a warning.
    """
    try:
        return operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        pass
    try:
        whole = math.floor(value)  # type: ignore[call-overload]
    except (ValueError, OverflowError):  # NaN; infinity
        usable = min(default, queue)
    except TypeError:
        raise TypeError(f"max_export_batch_size must be an integer, not {type(value).__name__!r}.") from None
    else:
        if whole == value:
            return int(whole)
        usable = max(1, int(whole))
    warn_once("max_export_batch_size", value, "not a whole number", usable)
    return usable


def _check_schedule_delay(value: object) -> float:
    """The delay as the stock processor takes it: whatever its ``BatchProcessor`` can divide by 1e3 into the seconds
    its worker waits. So numpy's bool and 0-d arrays, which are no ``numbers.Real``, are taken (``numpy.True_`` is
    1 ms, as ``True`` is), and a ``Decimal``, which refuses float arithmetic, is refused as there."""
    if isinstance(value, int) and value > LONGEST_MILLIS:
        return LONGEST_MILLIS  # float() raises OverflowError past 1e308
    try:
        float(value / 1e3)  # type: ignore[operator]  # what stock's division refuses (a Decimal) is refused
        delay = float(value)  # type: ignore[arg-type]
    except TypeError:
        raise TypeError(f"schedule_delay_millis must be a number, not {type(value).__name__!r}.") from None
    if math.isnan(delay):
        # The stock worker's Event.wait(nan) returns at once, so each item leaves as soon as it is queued;
        # a delay of 0 does the same here, without its busy loop.
        warn_once("schedule_delay_millis", value, "not a number", "0 (export each item as soon as it is queued)")
        return 0.0
    if delay <= 0:
        raise ValueError("schedule_delay_millis must be positive.")
    return min(delay, LONGEST_MILLIS)


# An OTEL_*_EXPORT_TIMEOUT under a second is told what it means: the stock processors parse it but never use it,
# and the OTLP exporters' own timeout variable is in seconds, so "10" there likely meant 10 s (revM: 0-512 of 1200
# spans delivered at exit behind 50 ms exports, where stock delivered all). spanbatch's own variables say _MS.
_SHORT_EXPORT_TIMEOUT_MILLIS = 1000
_SHORT_EXPORT_TIMEOUT_MEANING = (
    "is in milliseconds (OTEL_EXPORTER_OTLP_TIMEOUT is in seconds): an export running longer is given up (an async"
    " one cancelled; shutdown() and force_flush() stop waiting for any), its items dropped."
)


def _check_export_timeout(value: object, default: int) -> float:
    """A positive duration; anything else means ``default``.

    The stock processor never reads this argument (its shutdown waits 30 s, its flush until done),
    so no value changes its outcome: one we cannot use gives the default, with a warning.
    """
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        if past_longest_millis(value):
            return LONGEST_MILLIS
        if value > 0:  # type: ignore[operator]  # False for NaN
            return min(float(value), LONGEST_MILLIS)
    warn_once("export_timeout_millis", value, "not a positive number of milliseconds", f"the default {default}")
    return float(default)


def resolve_settings(
    max_queue_size: int | None = None,
    schedule_delay_millis: float | None = None,
    max_export_batch_size: int | None = None,
    export_timeout_millis: float | None = None,
    *,
    backend: str | None = None,
    registry: tuple[Setting[int], Setting[int], Setting[int], Setting[int]] = BATCH,
) -> BatchSettings:
    """Resolve the four batch settings, raising the stock processor's errors for bad arguments.

    ``registry`` names their variables and defaults (the span processor's by default, ``LOGS_BATCH`` for
    log records). With ``backend``, from a Pipeline backend's variables and defaults instead.
    """
    queue_setting, delay_setting, batch_setting, timeout_setting = registry if backend is None else BACKEND_BATCH

    def pick(setting: Setting[int], explicit: object) -> tuple[object, str | None]:
        """The value and where it came from: ``"argument"``, a variable, or None for the default."""
        if explicit is not None:
            return explicit, "argument"
        return read_with_source(setting, backend)

    queue_value, queue_source = pick(queue_setting, max_queue_size)
    delay_value = pick(delay_setting, schedule_delay_millis)[0]
    batch_value, batch_source = pick(batch_setting, max_export_batch_size)
    # The stock constructor's comparisons come first, in its order and with its messages; then its deque
    # refuses a queue size that is not an integer.
    _positive("max_queue_size", queue_value, "max_queue_size must be a positive integer.")
    _positive("schedule_delay_millis", delay_value, "schedule_delay_millis must be positive.")
    _positive("max_export_batch_size", batch_value, "max_export_batch_size must be a positive integer.")
    # Stock raises when either is an argument. A Pipeline's variables are spanbatch's own: there a variable
    # in the conflict is cut down with a warning (below), as a bad variable is, instead of raising.
    sources = (queue_source, batch_source)
    from_variable = backend is not None and any(source not in ("argument", None) for source in sources)
    if "argument" in sources and not from_variable and _greater(batch_value, queue_value):
        raise ValueError("max_export_batch_size must be less than or equal to max_queue_size.")
    queue = _check_queue_size(queue_value)
    delay = _check_schedule_delay(delay_value)
    batch = _batch_size(batch_value, queue, batch_setting.default)
    timeout_value, timeout_source = pick(timeout_setting, export_timeout_millis)
    timeout = _check_export_timeout(timeout_value, timeout_setting.default)
    if timeout_source is not None and timeout_source.startswith("OTEL_") and timeout < _SHORT_EXPORT_TIMEOUT_MILLIS:
        tell_once(timeout_source, timeout_value, _SHORT_EXPORT_TIMEOUT_MEANING)
    if batch > queue:  # a variable or default in the way: stock would raise, we use the queue size
        queue_name = queue_source if queue_source not in ("argument", None) else "max_queue_size"
        if batch_source == "argument":
            warn_once("max_export_batch_size", batch, f"larger than {queue_name}={queue}", queue)
        else:
            variable = batch_source or "the default max_export_batch_size"
            warn_once(variable, str(batch), f"larger than {queue_name}={queue}", queue)
        batch = queue
    return BatchSettings(queue, delay, batch, timeout)


def _greater(batch: object, queue: object) -> bool:
    try:
        return bool(batch > queue)  # type: ignore[operator]
    except TypeError:
        raise TypeError(
            f"max_export_batch_size ({type(batch).__name__}) cannot be compared with "
            f"max_queue_size ({type(queue).__name__})."
        ) from None
