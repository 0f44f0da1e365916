"""Every environment variable spanbatch reads, in one table: its kind, default and range.

Variables are read here only, through :func:`read` and the one parser of their kind. A setting
may name several variables (the first one set wins) and ``{NAME}`` in a variable stands for a
Pipeline backend's name. An empty variable counts as unset, as the OTel spec says (a blank one
too, except OpenTelemetry's ``text`` variables, which are taken as the SDK takes them). A value
that does not parse or is out of range is reported once per process, naming the variable and
the value; then the next variable set is used, else the default.
"""

from __future__ import annotations

import logging
import math
import operator
import os
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Generic, Literal, TypedDict, TypeVar, cast

# The logger these warnings have always been written to: users' filters may name it.
logger = logging.getLogger("spanbatch._config")
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
_warned: set[tuple[str, str]] = set()

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


def _for_backend(setting: Setting[int], default: int) -> Setting[int]:
    """A Pipeline backend's form: ``SPANBATCH_<NAME>_X``, then ``SPANBATCH_X``, then a default of its own."""
    ours = setting.variables[0]
    return replace(setting, variables=(ours.replace("SPANBATCH_", "SPANBATCH_{NAME}_", 1), ours), default=default)


# BatchSpanProcessor's batch settings: spanbatch's variable, then the stock one, with the stock defaults.
MAX_QUEUE_SIZE = Setting(
    ("SPANBATCH_MAX_QUEUE_SIZE", "OTEL_BSP_MAX_QUEUE_SIZE"),
    "integer",
    2048,
    "max_queue_size",
    largest=LARGEST_QUEUE_SIZE,
)
SCHEDULE_DELAY = Setting(
    ("SPANBATCH_SCHEDULE_DELAY_MS", "OTEL_BSP_SCHEDULE_DELAY"), "integer", 5000, "schedule_delay_millis"
)
MAX_EXPORT_BATCH_SIZE = Setting(
    ("SPANBATCH_MAX_EXPORT_BATCH_SIZE", "OTEL_BSP_MAX_EXPORT_BATCH_SIZE"),
    "integer",
    512,
    "max_export_batch_size",
    largest=LARGEST_QUEUE_SIZE,
)
EXPORT_TIMEOUT = Setting(
    ("SPANBATCH_EXPORT_TIMEOUT_MS", "OTEL_BSP_EXPORT_TIMEOUT"), "integer", 30000, "export_timeout_millis"
)
BATCH = (MAX_QUEUE_SIZE, SCHEDULE_DELAY, MAX_EXPORT_BATCH_SIZE, EXPORT_TIMEOUT)
# A Pipeline backend's, tuned for agents and services rather than the spec's 5 s: traces show up within a second.
BACKEND_BATCH = (
    _for_backend(MAX_QUEUE_SIZE, 2048),
    _for_backend(SCHEDULE_DELAY, 1000),
    _for_backend(MAX_EXPORT_BATCH_SIZE, 512),
    _for_backend(EXPORT_TIMEOUT, 30000),
)

# BatchLogRecordProcessor's: SPANBATCH_LOGS_*, then the stock OTEL_BLRP_* variable, with the stock defaults.
LOGS_BATCH = (
    Setting(
        ("SPANBATCH_LOGS_MAX_QUEUE_SIZE", "OTEL_BLRP_MAX_QUEUE_SIZE"),
        "integer",
        2048,
        "max_queue_size",
        largest=LARGEST_QUEUE_SIZE,
    ),
    Setting(("SPANBATCH_LOGS_SCHEDULE_DELAY_MS", "OTEL_BLRP_SCHEDULE_DELAY"), "integer", 1000, "schedule_delay_millis"),
    Setting(
        ("SPANBATCH_LOGS_MAX_EXPORT_BATCH_SIZE", "OTEL_BLRP_MAX_EXPORT_BATCH_SIZE"),
        "integer",
        512,
        "max_export_batch_size",
        largest=LARGEST_QUEUE_SIZE,
    ),
    Setting(
        ("SPANBATCH_LOGS_EXPORT_TIMEOUT_MS", "OTEL_BLRP_EXPORT_TIMEOUT"), "integer", 30000, "export_timeout_millis"
    ),
)

