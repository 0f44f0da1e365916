"""How long a lane's export calls have run, against what each may take (``export_timeout_millis`` per batch, the
spec's meaning: the longest an export may take), as a synchronous call cannot be cut short: a flush gives up on a
lane once one of its calls has taken longer, a shutdown once its calls stopped moving. The drain's own deadline is
longer (``BatchSettings.drain_timeout_millis``): a drain of many exports that each keep their timeout is waited for to
the end, and on several export threads one hung call does not stop the others' drain.

A call of several batches cannot be seen into, so it may take the timeout once per batch; unless the exporter's class
declares that it tells as each batch ends (``reports_batch_ends``, spanbatch's OTLP/HTTP exporters, which send the
batches in turn): each batch may then take the timeout from the end of the one before, so a hung one is given up at
its own timeout, not at the whole call's."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from spanbatch._core import SendProgress

# The calling thread's running call where it is paced: what its exporter marks (``paced_progress``).
_paced = threading.local()


def paced_progress() -> SendProgress | None:
    """What the exporter marks as each batch of the call it is in ends, where the processor paces that call (its
    class declares ``reports_batch_ends`` with the ``export_many`` called); None elsewhere (a wrapper's call).

    Taken by the first to ask, the paced call itself: an export nested in it on this thread (a log record of its
    retries exported by a ``SimpleLogRecordProcessor``) must not mark the outer call's batches as moving."""
    progress: SendProgress | None = getattr(_paced, "progress", None)
    _paced.progress = None
    return progress


class _Call:
    """One running call: written by its own thread only, read by the waiters (an attribute's write is atomic)."""

    __slots__ = ("allowed", "began", "grace", "progress")

    def __init__(self, began: float, allowed: float, progress: SendProgress | None) -> None:
        self.began = began
        self.allowed = allowed  # the timeout per batch, times its batches
        self.grace = 0.0  # an awaited call's cancellation grace
        self.progress = progress  # marked as each batch ends, where the call is paced

    def moved(self, now: float) -> float:
        """When its last batch ended, or when it began."""
        return self.began if self.progress is None else now - self.progress.idle_seconds()

    def step(self, timeout: float) -> float:
        """How long it may go without moving: one batch's timeout where paced, else the whole call's."""
        return (timeout if self.progress is not None else self.allowed) + self.grace

    def overran(self, ended: float) -> bool:
        """Whether, ending at ``ended``, it took the timeout per batch in all (the cancellation grace not counted: an
        awaited export cancelled at its timeout overran)."""
        return ended - self.began >= self.allowed

    def due(self, since: float, now: float, timeout: float) -> float:
        """When it has taken what it may, counted from ``since`` at the earliest: the timeout per batch in all, and
        where paced no more than one since the last batch ended."""
        due = max(self.began, since) + self.allowed + self.grace
        return due if self.progress is None else min(due, max(self.moved(now), since) + self.step(timeout))


class ExportClock:
    def __init__(self, timeout_millis: float) -> None:
        self._timeout_seconds = timeout_millis / 1000
        # Export thread's ident -> its running call. No lock of ours: a fork while an export thread held it would
        # leave it held in the child; a dict's own item set, delete and copy are atomic, with or without the GIL.
        self._running: dict[int, _Call] = {}
        self._moved = time.monotonic()  # when a call last began or ended
        # Whether the call that ended last took its whole timeout (cancelled at it, or returned past it): its
        # exporter's own ``shutdown`` is then given no longer than an export (see ``_lane._finish_shutdown``).
        self.last_overran = False

    @contextmanager
    def timing(self, batches: int = 1, *, paced: bool = False) -> Iterator[Callable[[float], None]]:
        """Times the export call this thread makes meanwhile, which may take the timeout per batch it carries; what
        it yields allows it more seconds (an awaitable's cancellation grace). ``paced``: its exporter's class declares
        that it tells as each batch ends (``paced_progress``)."""
        thread = threading.get_ident()
        self._moved = began = time.monotonic()
        call = _Call(began, batches * self._timeout_seconds, SendProgress() if paced else None)
        self._running[thread] = call
        _paced.progress = call.progress

        def allow(seconds: float) -> None:
            call.grace += seconds

        try:
            yield allow
        finally:
            _paced.progress = None
            # Moved before the entry goes: a reader that sees the entry gone sees the move too.
            self._moved = ended = time.monotonic()
            self.last_overran = call.overran(ended)
            del self._running[thread]

    def stalled_at(self, since: float) -> float:
        """When a wait for the lane to drain, begun at ``since`` (monotonic), stops: once nothing has moved (a call
        begun or ended, a paced call's batch ended), since then, for as long as the running ones may go without
        moving (other export threads may still drain what one hung call cannot); infinity while none runs."""
        running = list(self._running.copy().values())
        if not running:
            return float("inf")
        now = time.monotonic()
        moved = max(self._moved, *(call.moved(now) for call in running))
        return max(moved, since) + max(call.step(self._timeout_seconds) for call in running)

    def overdue_at(self, since: float) -> float:
        """When a wait for a flush, begun at ``since``, stops: once a running call has taken, since then, what it may
        (a flush waits for every call before it to return, so one hung call holds it whatever the others do);
        infinity while none runs."""
        now = time.monotonic()
        running = self._running.copy().values()
        return min((call.due(since, now, self._timeout_seconds) for call in running), default=float("inf"))
