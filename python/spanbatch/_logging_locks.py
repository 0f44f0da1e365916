"""Whether this thread holds a lock of the ``logging`` module: an exporter that logs through the same handler
would wait for this thread, so it must not wait for that exporter."""

from __future__ import annotations

import logging


def holds_a_handler_lock() -> bool:
    """Whether this thread holds the lock of a ``logging`` handler: it is emitting through one."""
    # Every handler made, as logging.shutdown reads them (private, in every CPython since 2.x); CPython's RLock
    # tells its owner (``_is_owned``). Where either is missing: no.
    handlers = (reference() for reference in list(getattr(logging, "_handlerList", ())))
    return any(_owned(getattr(handler, "lock", None)) for handler in handlers)


def holds_a_logging_lock() -> bool:
    """``holds_a_handler_lock``, or this thread holds the module's own lock (configuring logging)."""
    return _owned(getattr(logging, "_lock", None)) or holds_a_handler_lock()


def _owned(lock: object) -> bool:
    owned = getattr(lock, "_is_owned", None)
    return callable(owned) and bool(owned())
