"""Resolving batch settings: explicit argument > ``SPANBATCH_*`` > ``OTEL_BSP_*`` > default."""

from __future__ import annotations

import math
import numbers
import operator
from dataclasses import dataclass

from spanbatch._setting import LARGEST_QUEUE_SIZE, LONGEST_MILLIS, Setting, read_with_source, warn_once
from spanbatch._settings import BACKEND_BATCH, BATCH


@dataclass(frozen=True)
class BatchSettings:
    max_queue_size: int
    schedule_delay_millis: float
    max_export_batch_size: int
    export_timeout_millis: float


def _whole_number(argument: str, value: object) -> int | float:
    """``value`` as an int; a float that is not a whole number (or NaN) stays a float."""
    if isinstance(value, float):
        return int(value) if value.is_integer() else value
    try:
        return operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        raise TypeError(f"{argument} must be an integer, not {type(value).__name__!r}.") from None


def _check_queue_size(value: object) -> int:
    number = _whole_number("max_queue_size", value)
    if isinstance(number, float):  # the stock deque takes integers only
        raise TypeError(f"max_queue_size must be an integer, not {number!r}.")
    if number <= 0:
        raise ValueError("max_queue_size must be a positive integer.")
    if number > LARGEST_QUEUE_SIZE:
        raise OverflowError(f"max_queue_size must be at most {LARGEST_QUEUE_SIZE} (sys.maxsize).")
    return number


def _usable_batch_size(number: int | float, queue: int, default: int) -> int:
    """A batch size the stock processor takes but cannot use (its worker needs an int) made whole, with a warning."""
    if isinstance(number, int):
        return number
    usable = min(default, queue) if math.isnan(number) else max(1, math.floor(number))
    warn_once("max_export_batch_size", number, "not a whole number of spans", usable)
    return usable


def _check_schedule_delay(value: object) -> float:
    if not isinstance(value, numbers.Real):
        raise TypeError(f"schedule_delay_millis must be a number, not {type(value).__name__!r}.")
    if isinstance(value, int) and value > LONGEST_MILLIS:
        return LONGEST_MILLIS  # float() raises OverflowError past 1e308
    delay = float(value)
    if math.isnan(delay):
        # The stock worker's Event.wait(nan) returns at once, so each span leaves as soon as it is queued;
        # a delay of 0 does the same here, without its busy loop.
        warn_once("schedule_delay_millis", value, "not a number", "0 (export each span as soon as it is queued)")
        return 0.0
    if delay <= 0:
        raise ValueError("schedule_delay_millis must be positive.")
    return min(delay, LONGEST_MILLIS)


def _check_export_timeout(value: object, default: int) -> float:
    """A positive duration; anything else means ``default``.

    The stock processor never reads this argument (its shutdown waits 30 s, its flush until done),
    so no value changes its outcome: one we cannot use gives the default, with a warning.
    """
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        if isinstance(value, int) and value > LONGEST_MILLIS:
            return LONGEST_MILLIS
        if float(value) > 0:  # False for NaN
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

    # Checked in the stock processor's order, with its messages.
    queue_value, queue_source = pick(queue_setting, max_queue_size)
    queue = _check_queue_size(queue_value)
    delay = _check_schedule_delay(pick(delay_setting, schedule_delay_millis)[0])
    batch_value, batch_source = pick(batch_setting, max_export_batch_size)
    raw_batch = _whole_number("max_export_batch_size", batch_value)
    if raw_batch <= 0:
        raise ValueError("max_export_batch_size must be a positive integer.")
    timeout = _check_export_timeout(pick(timeout_setting, export_timeout_millis)[0], timeout_setting.default)
    if raw_batch > queue:
        if "argument" in (queue_source, batch_source):
            raise ValueError("max_export_batch_size must be less than or equal to max_queue_size.")
        variable = batch_source or "the default max_export_batch_size"
        warn_once(variable, str(raw_batch), f"larger than max_queue_size={queue}", queue)
        raw_batch = queue
    batch = _usable_batch_size(raw_batch, queue, batch_setting.default)
    return BatchSettings(queue, delay, batch, timeout)
