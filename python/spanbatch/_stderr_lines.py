"""spanbatch's lines reach stderr where no handler of the application's would show them.

Python's last-resort handler writes a warning to stderr only where no handler is found at all. Zero-code logging puts
an OpenTelemetry ``LoggingHandler`` on the root logger, often the only one: it exports records and shows none, and a
log lane's full-queue warning went there into the very lane that was full (or onto its export thread, which takes
none of its own lines), to be lost without a word (revB30: 7,976 records dropped, told nowhere but ``stats()``). So
a handler on the ``spanbatch`` logger writes each line that no other handler on its way shows, as the last-resort
handler would (an application that set ``logging.lastResort`` to None gets none), and stands aside as soon as the
application has a handler of its own: each line is written once, in the application's format when it has one.

``SPANBATCH_DEBUG=true`` adds the debug lines: the flag lowers the logger's level, and the same handler writes them.
An application without logging set-up would never show them, and one set up at INFO neither.
"""

from __future__ import annotations

import logging
import sys
from typing import TextIO

from spanbatch import _settings
from spanbatch._setting import read

logger = logging.getLogger("spanbatch")


class _StderrWhereNothingShows(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to the current ``sys.stderr``, as the last-resort handler does, what no handler of the app's shows:
    warnings and errors while the last-resort handler is there, debug lines once ``SPANBATCH_DEBUG`` asked for them."""

    def __init__(self) -> None:
        logging.Handler.__init__(self)
        self.debug = False

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    def handle(self, record: logging.LogRecord) -> bool:
        if _app_handles(record):
            return False
        if record.levelno >= logging.WARNING:
            last_resort = logging.lastResort
            return last_resort is not None and bool(last_resort.handle(record))
        return self.debug and bool(super().handle(record))


def _app_handles(record: logging.LogRecord) -> bool:
    """Whether a handler that shows records, other than ours, is on the record's way up, as ``Logger.callHandlers``
    walks it. OpenTelemetry's ``LoggingHandler`` (zero-code logging puts one on the root) exports them, shows
    none."""
    current: logging.Logger | None = logging.getLogger(record.name)
    while current is not None:
        if any(
            not isinstance(handler, _StderrWhereNothingShows) and not _exports(handler) for handler in current.handlers
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


def _ours() -> _StderrWhereNothingShows:
    """The handler on the ``spanbatch`` logger, added the first time it is asked for."""
    for handler in logger.handlers:
        if isinstance(handler, _StderrWhereNothingShows):
            return handler
    handler = _StderrWhereNothingShows()
    logger.addHandler(handler)
    return handler


def show_where_nothing_shows() -> None:
    """Make sure spanbatch's warnings reach stderr where nothing else would show them (once per process)."""
    _ours()


def debug_enabled() -> bool:
    """``SPANBATCH_DEBUG``; when true, makes sure its lines can be seen (once per process)."""
    enabled = read(_settings.DEBUG)
    if enabled:
        handler = _ours()
        if not handler.debug:
            handler.debug = True
            if logger.level == logging.NOTSET:  # a level the app chose for spanbatch stays
                logger.setLevel(logging.DEBUG)
    return enabled
