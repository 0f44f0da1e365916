"""A relative spill directory (``SPANBATCH_SPILL_DIR=spill``) names the directory under the working directory
the exporter was made in: a process that changes directory later (a daemon's ``chdir("/")``) keeps writing
to, and replaying from, the same place."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from spanbatch._spill import Sent, SpillStore

pytestmark = pytest.mark.timeout(30)


def test_a_store_made_with_a_relative_directory_keeps_it_after_a_chdir(in_tmp_path: Path) -> None:
    store = SpillStore("spill", 1 << 20)
    assert store.write(b"before", 1)
    elsewhere = in_tmp_path / "elsewhere"
    elsewhere.mkdir()
    os.chdir(elsewhere)
    assert store.write(b"after", 1)
    assert not (elsewhere / "spill").exists()
    got: list[bytes] = []
    store.replay(lambda data: got.append(data) or Sent.DELIVERED)
    assert got == [b"before", b"after"]
    assert (in_tmp_path / "spill").is_dir()
