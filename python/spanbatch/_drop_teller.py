"""The thread that tells a lane's first full queue at once, whatever its export does: one per process, for every lane.

A lane's worker tells its drops once its export returns, but an export that hangs (a backend that does not answer:
the commonest cause of a full queue) would hold the first line back as long, where the stock processor logs it at once
on the thread that ended the item. That thread is in the Rust push, which must not log (see
``_engine._after_shutdown``): on its cold path, a core's first full-queue drop, it wakes this one
(``_core.DropNews``), which tells it as the worker would. One thread for all lanes rather than one more per lane: it
sleeps without the GIL and without a timeout, and is woken once per core at most. A forked child starts its own
(``PerProcess``) as its lanes make their cores there.
"""

from __future__ import annotations

import logging
import signal
import threading
import weakref
from typing import Protocol

from spanbatch._core import DropNews
from spanbatch._fork import PerProcess
from spanbatch._safe_log import logged
from spanbatch._threads import WorkerThread, block_process_signals, start_thread

logger = logging.getLogger("spanbatch")


class TellsFirstFull(Protocol):
    """A lane, as the teller sees it."""

    def tell_first_full(self) -> None: ...


class _Teller:
    """This process's news, the lanes it tells of (weakly: a lane nobody can reach goes) and its thread."""

    def __init__(self) -> None:
        self.news = DropNews()
        # Replaced, never changed in place: the thread reads it without the lock.
        self.lanes: tuple[weakref.ref[TellsFirstFull], ...] = ()
        self.thread: WorkerThread | None = None
        self.lock = threading.Lock()

    def tell(self) -> None:
        while True:
            # Blocked while it waits, which is nearly all its life: it outlives the lanes (``block_process_signals``).
            # Its own mask back while it tells: what a user's logging handler starts there (a thread, a process)
            # inherits the mask it would have anywhere.
            own = block_process_signals()
            self.news.wait()
            signal.pthread_sigmask(signal.SIG_SETMASK, own)
            for ref in self.lanes:
                _tell(ref)


def _tell(ref: weakref.ref[TellsFirstFull]) -> None:
    """Tells the lane ``ref`` refers to, if it is still there. A function of its own: no reference to the lane
    outlives it, while the teller sleeps again, perhaps for good, with a processor nobody can reach any more."""
    lane = ref()
    if lane is None:
        return
    try:
        lane.tell_first_full()
    except Exception:
        # One lane's error must not end the thread that tells every lane's first full queue.
        logged(logger.exception, "spanbatch: telling a full queue failed")


_tellers = PerProcess(_Teller)


def news() -> DropNews:
    """This process's news, for a core a lane makes here (``BatchCore(news=...)``)."""
    return _tellers.get().news


def watch(lane: TellsFirstFull) -> None:
    """Tell ``lane``'s first full queue from this process's teller, started by the first lane."""
    teller = _tellers.get()
    with teller.lock:
        teller.lanes = (*(ref for ref in teller.lanes if ref() is not None), weakref.ref(lane))
        if teller.thread is None:
            teller.thread = start_thread(teller.tell, "spanbatch-drop-teller")
