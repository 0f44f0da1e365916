"""Resolving batch settings: explicit argument > ``SPANBATCH_*`` > ``OTEL_BSP_*`` > default."""

from __future__ import annotations

import logging
import math
import operator
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TypeVar

logger = logging.getLogger(__name__)
_T = TypeVar("_T")

_DEFAULT_MAX_QUEUE_SIZE = 2048
_DEFAULT_SCHEDULE_DELAY_MILLIS = 5000
_DEFAULT_MAX_EXPORT_BATCH_SIZE = 512
_DEFAULT_EXPORT_TIMEOUT_MILLIS = 30000
# Queue slots are allocated up front, so a stray extra digit must not take the machine's memory.
LARGEST_QUEUE_SIZE = 1 << 22
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


def warn_once(variable: str, value: str, problem: str, fallback: object) -> None:
    if (variable, value) in _warned:
        return
    _warned.add((variable, value))
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


def _check_size(setting: Setting, value: object, message: str) -> int:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    try:
        number = operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        raise TypeError(f"{setting.argument} must be an integer, not {type(value).__name__!r}.") from None
    if number <= 0:
        raise ValueError(message)
    if setting.largest is not None and number > setting.largest:
        raise ValueError(f"{setting.argument} must be at most {setting.largest}.")
    return number


def _check_millis(setting: Setting, value: object, message: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{setting.argument} must be a number, not {type(value).__name__!r}.")
    if isinstance(value, int) and value > LONGEST_MILLIS:
        return LONGEST_MILLIS  # isnan() and float() raise OverflowError past 1e308
    if math.isnan(value) or value <= 0:
        raise ValueError(message)
    return min(float(value), LONGEST_MILLIS)


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

    queue = _check_size(
        MAX_QUEUE_SIZE, pick(MAX_QUEUE_SIZE, max_queue_size), "max_queue_size must be a positive integer."
    )
    delay = _check_millis(
        SCHEDULE_DELAY, pick(SCHEDULE_DELAY, schedule_delay_millis), "schedule_delay_millis must be positive."
    )
    batch = _check_size(
        MAX_EXPORT_BATCH_SIZE,
        pick(MAX_EXPORT_BATCH_SIZE, max_export_batch_size),
        "max_export_batch_size must be a positive integer.",
    )
    timeout = _check_millis(
        EXPORT_TIMEOUT, pick(EXPORT_TIMEOUT, export_timeout_millis), "export_timeout_millis must be positive."
    )
    if batch > queue:
        explicit = {sources["max_queue_size"], sources["max_export_batch_size"]} & {"argument"}
        if explicit:
            raise ValueError("max_export_batch_size must be less than or equal to max_queue_size.")
        variable = sources["max_export_batch_size"] or "the default max_export_batch_size"
        warn_once(variable, str(batch), f"larger than max_queue_size={queue}", queue)
        batch = queue
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
