"""A file delivered (and deleted) by the replay thread no longer takes room: a write after it evicts no newer
file in its place, whether the replay was this store's or another's sharing the directory (another process)."""

from __future__ import annotations

from pathlib import Path

import pytest
from spanbatch._spill import Sent, SpillStore
from spanbatch._spill_file import encode

pytestmark = pytest.mark.timeout(30)

FILE = len(encode(b"x" * 100, 1))


@pytest.mark.parametrize("replayer", ["same store", "another store"])
def test_a_file_replayed_before_a_write_frees_its_room(tmp_path: Path, replayer: str) -> None:
    store = SpillStore(tmp_path, 3 * FILE)
    for n in range(3):
        assert store.write(b"x" * 100, n + 1)
    replaying = store if replayer == "same store" else SpillStore(tmp_path, 3 * FILE)
    answers = iter([Sent.DELIVERED])
    assert replaying.replay(lambda _: next(answers, Sent.RETRY_LATER)) == 1  # the replay thread, meanwhile
    assert store.write(b"y" * 100, 9)
    assert store.counts().evicted == 0
    assert len(store.pending()) == 3
