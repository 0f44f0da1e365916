"""Process exit: every live lane is flushed and shut down in parallel under one deadline.

Daemon workers die mid-export when the interpreter finalises, so this runs from atexit,
before that, and is bounded by ``SPANBATCH_EXIT_TIMEOUT_MS`` (default 5000) however many
backends there are and whatever they do. It runs first of the atexit hooks whatever the
order of construction: a ``TracerProvider`` built after the processor would otherwise shut
it down first, waiting up to ``export_timeout_millis``; after this hook its call returns at
once. ``SPANBATCH_FLUSH_ON_SIGTERM=true`` does the same on SIGTERM, then hands the signal to
the previous handler. SIGKILL and the OOM killer cannot be caught: they lose the spans still
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

from spanbatch._config import env_flag, env_millis
from spanbatch._lane import Lane, shutdown_lanes

logger = logging.getLogger("spanbatch")

_DEFAULT_EXIT_TIMEOUT_MILLIS = 5000.0


class HasLanes(Protocol):
    @property
    def lanes(self) -> list[Lane]: ...


_owners: weakref.WeakSet[HasLanes] = weakref.WeakSet()
_sigterm_installed = False
_main_thread_exit_hooked = False


def register(owner: HasLanes) -> None:
    """Include ``owner``'s lanes in the exit flush."""
    global _sigterm_installed
    _owners.add(owner)
    _run_first_at_exit()
    _hook_main_thread_exit()
    if not _sigterm_installed and env_flag("SPANBATCH_FLUSH_ON_SIGTERM", False):
        _sigterm_installed = _install_sigterm_handler()


def _run_first_at_exit() -> None:
    # atexit runs hooks last-registered first: registering again puts this one first.
    atexit.unregister(shutdown_all)
    atexit.register(shutdown_all)


def _hook_main_thread_exit() -> None:
    """Move the exit flush first once more when the interpreter starts to exit.

    Hooks registered here run once the main thread is done, before atexit, so a provider or
    any other hook registered after the last processor no longer runs before ours. Moving the
    hook, not flushing here, lets the non-daemon threads, joined after these hooks and before
    atexit, finish ending their spans first, as they do with the stock processor.
    """
    global _main_thread_exit_hooked
    # Private, present on CPython 3.9+; without it the order of registration alone decides.
    register_at_thread_exit = getattr(threading, "_register_atexit", None)
    if _main_thread_exit_hooked or register_at_thread_exit is None:
        return
    try:
        register_at_thread_exit(_run_first_at_exit)
    except RuntimeError:
        return  # exit has begun: atexit has not run yet, and this call already moved the hook first
    _main_thread_exit_hooked = True


def exit_timeout_millis() -> float:
    return env_millis("SPANBATCH_EXIT_TIMEOUT_MS", _DEFAULT_EXIT_TIMEOUT_MILLIS)


def shutdown_all(timeout_millis: float | None = None) -> None:
    """Shut down every registered lane in parallel within one deadline.

    By default the deadline is ``SPANBATCH_EXIT_TIMEOUT_MS``, or the longest of the lanes'
    ``export_timeout_millis`` if that is shorter: exit takes no longer than the provider's own
    shutdown of those processors would have.
    """
    lanes = [lane for owner in list(_owners) for lane in owner.lanes if lane.core.pid == os.getpid()]
    if timeout_millis is None:
        longest_export = max((lane.settings.export_timeout_millis for lane in lanes), default=0.0)
        timeout_millis = min(exit_timeout_millis(), longest_export)
    shutdown_lanes(lanes, timeout_millis)


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
