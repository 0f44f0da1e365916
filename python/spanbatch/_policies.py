"""Export policies beyond the stock processor, each off (or the stock behaviour) by default.

Every policy resolves as explicit argument > ``SPANBATCH_*`` variable > default. A bad
argument raises ``ValueError``/``TypeError``, as the stock settings do; a bad variable
warns once and falls back to the default, so a typo in a deployment never breaks startup.
"""

from __future__ import annotations

import logging
import math
import operator
import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, TypedDict, cast

from spanbatch import _settings
from spanbatch._settings import LONGEST_MILLIS, read

logger = logging.getLogger("spanbatch")

_DEFAULT_MAX_RETRIES = _settings.MAX_RETRIES.default
_DEFAULT_RETRY_INITIAL_BACKOFF_MILLIS = _settings.RETRY_INITIAL_BACKOFF.default
_DEFAULT_RETRY_MAX_BACKOFF_MILLIS = _settings.RETRY_MAX_BACKOFF.default

_DEFAULT_BLOCK_TIMEOUT_MILLIS = _settings.BLOCK_TIMEOUT.default

DropPolicyName = Literal["oldest", "newest", "block"]


@dataclass(frozen=True)
class RetryPolicy:
    """How often a failed batch is exported again, and how long to back off in between."""

    max_retries: int = _DEFAULT_MAX_RETRIES
    initial_backoff_millis: float = _DEFAULT_RETRY_INITIAL_BACKOFF_MILLIS
    max_backoff_millis: float = _DEFAULT_RETRY_MAX_BACKOFF_MILLIS

    def backoff_millis(self, retry: int) -> float:
        """The pause before retry number ``retry`` (0-based): exponential, with full jitter.

        Full jitter spreads the retries of many processes that failed at the same moment
        over the whole window instead of sending them back in lockstep.
        """
        ceiling = min(self.max_backoff_millis, self.initial_backoff_millis * 2.0 ** min(retry, 64))
        return random.uniform(0.0, ceiling)


def _count_argument(name: str, value: object) -> int:
    if isinstance(value, bool):
        raise TypeError(f"{name} must be an integer, not 'bool'.")
    try:
        number = operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        raise TypeError(f"{name} must be an integer, not {type(value).__name__!r}.") from None
    if number < 0:
        raise ValueError(f"{name} must be zero or positive.")
    return number


