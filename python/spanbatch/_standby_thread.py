"""The thread that runs, on CPython 3.12, what spanbatch runs on a thread of its own once exit has begun.

3.12 starts no thread once the interpreter's exit has begun: from the end of the main thread's code on, through every
atexit hook (3.10, 3.11 and 3.13 do). A shutdown calls each exporter's own ``shutdown`` on a thread of its own, so that
one that never returns does not hold the exit; on 3.12 at exit it was called on the exiting thread instead, and one
that never returned held the exit for good, as with the stock processor (revC30: killed at 60 s, where the other
versions left in 1.4 s). So on 3.12 the first lane of a process starts this thread, which sleeps until exit needs it,
without the GIL and without a timeout. It runs what it is handed one call at a time, in order: one that never returns
holds those after it, but not the exit, whose deadline ends each wait for them. A forked child starts its own
(``PerProcess``) as its lanes make their cores there.
"""

from __future__ import annotations

import logging
import math
import queue
import signal
import sys
import threading
from collections.abc import Callable
from contextlib import suppress
from typing import Any

from spanbatch._fork import PerProcess
from spanbatch._threads import (
    OfOneProcess,
    WorkerThread,
    block_process_signals,
    pause_while,
    start_thread,
    unpatched,
)

logger = logging.getLogger("spanbatch")

NEEDED = sys.version_info[:2] == (3, 12)


class _Call(OfOneProcess):
    """One call handed to the standby thread, seen as the thread it would have had (``WorkerThread``)."""

    def __init__(self, target: Callable[..., object], name: str, args: tuple[Any, ...]) -> None:
        super().__init__()
        self.name = name
        self._target = target
        self._args = args
        self._running = unpatched("_thread", "allocate_lock")()
        self._running.acquire()
        self.begun = False

    def run(self) -> None:
        self.begun = True
        try:
            self._target(*self._args)
        except BaseException:  # as its own thread would, say so rather than lose it
            logger.exception("Uncaught exception in %s.", self.name)
        finally:
            self._running.release()

    def is_alive(self) -> bool:
        return self.of_this_process() and bool(self._running.locked())

    def join(self, timeout: float | None = None) -> None:
        pause_while(self.is_alive, math.inf if timeout is None else timeout)


class _Standby:
    """This process's standby thread, once a lane asked for it, and the calls it waits for."""

    def __init__(self) -> None:
        self.calls: queue.SimpleQueue[_Call] = unpatched("queue", "SimpleQueue")()
        self.thread: WorkerThread | None = None
        self.lock = threading.Lock()
        self.busy = False  # running a call

    def serve(self) -> None:
        while True:
            # Blocked while it waits, which is nearly all its life: it outlives the lanes (``block_process_signals``).
            # Its own mask back while it runs a call: what an exporter's shutdown starts inherits the mask it would
            # have on a thread of its own.
            own = block_process_signals()
            call = self.calls.get()
            signal.pthread_sigmask(signal.SIG_SETMASK, own)
            self.busy = True
            call.run()
            self.busy = False


_standbys = PerProcess(_Standby)


def keep_ready() -> None:
    """On 3.12, make sure this process's standby thread runs (the first lane of a process starts it)."""
    if not NEEDED:
        return
    standby = _standbys.get()
    # A lane made once exit has begun gets none (its worker neither): the exit calls its exporter's shutdown itself.
    with standby.lock, suppress(RuntimeError):
        if standby.thread is None:
            standby.thread = start_thread(standby.serve, "spanbatch-standby")


def start_thread_even_at_exit(target: Callable[..., object], name: str, *args: Any) -> WorkerThread:
    """``start_thread``; where no thread can be started (3.12's exit), ``target(*args)`` handed to the standby
    thread. ``RuntimeError`` if there is none either."""
    try:
        return start_thread(target, name, *args)
    except RuntimeError:
        standby = _standbys.get()
        if standby.thread is None:
            raise
        call = _Call(target, name, args)
        standby.calls.put(call)
        # Begun before this returns, as a thread's start: the exit goes on without the GIL only while it waits, and
        # an exporter's shutdown given no time left (the deadline passed) must still have been called once. Unless
        # the standby is running an earlier call, which may never return.
        thread = standby.thread
        pause_while(lambda: not call.begun and not standby.busy and thread.is_alive(), math.inf)
        return call
