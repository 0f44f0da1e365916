"""Export policies beyond the stock processor: resolved once per processor, and the retry schedule.

Each policy is declared in ``spanbatch._settings`` only (its variable, keyword and resolved field);
this module derives the rest from that declaration: resolution (explicit argument >
``SPANBATCH_*`` variable > default) and the keyword-only parameters the public constructors show.
A bad argument raises ``ValueError``/``TypeError``, as the stock settings do; a bad variable warns
once and falls back to the default, so a typo in a deployment never breaks startup.
"""

from __future__ import annotations

import inspect
import logging
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from spanbatch import _settings
from spanbatch._safe_log import logged
from spanbatch._setting import Setting, resolve
from spanbatch._settings import POLICIES, ExportPolicies, SpanPolicyArguments

logger = logging.getLogger("spanbatch")

_F = TypeVar("_F", bound=Callable[..., None])


@dataclass(frozen=True)
class RetryPolicy:
    """How often a failed batch is exported again, and how long to back off in between."""

    max_retries: int = _settings.MAX_RETRIES.default
    initial_backoff_millis: float = _settings.RETRY_INITIAL_BACKOFF.default
    max_backoff_millis: float = _settings.RETRY_MAX_BACKOFF.default

    @classmethod
    def of(cls, policies: ExportPolicies) -> RetryPolicy:
        """The lane's retries; a ceiling below the initial pause is the initial pause."""
        initial = policies.retry_initial_backoff_millis
        return cls(policies.max_retries, initial, max(initial, policies.retry_max_backoff_millis))

    def backoff_millis(self, retry: int) -> float:
        """The pause before retry number ``retry`` (0-based): exponential, with full jitter.

        Full jitter spreads the retries of many processes that failed at the same moment
        over the whole window instead of sending them back in lockstep.
        """
        ceiling = min(self.max_backoff_millis, self.initial_backoff_millis * 2.0 ** min(retry, 64))
        return random.uniform(0.0, ceiling)


def resolve_policies(
    arguments: Mapping[str, object],
    owner: str = "ExportPolicies",
    accepted: type = SpanPolicyArguments,
    settings: tuple[Setting[object], ...] = POLICIES,
) -> ExportPolicies:
    """The export policies from the ``arguments`` given, then their ``settings``' variables, then defaults.

    ``accepted`` is the keywords' TypedDict: a policy it does not name keeps its default (a log
    processor has no span-start export), and a keyword it does not name raises ``TypeError``, as
    Python would for the constructor of ``owner``. ``settings``: ``LOG_POLICIES`` for a log processor.
    """
    keywords = accepted.__annotations__
    for name in arguments:
        if name not in keywords:
            raise TypeError(f"{owner}.__init__() got an unexpected keyword argument {name!r}")
    resolved: dict[str, Any] = {
        setting.argument: resolve(setting, arguments.get(setting.argument))
        for setting in settings
        if setting.argument in keywords
    }
    policies = ExportPolicies(**resolved)
    if "export_span_start" in keywords:
        # Through ``logged``: a log filter that raises must not make the constructor raise (stock's logs nothing).
        if policies.export_span_start:
            logged(logger.info, "span-start export enabled: started spans are queued too (SPANBATCH_EXPORT_SPAN_START)")
        else:
            logged(logger.info, "span-start export disabled — end-only ingest (SPANBATCH_EXPORT_SPAN_START)")
    return policies


def spells_out(keywords: type) -> Callable[[_F], _F]:
    """Shows a constructor's ``**policies: Unpack[keywords]`` as the keyword-only parameters they are
    (``help()``, ``inspect.signature``, IDEs), each defaulting to None, in declared order."""

    def spelled_out(constructor: _F) -> _F:
        signature = inspect.signature(constructor)
        others = [p for p in signature.parameters.values() if p.kind is not inspect.Parameter.VAR_KEYWORD]
        parameters = [
            # Annotations as the constructors' own read under postponed evaluation: their source text.
            inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=annotation.__forward_arg__)
            for name, annotation in keywords.__annotations__.items()
        ]
        constructor.__signature__ = signature.replace(parameters=[*others, *parameters])  # type: ignore[attr-defined]
        return constructor

    return spelled_out
