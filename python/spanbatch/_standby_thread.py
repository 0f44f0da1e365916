"""The threads that run, on CPython 3.12, what spanbatch runs on a thread of its own once exit has begun.

3.12 starts no thread once the interpreter's exit has begun: from the end of the main thread's code on, through every
atexit hook (3.10, 3.11 and 3.13 do). A shutdown calls each exporter's own ``shutdown`` on a thread of its own, so that
one that never returns does not hold the exit; on 3.12 at exit it was called on the exiting thread instead, and one
that never returned held the exit for good, as with the stock processor (revC30: killed at 60 s, where the other
versions left in 1.4 s). So on 3.12 the lanes start standby threads, which sleep until exit needs them, without the
GIL and without a timeout: as many as the process has had lanes alive at once, so that every lane's
exporter shutdown at exit gets one of its own (revF30: one thread for all had a hung shutdown keep every later
exporter's from ever being called, a buffering exporter's data lost). A forked child starts its own (``PerProcess``)
as its lanes make their cores there.
"""

from __future__ import annotations

import logging
import math
import queue
import signal
import sys
import threading
import weakref
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
    """This process's standby threads, as many as it has had lanes alive at once, and the calls they wait for."""

    def __init__(self) -> None:
        self.calls: queue.SimpleQueue[_Call] = unpatched("queue", "SimpleQueue")()
        self.lanes: weakref.WeakSet[object] = weakref.WeakSet()
        self.threads: list[WorkerThread] = []
        self.lock = threading.Lock()
        self.waiting = 0  # threads waiting for a call (changed under ``lock``)

    def serve(self) -> None:
        while True:
            # Blocked while it waits, which is nearly all its life: it outlives the lanes (``block_process_signals``).
            # Its own mask back while it runs a call: what an exporter's shutdown starts inherits the mask it would
            # have on a thread of its own.
            own = block_process_signals()
            call = self.calls.get()
            with self.lock:
                self.waiting -= 1
            signal.pthread_sigmask(signal.SIG_SETMASK, own)
            call.run()
            with self.lock:
                self.waiting += 1

    def take(self, call: _Call) -> None:
        """Hands ``call`` over, and returns once a thread began it, as a thread's start returns; at once if every
        thread runs an earlier call (one that may never return): it begins when one of them is done."""
        self.calls.put(call)
        pause_while(lambda: not call.begun and self.waiting > 0, math.inf)


_standbys = PerProcess(_Standby)


def keep_ready(lane: object) -> None:
    """On 3.12, a standby thread of this process's for ``lane`` while it lives: every lane's exporter shutdown at exit
    then has one, and one that never returns holds no other's."""
    if not NEEDED:
        return
    standby = _standbys.get()
    # A lane made once exit has begun gets none (its worker neither): the exit calls its exporter's shutdown itself.
    with standby.lock, suppress(RuntimeError):
        standby.lanes.add(lane)
        while len(standby.threads) < len(standby.lanes):
            standby.threads.append(start_thread(standby.serve, "spanbatch-standby"))
            standby.waiting += 1


def start_thread_even_at_exit(target: Callable[..., object], name: str, *args: Any) -> WorkerThread:
    """``start_thread``; where no thread can be started (3.12's exit), ``target(*args)`` handed to a standby
    thread. ``RuntimeError`` if there is none either."""
    try:
        return start_thread(target, name, *args)
    except RuntimeError:
        standby = _standbys.get()
        if not standby.threads:
            raise
        call = _Call(target, name, args)
        # Begun before this returns: the exit goes on without the GIL only while it waits, and an exporter's shutdown
        # given no time left (the deadline passed) must still have been called once.
        standby.take(call)
        return call
