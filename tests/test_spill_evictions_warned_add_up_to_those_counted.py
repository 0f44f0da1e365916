"""Eviction warnings are rate-limited, but what they leave unsaid is said later: once the interval has passed,
the replay pass that follows an outage reports the evictions still unreported, so the lines add up to the count."""

from __future__ import annotations

import logging
import re
import time
from pathlib import Path

import pytest
from spanbatch import _spill
from spanbatch._spill import Sent, SpillStore
from spanbatch._spill_file import encode

pytestmark = pytest.mark.timeout(30)

FILE = len(encode(b"x" * 100, 1))
LINE = re.compile(r"evicted the oldest (\d+) file\(s\), (\d+) spans?")


def test_evictions_left_unsaid_by_the_rate_limit_are_reported_by_the_next_replay(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_spill, "EVICTION_REPORT_SECONDS", 0.2)
    store = SpillStore(tmp_path, 2 * FILE)
    with caplog.at_level(logging.WARNING, "spanbatch"):
        for _ in range(32):
            assert store.write(b"x" * 100, 5)
        time.sleep(0.3)  # the outage ends: no more evictions, a replay pass finds the backend still busy
        store.replay(lambda _payload: Sent.RETRY_LATER)
    assert store.counts().evicted == 30 * 5
    said = [tuple(map(int, m.groups())) for r in caplog.records if (m := LINE.search(r.getMessage()))]
    assert (sum(files for files, _ in said), sum(spans for _, spans in said)) == (30, 150), said


def test_evictions_left_unsaid_are_reported_when_a_replay_delivers_within_the_interval(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = SpillStore(tmp_path, 2 * FILE)
    with caplog.at_level(logging.WARNING, "spanbatch"):
        for _ in range(32):
            assert store.write(b"x" * 100, 5)
        # The backend is back at once: the replay thread delivers all and ends, nothing evicts again.
        assert store.replay(lambda _payload: Sent.DELIVERED) == 2
    said = [tuple(map(int, m.groups())) for r in caplog.records if (m := LINE.search(r.getMessage()))]
    assert (sum(files for files, _ in said), sum(spans for _, spans in said)) == (30, 150), said
