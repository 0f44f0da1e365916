"""The default executor of an async exporter's private loop: where ``asyncio.to_thread`` and
``loop.run_in_executor(None, ...)`` run the exporter's blocking calls (its sends, most often).

Why not asyncio's own ``ThreadPoolExecutor``: the interpreter joins its threads at exit, before any atexit hook
(``concurrent.futures.thread._python_exit``), so one send that never returned kept the process from ever exiting;
and once ``min(32, cpus + 4)`` sends had hung in it, every later call queued behind them and the lane exported
nothing more, though each export was cancelled at its timeout.

Here the threads are daemon threads, which exit does not join (spanbatch bounds the exit itself), and a call its
caller gave up (its asyncio future cancelled: the export timed out, or its task was cancelled) stops counting: its
thread finishes the call on its own and ends, and a new thread takes its place if a call is waiting. Why a pool and
not a thread per call: the calls still awaited run as many at a time as asyncio's own pool runs them, on threads
reused from one call to the next. Measured (3.11, 2 busy cores, medians of 5 runs of 1,000 calls): a ``to_thread``
call cost 50-95 us here, 70-85 us in asyncio's pool, 115-160 us with a thread per call; an export gathering 200 sends
of 20 ms ran them on 6 threads here, on 88-200 at once (a connection each) with a thread per call.

Under gevent's monkey-patching the calls run as greenlets instead, on the hub of the loop's own thread (see
``GreenletPool``), and the loop waits with gevent's selector, so that the hub runs meanwhile however the
application patched (``patch_all(select=False)`` leaves ``selectors`` as they were: a loop waiting in epoll never
let those greenlets start).
"""

from __future__ import annotations

import asyncio
import importlib
import os
import sys
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import suppress
from functools import partial
from typing import Any, ParamSpec, Protocol, TypeVar

from spanbatch._threads import start_thread, threads_are_greenlets

P = ParamSpec("P")
T = TypeVar("T")

# ``ThreadPoolExecutor``'s own default (3.13 counts the CPUs the process may use).
DEFAULT_THREADS = min(32, (getattr(os, "process_cpu_count", os.cpu_count)() or 1) + 4)

# What a call gets when no thread is left to run it and none can be started (3.12+ refuses new threads at exit).
_NO_THREAD = "cannot start a thread for the call (interpreter shutdown?)"


class ExportThreads(Protocol):
    """A lane's core, as it tells the threads that export its batches: a record they emit is the export's own."""

    def enter_export_thread(self) -> None: ...

    def leave_export_thread(self) -> None: ...


def private_loop(name: str, lane: ExportThreads) -> asyncio.AbstractEventLoop:
    """A new event loop for this thread's async exports of ``lane``'s batches, with its default executor (its threads
    named ``name``)."""
    if threads_are_greenlets():
        selector = importlib.import_module("gevent.selectors").GeventSelector()  # gevent is loaded: it patched
        loop: asyncio.AbstractEventLoop = asyncio.SelectorEventLoop(selector)
        loop.set_default_executor(GreenletPool(name))  # its greenlets run on this thread, an export thread already
    else:
        loop = asyncio.new_event_loop()
        loop.set_default_executor(DaemonThreadPool(name, lane=lane))
    return loop


