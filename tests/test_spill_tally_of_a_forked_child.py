"""A child forked while another thread of the parent held the spill's running total (a replay pass recounting it
from a listing) gets a lock of its own and recounts at its first write, the parent going on writing meanwhile."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest
from spanbatch._spill import SpillStore
from spanbatch._spill_file import encode

pytestmark = pytest.mark.timeout(30)

FILE = len(encode(b"p00", 1))


def test_a_child_forked_while_the_tally_is_held_writes_and_counts_what_the_parent_wrote(tmp_path: Path) -> None:
    store = SpillStore(tmp_path, 3 * FILE)
    assert store.write(b"p00", 1)
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with store._tally_lock:
            held.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    assert held.wait(10)
    ready, tell = os.pipe()
    go, start = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.close(ready)
        os.read(go, 1)  # the parent wrote two files since the fork
        ok = store.write(b"p03", 1) and store.footprint() == (3, 3 * FILE) and store.counts().evicted == 1
        os.write(tell, b"1" if ok else b"0")
        os._exit(0)
    os.close(tell)
    release.set()
    holder.join(10)
    assert store.write(b"p01", 1)
    assert store.write(b"p02", 1)
    os.write(start, b"1")
    answer = os.read(ready, 1)
    os.waitpid(pid, 0)
    assert answer == b"1"
    assert [path.read_bytes()[-3:] for path in store.pending()] == [b"p01", b"p02", b"p03"]
