"""The spill directory on its own (``spanbatch._spill``): real files, real processes, real signals."""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from spanbatch._spill import CORRUPT_DIR, TEMP_DIR, Sent, SpillStore
from spanbatch._spill_file import HEADER, MAGIC, decode, encode

from tests.helpers.spill import replayed

pytestmark = pytest.mark.timeout(60)

MB = 1 << 20


def payload(n: int, size: int = 64) -> bytes:
    """A payload that names itself and checks itself: ``n``, then filler derived from it."""
    head = f"{n:08d}".encode()
    return head + bytes((n + i) % 251 for i in range(size - len(head)))


def intact(data: bytes) -> bool:
    return data == payload(int(data[:8]), len(data))


def test_payloads_come_back_oldest_first_and_are_deleted_once_delivered(tmp_path: Path) -> None:
    store = SpillStore(tmp_path, 10 * MB)
    for n in range(5):
        assert store.write(payload(n), spans=n + 1)
    assert [intact(p) for p in replayed(store)] == [True] * 5
    assert store.pending() == []
    counts = store.counts()
    assert (counts.spilled, counts.replayed, counts.evicted, counts.corrupt) == (15, 15, 0, 0)


def test_the_order_is_write_order(tmp_path: Path) -> None:
    store = SpillStore(tmp_path, 10 * MB)
    for n in range(50):
        store.write(payload(n), spans=1)
    assert [int(p[:8]) for p in replayed(store)] == list(range(50))


def test_a_backend_still_down_keeps_the_files_and_stops_the_pass(tmp_path: Path) -> None:
    store = SpillStore(tmp_path, 10 * MB)
    for n in range(3):
        store.write(payload(n), spans=2)
    calls: list[bytes] = []

    def down(data: bytes) -> Sent:
        calls.append(data)
        return Sent.RETRY_LATER

    assert store.replay(down) == 0
    assert len(calls) == 1  # one probe, not one per file
    assert len(store.pending()) == 3
    assert store.counts().replayed == 0
    assert [int(p[:8]) for p in replayed(store)] == [0, 1, 2]


def test_a_rejected_payload_is_moved_aside_not_retried(tmp_path: Path) -> None:
    store = SpillStore(tmp_path, 10 * MB)
    store.write(payload(1), spans=4)
    assert store.replay(lambda data: Sent.REJECTED) == 0
    assert store.pending() == []
    assert len(list((tmp_path / CORRUPT_DIR).iterdir())) == 1
    assert store.counts().corrupt == 1


