"""A spill write keeps a running total of the files it counts toward the cap: under the cap it neither lists the
directory nor stats the files in it, so its cost does not grow with how many are stored (an outage over a 256 MiB
cap leaves tens of thousands). A write that evicts lists the directory once first (others may have deleted any of
the files counted), and stats none of the files it knows. Counted in directory entries read and ``stat`` calls,
never in time."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from spanbatch import _spill
from spanbatch._spill import SUFFIX, SpillStore
from spanbatch._spill_file import encode

pytestmark = pytest.mark.timeout(60)

PAYLOAD = b"x" * 100
FILE = len(encode(PAYLOAD, 1))


class Looks:
    """Counts what the process looks at on disk: entries read from ``os.scandir`` and ``stat`` calls."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        scandir, stat, lstat = os.scandir, os.stat, os.lstat
        looks = self

        class Entry:
            def __init__(self, entry: os.DirEntry[str]) -> None:
                self._entry = entry

            def __getattr__(self, name: str) -> Any:
                return getattr(self._entry, name)

            def stat(self, **kwargs: Any) -> os.stat_result:
                looks.count += 1
                return self._entry.stat(**kwargs)

        class Listing:
            def __init__(self, entries: Any) -> None:
                self._entries = entries

            def __enter__(self) -> Listing:
                return self

            def __exit__(self, *exc: object) -> None:
                self._entries.close()

            def __iter__(self) -> Iterator[Entry]:
                for entry in self._entries:
                    looks.count += 1
                    yield Entry(entry)

            def close(self) -> None:
                self._entries.close()

        def counted_stat(*args: Any, **kwargs: Any) -> os.stat_result:
            looks.count += 1
            return stat(*args, **kwargs)

        def counted_lstat(*args: Any, **kwargs: Any) -> os.stat_result:
            looks.count += 1
            return lstat(*args, **kwargs)

        monkeypatch.setattr(os, "scandir", lambda *args: Listing(scandir(*args)))
        monkeypatch.setattr(os, "stat", counted_stat)
        monkeypatch.setattr(os, "lstat", counted_lstat)


def store_with(directory: Path, files: int, max_bytes: int) -> SpillStore:
    data = encode(PAYLOAD, 1)
    for n in range(files):  # as an earlier process left them (written directly: thousands of fsyncs are slow)
        (directory / f"{n + 1:020d}-1-{n:08d}{SUFFIX}").write_bytes(data)
    return SpillStore(directory, max_bytes)


def looks_per_write(store: SpillStore, monkeypatch: pytest.MonkeyPatch, writes: int = 5) -> list[int]:
    with monkeypatch.context() as patch:
        looks = Looks(patch)
        counts = []
        for _ in range(writes):
            before = looks.count
            assert store.write(PAYLOAD, 1)
            counts.append(looks.count - before)
    return counts


@pytest.fixture(autouse=True)
def no_periodic_recount(monkeypatch: pytest.MonkeyPatch) -> None:
    # A write recounts the directory from a listing at most once per RESYNC_SECONDS (files other processes
    # wrote): amortised, and not what is measured here.
    monkeypatch.setattr(_spill, "RESYNC_SECONDS", 1e9, raising=False)


def test_a_write_under_the_cap_looks_at_as_much_with_2000_files_as_with_20(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "few").mkdir()
    (tmp_path / "many").mkdir()
    few = looks_per_write(store_with(tmp_path / "few", 20, 1 << 30), monkeypatch)
    many = looks_per_write(store_with(tmp_path / "many", 2000, 1 << 30), monkeypatch)
    assert many == few, (few, many)
    assert max(many) < 20


def test_a_write_that_evicts_lists_the_directory_once_and_stats_no_file_it_knows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "few").mkdir()
    (tmp_path / "many").mkdir()
    few_store = store_with(tmp_path / "few", 20, 20 * FILE)
    many_store = store_with(tmp_path / "many", 2000, 2000 * FILE)
    few = looks_per_write(few_store, monkeypatch)
    many = looks_per_write(many_store, monkeypatch)
    assert [m - f for m, f in zip(many, few, strict=True)] == [2000 - 20] * 5, (few, many)  # one entry per file
    assert max(few) < 40
    assert few_store.counts().evicted == many_store.counts().evicted == 5
    assert len(many_store.pending()) == 2000
