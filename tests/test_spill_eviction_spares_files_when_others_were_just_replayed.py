"""A file delivered (and deleted) by the replay thread no longer takes room: a write after it evicts no newer
file in its place, whether the replay was this store's or another's sharing the directory (another process)."""

from __future__ import annotations

import fcntl
from pathlib import Path
from typing import Any

import pytest
from spanbatch._spill import Sent, SpillStore
from spanbatch._spill_file import encode

from tests.helpers import in_child

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


def test_a_file_another_store_delivered_behind_the_oldest_frees_its_room(tmp_path: Path) -> None:
    # Not the oldest file: evicting from the old end, the store would not come across it gone.
    store = SpillStore(tmp_path, 3 * FILE)
    for n in range(3):
        assert store.write(b"%d" % n * 100, n + 1)
    oldest, second, _ = store.pending()
    other = SpillStore(tmp_path, 3 * FILE)
    with oldest.open("rb") as held:  # being replayed by a third process: the other store passes it by
        fcntl.flock(held, fcntl.LOCK_EX)
        answers = iter([Sent.DELIVERED])
        assert other.replay(lambda _: next(answers, Sent.RETRY_LATER)) == 1
    assert not second.exists()
    assert store.write(b"y" * 100, 9)
    assert store.counts().evicted == 0
    assert oldest.exists()
    assert len(store.pending()) == 3


def test_a_file_another_process_delivered_behind_the_oldest_frees_its_room(tmp_path: Path) -> None:
    store = SpillStore(tmp_path, 3 * FILE)
    for n in range(3):
        assert store.write(b"%d" % n * 100, n + 1)
    oldest, second, _ = store.pending()

    def replay_behind_the_oldest() -> dict[str, Any]:
        other = SpillStore(tmp_path, 3 * FILE)  # the child's own store, as a process started anew makes
        answers = iter([Sent.DELIVERED])
        return {"delivered": other.replay(lambda _: next(answers, Sent.RETRY_LATER))}

    with oldest.open("rb") as held:  # being replayed here: the child passes it by
        fcntl.flock(held, fcntl.LOCK_EX)
        assert in_child(replay_behind_the_oldest) == {"delivered": 1}
    assert not second.exists()
    assert store.write(b"y" * 100, 9)
    assert store.counts().evicted == 0
    assert oldest.exists()