# Export policies, each off or the stock behaviour by default. A policy is declared here only: its
# setting (variable and keyword), its keyword in PolicyArguments (SpanPolicyArguments for spans only)
# and its field in ExportPolicies, in the same order; resolution (spanbatch._policies) and the public
# signatures derive from these, and tests/test_engine.py fails where the three differ.
DropPolicyName = Literal["oldest", "newest", "block"]
# The OTEL_BSP_* queue-full variables are those of an open specification proposal
# (opentelemetry-specification #5181), whose "drop" is the stock behaviour: the oldest span goes.
DROP_POLICY = Setting(
    ("SPANBATCH_DROP_POLICY", "OTEL_BSP_ON_QUEUE_FULL"),
    "choice",
    "oldest",
    "drop_policy",
    choices=("oldest", "newest", "block"),
    aliases=(("drop", "oldest"),),
)
BLOCK_TIMEOUT = Setting(
    ("SPANBATCH_BLOCK_TIMEOUT_MS", "OTEL_BSP_BLOCK_ON_QUEUE_FULL_TIMEOUT"), "millis", 100.0, "block_timeout_millis"
)
MAX_RETRIES = Setting(("SPANBATCH_MAX_RETRIES",), "count", 0, "max_retries", least=0)
RETRY_INITIAL_BACKOFF = Setting(
    ("SPANBATCH_RETRY_INITIAL_BACKOFF_MS",), "millis", 100.0, "retry_initial_backoff_millis"
)
RETRY_MAX_BACKOFF = Setting(("SPANBATCH_RETRY_MAX_BACKOFF_MS",), "millis", 5000.0, "retry_max_backoff_millis")
LINGER: Setting[float | None] = Setting(("SPANBATCH_LINGER_MS",), "millis", None, "linger_millis")
# One export at a time per exporter, as the OpenTelemetry specification asks.
# Each concurrent export is a thread of its own; more than this is a typo, not a plan.
MOST_CONCURRENT_EXPORTS = 256
MAX_CONCURRENT_EXPORTS = Setting(
    ("SPANBATCH_MAX_CONCURRENT_EXPORTS",), "count", 1, "max_concurrent_exports", largest=MOST_CONCURRENT_EXPORTS
)
# Spans only, last: a span processor's keywords are every signal's, then these.
EXPORT_SPAN_START = Setting(("SPANBATCH_EXPORT_SPAN_START",), "flag", False, "export_span_start")
POLICIES: tuple[Setting[object], ...] = (
    DROP_POLICY,
    BLOCK_TIMEOUT,
    MAX_RETRIES,
    RETRY_INITIAL_BACKOFF,
    RETRY_MAX_BACKOFF,
    LINGER,
    MAX_CONCURRENT_EXPORTS,
    EXPORT_SPAN_START,
)


# A log processor's: the stock OTEL_BSP_* variables of a policy become the OTEL_BLRP_* ones.
LOG_POLICIES: tuple[Setting[object], ...] = tuple(
    replace(setting, variables=tuple(v.replace("OTEL_BSP_", "OTEL_BLRP_") for v in setting.variables))
    for setting in POLICIES
    if setting is not EXPORT_SPAN_START
)


class PolicyArguments(TypedDict, total=False):
    """The export policies' keyword arguments, as every public processor takes them (None: not given)."""

    drop_policy: DropPolicyName | None
    block_timeout_millis: float | None
    max_retries: int | None
    retry_initial_backoff_millis: float | None
    retry_max_backoff_millis: float | None
    linger_millis: float | None
    max_concurrent_exports: int | None


class SpanPolicyArguments(PolicyArguments, total=False):
    """A span processor's: every signal's policies, then those of spans only."""

    export_span_start: bool | None


@dataclass(frozen=True)
class ExportPolicies:
    """Every export policy of a lane, resolved: argument > ``SPANBATCH_*`` variable > default."""

    drop_policy: DropPolicyName = "oldest"
    """Which span a full queue loses: ``oldest`` (stock), ``newest``, or ``block`` (``on_end`` waits)."""
    block_timeout_millis: float = BLOCK_TIMEOUT.default
    """How long ``on_end`` waits for room under ``block`` before the span counts as ``queue_full``."""
    max_retries: int = MAX_RETRIES.default
    """How many times a batch whose export failed or raised is exported again."""
    retry_initial_backoff_millis: float = RETRY_INITIAL_BACKOFF.default
    """The ceiling of the first retry's random pause, doubled per retry."""
    retry_max_backoff_millis: float = RETRY_MAX_BACKOFF.default
    """The most a retry's pause may reach (below the initial one, the initial one)."""
    linger_millis: float | None = LINGER.default
    """The latency cap of a partial batch; the earlier of it and the schedule delay wins."""
    max_concurrent_exports: int = MAX_CONCURRENT_EXPORTS.default
    """Batches a lane may export at once; above 1 only for exporters documented as safe for it."""
    export_span_start: bool = EXPORT_SPAN_START.default
    """Spans: whether ``on_start`` queues the started span too (end-only ingest when off)."""


# spanbatch's OTLP exporters: no request larger than this (serialized); gRPC servers refuse over 4 MiB by default.
# The OTLP/HTTP exporter's own default is its max_request_size (it reads the source to tell them apart).
MAX_EXPORT_BATCH_BYTES = Setting(
    ("SPANBATCH_MAX_EXPORT_BATCH_BYTES",), "integer", 4 * 1024 * 1024, "max_export_batch_bytes"
)

