"""Threads for the export work, and waits for them, that hold under gevent's monkey-patching.

Once gevent has patched ``threading``, a ``threading.Thread`` is a greenlet on the OS thread that
started it, sharing it with the hub and every other greenlet. A worker that waits in Rust without
the GIL would stop them all, and the application with them. So under gevent the export work runs
on real OS threads, started with the functions gevent saved before patching (gevent's patched
sockets work there, each thread with a hub of its own), and the application's greenlets wait for
them by pausing with ``gevent.sleep``, never by blocking their OS thread.

gevent is only looked for, never imported: a process that has not loaded it pays nothing.
"""

from __future__ import annotations

import importlib
import logging
import os
import queue
import signal
import sys
import threading
import time
from collections.abc import Callable
from contextlib import suppress
from typing import Any, Protocol

from spanbatch._core import SharedLock

logger = logging.getLogger("spanbatch")

# The signals sent to a process, which land on any of its threads that does not block them: not the faults a thread
# raises on itself (blocked, those kill it all the same, unreported). A thread of spanbatch's blocks them where it must
# not be the one they land on: one the application blocks on its own threads (a critical section) waits there until
# they unblock it, as without spanbatch, instead of acting at once (SIGTERM's default action ends the process).
_PROCESS_SIGNALS = signal.valid_signals() - {signal.SIGSEGV, signal.SIGBUS, signal.SIGFPE, signal.SIGILL}

# How long a greenlet waiting for a thread lets the others run between two looks.
PAUSE_SECONDS = 0.005
# Whether a greenlet's waits (a flush's, ``_lane.wait_flush``; a wait for room, ``_room``) pause from Python code rather
# than from a native wait. At finalization CPython ends a real thread on its hub by unwinding the hub's stack and on
# through the frames the hub was started from, as they are then. Paused from native code, a wait started the hub, or
# left for it, from C frames the application's own sleeps do not have: the unwind went through frames gone since, and
# the exit crashed (revF 1, gpause). From 3.11 on a Python call from Python code adds no C frame, so this pause switches
# from where the application's sleeps do; on 3.10 each adds one, and the Python pause hung the exit (10 of 10) where
# the native one did not.
PAUSES_FROM_PYTHON = sys.version_info >= (3, 11)
# How long a wait for a thread lasts at most before it looks whether a signal handler it ran forked the process.
_FORK_CHECK_SECONDS = 0.1


def block_process_signals() -> set[int | signal.Signals]:
    """Blocks the signals sent to the process on the calling thread (see ``_PROCESS_SIGNALS``); returns its mask
    before, to set back with ``signal.pthread_sigmask(signal.SIG_SETMASK, ...)``."""
    return signal.pthread_sigmask(signal.SIG_BLOCK, _PROCESS_SIGNALS)


def _gevent_monkey() -> Any:
    """gevent's ``monkey`` module if it has patched ``threading`` in this process, else None."""
    monkey = sys.modules.get("gevent.monkey")
    if monkey is None or not monkey.is_module_patched("threading"):
        return None
    return monkey


def _pause_with(monkey: Any) -> Callable[[float], None]:
    """``gevent.sleep``, except in the hub: a signal handler may run there, and the hub cannot switch away."""
    gevent = sys.modules["gevent"]
    hub_type = sys.modules["gevent.hub"].Hub
    blocking_sleep = monkey.get_original("time", "sleep")

    def pause(seconds: float) -> None:
        if isinstance(gevent.getcurrent(), hub_type):
            blocking_sleep(seconds)
        else:
            gevent.sleep(seconds)

    return pause


def unpatched(module: str, name: str) -> Any:
    """``module.name`` as it was before gevent patched it (as it is, where gevent has not)."""
    monkey = sys.modules.get("gevent.monkey")
    return getattr(importlib.import_module(module), name) if monkey is None else monkey.get_original(module, name)


