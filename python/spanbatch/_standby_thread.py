"""The threads that run, on CPython 3.12, what spanbatch runs on a thread of its own once exit has begun.

3.12 starts no thread once the interpreter's exit has begun: from the end of the main thread's code on, through every
atexit hook (3.10, 3.11 and 3.13 do). A shutdown calls each exporter's own ``shutdown`` on a thread of its own, so that
one that never returns does not hold the exit; on 3.12 at exit it was called on the exiting thread instead, and one
that never returned held the exit for good, as with the stock processor (revC30: killed at 60 s, where the other
versions left in 1.4 s). So on 3.12 the lanes start standby threads, which sleep until exit needs them, without the
GIL and without a timeout: one for each lane not shut down yet, so that every lane's exporter shutdown at exit
gets one of its own (revF30: one thread for all had a hung shutdown keep every later exporter's from ever being
called, a buffering exporter's data lost). A forked child starts its own (``PerProcess``)
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
    """This process's standby threads, one waiting for each lane not shut down yet, and the calls they wait for."""

    def __init__(self) -> None:
        # A call, or None: the thread that takes it ends (one more than the lanes need).
        self.calls: queue.SimpleQueue[_Call | None] = unpatched("queue", "SimpleQueue")()
        self.lanes: weakref.WeakSet[object] = weakref.WeakSet()  # not shut down yet
        self.lock = threading.Lock()
        self.waiting = 0  # threads waiting for a call, not counting those told to end (changed under ``lock``)
        self.kept = 0  # threads not told to end (changed under ``lock``)

    def serve(self) -> None:
        while True:
            # Blocked while it waits, which is nearly all its life: it outlives the lanes (``block_process_signals``).
            # Its own mask back while it runs a call: what an exporter's shutdown starts inherits the mask it would
            # have on a thread of its own.
            own = block_process_signals()
            call = self.calls.get()
            if call is None:
                return
            with self.lock:
                self.waiting -= 1
            signal.pthread_sigmask(signal.SIG_SETMASK, own)
            call.run()
            with self.lock:
                self.waiting += 1

    def fit(self) -> None:
        """As many threads waiting as there are lanes not shut down: one started for each lane made, one ended for
        each lane shut down (revG30: kept for every lane made, they grew to 301 for 300 providers shut down and kept,
        and stayed). A thread running a call (a hung exporter shutdown) is not counted: it holds no lane's."""
        with self.lock, suppress(RuntimeError):  # once exit has begun none starts: the exit calls the exporter itself
            while self.waiting < len(self.lanes):
                start_thread(self.serve, "spanbatch-standby")
                self.waiting += 1
                self.kept += 1
            while self.waiting > len(self.lanes):
                self.calls.put(None)
                self.waiting -= 1
                self.kept -= 1

    def take(self, call: _Call) -> None:
        """Hands ``call`` over, and returns once a thread began it, as a thread's start returns; at once if every
        thread runs an earlier call (one that may never return): it begins when one of them is done."""
        self.calls.put(call)
        pause_while(lambda: not call.begun and self.waiting > 0, math.inf)


_standbys = PerProcess(_Standby)


def keep_ready(lane: object) -> None:
    """On 3.12, a standby thread of this process's waiting for ``lane`` until it is shut down (``let_go``): every
    lane's exporter shutdown at exit then has one, and one that never returns holds no other's."""
    if NEEDED:
        standby = _standbys.get()
        standby.lanes.add(lane)
        standby.fit()


def let_go(lane: object) -> None:
    """``lane`` is shut down: its exporter's shutdown has been called, and it needs no standby thread any more."""
    if NEEDED:
        standby = _standbys.get()
        standby.lanes.discard(lane)
        standby.fit()


def start_thread_even_at_exit(target: Callable[..., object], name: str, *args: Any) -> WorkerThread:
    """``start_thread``; where no thread can be started (3.12's exit), ``target(*args)`` handed to a standby
    thread. ``RuntimeError`` if there is none either."""
    try:
        return start_thread(target, name, *args)
    except RuntimeError:
        standby = _standbys.get()
        if not standby.kept:
            raise
        call = _Call(target, name, args)
        # Begun before this returns: the exit goes on without the GIL only while it waits, and an exporter's shutdown
        # given no time left (the deadline passed) must still have been called once.
        standby.take(call)
        return call
