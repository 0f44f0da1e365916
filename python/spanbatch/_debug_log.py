"""``SPANBATCH_DEBUG=true``: spanbatch's debug lines reach stderr whether or not the app set logging up.

The lines are logged at DEBUG on the ``spanbatch`` logger, which an app without logging set-up
never shows (Python's last-resort handler takes warnings only), and an app set up at INFO
neither. So the flag lowers that logger's level and adds a stderr handler that stands aside as
soon as the app has a handler of its own on the way: each line is written once, in the app's
format when it has one, whenever it set logging up. OpenTelemetry's ``LoggingHandler`` is not such a handler.
"""

from __future__ import annotations

import logging
import sys
from typing import TextIO

from spanbatch import _settings
from spanbatch._setting import read

logger = logging.getLogger("spanbatch")


class _StderrUntilConfigured(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to the current ``sys.stderr``, as the last-resort handler does, unless the app handles the record."""

    def __init__(self) -> None:
        logging.Handler.__init__(self)

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    def handle(self, record: logging.LogRecord) -> bool:
        if _app_handles(record):
            return False
        return bool(super().handle(record))


def _app_handles(record: logging.LogRecord) -> bool:
    """Whether a handler that shows records, other than ours, is on the record's way up, as ``Logger.callHandlers``
    walks it. OpenTelemetry's ``LoggingHandler`` (zero-code logging puts one on the root) exports them, shows
    none."""
    current: logging.Logger | None = logging.getLogger(record.name)
    while current is not None:
        if any(
            not isinstance(handler, _StderrUntilConfigured) and not _exports(handler) for handler in current.handlers
        ):
            return True
        current = current.parent if current.propagate else None
    return False


def _exports(handler: logging.Handler) -> bool:
    """Whether ``handler`` is an OpenTelemetry ``LoggingHandler``: the SDK's, or opentelemetry-instrumentation-logging's
    that replaces it (its deprecation points there). Told by the class's name and package, as neither imports the
    other."""
    return any(
        cls.__name__ == "LoggingHandler" and cls.__module__.startswith("opentelemetry.")
        for cls in type(handler).__mro__
    )


def debug_enabled() -> bool:
    """``SPANBATCH_DEBUG``; when true, makes sure its lines can be seen (once per process)."""
    enabled = read(_settings.DEBUG)
    if enabled and not any(isinstance(handler, _StderrUntilConfigured) for handler in logger.handlers):
        if logger.level == logging.NOTSET:  # a level the app chose for spanbatch stays
            logger.setLevel(logging.DEBUG)
        logger.addHandler(_StderrUntilConfigured())
    return enabled
