"""Spill files are replayed (and evicted) in the order they were written even when the wall clock went back
meanwhile (NTP step, a VM restored, a manual change): their names sort after every file already there."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from spanbatch._spill import SpillStore

from tests.helpers.spill import replayed

pytestmark = pytest.mark.timeout(30)

HOUR_NS = 3600 * 10**9


def clock_back(monkeypatch: pytest.MonkeyPatch) -> None:
    real = time.time_ns
    monkeypatch.setattr(time, "time_ns", lambda: real() - HOUR_NS)


def test_a_store_writing_after_the_clock_went_back_keeps_write_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = SpillStore(tmp_path, 1 << 20)
    assert store.write(b"first", 1)
    clock_back(monkeypatch)
    assert store.write(b"second", 1)
    assert store.write(b"third", 1)
    assert replayed(store) == [b"first", b"second", b"third"]


def test_a_new_process_writing_after_the_clock_went_back_queues_behind_what_it_found(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert SpillStore(tmp_path, 1 << 20).write(b"earlier process", 1)
    clock_back(monkeypatch)
    later = SpillStore(tmp_path, 1 << 20)
    assert later.write(b"later process", 1)
    assert replayed(later) == [b"earlier process", b"later process"]


def test_eviction_after_the_clock_went_back_deletes_the_oldest_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = SpillStore(tmp_path, 200)  # two files of 88 bytes fit, not three
    assert store.write(b"a" * 60, 1)
    clock_back(monkeypatch)
    assert store.write(b"b" * 60, 2)
    assert store.write(b"c" * 60, 3)  # over the cap: "a", the oldest write, goes
    assert store.counts().evicted == 1
    assert replayed(store) == [b"b" * 60, b"c" * 60]
