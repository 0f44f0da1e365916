"""Resolving batch settings: explicit argument > ``SPANBATCH_*`` > ``OTEL_BSP_*`` > default."""

from __future__ import annotations

import logging
import math
import numbers
import operator
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TypeVar

logger = logging.getLogger(__name__)
# Where the stock processor reports an OTEL_BSP_* variable it cannot parse, and how.
_stock_logger = logging.getLogger("opentelemetry.sdk.trace.export")
_STOCK_PARSE_ERROR = "Unable to parse value for %s as integer. Defaulting to %s."
_T = TypeVar("_T")

_DEFAULT_MAX_QUEUE_SIZE = 2048
_DEFAULT_SCHEDULE_DELAY_MILLIS = 5000
_DEFAULT_MAX_EXPORT_BATCH_SIZE = 512
_DEFAULT_EXPORT_TIMEOUT_MILLIS = 30000
# The stock processor's queue is a deque, whose length must fit a C ssize_t; it refuses larger ones.
LARGEST_QUEUE_SIZE = sys.maxsize
# Longer waits mean "never" in practice, and would overflow the platform's timeouts.
LONGEST_MILLIS = 365 * 24 * 3600 * 1000.0

# Each (variable, value) pair is reported once per process, not once per processor.
_warned: set[tuple[str, str]] = set()


@dataclass(frozen=True)
class BatchSettings:
    max_queue_size: int
    schedule_delay_millis: float
    max_export_batch_size: int
    export_timeout_millis: float


@dataclass(frozen=True)
class Setting:
    """One tunable: its argument name, the variables that may set it, and its default."""

    argument: str
    variables: tuple[str, ...]
    default: int
    largest: int | None = None


MAX_QUEUE_SIZE = Setting(
    "max_queue_size",
    ("SPANBATCH_MAX_QUEUE_SIZE", "OTEL_BSP_MAX_QUEUE_SIZE"),
    _DEFAULT_MAX_QUEUE_SIZE,
    LARGEST_QUEUE_SIZE,
)
SCHEDULE_DELAY = Setting(
    "schedule_delay_millis",
    ("SPANBATCH_SCHEDULE_DELAY_MS", "OTEL_BSP_SCHEDULE_DELAY"),
    _DEFAULT_SCHEDULE_DELAY_MILLIS,
)
MAX_EXPORT_BATCH_SIZE = Setting(
    "max_export_batch_size",
    ("SPANBATCH_MAX_EXPORT_BATCH_SIZE", "OTEL_BSP_MAX_EXPORT_BATCH_SIZE"),
    _DEFAULT_MAX_EXPORT_BATCH_SIZE,
    LARGEST_QUEUE_SIZE,
)
EXPORT_TIMEOUT = Setting(
    "export_timeout_millis",
    ("SPANBATCH_EXPORT_TIMEOUT_MS", "OTEL_BSP_EXPORT_TIMEOUT"),
    _DEFAULT_EXPORT_TIMEOUT_MILLIS,
)


def warn_once(variable: str, value: object, problem: str, fallback: object) -> None:
    """Warns that ``variable`` (a variable or an argument) had a value we cannot use, once per value."""
    if (variable, repr(value)) in _warned:
        return
    _warned.add((variable, repr(value)))
    logger.warning("Ignoring %s=%r: %s; using %s instead.", variable, value, problem, fallback)


def _from_environment(setting: Setting, variables: tuple[str, ...]) -> tuple[int, str | None]:
    """The first valid value among ``variables``, else the default; and the variable it came from."""
    for position, variable in enumerate(variables):
        raw = os.environ.get(variable)
        # The OTel spec treats an empty variable as unset.
        if raw is None or not raw.strip():
            continue
        later = variables[position + 1 :]
        fallback = next((v for v in later if os.environ.get(v, "").strip()), f"the default {setting.default}")
        try:
            value = int(raw)
        except ValueError:
            if variable.startswith("OTEL_BSP_") and not later:
                # The stock processor's own report for the same fallback, so users' log filters still apply.
                if (variable, repr(raw)) not in _warned:
                    _warned.add((variable, repr(raw)))
                    _stock_logger.exception(_STOCK_PARSE_ERROR, variable, setting.default)
            else:
                warn_once(variable, raw, "not an integer", fallback)
            continue
        if value <= 0:
            warn_once(variable, raw, "must be positive", fallback)
            continue
        if setting.largest is not None and value > setting.largest:
            warn_once(variable, raw, f"must be at most {setting.largest}", fallback)
            continue
        return value, variable
    return setting.default, None


