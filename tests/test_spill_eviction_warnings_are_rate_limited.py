"""A long outage over a small ``spill_max_bytes`` evicts a file per request: the warnings say so in one line
with counts at most every 10 s, as drops are reported, never one line per evicted file."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from spanbatch._spill import SpillStore
from spanbatch._spill_file import encode

pytestmark = pytest.mark.timeout(30)

FILE = len(encode(b"x" * 100, 1))


def test_thirty_evictions_in_a_row_give_one_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    store = SpillStore(tmp_path, 2 * FILE)
    with caplog.at_level(logging.WARNING, "spanbatch"):
        for _ in range(32):
            assert store.write(b"x" * 100, 5)
    assert store.counts().evicted == 30 * 5
    lines = [r.getMessage() for r in caplog.records if "evicted" in r.getMessage()]
    assert len(lines) == 1, lines
    assert "1 file(s), 5 spans" in lines[0]


def test_requests_over_the_cap_give_one_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    # Each is dropped and counted (``write_failures``; the processor's ``export_failed``, reported in its own
    # rate-limited line): the cap needs saying once.
    store = SpillStore(tmp_path, 100)
    with caplog.at_level(logging.WARNING, "spanbatch"):
        for _ in range(20):
            assert not store.write(b"x" * 1000, 1)
    assert store.counts().write_failures == 20
    assert sum("over the spill cap" in r.getMessage() for r in caplog.records) == 1