def shared_lock(*, reentrant: bool = False) -> SharedLock:
    """A lock for state shared with the threads ``start_thread`` starts, where a holder may take a while (a directory
    listed): one that blocks an OS thread, which a greenlet waits for by pausing (see ``_wait_turn``). gevent's lock,
    held by another OS thread, raises ``LoopExit`` in a greenlet whose hub has nothing else to run; blocking on the
    OS's would stop every greenlet of its thread, and for good if one of them holds it.

    Its take and let-go are each one native call, as the OS lock's own: no signal handler runs between it taken and
    the ``with`` block begun, nor between the block's end and it let go, where a KeyboardInterrupt would leave it held
    for good; a daemon thread waiting for it at exit is not ended inside that call (see ``_core.SharedLock``).

    ``reentrant``: its holder may take it again, as an ``RLock``'s. Under gevent (made after its patching, as gevent
    asks) its holder is a greenlet: another greenlet of the holder's thread waits for it, and cannot let it go."""
    caller = sys.modules["gevent"].getcurrent if reentrant and threads_are_greenlets() else None
    return SharedLock(_wait_turn, reentrant=reentrant, caller=caller)


def _wait_turn(held_in_this_thread: bool) -> bool:
    """A shared lock's taker's turn while it is held elsewhere: a greenlet that must not block its OS thread (any but
    one of ``start_thread``'s, or one whose thread's other greenlet holds it, which runs only while it pauses) pauses
    a moment: True; any other caller may block on the OS lock: False."""
    pause = None if on_own_os_thread() and not held_in_this_thread else cooperative_pause()
    if pause is None:
        return False
    pause(PAUSE_SECONDS)
    return True


def shared_rlock() -> SharedLock | threading.RLock:
    """A reentrant lock for state shared with the threads ``start_thread`` starts. Where threads are greenlets (made
    after gevent's patching, as gevent asks), ``shared_lock(reentrant=True)``, which another greenlet waits for by
    pausing; elsewhere the OS's ``RLock`` itself."""
    if threads_are_greenlets():
        return shared_lock(reentrant=True)
    lock: threading.RLock = unpatched("_thread", "RLock")()
    return lock


def os_thread_local() -> threading.local:
    """A ``threading.local`` of the OS thread even under gevent, which patches the class into a greenlet's: every
    greenlet of one OS thread shares its values."""
    local: threading.local = unpatched("_thread", "_local")()
    return local


class Wakeup:
    """Ends a timed wait of a thread ``start_thread`` started, from any thread: a real queue, whose ``get`` blocks only
    its own OS thread, gevent or not (gevent's ``Event`` and ``Condition`` wake the greenlets of one hub only)."""

    def __init__(self) -> None:
        self._calls: queue.SimpleQueue[None] = unpatched("queue", "SimpleQueue")()

    def wait(self, seconds: float) -> None:
        """Returns after ``seconds``, or as soon as ``wake()`` is called (at once if it was since the last wait)."""
        with suppress(queue.Empty):
            self._calls.get(timeout=seconds)

    def wake(self) -> None:
        self._calls.put(None)


def threads_are_greenlets() -> bool:
    """Whether gevent has patched ``threading`` in this process."""
    return _gevent_monkey() is not None


def cooperative_pause() -> Callable[[float], None] | None:
    """What the application's waits pause with when threads are greenlets (see ``_pause_with``)."""
    monkey = _gevent_monkey()
    return None if monkey is None else _pause_with(monkey)


class WorkerThread(Protocol):
    """What a lane needs of its worker: ``threading.Thread``'s answers, or a real thread's under gevent. A forked
    child has none of its parent's threads: there, one is not alive, and a join ends, even one the fork came in
    (a signal handler the wait ran forked): a child would wait for it until its timeout, or for ever."""

    @property
    def name(self) -> str: ...

    def is_alive(self) -> bool: ...

    def join(self, timeout: float | None = None) -> None: ...

    def of_this_process(self) -> bool:
        """Whether it was started in this process (False in a child forked since)."""
        ...


class OfOneProcess:
    """The process a thread was started in: see ``WorkerThread``."""

    def __init__(self) -> None:
        self._spanbatch_pid = os.getpid()

    def of_this_process(self) -> bool:
        return self._spanbatch_pid == os.getpid()


