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
from dataclasses import dataclass, replace


@dataclass(frozen=True)
class _Spent:
    """The budget's state, replaced whole: a SIGTERM handler runs on the main thread between any two bytecodes,
    maybe in the middle of an update, and must read it whole (fields set one by one, it read a torn state that
    took the whole budget away)."""

    main_done: bool = False
    waiting: int = 0  # waits under way on threads the interpreter joins before exit
    since: float = 0.0  # since when (monotonic) some of them have been holding the exit up
    used: float = 0.0  # seconds taken by such waits that have ended


class ExitBudget:
    """The part of the exit limit left to spanbatch's waits; unlimited until the main thread is done."""

    def __init__(self) -> None:
        # Between the threads that update the state. Reentrant: the SIGTERM handler's shutdown may take it on the
        # main thread inside an update (a plain lock hung the process there for good).
        self._lock = threading.RLock()
        self._spent = _Spent()

    def main_thread_done(self) -> None:
        with self._lock:  # a wait under way holds the exit up from now on
            self._spent = replace(self._spent, main_done=True, since=time.monotonic())

    def seconds_left(self, limit_seconds: float) -> float | None:
        """What a wait begun now may take of ``limit_seconds``; None while the main thread runs."""
        spent = self._spent
        if not spent.main_done:
            return None
        used = spent.used + (time.monotonic() - spent.since if spent.waiting else 0.0)
        return max(0.0, limit_seconds - used)

    @contextmanager
    def holding_exit(self) -> Iterator[None]:
        """Counts the wait inside against the limit, unless a daemon thread waits (the exit does not wait for it)."""
        if threading.current_thread().daemon:
            yield
            return
        with self._lock:
            spent = self._spent
            since = time.monotonic() if spent.waiting == 0 else spent.since
            self._spent = replace(spent, waiting=spent.waiting + 1, since=since)
        try:
            yield
        finally:
            with self._lock:
                spent = self._spent
                ended = spent.waiting == 1 and spent.main_done
                used = spent.used + (time.monotonic() - spent.since if ended else 0.0)
                self._spent = replace(spent, waiting=spent.waiting - 1, used=used)
