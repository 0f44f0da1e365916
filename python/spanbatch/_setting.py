"""One setting: its variables, kind, default and range, and how it is read and checked.

Variables are read here only, through :func:`read` and the one parser of their kind. A setting
may name several variables (the first one set wins) and ``{NAME}`` in a variable stands for a
Pipeline backend's name. An empty variable counts as unset, as the OTel spec says (a blank one
too, except OpenTelemetry's ``text`` variables, which are taken as the SDK takes them). A value
that does not parse or is out of range is reported once per process, naming the variable and
the value; then the next variable set is used, else the default. A constructor argument of a
setting is checked by its kind (:func:`checked_argument`). The settings themselves are the table
in ``spanbatch._settings``.
"""

from __future__ import annotations

import logging
import math
import numbers
import operator
import os
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, Literal, TypeVar, cast

# The logger these warnings have always been written to: users' filters may name it.
logger = logging.getLogger("spanbatch._config")
# Where and how the SDK warns of one of its boolean variables set to neither true nor false.
_SDK_VARIABLES_LOGGER = logging.getLogger("opentelemetry.sdk.environment_variables._internal")
_SDK_FLAG_WARNING = "Invalid value for %s: %r. Expected 'true' or 'false'."
# Where the stock processors report an OTEL_BSP_* or OTEL_BLRP_* variable they cannot parse, and how.
_STOCK_LOGGERS = {
    "OTEL_BSP_": logging.getLogger("opentelemetry.sdk.trace.export"),
    "OTEL_BLRP_": logging.getLogger("opentelemetry.sdk._logs._internal.export"),
}
_STOCK_PARSE_ERROR = "Unable to parse value for %s as integer. Defaulting to %s."
_T = TypeVar("_T")
_V_co = TypeVar("_V_co", covariant=True)
_N = TypeVar("_N", int, float)

# The stock processor's queue is a deque, whose length must fit a C ssize_t; it refuses larger ones.
LARGEST_QUEUE_SIZE = sys.maxsize
# Longer waits mean "never" in practice, and would overflow the platform's timeouts.
LONGEST_MILLIS = 365 * 24 * 3600 * 1000.0

# Each (variable, value) pair is reported once per process, not once per processor.
_warned: set[tuple[str, ...]] = set()

Kind = Literal["integer", "count", "millis", "flag", "choice", "otel_flag", "text"]


@dataclass(frozen=True)
class Setting(Generic[_V_co]):
    """One setting: the variables that may set it (first wins), how they parse, and its default."""

    variables: tuple[str, ...]
    kind: Kind
    default: _V_co
    argument: str | None = None  # the constructor argument that, when given, wins over the variables
    least: int = 1  # integer kinds: 1 (positive) or 0
    largest: int | None = None
    choices: tuple[str, ...] = ()
    aliases: tuple[tuple[str, str], ...] = ()  # choice kinds: another name a variable may give a choice


def _first_time(*told: object) -> bool:
    """Whether this report (its variable, value, ...) is made for the first time in this process; it is from now."""
    key = tuple(map(repr, told))
    if key in _warned:
        return False
    _warned.add(key)
    return True


def warn_once(variable: str, value: object, problem: str, fallback: object) -> None:
    """Warns that ``variable`` (a variable or an argument) had a value we cannot use, once per value and what is
    used instead (exporters of two kinds fall back to limits of their own)."""
    if _first_time(variable, value, fallback):
        logger.warning("Ignoring %s=%r: %s; using %s instead.", variable, value, problem, fallback)


def tell_once(variable: str, value: object, meaning: str) -> None:
    """Warns, once per value, what a usable value of ``variable`` means where it likely was not meant so."""
    if _first_time(variable, value):
        logger.warning("%s=%r %s", variable, value, meaning)


class _Unusable(Exception):
    """A variable's value that its setting cannot take: the value as read, and why."""

    def __init__(self, value: str, problem: str) -> None:
        super().__init__(value, problem)
        self.value = value
        self.problem = problem


def _converted(text: str, convert: Callable[[str], _N], problem: str) -> _N:
    try:
        return convert(text)
    except ValueError as error:
        raise _Unusable(text, problem) from error