def _whole_number(setting: Setting, value: object) -> int | float:
    """``value`` as an int; a float that is not a whole number (or NaN) stays a float."""
    if isinstance(value, float):
        return int(value) if value.is_integer() else value
    try:
        return operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        raise TypeError(f"{setting.argument} must be an integer, not {type(value).__name__!r}.") from None


def _check_queue_size(value: object) -> int:
    number = _whole_number(MAX_QUEUE_SIZE, value)
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
    variables: Mapping[Setting, tuple[str, ...]] | None = None,
    defaults: Mapping[Setting, int] | None = None,
) -> BatchSettings:
    """Resolve the four batch settings, raising the stock processor's errors for bad arguments.

    ``variables`` replaces a setting's variables (most specific first), ``defaults`` its default.
    """
    sources: dict[str, str | None] = {}

    def pick(setting: Setting, explicit: object) -> object:
        if explicit is not None:
            sources[setting.argument] = "argument"
            return explicit
        tuned = Setting(
            setting.argument,
            (variables or {}).get(setting, setting.variables),
            (defaults or {}).get(setting, setting.default),
            setting.largest,
        )
        value, variable = _from_environment(tuned, tuned.variables)
        sources[setting.argument] = variable
        return value

    # Checked in the stock processor's order, with its messages.
    queue = _check_queue_size(pick(MAX_QUEUE_SIZE, max_queue_size))
    delay = _check_schedule_delay(pick(SCHEDULE_DELAY, schedule_delay_millis))
    raw_batch = _whole_number(MAX_EXPORT_BATCH_SIZE, pick(MAX_EXPORT_BATCH_SIZE, max_export_batch_size))
    if raw_batch <= 0:
        raise ValueError("max_export_batch_size must be a positive integer.")
    timeout_default = (defaults or {}).get(EXPORT_TIMEOUT, EXPORT_TIMEOUT.default)
    timeout = _check_export_timeout(pick(EXPORT_TIMEOUT, export_timeout_millis), timeout_default)
    if raw_batch > queue:
        explicit = {sources["max_queue_size"], sources["max_export_batch_size"]} & {"argument"}
        if explicit:
            raise ValueError("max_export_batch_size must be less than or equal to max_queue_size.")
        variable = sources["max_export_batch_size"] or "the default max_export_batch_size"
        warn_once(variable, str(raw_batch), f"larger than max_queue_size={queue}", queue)
        raw_batch = queue
    batch_default = (defaults or {}).get(MAX_EXPORT_BATCH_SIZE, MAX_EXPORT_BATCH_SIZE.default)
    batch = _usable_batch_size(raw_batch, queue, batch_default)
    return BatchSettings(queue, delay, batch, timeout)


ALL_SETTINGS = (MAX_QUEUE_SIZE, SCHEDULE_DELAY, MAX_EXPORT_BATCH_SIZE, EXPORT_TIMEOUT)


def env_flag(variable: str, default: bool) -> bool:
    """A boolean variable: true/false (any case), 1/0, yes/no, on/off; anything else warns."""
    raw = os.environ.get(variable, "").strip().lower()
    if not raw:
        return default
    if raw in ("true", "1", "yes", "on"):
        return True
    if raw in ("false", "0", "no", "off"):
        return False
    warn_once(variable, raw, "not a boolean", default)
    return default


def env_millis(variable: str, default: _T) -> float | _T:
    """A positive duration in milliseconds from ``variable``; a bad value warns once and gives ``default``."""
    raw = os.environ.get(variable, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        warn_once(variable, raw, "not a number", default)
        return default
    if math.isnan(value) or value <= 0:
        warn_once(variable, raw, "must be positive", default)
        return default
    return min(value, LONGEST_MILLIS)
