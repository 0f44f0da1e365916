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
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass


@dataclass(frozen=True)
class _Spent:
    """The budget's state, replaced whole: a SIGTERM handler runs on the main thread between any two bytecodes,
    maybe in the middle of an update, and must read it whole (fields set one by one, it read a torn state that
    took the whole budget away)."""

    main_done: bool = False
    waiting: int = 0  # waits under way on threads the interpreter joins before exit
    since: float = 0.0  # since when (monotonic) some of them have been holding the exit up
    used: float = 0.0  # seconds taken by such waits that have ended

    # Each state built whole by hand: ``dataclasses.replace`` cost every flush 5 us, of about 20 (without a span).
    def begun(self) -> _Spent:
        since = time.monotonic() if self.waiting == 0 else self.since
        return _Spent(self.main_done, self.waiting + 1, since, self.used)

    def ended(self) -> _Spent:
        last = self.waiting == 1 and self.main_done
        used = self.used + (time.monotonic() - self.since if last else 0.0)
        return _Spent(self.main_done, self.waiting - 1, self.since, used)


class ExitBudget:
    """The part of the exit limit left to spanbatch's waits; unlimited until the main thread is done."""

    def __init__(self) -> None:
        # Between the threads that update the state. Reentrant: the SIGTERM handler's shutdown may take it on the
        # main thread inside an update (a plain lock hung the process there for good).
        self._lock = threading.RLock()
        self._spent = _Spent()

    def main_thread_done(self) -> None:
        with self._lock:  # a wait under way holds the exit up from now on
            spent = self._spent
            self._spent = _Spent(True, spent.waiting, time.monotonic(), spent.used)

    def seconds_left(self, limit_seconds: Callable[[], float]) -> float | None:
        """What a wait begun now may take of the limit (``limit_seconds()``, read only then); None while the main
        thread runs."""
        spent = self._spent
        if not spent.main_done:
            return None
        used = spent.used + (time.monotonic() - spent.since if spent.waiting else 0.0)
        return max(0.0, limit_seconds() - used)

    @contextmanager
    def holding_exit(self) -> Iterator[None]:
        """Counts the wait inside against the limit, unless a daemon thread waits (the exit does not wait for it)."""
        if threading.current_thread().daemon:
            yield
            return
        with self._lock:
            self._spent = self._spent.begun()
        try:
            yield
        finally:
            with self._lock:
                self._spent = self._spent.ended()
