"""Eviction works from a listing made before the new file was written: a file listed then but delivered (and
deleted) by the replay thread meanwhile no longer takes room, so no newer file is evicted in its place."""

from __future__ import annotations

from pathlib import Path

import pytest
from spanbatch._spill import Sent, SpillStore
from spanbatch._spill_file import encode

pytestmark = pytest.mark.timeout(30)

FILE = len(encode(b"x" * 100, 1))


def test_a_file_replayed_between_the_listing_and_the_eviction_frees_its_room(tmp_path: Path) -> None:
    store = SpillStore(tmp_path, 3 * FILE)
    for n in range(3):
        assert store.write(b"x" * 100, n + 1)
    listed = store._listing()
    oldest = store.pending()[0]

    def deliver_the_oldest_only(_: bytes) -> Sent:
        return Sent.DELIVERED

    store._replay_one(oldest, deliver_the_oldest_only)  # the replay thread, meanwhile
    assert store.write(b"y" * 100, 9)  # what the listing missed: this write's own file
    store._evict_over_cap([*listed, (store.pending()[-1].name, FILE)], [])
    assert store.counts().evicted == 0
    assert len(store.pending()) == 3
