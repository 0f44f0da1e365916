"""How long a lane's export calls have run, against what each may take (``export_timeout_millis`` per batch, the
spec's meaning: the longest an export may take), as a synchronous call cannot be cut short: a flush gives up on a
lane once one of its calls has taken longer, a shutdown once its calls stopped moving. The drain's own deadline is
longer (``BatchSettings.drain_timeout_millis``): a drain of many exports that each keep their timeout is waited for to
the end, and on several export threads one hung call does not stop the others' drain."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager


class ExportClock:
    def __init__(self, timeout_millis: float) -> None:
        self._timeout_seconds = timeout_millis / 1000
        # Export thread's ident -> when its running call began (monotonic) and how long it may take, in seconds. No
        # lock of ours: a fork while an export thread held it would leave it held in the child; a dict's own item
        # set, delete and copy are atomic, with or without the GIL.
        self._running: dict[int, tuple[float, float]] = {}
        self._moved = time.monotonic()  # when a call last began or ended

    @contextmanager
    def timing(self, batches: int = 1) -> Iterator[Callable[[float], None]]:
        """Times the export call this thread makes meanwhile, which may take the timeout per batch it carries; what
        it yields allows it more seconds (an awaitable's cancellation grace)."""
        thread = threading.get_ident()
        self._moved = began = time.monotonic()
        self._running[thread] = (began, batches * self._timeout_seconds)

        def allow(seconds: float) -> None:
            self._running[thread] = (began, self._running[thread][1] + seconds)  # only this thread writes its own

        try:
            yield allow
        finally:
            # Moved before the entry goes: a reader that sees the entry gone sees the move too.
            self._moved = time.monotonic()
            del self._running[thread]

    def stalled_at(self, since: float) -> float:
        """When a wait for the lane to drain, begun at ``since`` (monotonic), stops: once no call has begun or ended,
        since then, for as long as the running ones may take (other export threads may still drain what one hung
        call cannot); infinity while none runs."""
        running = self._running.copy()
        if not running:
            return float("inf")
        return max(self._moved, since) + max(allowed for _, allowed in running.values())

    def overdue_at(self, since: float) -> float:
        """When a wait for a flush, begun at ``since``, stops: once a running call has taken, since then, what it may
        (a flush waits for every call before it to return, so one hung call holds it whatever the others do);
        infinity while none runs."""
        running = self._running.copy()
        return min((max(began, since) + allowed for began, allowed in running.values()), default=float("inf"))