class _Call(Future[Any]):
    """One submitted call; cancelled while it runs, it is given up: nobody waits for its result any more."""

    def __init__(self, pool: DaemonThreadPool, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: Any) -> None:
        super().__init__()
        self._pool = pool
        self._fn: Callable[..., Any] | None = fn
        self._args = args
        self._kwargs = kwargs
        # Both under the pool's lock: the caller gave it up while it ran; its thread is done with it.
        self.given_up = False
        self.ended = False

    def cancel(self) -> bool:
        if super().cancel():  # not started: it never will be
            return True
        if self.running():  # asyncio cancels the future it awaits this way (``asyncio.wrap_future``)
            self._pool.give_up(self)
        return False

    def run(self) -> Callable[[], object]:
        """Runs the call, unless it was cancelled first; returns what sets its outcome."""
        fn, self._fn = self._fn, None  # nothing the call was given outlives it here
        args, kwargs, self._args, self._kwargs = self._args, self._kwargs, (), {}
        if fn is None or not self.set_running_or_notify_cancel():
            return lambda: None
        try:
            result = fn(*args, **kwargs)
        except BaseException as error:  # the caller's to see, as ThreadPoolExecutor gives it
            return partial(self.set_exception, error)
        finally:
            # The error's traceback holds this frame, and the caller holds the error: not what the call was given
            # (a batch, often). ThreadPoolExecutor's own calls clear theirs too.
            del fn, args, kwargs
        return partial(self.set_result, result)

    def fail(self, error: BaseException) -> None:
        """Ends the call unrun (the pool marked it ended): its caller gets ``error``, unless it cancelled it."""
        self._fn, self._args, self._kwargs = None, (), {}
        if self.set_running_or_notify_cancel():
            self.set_exception(error)


def _fail(calls: list[_Call]) -> None:
    """Fails the calls stranded: no thread is left to run them, and none can be started. Outside the pool's lock
    (their callers' callbacks run)."""
    for call in calls:
        call.fail(RuntimeError(_NO_THREAD))