def _integer(raw: str, setting: Setting[object]) -> int:
    """A positive whole number, parsed as the stock processor parses ``OTEL_BSP_*`` (``int()``)."""
    value = _converted(raw, int, "not an integer")
    if value < setting.least:
        raise _Unusable(raw, "must be positive")
    return _at_most(value, raw, setting)


def _count(raw: str, setting: Setting[object]) -> int:
    text = raw.strip()
    value = _converted(text, int, "not an integer")
    if value < setting.least:
        raise _Unusable(str(value), _least_problem(setting))
    return _at_most(value, text, setting)


def _least_problem(setting: Setting[object]) -> str:
    return "must be positive" if setting.least > 0 else "must be zero or positive"


def _at_most(value: int, text: str, setting: Setting[object]) -> int:
    if setting.largest is not None and value > setting.largest:
        raise _Unusable(text, f"must be at most {setting.largest}")
    return value


def _millis(raw: str, setting: Setting[object]) -> float:
    """A positive number of milliseconds; longer than :data:`LONGEST_MILLIS` means that long."""
    text = raw.strip()
    value = _converted(text, float, "not a number")
    if math.isnan(value) or value <= 0:
        raise _Unusable(text, "must be positive")
    return min(value, LONGEST_MILLIS)


def _flag(raw: str, setting: Setting[object]) -> bool:
    """true/false (any case), 1/0, yes/no, on/off."""
    word = raw.strip().lower()
    if word in ("true", "1", "yes", "on"):
        return True
    if word in ("false", "0", "no", "off"):
        return False
    raise _Unusable(word, "not a boolean")


def _choice(raw: str, setting: Setting[object]) -> str:
    """One of the setting's choices or their aliases, in any case."""
    text = raw.strip()
    word = dict(setting.aliases).get(text.lower(), text.lower())
    if word not in setting.choices:
        names = [*setting.choices, *(alias for alias, _ in setting.aliases)]
        raise _Unusable(text, f"not one of {', '.join(names)}")
    return word


def _otel_flag(raw: str, setting: Setting[object]) -> bool:
    """OpenTelemetry's boolean: ``true`` or ``false`` in any case; anything else is unusable (the default)."""
    word = raw.strip().lower()
    if word not in ("true", "false"):
        raise _Unusable(raw, "neither true nor false")
    return word == "true"


def _text(raw: str, setting: Setting[object]) -> str:
    return raw


_PARSERS: dict[Kind, Callable[[str, Setting[object]], object]] = {
    "integer": _integer,
    "count": _count,
    "millis": _millis,
    "flag": _flag,
    "choice": _choice,
    "otel_flag": _otel_flag,
    "text": _text,
}


def _count_argument(name: str, value: object, setting: Setting[object]) -> int:
    if isinstance(value, bool):
        raise TypeError(f"{name} must be an integer, not 'bool'.")
    try:
        number = operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        raise TypeError(f"{name} must be an integer, not {type(value).__name__!r}.") from None
    if number < setting.least:
        raise ValueError(f"{name} {_least_problem(setting)}.")
    if setting.largest is not None and number > setting.largest:
        raise ValueError(f"{name} must be at most {setting.largest}.")
    return number


def past_longest_millis(value: object) -> bool:
    """Whether ``value`` is an exact number (an int, a Fraction) longer than :data:`LONGEST_MILLIS`: compared as it
    is, as it may be too large to become a float."""
    return isinstance(value, numbers.Rational) and value > LONGEST_MILLIS  # type: ignore[operator]


def _millis_argument(name: str, value: object, setting: Setting[object]) -> float:
    # Any real number: a value computed with numpy or fractions is one too (a bool is not taken for one).
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number, not {type(value).__name__!r}.")
    if past_longest_millis(value):
        return LONGEST_MILLIS
    if value <= 0 or math.isnan(value):
        raise ValueError(f"{name} must be positive.")
    return min(float(value), LONGEST_MILLIS)


def _flag_argument(name: str, value: object, setting: Setting[object]) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be a bool, not {type(value).__name__!r}.")
    return value


