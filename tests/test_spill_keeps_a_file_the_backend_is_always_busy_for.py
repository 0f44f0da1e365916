"""A file the backend answers "busy" to every time (``Sent.RETRY_LATER``: 429/503, ``UNAVAILABLE``) is never moved
aside as refused: busy is no verdict on the file. It must not hold up the newer files behind it, must not make the
replay loop spin, and stays only as long as the byte cap lets it: it is the oldest, so it is the first evicted,
counted and warned about as any evicted file is."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import pytest
from spanbatch._spill import CORRUPT_DIR, Sent, SpillStore
from spanbatch._spill_file import encode
from spanbatch.exporter._spilling import Spiller

from tests.helpers import wait_until

pytestmark = pytest.mark.timeout(60)

FILE = len(encode(b"busy0", 1))


def test_files_answered_busy_forever_stay_and_newer_ones_are_delivered(tmp_path: Path) -> None:
    store = SpillStore(tmp_path, 1 << 20)
    busy = {b"busy%d" % n for n in range(5)}
    for payload in sorted(busy):
        assert store.write(payload, 1)
    delivered: list[bytes] = []

    def send(data: bytes) -> Sent:
        if data in busy:
            return Sent.RETRY_LATER
        delivered.append(data)
        return Sent.DELIVERED

    written = []
    for n in range(100):  # a request spilled now and then behind them, by a backend that takes the others
        written.append(b"good%d" % n)
        assert store.write(written[-1], 1)
        store.replay(send)
    assert delivered[-80:] == written[-80:]  # once the busy files were passed over, each goes at its first pass
    assert sorted(path.read_bytes()[-5:] for path in store.pending()) == sorted(busy)
    assert store.counts().corrupt == 0
    assert not (tmp_path / CORRUPT_DIR).exists()

    def up(data: bytes) -> Sent:
        delivered.append(data)
        return Sent.DELIVERED

    assert store.replay(up) == 5  # the backend takes them in the end
    assert store.counts().replayed == 105


def test_a_file_answered_busy_forever_is_the_first_evicted_over_the_cap(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = SpillStore(tmp_path, 3 * FILE)
    assert store.write(b"busy0", 7)
    for _ in range(10):
        store.replay(lambda _data: Sent.RETRY_LATER)
    with caplog.at_level(logging.WARNING, "spanbatch"):
        for n in range(3):
            assert store.write(b"good%d" % n, 1)
    assert store.counts().evicted == 7
    assert store.counts().corrupt == 0
    assert sorted(path.read_bytes()[-5:] for path in store.pending()) == [b"good0", b"good1", b"good2"]
    assert any("evicted the oldest 1 file(s), 7 spans" in r.getMessage() for r in caplog.records)


def test_a_spiller_probes_a_file_answered_busy_forever_at_its_backoff_not_in_a_loop(tmp_path: Path) -> None:
    probes: list[bytes] = []
    delivered = threading.Event()

    def send_once(data: bytes) -> Sent:
        probes.append(data)
        if data == b"busy0":
            return Sent.RETRY_LATER
        delivered.set()
        return Sent.DELIVERED

    spiller = Spiller(SpillStore(tmp_path, 1 << 20), send_once)
    try:
        assert spiller.spill(b"busy0", 1)
        assert spiller.spill(b"good0", 1)
        assert delivered.wait(30)
        busy_probes = probes.count(b"busy0")
        # Backoff from 0.5 s doubling: a few probes in 2 s; a pass run again at once would make thousands.
        assert not wait_until(lambda: probes.count(b"busy0") > busy_probes + 4, 2)
        assert [path.read_bytes()[-5:] for path in spiller.store.pending()] == [b"busy0"]
        assert spiller.counts().corrupt == 0
    finally:
        spiller.stop()


def test_a_passed_over_file_is_tried_again_when_the_others_could_not_be_sent(tmp_path: Path) -> None:
    # Kept for good now, a passed-over file must not wait on a delivery of another: here the only other file is
    # one a newer spanbatch wrote (left for it, never sent), so no pass delivers anything before it is tried.
    import zlib  # noqa: PLC0415

    from spanbatch._spill_file import HEADER, MAGIC  # noqa: PLC0415

    store = SpillStore(tmp_path, 1 << 20)
    assert store.write(b"busy0", 1)
    for _ in range(3):  # the backend is busy: passed over
        store.replay(lambda _data: Sent.RETRY_LATER)
    (tmp_path / f"{99:020d}-0-00000000.spill").write_bytes(HEADER.pack(MAGIC, 99, 0, 1, 1, zlib.crc32(b"n")) + b"n")
    sent: list[bytes] = []

    def up(data: bytes) -> Sent:
        sent.append(data)
        return Sent.DELIVERED

    store.replay(up)
    assert sent == [b"busy0"]
    assert len(store.pending()) == 1  # the newer version's file, left for it
