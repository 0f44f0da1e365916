"""How much of the one exit limit spanbatch's waits have used since the main thread finished.

Once the main thread has returned, the interpreter joins the non-daemon threads, then runs the atexit hooks.
A flush or shutdown waiting on one of those threads holds the exit up as much as the atexit shutdowns do, so
they all share one ``SPANBATCH_EXIT_TIMEOUT_MS``: the time during which at least one such wait is under way is
taken from it. The application's own work meanwhile is not: it is not spanbatch's to bound, and a thread that
works on for minutes and flushes now and then must still have its flushes waited for.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager


class ExitBudget:
    """The part of the exit limit left to spanbatch's waits; unlimited until the main thread is done."""

    def __init__(self) -> None:
        # Reentrant: a SIGTERM handler runs on the main thread between any two bytecodes, maybe inside this lock,
        # and its shutdown reads the budget (a plain lock hung the process there for good).
        self._lock = threading.RLock()
        self._main_done = False
        self._waiting = 0  # waits under way on threads the interpreter joins before exit
        self._since = 0.0  # since when (monotonic) some of them have been holding the exit up
        self._used = 0.0  # seconds taken by such waits that have ended

    def main_thread_done(self) -> None:
        with self._lock:
            self._main_done = True
            self._since = time.monotonic()  # a wait under way holds the exit up from now on

    def seconds_left(self, limit_seconds: float) -> float | None:
        """What a wait begun now may take of ``limit_seconds``; None while the main thread runs."""
        with self._lock:
            if not self._main_done:
                return None
            used = self._used + (time.monotonic() - self._since if self._waiting else 0.0)
            return max(0.0, limit_seconds - used)

    @contextmanager
    def holding_exit(self) -> Iterator[None]:
        """Counts the wait inside against the limit, unless a daemon thread waits (the exit does not wait for it)."""
        if threading.current_thread().daemon:
            yield
            return
        with self._lock:
            if self._waiting == 0:
                self._since = time.monotonic()
            self._waiting += 1
        try:
            yield
        finally:
            with self._lock:
                self._waiting -= 1
                if self._waiting == 0 and self._main_done:
                    self._used += time.monotonic() - self._since