def _choice_argument(name: str, value: object, setting: Setting[object]) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, not {type(value).__name__!r}.")
    if value not in setting.choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, setting.choices))}, not {value!r}.")
    return value


# How a constructor argument of each kind is checked: a wrong type raises TypeError, a wrong
# value ValueError, as the stock processor's arguments do. (The four stock batch settings keep the
# stock processor's own checks and messages: see spanbatch._config.)
_ARGUMENT_CHECKS: dict[Kind, Callable[[str, object, Setting[object]], object]] = {
    "integer": _count_argument,
    "count": _count_argument,
    "millis": _millis_argument,
    "flag": _flag_argument,
    "choice": _choice_argument,
}


def checked_argument(setting: Setting[_T], value: object) -> _T:
    """The setting's constructor argument ``value``, checked for its kind and range."""
    name = setting.argument or setting.variables[0]
    # The check of the setting's kind returns the type of its default (checked by the registry's tests).
    return cast(_T, _ARGUMENT_CHECKS[setting.kind](name, value, setting))


def resolve(setting: Setting[_T], value: object) -> _T:
    """The setting's constructor argument when given (see :func:`checked_argument`), else :func:`read`."""
    return read(setting) if value is None else checked_argument(setting, value)


def _is_set(variable: str, setting: Setting[object], raw: str | None) -> bool:
    """Empty is unset; blank too, but for OpenTelemetry's own text variables, which the SDK takes as they are
    (spanbatch's, such as ``SPANBATCH_SPILL_DIR``, would otherwise name a directory of blanks)."""
    if setting.kind == "text" and variable.startswith("OTEL_"):
        return bool(raw)
    return bool(raw and raw.strip())


def _backend_key(backend: str) -> str:
    """``<NAME>`` in a backend's variables: its name upper-cased, other characters as ``_``."""
    return re.sub(r"[^A-Z0-9]", "_", backend.upper())


def _variables(setting: Setting[object], backend: str | None) -> tuple[str, ...]:
    if backend is None:
        return setting.variables
    return tuple(variable.replace("{NAME}", _backend_key(backend)) for variable in setting.variables)


def read_with_source(setting: Setting[_T], backend: str | None = None) -> tuple[_T, str | None]:
    """The setting's value and the variable it came from (None: the default). ``backend`` fills in ``{NAME}``."""
    variables = _variables(setting, backend)
    for position, variable in enumerate(variables):
        raw = os.environ.get(variable)
        if raw is None or not _is_set(variable, setting, raw):
            continue
        try:
            # The parser of the setting's kind returns the type of its default (checked by the registry's tests).
            return cast(_T, _PARSERS[setting.kind](raw, setting)), variable
        except _Unusable as unusable:
            _report(setting, variable, unusable, variables[position + 1 :])
    return setting.default, None


def read(setting: Setting[_T], backend: str | None = None) -> _T:
    """The setting's value from its variables, else its default."""
    return read_with_source(setting, backend)[0]


def _report(setting: Setting[object], variable: str, unusable: _Unusable, later: tuple[str, ...]) -> None:
    if setting.kind == "otel_flag":
        # The SDK's own warning for its switches, at each read as the stock processor's constructor gives it.
        _SDK_VARIABLES_LOGGER.warning(_SDK_FLAG_WARNING, variable, unusable.value)
        return
    stock_logger = next((log for prefix, log in _STOCK_LOGGERS.items() if variable.startswith(prefix)), None)
    if setting.kind == "integer" and stock_logger is not None and isinstance(unusable.__cause__, ValueError):
        # An OTEL_BSP_*/OTEL_BLRP_* value int() refused: the stock processor's own report, so users' log filters
        # still apply.
        if _first_time(variable, unusable.value):
            stock_logger.error(_STOCK_PARSE_ERROR, variable, setting.default, exc_info=unusable.__cause__)
        return
    if len(setting.variables) == 1:
        fallback: object = setting.default
    else:  # a chain names where the value comes from instead
        fallback = next((v for v in later if _is_set(v, setting, os.environ.get(v))), f"the default {setting.default}")
    warn_once(variable, unusable.value, unusable.problem, fallback)
