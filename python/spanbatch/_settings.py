"""Every environment variable spanbatch reads, in one table: its kind, default and range; and the export
policies, each declared once (its setting, its keyword, its resolved field).

How a setting is read and checked is ``spanbatch._setting``: ``read(_settings.DEBUG)``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal, NamedTuple, TypedDict

from spanbatch._dataclass_repr import repr_of
from spanbatch._setting import LARGEST_QUEUE_SIZE, Setting


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

    def shown(self, keywords: type[PolicyArguments]) -> str:
        """This repr with only the policies ``keywords`` names (a processor's own): a log processor has no
        span-start export to show."""
        return repr_of(self, keywords.__annotations__)


# spanbatch's OTLP exporters: no request larger than this (serialized); gRPC servers refuse over 4 MiB by default.
# The OTLP/HTTP exporter's own default is its max_request_size (it reads the source to tell them apart).
# The native encoder holds the limit as a machine-size integer: a larger one would crash its constructor.
MAX_EXPORT_BATCH_BYTES = Setting(
    ("SPANBATCH_MAX_EXPORT_BATCH_BYTES",),
    "integer",
    4 * 1024 * 1024,
    "max_export_batch_bytes",
    largest=LARGEST_QUEUE_SIZE,
)

# spanbatch's OTLP exporters: the opt-in disk spill (see ``exporter._spilling``).
SPILL_DIR: Setting[str | None] = Setting(("SPANBATCH_SPILL_DIR",), "text", None, "spill_dir")
SPILL_MAX_BYTES = Setting(("SPANBATCH_SPILL_MAX_BYTES",), "integer", 256 * 1024 * 1024, "spill_max_bytes")
SPILL_KEY: Setting[str | None] = Setting(("SPANBATCH_SPILL_KEY",), "text", None, "spill_key")

# The process: exit, signals, debug log, sessions.
EXIT_TIMEOUT = Setting(("SPANBATCH_EXIT_TIMEOUT_MS",), "millis", 5000.0)
FLUSH_ON_SIGTERM = Setting(("SPANBATCH_FLUSH_ON_SIGTERM",), "flag", False)
DEBUG = Setting(("SPANBATCH_DEBUG",), "flag", False)
FORCE_FLUSH_ON_SESSION_END = Setting(("SPANBATCH_FORCE_FLUSH_ON_SESSION_END",), "flag", True)

# OpenTelemetry's own, read to do what the SDK does with them.
INTERNAL_METRICS = Setting(("OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED",), "otel_flag", False)
CONFIGURATOR: Setting[str | None] = Setting(("OTEL_PYTHON_CONFIGURATOR",), "text", None)
CONFIG_FILE: Setting[str | None] = Setting(("OTEL_CONFIG_FILE",), "text", None)
# The exporters the SDK's set-up builds per signal: whether a configurator spanbatch ran took its processors.
TRACES_EXPORTER: Setting[str | None] = Setting(("OTEL_TRACES_EXPORTER",), "text", None)
LOGS_EXPORTER: Setting[str | None] = Setting(("OTEL_LOGS_EXPORTER",), "text", None)
# Either makes the stock OTLP/HTTP exporter build its session from a credential provider.
HTTP_CREDENTIAL_PROVIDER: Setting[str | None] = Setting(
    (
        "OTEL_PYTHON_EXPORTER_OTLP_HTTP_CREDENTIAL_PROVIDER",
        "OTEL_PYTHON_EXPORTER_OTLP_HTTP_TRACES_CREDENTIAL_PROVIDER",
    ),
    "text",
    None,
)
# The same for the stock OTLP/HTTP log exporter.
HTTP_LOGS_CREDENTIAL_PROVIDER: Setting[str | None] = Setting(
    (
        "OTEL_PYTHON_EXPORTER_OTLP_HTTP_CREDENTIAL_PROVIDER",
        "OTEL_PYTHON_EXPORTER_OTLP_HTTP_LOGS_CREDENTIAL_PROVIDER",
    ),
    "text",
    None,
)


class GrpcCredentialVariables(NamedTuple):
    """Where the stock OTLP/gRPC exporters take their channel credentials from when given none: a provider (an
    entry point's, which spanbatch cannot read), else certificate files (which key a spill subdirectory)."""

    provider: Setting[str | None]
    certificate: Setting[str | None]
    client_key: Setting[str | None]
    client_certificate: Setting[str | None]


def _grpc_credentials(signal: str) -> GrpcCredentialVariables:
    def text(variable: str) -> Setting[str | None]:
        return Setting((variable,), "text", None)

    return GrpcCredentialVariables(
        text(f"OTEL_PYTHON_EXPORTER_OTLP_GRPC_{signal}CREDENTIAL_PROVIDER"),
        text(f"OTEL_EXPORTER_OTLP_{signal}CERTIFICATE"),
        text(f"OTEL_EXPORTER_OTLP_{signal}CLIENT_KEY"),
        text(f"OTEL_EXPORTER_OTLP_{signal}CLIENT_CERTIFICATE"),
    )


# The general ones, and each signal's (read first, as the stock exporter does, when its certificate is set).
GRPC_CREDENTIALS = {signal: _grpc_credentials(signal) for signal in ("", "TRACES_", "LOGS_")}

SETTINGS: tuple[Setting[object], ...] = (
    *BATCH,
    *BACKEND_BATCH,
    *LOGS_BATCH,
    *POLICIES,
    *(setting for setting in LOG_POLICIES if setting not in POLICIES),
    MAX_EXPORT_BATCH_BYTES,
    SPILL_DIR,
    SPILL_MAX_BYTES,
    SPILL_KEY,
    EXIT_TIMEOUT,
    FLUSH_ON_SIGTERM,
    DEBUG,
    FORCE_FLUSH_ON_SESSION_END,
    INTERNAL_METRICS,
    CONFIGURATOR,
    CONFIG_FILE,
    TRACES_EXPORTER,
    LOGS_EXPORTER,
    HTTP_CREDENTIAL_PROVIDER,
    HTTP_LOGS_CREDENTIAL_PROVIDER,
    *(setting for variables in GRPC_CREDENTIALS.values() for setting in variables),
)
