"""The spill's running total of what it stores (files and bytes, ``corrupt/`` included) stays what the directory
holds on every path: writes, deliveries, refusals moved aside, garbage, evictions, and files another store (another
process, or another exporter of the same backend) writes or removes. Eviction deletes the oldest files until the
rest fit, no more and no fewer."""

from __future__ import annotations

import random
import threading
import time
from pathlib import Path

import pytest
from spanbatch import _spill
from spanbatch._spill import CORRUPT_DIR, SUFFIX, TEMP_DIR, Sent, SpillStore
from spanbatch._spill_file import encode

pytestmark = pytest.mark.timeout(60)

FILE = len(encode(b"p00", 1))


def on_disk(directory: Path) -> tuple[int, int]:
    """Files and bytes a store counts toward its cap: those waiting and those moved aside (not temp files)."""
    files = [p for p in (*directory.glob(f"*{SUFFIX}"), *directory.glob(f"{CORRUPT_DIR}/*{SUFFIX}")) if p.is_file()]
    return len(files), sum(p.stat().st_size for p in files)


def kept(store: SpillStore) -> list[bytes]:
    return [path.read_bytes()[-3:] for path in store.pending()]


def test_the_newest_writes_that_fit_are_kept_exactly(tmp_path: Path) -> None:
    sizes = random.Random(1)
    cap = 5000
    store = SpillStore(tmp_path, cap)
    written: list[tuple[bytes, int]] = []
    for n in range(300):
        payload = b"%03d" % n
        data = bytes(sizes.randrange(0, 900)) + payload
        assert store.write(data, n + 1)
        written.append((data, n + 1))
        fits, total = [], 0
        for data, spans in reversed(written):  # the longest run of newest writes within the cap
            total += len(encode(data, spans))
            if total > cap:
                break
            fits.insert(0, data)
        assert [path.read_bytes()[-len(data) :] for path, data in zip(store.pending(), fits, strict=True)] == fits
        assert store.footprint() == on_disk(tmp_path)
    evicted = [spans for data, spans in written[: len(written) - len(store.pending())]]
    assert store.counts().evicted == sum(evicted)


def test_the_total_follows_deliveries_refusals_garbage_and_evictions(tmp_path: Path) -> None:
    store = SpillStore(tmp_path, 6 * FILE)
    for n in range(4):
        assert store.write(b"p%02d" % n, 1)
    assert store.footprint() == on_disk(tmp_path) == (4, 4 * FILE)
    answers = iter([Sent.DELIVERED, Sent.REJECTED])
    store.replay(lambda _data: next(answers, Sent.RETRY_LATER))  # one delivered, one moved aside
    assert store.footprint() == on_disk(tmp_path) == (3, 3 * FILE)
    (tmp_path / f"{1:020d}-1-00000000{SUFFIX}").write_bytes(b"garbage")  # oldest of all; moved aside at a pass
    store.replay(lambda _data: Sent.RETRY_LATER)
    assert store.footprint() == on_disk(tmp_path)
    assert len(list((tmp_path / CORRUPT_DIR).iterdir())) == 2
    for n in range(4, 10):
        assert store.write(b"p%02d" % n, 1)
        assert store.footprint() == on_disk(tmp_path)
        assert on_disk(tmp_path)[1] <= 6 * FILE
    assert not (tmp_path / CORRUPT_DIR).exists() or list((tmp_path / CORRUPT_DIR).iterdir()) == []
    assert kept(store) == [b"p%02d" % n for n in range(4, 10)]
    assert store.counts().evicted == 2  # p02 and p03; the files moved aside went first, not counted again
    assert not list((tmp_path / TEMP_DIR).iterdir())


def test_files_another_store_removed_free_their_room_at_once(tmp_path: Path) -> None:
    store = SpillStore(tmp_path, 4 * FILE)
    for n in range(4):
        assert store.write(b"p%02d" % n, 1)
    other = SpillStore(tmp_path, 4 * FILE)  # another process replaying the same backend's files
    answers = iter([Sent.DELIVERED, Sent.DELIVERED])
    other.replay(lambda _data: next(answers, Sent.RETRY_LATER))
    for n in range(4, 6):
        assert store.write(b"p%02d" % n, 1)
    assert store.counts().evicted == 0  # the room the other store made is there: nothing of ours is evicted
    assert kept(store) == [b"p02", b"p03", b"p04", b"p05"]
    assert store.footprint() == on_disk(tmp_path)


def test_files_another_store_wrote_count_from_the_next_replay_pass(tmp_path: Path) -> None:
    store = SpillStore(tmp_path, 4 * FILE)
    assert store.write(b"p00", 1)
    other = SpillStore(tmp_path, 4 * FILE)
    for n in range(1, 4):
        assert other.write(b"p%02d" % n, 1)
    store.replay(lambda _data: Sent.RETRY_LATER)  # the replay thread's pass, at least every 30 s
    assert store.write(b"p04", 1)
    assert kept(store) == [b"p01", b"p02", b"p03", b"p04"]
    assert store.footprint() == on_disk(tmp_path)


def test_files_another_store_wrote_count_at_a_write_once_the_recount_interval_passed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_spill, "RESYNC_SECONDS", 0.05, raising=False)
    store = SpillStore(tmp_path, 4 * FILE)
    assert store.write(b"p00", 1)
    other = SpillStore(tmp_path, 4 * FILE)
    for n in range(1, 4):
        assert other.write(b"p%02d" % n, 1)
    time.sleep(0.1)
    assert store.write(b"p04", 1)
    assert kept(store) == [b"p01", b"p02", b"p03", b"p04"]
    assert store.footprint() == on_disk(tmp_path)


def test_a_deleted_directory_is_counted_empty(tmp_path: Path) -> None:
    import shutil  # noqa: PLC0415

    store = SpillStore(tmp_path / "spill", 2 * FILE)
    assert store.write(b"p00", 1)
    assert store.write(b"p01", 1)
    shutil.rmtree(tmp_path / "spill")
    assert store.write(b"p02", 1)
    assert store.write(b"p03", 1)
    assert store.counts().evicted == 0
    assert store.footprint() == on_disk(tmp_path / "spill") == (2, 2 * FILE)


def test_the_total_stays_right_with_writers_and_replays_running_at_once(tmp_path: Path) -> None:
    store = SpillStore(tmp_path, 40 * FILE)
    other = SpillStore(tmp_path, 40 * FILE)  # another exporter of the same backend, replaying too
    answers = random.Random(2)
    done = threading.Event()

    def send(_data: bytes) -> Sent:
        return answers.choice([Sent.DELIVERED, Sent.DELIVERED, Sent.RETRY_LATER, Sent.REJECTED])

    def replaying(replayer: SpillStore) -> None:
        while not done.is_set():
            replayer.replay(send)

    def writing(n: int) -> None:
        for i in range(300):
            assert store.write(b"%d%02d" % (n, i % 100), 1)

    threads = [threading.Thread(target=replaying, args=(s,)) for s in (store, other)]
    writers = [threading.Thread(target=writing, args=(n,)) for n in range(3)]
    for thread in threads + writers:
        thread.start()
    for thread in writers:
        thread.join(30)
    done.set()
    for thread in threads:
        thread.join(30)
    store.replay(lambda _data: Sent.RETRY_LATER)  # a pass: what the other store did is recounted
    assert store.footprint() == on_disk(tmp_path)
    assert on_disk(tmp_path)[1] <= 40 * FILE
    assert store.write(b"end", 1)  # and the write after it keeps the cap exactly
    assert store.footprint() == on_disk(tmp_path)
    assert on_disk(tmp_path)[1] <= 40 * FILE
