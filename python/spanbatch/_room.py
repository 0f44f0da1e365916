"""A greenlet's wait for room in a full queue under ``drop_policy="block"``, made from Python code (3.11+).

The native wait pauses with ``gevent.sleep`` called from inside the Rust push: at finalization CPython ends a real OS
thread left running on its hub by unwinding through the frames the hub was left from, those C frames gone since, and
the exit crashed (gpause: 15 of 15 exits on 3.11, 8 threads ending spans into a queue of 2; see
``_threads.PAUSES_FROM_PYTHON``). Here the push hands the item back instead (``RoomWait``), counted in as an item
waiting in the push is (``queued`` until it settles), and the wait pauses from Python code between tries that never
wait, up to ``block_timeout_millis``; then the item is dropped (``queue_full``). A thread that is no greenlet, or one
spanbatch's exit gate stops (``greenlets_may_pause``), waits as the push would.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from spanbatch._core import RoomWait, greenlets_may_pause
from spanbatch._settings import ExportPolicies
from spanbatch._threads import PAUSE_SECONDS, PAUSES_FROM_PYTHON, greenlet_pause, threads_are_greenlets


def waits_in_python(policies: ExportPolicies) -> bool:
    """Whether an engine's pushes hand back what a full queue refuses, to wait for room from Python code: on 3.11+,
    under gevent's patched threads, with ``drop_policy="block"`` and a block timeout. Nowhere else: there the SDK's
    call lands straight in the Rust push."""
    return (
        PAUSES_FROM_PYTHON
        and policies.drop_policy == "block"
        and policies.block_timeout_millis > 0
        and threads_are_greenlets()
    )


def waiting_for_room(push: Callable[[Any], list[RoomWait]]) -> Callable[[Any], None]:
    """``push`` (the span side's ``on_end_handing_back``), then the waits for room of the lanes that handed the span
    back. Its one argument passed on as is: forwarding ``*args, **kwargs`` cost each span about 600 ns under gevent,
    two to three times the push's own cost (revL)."""

    def push_and_wait(span: Any) -> None:
        waits = push(span)
        if waits:
            wait_for_room(waits)

    return push_and_wait


def waiting_for_room_if_told(push: Callable[[Any, bool], list[RoomWait]]) -> Callable[..., None]:
    """``waiting_for_room`` for the log side, whose push is told whether it may wait at all (``wait``)."""

    def push_and_wait(record: Any, wait: bool = True) -> None:
        waits = push(record, wait)
        if waits:
            wait_for_room(waits)

    return push_and_wait


def wait_for_room(waits: Sequence[RoomWait]) -> None:
    """Each lane's wait in turn, as the push makes them: each blocked lane adds its own. An exception (Ctrl-C) ends
    them all and is raised: the lane it came in drops the item (``queue_full``), and the lanes after it do not wait:
    one more try, else dropped too."""
    pause = greenlet_pause()
    for index, wait in enumerate(waits):
        try:
            _wait(wait, pause)
        except BaseException:
            wait.give_up()
            for later in waits[index + 1 :]:
                if not later.try_push():
                    later.give_up()
            raise


def _wait(wait: RoomWait, pause: Callable[[float], None] | None) -> None:
    deadline = time.monotonic() + wait.block_timeout_millis / 1000
    while not wait.try_push():
        left = deadline - time.monotonic()
        if pause is None or not greenlets_may_pause():
            wait.wait(max(left, 0.0) * 1000)
            return
        if left <= 0:
            wait.give_up()
            return
        pause(min(left, PAUSE_SECONDS))
