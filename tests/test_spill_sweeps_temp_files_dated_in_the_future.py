"""An empty temp file whose mtime is far in the future (written before the clock went back) is not a writer
about to lock it for ever: it is swept like an old one, not left in ``tmp/`` uncounted."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from spanbatch._spill import TEMP_DIR, Sent, SpillStore

pytestmark = pytest.mark.timeout(30)


def test_an_empty_temp_file_dated_an_hour_ahead_is_swept_and_counted(tmp_path: Path) -> None:
    store = SpillStore(tmp_path, 1 << 20)
    ahead = tmp_path / TEMP_DIR / "ahead.tmp"
    ahead.write_bytes(b"")
    an_hour_ahead = time.time() + 3600
    os.utime(ahead, (an_hour_ahead, an_hour_ahead))
    assert store.replay(lambda _: Sent.DELIVERED) == 0
    assert not ahead.exists()
    assert store.counts().corrupt == 1
