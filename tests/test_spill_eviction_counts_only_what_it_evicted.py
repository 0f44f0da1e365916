"""``spill_evicted`` counts the spans of the spill files eviction deleted: a file in the directory that is
not a spill file (garbage, a torn copy) has no spans to count, and is counted as corrupt instead."""

from __future__ import annotations

from pathlib import Path

import pytest
from spanbatch._spill import SUFFIX, SpillStore
from spanbatch._spill_file import encode

pytestmark = pytest.mark.timeout(30)


@pytest.mark.parametrize(
    "content",
    [b"\xff" * 200, b"", b"SBSPILL\x00short", encode(b"p" * 150, 7)[:-1]],
    ids=["garbage", "empty", "short-header", "torn"],
)
def test_evicting_a_file_that_is_not_a_spill_file_counts_no_spans(tmp_path: Path, content: bytes) -> None:
    (tmp_path / f"00000000000000000000-1-00000000{SUFFIX}").write_bytes(content)
    store = SpillStore(tmp_path, 400)
    assert store.write(b"x" * 200, 1)
    assert store.write(b"y" * 200, 2)  # over the cap: the odd file goes first, then the first write
    counts = store.counts()
    assert counts.evicted == 1
    assert counts.corrupt == 1
    assert len(store.pending()) == 1


def test_evicted_spill_files_count_their_spans(tmp_path: Path) -> None:
    store = SpillStore(tmp_path, 3 * len(encode(b"x" * 100, 1)))
    for n in range(1, 7):
        assert store.write(b"x" * 100, n)
    assert store.counts().evicted == 1 + 2 + 3
    assert len(store.pending()) == 3