def _wait_while(
    running: Callable[[], bool], wait: Callable[[float], object], timeout: float | None, step: float
) -> None:
    """``wait(seconds)``, ``step`` seconds at a time, while ``running()``, for ``timeout`` seconds at most."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while running():
        left = step if deadline is None else min(step, deadline - time.monotonic())
        if left <= 0:
            return
        wait(left)


class OSThread(OfOneProcess):
    """A real OS thread in a gevent-patched process, started with the ``_thread`` functions gevent saved."""

    # Per OS thread, whatever gevent patched: set on the threads this class runs (see ``on_own_os_thread``).
    _marks: Any = None

    def __init__(self, monkey: Any, target: Callable[..., object], name: str, args: tuple[Any, ...]) -> None:
        super().__init__()
        if OSThread._marks is None:
            OSThread._marks = monkey.get_original("_thread", "_local")()
        self.name = name
        self._target = target
        self._args = args
        self._start_new_thread = monkey.get_original("_thread", "start_new_thread")
        self._running = monkey.get_original("_thread", "allocate_lock")()
        self._pause = _pause_with(monkey)

    def start(self) -> None:
        self._running.acquire()
        try:
            self._start_new_thread(self._run, ())
        except BaseException:
            self._running.release()
            raise

    def _run(self) -> None:
        OSThread._marks.own = True
        try:
            self._target(*self._args)
        except BaseException:  # as threading.Thread would, say so rather than die silently
            logger.exception("Uncaught exception in %s.", self.name)
        finally:
            # Let go of what it ran with, as threading.Thread does: a lane's work holds its core (and queue ring),
            # which a shut-down processor kept alive must not keep.
            del self._target, self._args
            block_process_signals()  # ended, though the OS thread lingers a moment: see ``_Thread.run``
            self._running.release()

    def is_alive(self) -> bool:
        return self.of_this_process() and bool(self._running.locked())

    def join(self, timeout: float | None = None) -> None:
        """Waits for the thread to end, at most ``timeout`` seconds, letting other greenlets run."""
        _wait_while(self.is_alive, self._pause, timeout, PAUSE_SECONDS)


class _Thread(OfOneProcess, threading.Thread):
    """A daemon ``threading.Thread`` whose liveness a Ctrl-C cannot falsify: before 3.13, a ``join`` that a signal
    handler's exception interrupts marks the thread stopped while it still runs (bpo-45274's handling releases the
    lock the running thread holds), so a shutdown resumed after it would take a hung export for a finished one.
    Its end is told by an event of its own instead; in a forked child it never runs."""

    def __init__(self, target: Callable[..., object], name: str, args: tuple[Any, ...]) -> None:
        OfOneProcess.__init__(self)
        threading.Thread.__init__(self, target=target, args=args, name=name, daemon=True)
        self._spanbatch_ended = threading.Event()

    def run(self) -> None:
        try:
            super().run()
        finally:
            # Ended from here on for whoever joins it, though the OS thread lingers a moment (a loaded machine may not
            # run it for a while): a signal sent to the process must not land there once every lane is shut down.
            block_process_signals()
            self._spanbatch_ended.set()

    def is_alive(self) -> bool:
        return self.ident is not None and self._running_here()

    def _running_here(self) -> bool:
        return self.of_this_process() and not self._spanbatch_ended.is_set()

    def join(self, timeout: float | None = None) -> None:
        _wait_while(self._running_here, self._spanbatch_ended.wait, timeout, _FORK_CHECK_SECONDS)


def pause_while(running: Callable[[], bool], seconds: float) -> None:
    """Waits while ``running()``, ``seconds`` at most, looking again every few milliseconds: a greenlet lets the others
    run meanwhile."""
    _wait_while(running, greenlet_pause() or unpatched("time", "sleep"), seconds, PAUSE_SECONDS)


def greenlet_pause() -> Callable[[float], None] | None:
    """What the caller's waits pause with if it must not block its OS thread (a greenlet sharing it with others:
    see ``cooperative_pause``); None if it may (no gevent, or one of ``start_thread``'s own OS threads)."""
    return None if on_own_os_thread() else cooperative_pause()


def on_own_os_thread() -> bool:
    """Whether gevent has patched ``threading`` and the caller runs on a real OS thread ``start_thread`` started:
    no hub and no other greenlet there for a blocking call to hold up."""
    return OSThread._marks is not None and getattr(OSThread._marks, "own", False)


def start_thread(target: Callable[..., object], name: str, *args: Any) -> WorkerThread:
    """Starts ``target(*args)`` on a daemon thread of its own: a real OS thread even under gevent."""
    monkey = _gevent_monkey()
    thread = _Thread(target, name, args) if monkey is None else OSThread(monkey, target, name, args)
    thread.start()
    return thread
