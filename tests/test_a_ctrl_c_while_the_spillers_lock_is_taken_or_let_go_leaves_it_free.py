"""A Ctrl-C that lands while the main thread takes or lets go of the spiller's lock (an exporter's shutdown stops its
spiller under it) leaves that lock free, as a ``with`` block the KeyboardInterrupt ends does: a worker's next spill
takes it. Held on, it would be held for ever by a thread that goes on living: every later spill (a worker thread's,
with its export) and the replay thread would wait for it for good.

Python runs a signal's handler between two bytecodes of the main thread; it is run here, raising KeyboardInterrupt, at
each line of ``_threads``' code the stop runs (lines, not bytecodes: CPython 3.12.1 traces no frame called after one
that asked for opcode events). Measured with the spiller's lock a ``SharedLock(reentrant=True)`` written in Python:
left held at 12 of 19 lines on 3.10-3.13 (the first: right after ``_take`` took the OS lock; the last: in
``release``, its notes cleared but the OS lock not let go); the OS's ``RLock``, taken and let go in C, has none.
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path
from types import FrameType
from typing import Any

import pytest
from spanbatch import _threads
from spanbatch._spill import Sent, SpillStore
from spanbatch.exporter._spilling import Spiller

pytestmark = pytest.mark.timeout(120)


def stop_interrupted(spiller: Spiller, at: int) -> tuple[int, str]:
    """``spiller.stop()`` on this thread (the main one, where Ctrl-C lands), with a KeyboardInterrupt raised at the
    ``at``-th line of ``_threads``' code it runs (none if 0): how many it ran, and where it was raised."""
    ran = 0
    raised_at = ""

    def trace(frame: FrameType, event: str, _arg: Any) -> Any:
        nonlocal ran, raised_at
        if frame.f_code.co_filename != _threads.__file__:
            return None
        if event == "line":
            ran += 1
            if ran == at:
                raised_at = f"{frame.f_code.co_name}, line {frame.f_lineno}, bytecode {frame.f_lasti}"
                raise KeyboardInterrupt
        return trace

    before = sys.gettrace()
    sys.settrace(trace)
    try:
        spiller.stop(0)
    except KeyboardInterrupt:
        pass
    finally:
        sys.settrace(before)
    return ran, raised_at


def spills_from_another_thread(spiller: Spiller) -> bool:
    """Whether a spill on another thread (a worker's) ends: it looks for the replay thread under the lock."""
    spilled: list[bool] = []
    thread = threading.Thread(target=lambda: spilled.append(spiller.spill(b"request", 1)), daemon=True)
    thread.start()
    thread.join(10)
    return spilled == [True]


def spiller_in(directory: Path) -> Spiller:
    spiller = Spiller(SpillStore(directory, 1 << 20), lambda _payload: Sent.DELIVERED)
    assert spiller._lock is spiller._lock  # this process's lock made already: its making is not what is interrupted
    return spiller


def test_a_ctrl_c_anywhere_in_a_take_or_let_go_of_the_spillers_lock_leaves_it_free(tmp_path: Path) -> None:
    ran, _ = stop_interrupted(spiller_in(tmp_path / "all"), 0)
    for at in range(1, ran + 1):
        spiller = spiller_in(tmp_path / str(at))
        _, raised_at = stop_interrupted(spiller, at)
        assert raised_at, at
        assert spills_from_another_thread(spiller), f"left held by a Ctrl-C at {raised_at} ({at} of {ran})"
