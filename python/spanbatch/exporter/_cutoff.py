"""When a spilling exporter's sends end at the latest, once the process exits.

A spill directory asks for durability: at exit, what cannot be sent within the exit deadline must reach the disk. A
backend that takes the connection and never answers holds a request for the exporter's whole timeout (10 s by
default), past the exit limit (5 s), and the queue behind it with it. So once exit begins (the program's end, or
spanbatch's shutdown of every lane on SIGTERM, ``SPANBATCH_FLUSH_ON_SIGTERM``), the spiller sets a cut-off short of
the exit deadline (``_spilling``): a send still waiting then (begun before the exit, or since) ends as timed out,
and goes to disk like any request that timed out, the queue behind it after it. Without a spill directory no cut-off
is ever set: the exporter waits out its own timeout, as the stock one does.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class Cutoff:
    """An exporter's cut-off: none until exit begins, and never without a spill directory (no spiller sets it)."""

    def __init__(self, backoff_ends: threading.Event) -> None:
        # The stock client's shutdown event, which ends its backoff between retries (nothing else sets it before
        # the exporter's shutdown).
        self._backoff_ends = backoff_ends
        # What tells each Rust transport (the exports', the replay's), whose sends read their own cut-off (None: none).
        self._transports: list[Callable[[float | None], None]] = []
        self._at: float | None = None

    def tell(self, transport: Callable[[float | None], None]) -> None:
        """``transport(at)`` whenever the cut-off is set, and now if it is: a transport made once it was set too."""
        self._transports.append(transport)
        at = self._at
        if at is not None:
            transport(at)

    def end_backoff(self) -> None:
        """A retry's backoff ends now: at exit, a failing request goes to disk at once."""
        self._backoff_ends.set()

    def set(self, at: float) -> None:
        """Sends end by ``at`` (monotonic) at the latest, those under way too; a retry's backoff ends now."""
        self._at = at
        self.end_backoff()
        for transport in list(self._transports):
            transport(at)

    def lift(self) -> None:
        """No cut-off, and backoffs as usual again: in a forked child that lives on, whose parent was exiting."""
        self._at = None
        # Set by the stock shutdown too; an exporter shut down refuses every export all the same.
        self._backoff_ends.clear()
        for transport in list(self._transports):
            transport(None)

    def left(self) -> float | None:
        """The seconds left to the cut-off, 0 once past; None while none is set."""
        at = self._at
        return None if at is None else max(0.0, at - time.monotonic())

    def capped(self, seconds: float) -> float:
        """A send's ``seconds``, no longer than what is left to the cut-off."""
        left = self.left()
        return seconds if left is None else min(seconds, left)
