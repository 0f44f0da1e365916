"""When the export calls running on a lane's export threads began: a wait for the lane ends once one of them has run
past ``export_timeout_millis``, the longest an export may take (the spec's meaning): a synchronous call cannot be cut
short, and is not waited for past it (an awaitable it returns is cut at that timeout by the lane's loop). The drain's
own deadline is longer (``BatchSettings.drain_timeout_millis``): a drain of many exports that each keep their timeout
is waited for to the end."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager


class ExportClock:
    def __init__(self, timeout_millis: float) -> None:
        self._timeout_seconds = timeout_millis / 1000
        # Export thread's ident -> when its export began (monotonic). No lock of ours: a fork while an export thread
        # held it would leave it held in the child; a dict's own item set, delete and copy are atomic, with or
        # without the GIL.
        self._began: dict[int, float] = {}

    @contextmanager
    def timing(self) -> Iterator[None]:
        """Times the export call this thread makes meanwhile."""
        thread = threading.get_ident()
        self._began[thread] = time.monotonic()
        try:
            yield
        finally:
            del self._began[thread]

    def overdue_at(self) -> float:
        """The monotonic time at which the oldest export running now is past its timeout; infinity for none."""
        oldest = min(self._began.copy().values(), default=None)
        return float("inf") if oldest is None else oldest + self._timeout_seconds
