"""Process exit: every live lane is flushed and shut down in parallel under one deadline.

Daemon workers die mid-export when the interpreter finalises, so this runs from atexit,
before that, and is bounded by ``SPANBATCH_EXIT_TIMEOUT_MS`` (default 5000) however many
backends there are and whatever they do. ``SPANBATCH_FLUSH_ON_SIGTERM=true`` does the same
on SIGTERM, then hands the signal to the previous handler. SIGKILL and the OOM killer
cannot be caught: they lose the spans still queued, and nothing else.
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


def register(owner: HasLanes) -> None:
    """Include ``owner``'s lanes in the exit flush."""
    global _sigterm_installed
    _owners.add(owner)
    # Re-registering moves the hook last, so it runs before TracerProvider's own atexit
    # shutdown, which would otherwise shut processors down one after another.
    atexit.unregister(shutdown_all)
    atexit.register(shutdown_all)
    if not _sigterm_installed and env_flag("SPANBATCH_FLUSH_ON_SIGTERM", False):
        _sigterm_installed = _install_sigterm_handler()


def exit_timeout_millis() -> float:
    return env_millis("SPANBATCH_EXIT_TIMEOUT_MS", _DEFAULT_EXIT_TIMEOUT_MILLIS)


def shutdown_all(timeout_millis: float | None = None) -> None:
    """Shut down every registered lane in parallel within one deadline."""
    lanes = [lane for owner in list(_owners) for lane in owner.lanes if lane.core.pid == os.getpid()]
    shutdown_lanes(lanes, exit_timeout_millis() if timeout_millis is None else timeout_millis)


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
