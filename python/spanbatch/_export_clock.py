"""Whether a lane's exports still move: a flush or shutdown gives up on a lane once none of its export calls has begun
or ended for as long as the running ones may take (``export_timeout_millis`` per batch, the spec's meaning: the
longest an export may take), as a synchronous call cannot be cut short. The drain's own deadline is longer
(``BatchSettings.drain_timeout_millis``): a drain of many exports that each keep their timeout is waited for to the
end, and on several export threads one hung call does not stop the others' drain."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager


class ExportClock:
    def __init__(self, timeout_millis: float) -> None:
        self._timeout_seconds = timeout_millis / 1000
        # Export thread's ident -> how long its running call may take, in seconds. No lock of ours: a fork while an
        # export thread held it would leave it held in the child; a dict's own item set, delete and copy are atomic,
        # with or without the GIL.
        self._allowed: dict[int, float] = {}
        self._moved = time.monotonic()  # when a call last began or ended

    @contextmanager
    def timing(self, batches: int = 1) -> Iterator[Callable[[float], None]]:
        """Times the export call this thread makes meanwhile, which may take the timeout per batch it carries; what
        it yields allows it more seconds (an awaitable's cancellation grace)."""
        thread = threading.get_ident()
        self._moved = time.monotonic()
        self._allowed[thread] = batches * self._timeout_seconds

        def allow(seconds: float) -> None:
            self._allowed[thread] += seconds  # only this thread writes its own entry

        try:
            yield allow
        finally:
            # Moved before the entry goes: a reader that sees the entry gone sees the move too.
            self._moved = time.monotonic()
            del self._allowed[thread]

    def overdue_at(self, since: float) -> float:
        """When a wait begun at ``since`` (monotonic) stops waiting for the lane's exports: once none has begun or
        ended, since then, for as long as the running ones may take; infinity while none runs."""
        allowed = self._allowed.copy()
        if not allowed:
            return float("inf")
        return max(self._moved, since) + max(allowed.values())
