"""``spill_max_bytes`` caps the whole subdirectory, ``corrupt/`` included: files moved aside (refused by the
backend, not checking out) are never replayed, so they are the first deleted over the cap, and repeated
outages that end in refusals never fill the disk."""

from __future__ import annotations

from pathlib import Path

import pytest
from spanbatch._spill import CORRUPT_DIR, Sent, SpillStore
from spanbatch._spill_file import encode

pytestmark = pytest.mark.timeout(30)

FILE = len(encode(b"x" * 100, 1))


def bytes_under(directory: Path) -> int:
    return sum(path.stat().st_size for path in directory.rglob("*") if path.is_file())


def test_files_moved_aside_count_toward_the_cap_and_go_first(tmp_path: Path) -> None:
    store = SpillStore(tmp_path, 4 * FILE)
    for outage in range(5):
        for n in range(3):
            assert store.write(b"x" * 100, outage * 10 + n)
        store.replay(lambda _: Sent.REJECTED)  # the backend came back and refuses them: moved aside
        assert bytes_under(tmp_path) <= 4 * FILE
    assert store.counts().corrupt == 15
    assert store.write(b"y" * 100, 1)
    assert store.write(b"y" * 100, 1)
    assert bytes_under(tmp_path) <= 4 * FILE
    assert len(store.pending()) == 2  # what waits is kept; what was moved aside went first
    assert store.counts().evicted == 0
    assert len(list((tmp_path / CORRUPT_DIR).iterdir())) == 2
