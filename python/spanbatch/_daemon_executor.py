"""The default executor of a worker's private event loop: daemon threads, so a call that hangs never holds the exit.

An async export that hands a blocking send to a thread (``asyncio.to_thread``, ``run_in_executor(None, ...)``, and
asyncio's own ``getaddrinfo``) runs it on its loop's default executor. The standard ``ThreadPoolExecutor``'s threads
are joined by every interpreter exit (``concurrent.futures`` registers that), so one send hanging on a dead backend
held the process for ever, past any deadline. These threads die with the process, as the lane's worker does.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, ParamSpec, TypeVar

from spanbatch._threads import start_thread

P = ParamSpec("P")
T = TypeVar("T")

# As many threads as the standard pool's default.
MAX_THREADS = min(32, (os.cpu_count() or 1) + 4)


class _Call:
    """One submitted call and the future that tells its outcome."""

    def __init__(self, future: Future[Any], run: Callable[[], Any]) -> None:
        self.future = future
        self.run = run

    def __call__(self) -> None:
        if not self.future.set_running_or_notify_cancel():
            return  # cancelled while queued
        try:
            result = self.run()
        except BaseException as error:  # the caller's to see, as the standard pool hands it over
            self.future.set_exception(error)
        else:
            self.future.set_result(result)


class DaemonThreadExecutor(ThreadPoolExecutor):
    """Up to ``MAX_THREADS`` daemon threads, started as calls find none idle.

    A ``ThreadPoolExecutor`` only because ``loop.set_default_executor`` takes nothing else; none of its
    machinery is used. ``shutdown`` never waits: a hung call must not hold whoever closes the loop.
    """

    def __init__(self) -> None:
        super().__init__(max_workers=MAX_THREADS)
        self._calls: queue.SimpleQueue[_Call | None] = queue.SimpleQueue()
        self._idle = threading.Semaphore(0)  # one count per thread waiting for a call
        self._lock = threading.Lock()
        self._started = 0
        self._closed = False

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        future: Future[T] = Future()
        with self._lock:
            if self._closed:
                raise RuntimeError("cannot schedule new futures after shutdown")
            self._calls.put(_Call(future, lambda: fn(*args, **kwargs)))
            if not self._idle.acquire(blocking=False) and self._started < MAX_THREADS:
                self._started += 1
                start_thread(self._serve, f"spanbatch-executor-{self._started}")
        return future

    def _serve(self) -> None:
        while (call := self._calls.get()) is not None:
            call()
            del call  # not kept alive by an idle thread
            self._idle.release()

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Lets every thread end once its call returns, without waiting; calls still queued are cancelled where
        asked."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if cancel_futures:
                while True:
                    try:
                        queued = self._calls.get_nowait()
                    except queue.Empty:
                        break
                    if queued is not None:
                        queued.future.cancel()
            for _ in range(self._started):
                self._calls.put(None)
