"""Fork recovery, all of it: a forked child gets a queue and a worker of its own in every lane.

After ``fork()`` no worker thread runs in the child, and a lock another thread held stays held
there, so each lane starts afresh in the child while the parent exports what it had queued.
Python's ``register_at_fork`` hook does this at once. A fork that skips the hook (uWSGI forks
from C) is noticed by the pid: the Rust core calls back on the next ``on_end``, and stats, flush,
shutdown and exit look before they use a core. By then the child cannot tell the spans it
inherited queued from its own: it counts them as dropped (``fork``).
"""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Callable, Iterable
from contextlib import suppress
from typing import TYPE_CHECKING, Generic, TypeVar

if TYPE_CHECKING:
    from spanbatch._core import BatchCore
    from spanbatch._lane import HasLanes, Lane

T = TypeVar("T")


def watch(owner: HasLanes) -> None:
    """Recover every lane of ``owner`` in a forked child, as soon as Python's fork hooks run."""
    if not hasattr(os, "register_at_fork"):
        return
    ref = weakref.ref(owner)

    def after_in_child() -> None:
        live = ref()
        for lane in [] if live is None else live.lanes:
            recover(lane, 0)

    os.register_at_fork(after_in_child=after_in_child)


def on_fork_of(lane: Lane) -> Callable[[int], BatchCore | None]:
    """What ``lane``'s core calls when a span ends in a forked child its hooks missed."""
    ref = weakref.ref(lane)

    def on_fork(orphaned: int) -> BatchCore | None:
        live = ref()
        return None if live is None else recover(live, orphaned)

    return on_fork


def current_core(lane: Lane) -> BatchCore:
    """The core of ``lane`` in this process; noticing a fork here means it skipped Python's hooks."""
    if lane.core.pid != os.getpid():
        recover(lane, lane.core.queue_len())
    return lane.core


def of_this_process(lanes: Iterable[Lane]) -> list[Lane]:
    """The lanes whose core this process made (a child's untouched lanes are its parent's to flush)."""
    return [lane for lane in lanes if lane.core.pid == os.getpid()]


def recover(lane: Lane, orphaned: int) -> BatchCore:
    """Give ``lane`` in a forked child its own core and worker, once, whichever thread asks first.

    ``orphaned`` counts spans found in the inherited queue when the fork skipped Python's
    hooks: the child cannot tell its own from its parent's, so it counts them as dropped.
    """
    pid, me = os.getpid(), threading.get_ident()
    if lane.core.pid == pid or lane.core.is_shutdown:
        return lane.core
    # No lock: one held by a parent thread would stay held here. setdefault is atomic.
    if lane.fork_claims.setdefault(pid, me) != me:
        return lane.core
    # CPython 3.12 starts no thread once exit has begun: a lane the child first touches then gets no worker of its
    # own. It stays its parent's, what it holds the parent's to send (see ``of_this_process``).
    with suppress(RuntimeError):
        lane.restart().count_lost_to_fork(orphaned)
    return lane.core


class PerProcess(Generic[T]):
    """A lock (or condition) of the calling process's own, for state that forked children share: one another
    thread of the parent held at the fork stays held in the child for ever, and a fork made from C (uWSGI) runs
    no hook that could replace it. ``get()`` returns this process's, made by ``make`` the first time one asks.
    """

    def __init__(self, make: Callable[[], T]) -> None:
        self._make = make
        self._by_pid: dict[int, T] = {}

    def get(self) -> T:
        pid = os.getpid()
        found = self._by_pid.get(pid)
        # setdefault is atomic: threads that race each make one, and all get the one stored first.
        return self._by_pid.setdefault(pid, self._make()) if found is None else found