def _millis_argument(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, not {type(value).__name__!r}.")
    if isinstance(value, int) and value > LONGEST_MILLIS:
        return LONGEST_MILLIS
    if math.isnan(value) or value <= 0:
        raise ValueError(f"{name} must be positive.")
    return min(float(value), LONGEST_MILLIS)


def resolve_retry(
    max_retries: int | None = None,
    retry_initial_backoff_millis: float | None = None,
    retry_max_backoff_millis: float | None = None,
) -> RetryPolicy:
    """``SPANBATCH_MAX_RETRIES``, ``SPANBATCH_RETRY_INITIAL_BACKOFF_MS``, ``SPANBATCH_RETRY_MAX_BACKOFF_MS``."""
    retries = read(_settings.MAX_RETRIES) if max_retries is None else _count_argument("max_retries", max_retries)
    initial = (
        read(_settings.RETRY_INITIAL_BACKOFF)
        if retry_initial_backoff_millis is None
        else _millis_argument("retry_initial_backoff_millis", retry_initial_backoff_millis)
    )
    ceiling = (
        read(_settings.RETRY_MAX_BACKOFF)
        if retry_max_backoff_millis is None
        else _millis_argument("retry_max_backoff_millis", retry_max_backoff_millis)
    )
    return RetryPolicy(retries, initial, max(initial, ceiling))


def resolve_linger(linger_millis: float | None = None) -> float | None:
    """``SPANBATCH_LINGER_MS``; None (the default) leaves partial batches to the schedule delay."""
    if linger_millis is None:
        return read(_settings.LINGER)
    return _millis_argument("linger_millis", linger_millis)


def resolve_drop_policy(drop_policy: str | None = None) -> str:
    """``SPANBATCH_DROP_POLICY`` (oldest, newest, block); the stock ``oldest`` by default.

    An argument is passed on as given: the core rejects an unknown one with ``ValueError``.
    """
    if drop_policy is not None:
        return drop_policy
    return read(_settings.DROP_POLICY)


def resolve_block_timeout(block_timeout_millis: float | None = None) -> float:
    """``SPANBATCH_BLOCK_TIMEOUT_MS``: how long ``on_end`` waits for room under ``block`` (100)."""
    if block_timeout_millis is None:
        return read(_settings.BLOCK_TIMEOUT)
    return _millis_argument("block_timeout_millis", block_timeout_millis)


def resolve_export_span_start(export_span_start: bool | None = None) -> bool:
    """``SPANBATCH_EXPORT_SPAN_START`` (off); logs the resolved mode at INFO."""
    if export_span_start is None:
        enabled = read(_settings.EXPORT_SPAN_START)
    elif isinstance(export_span_start, bool):
        enabled = export_span_start
    else:
        raise TypeError(f"export_span_start must be a bool, not {type(export_span_start).__name__!r}.")
    if enabled:
        logger.info("span-start export enabled: started spans are queued too (SPANBATCH_EXPORT_SPAN_START)")
    else:
        logger.info("span-start export disabled — end-only ingest (SPANBATCH_EXPORT_SPAN_START)")
    return enabled


def resolve_max_concurrent_exports(max_concurrent_exports: int | None = None) -> int:
    """``SPANBATCH_MAX_CONCURRENT_EXPORTS``: exports running at once per lane (1, as the spec asks)."""
    if max_concurrent_exports is None:
        return read(_settings.MAX_CONCURRENT_EXPORTS)
    value = _count_argument("max_concurrent_exports", max_concurrent_exports)
    if value == 0:
        raise ValueError("max_concurrent_exports must be positive.")
    if value > _settings.MOST_CONCURRENT_EXPORTS:
        raise ValueError(f"max_concurrent_exports must be at most {_settings.MOST_CONCURRENT_EXPORTS}.")
    return value


@dataclass(frozen=True)
class ExportPolicies:
    """Every export policy of a lane, resolved (see :func:`resolve_policies`)."""

    drop_policy: str = "oldest"
    block_timeout_millis: float = _DEFAULT_BLOCK_TIMEOUT_MILLIS
    retry: RetryPolicy = RetryPolicy()
    linger_millis: float | None = None
    max_concurrent_exports: int = 1
    export_span_start: bool = False


class PolicyArguments(TypedDict, total=False):
    """The export policies' keyword arguments: their one declaration.

    Every public processor spells them out again in its signature, in this order, for drop-in
    signatures and type checkers; tests/test_engine.py fails where one differs from this.
    """

    drop_policy: DropPolicyName | None
    block_timeout_millis: float | None
    max_retries: int | None
    retry_initial_backoff_millis: float | None
    retry_max_backoff_millis: float | None
    linger_millis: float | None
    export_span_start: bool | None
    max_concurrent_exports: int | None


def policy_arguments(arguments: Mapping[str, object]) -> PolicyArguments:
    """The policy keywords among a constructor's arguments (its ``locals()``), whatever else it takes."""
    return cast(PolicyArguments, {name: arguments[name] for name in PolicyArguments.__annotations__})


def resolve_policies(arguments: PolicyArguments) -> ExportPolicies:
    """The export policies from arguments, then ``SPANBATCH_*`` variables, then defaults."""
    return ExportPolicies(
        drop_policy=resolve_drop_policy(arguments.get("drop_policy")),
        block_timeout_millis=resolve_block_timeout(arguments.get("block_timeout_millis")),
        retry=resolve_retry(
            arguments.get("max_retries"),
            arguments.get("retry_initial_backoff_millis"),
            arguments.get("retry_max_backoff_millis"),
        ),
        linger_millis=resolve_linger(arguments.get("linger_millis")),
        max_concurrent_exports=resolve_max_concurrent_exports(arguments.get("max_concurrent_exports")),
        export_span_start=resolve_export_span_start(arguments.get("export_span_start")),
    )
