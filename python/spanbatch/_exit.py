"""Process exit: every live lane is flushed and shut down in parallel under one deadline.

Daemon workers die mid-export when the interpreter finalises, so this runs from atexit,
before that, and is bounded by ``SPANBATCH_EXIT_TIMEOUT_MS`` (default 5000) however many
backends there are and whatever they do. atexit runs hooks last-registered first, so a
``TracerProvider`` built after the processor shuts it down before this hook runs: once the
interpreter has begun to exit, a processor's ``shutdown`` therefore does the same bounded,
parallel shutdown of every lane, whoever calls it first. The hooks keep their order, so a span
ended in an atexit hook that runs before the provider's is still exported, as with the stock
processor. ``SPANBATCH_FLUSH_ON_SIGTERM=true`` does the same on SIGTERM, then hands the signal
to the previous handler. SIGKILL and the OOM killer cannot be caught: they lose the spans still
queued, and nothing else.
"""

from __future__ import annotations

import atexit
import logging
import os
import signal
import threading
import weakref
from types import FrameType
from typing import Protocol

from spanbatch import _settings
from spanbatch._lane import Lane, shutdown_lanes

logger = logging.getLogger("spanbatch")


class HasLanes(Protocol):
    @property
    def lanes(self) -> list[Lane]: ...


_owners: weakref.WeakSet[HasLanes] = weakref.WeakSet()
_sigterm_installed = False
_exit_watched = False
# Set once the main thread is done: the interpreter is exiting.
_exiting = False


def register(owner: HasLanes) -> None:
    """Include ``owner``'s lanes in the exit flush."""
    global _sigterm_installed
    _owners.add(owner)
    # Re-registering moves the hook last, so it runs before the atexit shutdown of a provider
    # built before this processor.
    atexit.unregister(shutdown_all)
    atexit.register(shutdown_all)
    _watch_for_exit()
    if not _sigterm_installed and _settings.read(_settings.FLUSH_ON_SIGTERM):
        _sigterm_installed = _install_sigterm_handler()


def _mark_exiting() -> None:
    global _exiting
    _exiting = True


def _watch_for_exit() -> None:
    """Notice the start of exit: hooks registered here run once the main thread is done, before atexit."""
    global _exit_watched
    # Private, present on CPython 3.9+; without it only our own atexit hook bounds the exit.
    register_at_thread_exit = getattr(threading, "_register_atexit", None)
    if _exit_watched or register_at_thread_exit is None:
        return
    try:
        register_at_thread_exit(_mark_exiting)
    except RuntimeError:  # exit has begun already
        _mark_exiting()
    _exit_watched = True


def exit_timeout_millis() -> float:
    return _settings.read(_settings.EXIT_TIMEOUT)


def _live_lanes() -> list[Lane]:
    return [lane for owner in list(_owners) for lane in owner.lanes if lane.core.pid == os.getpid()]


def _exit_deadline_millis(lanes: list[Lane]) -> float:
    """``SPANBATCH_EXIT_TIMEOUT_MS``, or the lanes' longest ``export_timeout_millis`` if shorter:
    exit takes no longer than the provider's own shutdown of those processors would have."""
    longest_export = max((lane.settings.export_timeout_millis for lane in lanes), default=0.0)
    return min(exit_timeout_millis(), longest_export)


def shutdown_all(timeout_millis: float | None = None) -> None:
    """Shut down every registered lane in parallel within one deadline (by default the exit deadline)."""
    lanes = _live_lanes()
    shutdown_lanes(lanes, _exit_deadline_millis(lanes) if timeout_millis is None else timeout_millis)


def shutdown(lanes: list[Lane], timeout_millis: float) -> None:
    """A processor's ``shutdown``: its own lanes; once exiting, every lane under the exit deadline."""
    if not _exiting:
        shutdown_lanes(lanes, timeout_millis)
        return
    everything = _live_lanes()
    shutdown_lanes(everything, min(timeout_millis, _exit_deadline_millis(everything)))


def _install_sigterm_handler() -> bool:
    if threading.current_thread() is not threading.main_thread():
        logger.warning("SPANBATCH_FLUSH_ON_SIGTERM needs the main thread to install a handler; not installed.")
        return False
    previous = signal.getsignal(signal.SIGTERM)

    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        shutdown_all()
        if callable(previous):
            previous(signum, frame)
        elif previous != signal.SIG_IGN:
            # The default action: terminate, as if we had not been here.
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGTERM)

    signal.signal(signal.SIGTERM, on_sigterm)
    return True