def test_over_the_cap_the_oldest_files_are_evicted_and_counted(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    size = len(encode(payload(0, 1000), 1))
    store = SpillStore(tmp_path, 3 * size + size // 2)
    with caplog.at_level(logging.WARNING, "spanbatch"):
        for n in range(10):
            assert store.write(payload(n, 1000), spans=10)
    assert [int(p[:8]) for p in replayed(store)] == [7, 8, 9]
    counts = store.counts()
    assert (counts.spilled, counts.evicted, counts.replayed) == (100, 70, 30)
    # One line with counts per 10 s, and the rest when the replay delivers (the outage is over).
    lines = [r.getMessage() for r in caplog.records if "evicted" in r.getMessage()]
    assert len(lines) == 2, lines
    assert "1 file(s), 10 spans" in lines[0], lines
    assert "6 file(s), 60 spans" in lines[1], lines


def test_a_payload_bigger_than_the_cap_is_refused(tmp_path: Path) -> None:
    store = SpillStore(tmp_path, 100)
    assert not store.write(payload(0, 1000), spans=3)
    assert store.pending() == []
    assert store.counts().write_failures == 1


def test_a_file_another_holder_has_claimed_is_skipped(tmp_path: Path) -> None:
    store = SpillStore(tmp_path, MB)
    store.write(payload(0), spans=1)
    store.write(payload(1), spans=1)
    other = SpillStore(tmp_path, MB)
    inner: list[bytes] = []

    def send(data: bytes) -> Sent:
        if not inner:
            inner.extend(replayed(other))  # while this one holds the first file
        return Sent.DELIVERED

    store.replay(send)
    assert [int(p[:8]) for p in inner] == [1]
    assert store.pending() == []


# -- bad files ---------------------------------------------------------------------------------


def test_a_directory_of_garbage_never_raises_and_quarantines_what_looks_like_spill_files(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = SpillStore(tmp_path, 10 * MB)
    store.write(payload(1), spans=1)
    good = store.pending()[0]
    whole = good.read_bytes()
    stamp = good.name[:20]
    bad = {
        "empty": b"",
        "short": whole[:10],
        "truncated": whole[:-5],
        "magic": b"X" * 8 + whole[8:],
        "crc": whole[:-1] + bytes([whole[-1] ^ 1]),
        "longer": whole + b"extra",
        "random": os.urandom(5000),
    }
    for n, (name, data) in enumerate(bad.items()):
        (tmp_path / f"{stamp}-0-{n:08d}-{name}.spill").write_bytes(data)
    (tmp_path / "notes.txt").write_bytes(os.urandom(100))
    (tmp_path / "dir.spill").mkdir()
    (tmp_path / TEMP_DIR / "garbage.tmp").write_bytes(os.urandom(100))  # nobody holds it: torn
    store.write(payload(2), spans=1)
    with caplog.at_level(logging.WARNING, "spanbatch"):
        got = replayed(store)
    assert [int(p[:8]) for p in got] == [1, 2]
    assert sorted(p.name.split("-")[-1] for p in (tmp_path / CORRUPT_DIR).iterdir()) == sorted(
        f"{name}.spill" for name in bad
    )
    assert store.counts().corrupt == len(bad) + 1
    assert (tmp_path / "notes.txt").exists()
    assert list((tmp_path / TEMP_DIR).iterdir()) == []


def test_a_file_from_a_newer_version_is_left_for_it(tmp_path: Path) -> None:
    store = SpillStore(tmp_path, MB)
    data = payload(0)
    import zlib  # noqa: PLC0415

    newer = HEADER.pack(MAGIC, 99, 0, 1, len(data), zlib.crc32(data)) + data
    (tmp_path / f"{0:020d}-0-00000000.spill").write_bytes(newer)
    assert replayed(store) == []
    assert len(store.pending()) == 1
    assert store.counts().corrupt == 0


def test_the_header_round_trips() -> None:
    assert decode(encode(b"abc", 7)) == (b"abc", 7)


# -- directories that cannot be written --------------------------------------------------------


def test_a_directory_under_a_file_gives_one_warning_and_failed_writes(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "file").write_text("")
    with caplog.at_level(logging.WARNING, "spanbatch"):
        store = SpillStore(tmp_path / "file" / "spill", MB)
        assert not store.write(payload(0), spans=5)
        assert not store.write(payload(1), spans=5)
        assert replayed(store) == []
    assert [r.getMessage().startswith("Cannot write to the spill directory") for r in caplog.records] == [True]
    assert store.counts().write_failures == 2
    assert store.counts().spilled == 0


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes through a read-only mode")
def test_a_read_only_directory_gives_one_warning_and_failed_writes(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = SpillStore(tmp_path, MB)
    (tmp_path / TEMP_DIR).chmod(0o500)
    try:
        with caplog.at_level(logging.WARNING, "spanbatch"):
            assert not store.write(payload(0), spans=5)
            assert not store.write(payload(1), spans=5)
    finally:
        (tmp_path / TEMP_DIR).chmod(0o700)
    assert len(caplog.records) == 1
    assert store.counts().write_failures == 2


def test_a_full_disk_gives_one_warning_and_leaves_no_file(tmp_path: Path) -> None:
    # RLIMIT_FSIZE fails writes past a size (EFBIG) for root too: a disk that fills mid-write.
    script = textwrap.dedent(
        f"""
        import logging, resource, signal
        from spanbatch._spill import SpillStore
        logging.basicConfig(level=logging.WARNING, format="%(message)s")
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        store = SpillStore({str(tmp_path)!r}, 1 << 30)
        assert store.write(b"x" * 1000, 1)
        resource.setrlimit(resource.RLIMIT_FSIZE, (50_000, 50_000))
        assert not store.write(b"y" * 100_000, 2)
        assert not store.write(b"z" * 100_000, 3)
        assert store.write(b"w" * 1000, 4)  # a small one still fits
        print(store.counts())
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stderr.count("Cannot write to the spill directory") == 1
    assert "spilled=5" in done.stdout
    assert "write_failures=2" in done.stdout
    assert list((tmp_path / TEMP_DIR).iterdir()) == []
    assert [len(p) for p in replayed(SpillStore(tmp_path, MB))] == [1000, 1000]


# -- several processes -------------------------------------------------------------------------


def _replay_into(directory: str, log: str, go: multiprocessing.synchronize.Event) -> None:
    store = SpillStore(directory, 1 << 30)
    fd = os.open(log, os.O_WRONLY | os.O_APPEND)

    def send(data: bytes) -> Sent:
        os.write(fd, data[:8] + b"\n")
        time.sleep(0.001)  # let the other process reach the same files
        return Sent.DELIVERED

    go.wait()
    while store.pending():
        store.replay(send)
    os._exit(0)


@pytest.mark.parametrize("replayers", [2, 4])
def test_processes_replaying_one_directory_deliver_each_file_once(tmp_path: Path, replayers: int) -> None:
    spill, log = tmp_path / "spill", tmp_path / "log"
    log.write_bytes(b"")
    store = SpillStore(spill, 1 << 30)
    for n in range(300):
        store.write(payload(n), spans=1)
    fork = multiprocessing.get_context("fork")
    go = fork.Event()
    processes = [fork.Process(target=_replay_into, args=(str(spill), str(log), go)) for _ in range(replayers)]
    for process in processes:
        process.start()
    go.set()
    for process in processes:
        process.join(30)
        assert process.exitcode == 0
    lines = log.read_bytes().split()
    assert sorted(int(line) for line in lines) == list(range(300))
    assert store.pending() == []


_WRITER = """
import sys
from spanbatch._spill import SpillStore
store = SpillStore(sys.argv[1], 1 << 40)
n = 0
while True:
    head = f"{n:08d}".encode()
    store.write(head + bytes((n + i) % 251 for i in range(4 * 1024 * 1024 - 8)), 1)
    print(n, flush=True)
    n += 1
"""


@pytest.mark.parametrize("delay", [0.0, 0.05, 0.2])
def test_a_writer_killed_mid_write_leaves_nothing_torn_to_replay(tmp_path: Path, delay: float) -> None:
    writer = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(tmp_path)], stdout=subprocess.PIPE, text=True, bufsize=1
    )
    assert writer.stdout is not None
    assert writer.stdout.readline().strip() == "0"  # one file written
    time.sleep(delay)
    writer.send_signal(signal.SIGKILL)
    writer.wait(10)
    written = 1 + sum(1 for _ in writer.stdout)
    store = SpillStore(tmp_path, 1 << 40)  # sweeps what the dead writer left in tmp/
    # (an empty one, killed before it locked it, waits TORN_AFTER_SECONDS: it could be a live writer's)
    assert [p for p in (tmp_path / TEMP_DIR).iterdir() if p.stat().st_size] == []
    got = replayed(store)
    assert all(intact(p) for p in got)
    assert written <= len(got) <= written + 1  # one more may have been renamed before its print
    assert store.counts().corrupt <= 1


def test_an_empty_temp_file_is_a_writer_about_to_lock_it_unless_it_is_old(tmp_path: Path) -> None:
    store = SpillStore(tmp_path, MB)
    fresh, old = tmp_path / TEMP_DIR / "fresh.tmp", tmp_path / TEMP_DIR / "old.tmp"
    fresh.write_bytes(b"")
    old.write_bytes(b"")
    an_hour_ago = time.time() - 3600
    os.utime(old, (an_hour_ago, an_hour_ago))
    assert replayed(store) == []
    assert fresh.exists()
    assert not old.exists()
    assert store.counts().corrupt == 1


def test_a_child_forked_while_a_file_is_claimed_does_not_keep_it_locked(tmp_path: Path) -> None:
    # flock belongs to the open file, which a forked child shares: unless the child closes its copy,
    # the file stays locked, and unreplayable by anyone, for as long as the child lives.
    store = SpillStore(tmp_path, MB)
    store.write(payload(0), spans=1)
    children: list[int] = []

    def fork_meanwhile(data: bytes) -> Sent:
        ready, tell = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.write(tell, b"1")  # the child's fork hooks have run: what it holds now, it holds for its life
            time.sleep(5)
            os._exit(0)
        children.append(pid)
        os.close(tell)
        os.read(ready, 1)  # else the parent may claim the file again before the child has run at all
        os.close(ready)
        return Sent.RETRY_LATER

    try:
        store.replay(fork_meanwhile)
        assert [int(p[:8]) for p in replayed(store)] == [0]
    finally:
        for pid in children:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
