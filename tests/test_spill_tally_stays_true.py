"""The spill's running total stays true to the directory (review-s12): another store deleting files that are not the
oldest, or the replay thread delivering a file before its writer counted it, never makes a write evict a file
while the directory is under its cap. And a replay thread starting never deadlocks with an exporter's finalizer."""

from __future__ import annotations

import fcntl
import os
import threading
from pathlib import Path

import pytest
from spanbatch import _threads
from spanbatch._spill import Sent, SpillStore
from spanbatch._spill_file import encode
from spanbatch.exporter._spilling import Spiller

from tests.helpers import wait_until

pytestmark = pytest.mark.timeout(60)

FILE = len(encode(b"p00", 1))


def test_a_write_evicts_nothing_while_the_directory_is_under_the_cap(tmp_path: Path) -> None:
    """Another store (another process replaying the same backend) delivers files that are not the oldest (the
    oldest is held by a third replayer, so skipped). This store's running total still counts them: its next
    write must not evict a file while the directory holds half the cap."""
    store = SpillStore(tmp_path, 4 * FILE)
    for n in range(4):
        assert store.write(b"p%02d" % n, 1)
    oldest = store.pending()[0]
    other = SpillStore(tmp_path, 4 * FILE)
    fd = os.open(oldest, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # a third process is replaying it: the other store skips it
        answers = iter([Sent.DELIVERED, Sent.DELIVERED])
        other.replay(lambda _data: next(answers, Sent.RETRY_LATER))
    finally:
        os.close(fd)
    assert len(store.pending()) == 2  # p00 and p03 are left: room for two more
    assert store.write(b"p04", 1)
    assert (store.counts().evicted, len(store.pending())) == (0, 3)


def test_a_file_passed_over_elsewhere_is_not_evicted_while_the_directory_is_under_the_cap(tmp_path: Path) -> None:
    """The same drift through passing over: another store (process) answered busy for the oldest file three times,
    so it delivers the newer files first and keeps that one; this store must not evict it at a quarter of its cap."""
    store = SpillStore(tmp_path, 4 * FILE)
    for n in range(4):
        assert store.write(b"p%02d" % n, 1)
    other = SpillStore(tmp_path, 4 * FILE)
    for _ in range(3):  # the backend answers busy: the oldest file is passed over from now on
        other.replay(lambda _data: Sent.RETRY_LATER)

    def send(data: bytes) -> Sent:
        return Sent.RETRY_LATER if data == b"p00" else Sent.DELIVERED

    assert other.replay(send) == 3
    assert [path.read_bytes()[-3:] for path in store.pending()] == [b"p00"]
    assert store.write(b"p04", 1)
    assert (store.counts().evicted, len(store.pending())) == (0, 2)


def test_a_file_delivered_between_its_rename_and_its_count_is_not_counted_for_ever(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The store's own replay thread may list and deliver a new file once the writer let go of its lock and before
    it is counted (the interleaving is forced here): it must not stay counted, a file over what the directory holds."""
    store = SpillStore(tmp_path, 4 * FILE)
    add = store._tally.add

    def replay_then_add(name: str, size: int) -> None:
        # The replay thread's pass, at that moment (the writer has let go of the file's lock, not yet counted it).
        store._tally_lock.release()
        try:
            store.replay(lambda _data: Sent.DELIVERED)
        finally:
            store._tally_lock.acquire()
        add(name, size)

    monkeypatch.setattr(store._tally, "add", replay_then_add)
    assert store.write(b"p00", 1)
    monkeypatch.undo()
    assert store.pending() == []
    assert store.footprint() == (0, 0)


class Exporter:
    def send_once(self, _payload: bytes) -> Sent:
        return Sent.RETRY_LATER


def test_an_exporter_freed_while_a_replay_thread_starts_does_not_deadlock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``Thread.start`` waits for the new thread, in which a garbage collection may run the finalizer of another
    exporter of the same directory, freed without a shutdown: it hands its files to this spiller
    (``_ensure_replaying``). A starter holding the spiller's lock meanwhile waits for ever. Forced here: the
    start waits for a thread that frees that exporter."""
    assert SpillStore(tmp_path, 1 << 20).write(b"left by an earlier process", 1)
    exporters = [Exporter()]
    freed = Spiller(SpillStore(tmp_path, 1 << 20), exporters[0].send_once)
    finalizers: list[threading.Thread] = []

    def free_the_exporter() -> None:
        exporters.clear()  # the last reference: its finalizer runs here, in another thread than the starter's

    class StartsAfterAFinalizer(_threads._Thread):
        def start(self) -> None:
            if self.name == "spanbatch-spill-replay" and not finalizers:
                finalizer = threading.Thread(target=free_the_exporter, daemon=True)
                finalizers.append(finalizer)
                finalizer.start()
                finalizer.join(5)  # as Thread.start waits for the new thread
            super().start()

    monkeypatch.setattr(_threads, "_Thread", StartsAfterAFinalizer)
    live = Spiller(SpillStore(tmp_path, 1 << 20), lambda _payload: Sent.RETRY_LATER)
    monkeypatch.undo()
    try:
        assert finalizers
        assert not finalizers[0].is_alive(), "the finalizer waited for the starter's lock"
        assert freed._shut_down
        assert wait_until(lambda: live._thread is not None and live._thread.is_alive(), 10)
    finally:
        live.stop()
        freed.stop()