# spanbatch's OTLP exporters: the opt-in disk spill (see ``exporter._spilling``).
SPILL_DIR: Setting[str | None] = Setting(("SPANBATCH_SPILL_DIR",), "text", None, "spill_dir")
SPILL_MAX_BYTES = Setting(("SPANBATCH_SPILL_MAX_BYTES",), "integer", 256 * 1024 * 1024, "spill_max_bytes")

# The process: exit, signals, debug log, sessions.
EXIT_TIMEOUT = Setting(("SPANBATCH_EXIT_TIMEOUT_MS",), "millis", 5000.0)
FLUSH_ON_SIGTERM = Setting(("SPANBATCH_FLUSH_ON_SIGTERM",), "flag", False)
DEBUG = Setting(("SPANBATCH_DEBUG",), "flag", False)
FORCE_FLUSH_ON_SESSION_END = Setting(("SPANBATCH_FORCE_FLUSH_ON_SESSION_END",), "flag", True)

# OpenTelemetry's own, read to do what the SDK does with them.
INTERNAL_METRICS = Setting(("OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED",), "otel_flag", False)
CONFIGURATOR: Setting[str | None] = Setting(("OTEL_PYTHON_CONFIGURATOR",), "text", None)
CONFIG_FILE: Setting[str | None] = Setting(("OTEL_CONFIG_FILE",), "text", None)
# Either makes the stock OTLP/HTTP exporter build its session from a credential provider.
HTTP_CREDENTIAL_PROVIDER: Setting[str | None] = Setting(
    (
        "OTEL_PYTHON_EXPORTER_OTLP_HTTP_CREDENTIAL_PROVIDER",
        "OTEL_PYTHON_EXPORTER_OTLP_HTTP_TRACES_CREDENTIAL_PROVIDER",
    ),
    "text",
    None,
)

SETTINGS: tuple[Setting[object], ...] = (
    *BATCH,
    *BACKEND_BATCH,
    *LOGS_BATCH,
    *POLICIES,
    *(setting for setting in LOG_POLICIES if setting not in POLICIES),
    MAX_EXPORT_BATCH_BYTES,
    SPILL_DIR,
    SPILL_MAX_BYTES,
    EXIT_TIMEOUT,
    FLUSH_ON_SIGTERM,
    DEBUG,
    FORCE_FLUSH_ON_SESSION_END,
    INTERNAL_METRICS,
    CONFIGURATOR,
    CONFIG_FILE,
    HTTP_CREDENTIAL_PROVIDER,
)


def warn_once(variable: str, value: object, problem: str, fallback: object) -> None:
    """Warns that ``variable`` (a variable or an argument) had a value we cannot use, once per value."""
    if (variable, repr(value)) in _warned:
        return
    _warned.add((variable, repr(value)))
    logger.warning("Ignoring %s=%r: %s; using %s instead.", variable, value, problem, fallback)


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
    if value < 0:
        raise _Unusable(text, "must be zero or positive")
    if value < setting.least:
        raise _Unusable(str(value), "must be positive")
    return _at_most(value, text, setting)


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
    """OpenTelemetry's boolean: ``true`` in any case, and anything else false."""
    return raw.strip().lower() == "true"


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
    if number < 0:
        raise ValueError(f"{name} must be zero or positive.")
    if number < setting.least:
        raise ValueError(f"{name} must be positive.")
    if setting.largest is not None and number > setting.largest:
        raise ValueError(f"{name} must be at most {setting.largest}.")
    return number


def _millis_argument(name: str, value: object, setting: Setting[object]) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, not {type(value).__name__!r}.")
    if isinstance(value, int) and value > LONGEST_MILLIS:  # it may be too large to become a float
        return LONGEST_MILLIS
    if math.isnan(value) or value <= 0:
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


def _is_set(setting: Setting[object], raw: str | None) -> bool:
    return bool(raw) if setting.kind == "text" else bool(raw and raw.strip())


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
        if raw is None or not _is_set(setting, raw):
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
    stock_logger = next((log for prefix, log in _STOCK_LOGGERS.items() if variable.startswith(prefix)), None)
    if setting.kind == "integer" and stock_logger is not None and isinstance(unusable.__cause__, ValueError):
        # An OTEL_BSP_*/OTEL_BLRP_* value int() refused: the stock processor's own report, so users' log filters
        # still apply.
        if (variable, repr(unusable.value)) not in _warned:
            _warned.add((variable, repr(unusable.value)))
            stock_logger.error(_STOCK_PARSE_ERROR, variable, setting.default, exc_info=unusable.__cause__)
        return
    if len(setting.variables) == 1:
        fallback: object = setting.default
    else:  # a chain names where the value comes from instead
        fallback = next((v for v in later if _is_set(setting, os.environ.get(v))), f"the default {setting.default}")
    warn_once(variable, unusable.value, unusable.problem, fallback)