class DaemonThreadPool(ThreadPoolExecutor):
    """A ``ThreadPoolExecutor`` (``loop.set_default_executor`` takes nothing else) whose ``submit`` and ``shutdown``
    are its own: its base starts no thread and so registers none to be joined at exit."""

    # An idle thread waits for the next call: starting one costs more than the call it would run.
    _idle_waits = True

    def __init__(self, name: str, max_threads: int = DEFAULT_THREADS, lane: ExportThreads | None = None) -> None:
        super().__init__(max_workers=max_threads, thread_name_prefix=name)
        self._name = name
        self._lane = lane
        self._max_threads = max_threads
        self._lock = threading.Lock()
        self._has_work = threading.Condition(self._lock)  # a call was queued for a free thread, or the pool closed
        self._all_ended = threading.Condition(self._lock)  # no counted thread is left, once closed
        # Calls wait here only while a counted thread is left to take them; the others fail (``_lose_one``).
        self._calls: deque[_Call] = deque()
        self._free = 0  # threads not running a call: waiting for one, or on their way to take one
        self._counted = 0  # threads alive, but for those running a call given up
        self._named = 0  # threads started
        self._closed = False

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        call = _Call(self, fn, args, kwargs)
        with self._lock:
            if self._closed:
                raise RuntimeError("cannot schedule new futures after shutdown")
            self._calls.append(call)
            try:
                self._hand_out()
            except RuntimeError as error:  # no thread can be started now: the counted ones take the call, if any
                if self._counted == 0:
                    self._calls.remove(call)
                    raise RuntimeError(_NO_THREAD) from error
            except BaseException:  # a call its caller was refused must never run
                self._calls.remove(call)
                raise
        return call

    def _hand_out(self) -> None:
        """A thread for the call last queued: a free one woken, else a new one if the cap allows; else the call
        waits for a counted thread to end its own, or for a call given up to make room. Raises what starting a
        thread raised (a ``RuntimeError`` once interpreter shutdown has begun, on 3.12+). Under the lock."""
        if len(self._calls) <= self._free:
            self._has_work.notify()  # one not waiting yet finds the call queued
            return
        if self._counted >= self._max_threads:
            return
        self._start(self._serve, f"{self._name}_{self._named + 1}")
        self._named += 1
        self._counted += 1
        self._free += 1

    def _start(self, serve: Callable[[], None], name: str) -> None:
        """Starts a daemon thread that runs ``serve`` (never under gevent: see ``GreenletPool``), one of the lane's
        export threads while it does: what an export's blocking call logs (an HTTP client's connection lines) comes
        back through a ``LoggingHandler`` as the export's own output, dropped as the export thread's is, never
        queued to feed the next export."""
        start_thread(self._serve_for_lane, name, serve)

    def _serve_for_lane(self, serve: Callable[[], None]) -> None:
        if self._lane is None:
            serve()
            return
        self._lane.enter_export_thread()
        try:
            serve()
        finally:
            self._lane.leave_export_thread()  # a thread that ended never comes back: the lane forgets it

    def give_up(self, call: _Call) -> None:
        """``call``'s caller stopped waiting for it while it ran: its thread stops counting, so that calls hung for
        good never keep the others from running."""
        with self._lock:
            if call.given_up or call.ended:
                return
            call.given_up = True
            stranded = self._lose_one()
        _fail(stranded)

    def _lose_one(self) -> list[_Call]:
        """A counted thread stops counting: another takes its place if calls wait. Returns the calls stranded,
        to be failed outside the lock: no counted thread is left, and none could be started. Under the lock."""
        self._counted -= 1
        if self._calls:
            # No thread can be started now (3.12+ at exit, or no resources): the counted ones take the calls.
            with suppress(Exception):
                self._hand_out()
        if self._counted:
            return []
        self._all_ended.notify_all()
        stranded = list(self._calls)
        self._calls.clear()
        for call in stranded:
            call.ended = True  # a cancellation meanwhile finds it done with, not running on a thread
        return stranded

    def _serve(self) -> None:
        while (call := self._next()) is not None:
            set_outcome = call.run()
            with self._lock:
                call.ended = True  # from now on ``given_up`` stays as it is
                counted = not call.given_up
                if counted:
                    self._free += 1
            # Free before its caller learns the outcome: a caller that submits its next call then finds it free.
            try:
                set_outcome()
            except BaseException:  # from the caller's callback (an ``Exception`` is logged there): the thread ends
                if counted:
                    with self._lock:
                        self._free -= 1
                        stranded = self._lose_one()
                    _fail(stranded)
                raise
            if not counted:  # counted out already, and replaced where a call waited
                return
            del call, set_outcome  # not held while waiting for the next

    def _next(self) -> _Call | None:
        with self._lock:
            while not self._calls:
                if self._closed or not self._idle_waits:
                    self._free -= 1
                    self._lose_one()  # nothing queued: nothing stranded
                    return None
                self._has_work.wait()
            self._free -= 1
            return self._calls.popleft()

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Closes the pool: ``wait`` waits for every call not given up (as ``ThreadPoolExecutor`` does, without
        bound: spanbatch's own close never asks for it); the calls queued still run unless ``cancel_futures``."""
        with self._lock:
            self._closed = True
            cancelled = list(self._calls) if cancel_futures else []
            if cancel_futures:
                self._calls.clear()
            self._has_work.notify_all()
        for call in cancelled:
            call.cancel()
        if wait:
            with self._lock:
                while self._counted:
                    self._all_ended.wait()


class GreenletPool(DaemonThreadPool):
    """The pool under gevent's monkey-patching: each call a greenlet on the hub of the thread that made the pool
    (the lane's worker, whose loop selects with gevent's selector: that hub runs while the loop waits), as asyncio's
    own pool runs its "threads" there. Its lock and conditions are gevent's, which are safe on one OS thread.

    Why not the base class's OS threads: each has a hub of its own, and a gevent socket or queue waits only on the
    hub of the thread that made it, so a keep-alive connection shared by two gathered sends, or kept for the next
    export, broke (a send waiting for the connection never woke: "Can only use Waiter.switch method from the Hub
    greenlet"); gevent's patched locks, the pool's own among them, are not safe across OS threads either (a lane
    exports one batch at a time under gevent for that). Why not asyncio's own pool: its greenlet "threads" are
    joined at exit (``concurrent.futures.thread._python_exit``) from the main thread's hub, which never sees them
    end: the exit hung even with no call hung. These greenlets are known to nothing the exit joins. As in asyncio's
    pool under gevent, a call that blocks its OS thread without yielding to the hub blocks the loop too.
    """

    # A greenlet costs microseconds to start, and one waiting for work would wait on a hub that runs only while the
    # loop does (never again, once it is closed): one with nothing left to run ends.
    _idle_waits = False

    def _start(self, serve: Callable[[], None], name: str) -> None:
        greenlet = sys.modules["gevent"].Greenlet(serve)  # spanbatch never imports gevent: it is loaded here
        greenlet.name = name
        greenlet.start()
