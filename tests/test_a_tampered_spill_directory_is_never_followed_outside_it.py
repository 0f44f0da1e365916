"""What is planted in a spill directory (by whoever can write there: it may be shared) never makes spanbatch read,
send, move or delete anything outside it, nor hang (revX). Before: a ``tmp/`` that was a symbolic link had the sweep
of torn temp files delete every regular file of the directory it pointed to (3 of 3 runs: a victim's
``id_ed25519`` among them), a FIFO in ``tmp/`` hung the exporter's constructor and every ``os.fork()`` of the
process for good, a ``corrupt/`` link had evictions delete ``*.spill`` files elsewhere, a link named like a spill
file in one backend's directory sent another backend's request with this one's credentials, and a huge file that
was no spill file was read whole into memory before its header was looked at. Now the directories spanbatch keeps
are made for this user alone (0700) and used only if they are this user's own real directories; only regular files
are read (links and FIFOs are passed over); a file whose header does not check out is moved aside unread."""

from __future__ import annotations

import fcntl
import os
import stat
import subprocess
import sys
import textwrap
import tracemalloc
from pathlib import Path

import pytest
from spanbatch._spill import CORRUPT_DIR, TEMP_DIR, Sent, SpillStore
from spanbatch._spill_file import encode

from tests.helpers.spill import replayed

pytestmark = pytest.mark.timeout(60)

MB = 1 << 20


def victim_files(tmp_path: Path) -> Path:
    """A directory outside the spill one, holding files someone cares about (old, so that a sweep would take them
    for torn temp files; one named like a spill file)."""
    victim = tmp_path / "victim"
    victim.mkdir()
    for name in ("id_ed25519", "report.pdf", "archive-2024.spill"):
        (victim / name).write_bytes(b"precious " * 100)
        os.utime(victim / name, (0, 0))
    return victim


def test_a_tmp_link_is_not_swept_through_nor_written_through(tmp_path: Path) -> None:
    victim = victim_files(tmp_path)
    backend = tmp_path / "spill" / "http-0123456789abcdef"
    backend.mkdir(parents=True)
    (backend / TEMP_DIR).symlink_to(victim)
    store = SpillStore(backend, MB)
    assert not store.write(b"a request", 1)  # not written there: counted as a failed write
    assert replayed(store) == []
    assert sorted(p.name for p in victim.iterdir()) == ["archive-2024.spill", "id_ed25519", "report.pdf"]


def test_a_corrupt_link_is_not_evicted_through(tmp_path: Path) -> None:
    victim = victim_files(tmp_path)
    backend = tmp_path / "spill" / "http-0123456789abcdef"
    store = SpillStore(backend, 4096)
    (backend / CORRUPT_DIR).symlink_to(victim)
    for _ in range(20):  # over the cap: evictions, which take files moved aside first
        store.write(os.urandom(512), 1)
    assert (victim / "archive-2024.spill").exists()
    assert len(list(victim.iterdir())) == 3


def test_links_and_fifos_named_like_spill_files_are_passed_over(tmp_path: Path) -> None:
    other = SpillStore(tmp_path / "spill" / "http-other", MB)
    assert other.write(b"another backend's request", 1)
    (foreign,) = other.pending()
    backend = tmp_path / "spill" / "http-mine"
    store = SpillStore(backend, MB)
    (backend / foreign.name).symlink_to(foreign)
    os.mkfifo(backend / "00000000000000000001-1-00000000.spill")
    sent: list[bytes] = []

    def send(data: bytes) -> Sent:
        sent.append(data)
        return Sent.DELIVERED

    store.replay(send)
    assert sent == []
    assert foreign.exists()  # still the other backend's to send


def test_a_file_that_is_no_spill_file_is_moved_aside_unread(tmp_path: Path) -> None:
    backend = tmp_path / "spill" / "http-0123456789abcdef"
    store = SpillStore(backend, 256 * MB)
    planted = backend / "00000000000000000001-1-00000000.spill"
    with planted.open("wb") as file:
        file.truncate(64 * MB)  # sparse: nothing on disk, 64 MB read
    tracemalloc.start()
    try:
        assert replayed(store) == []
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 * MB, peak
    assert not planted.exists()
    assert (backend / CORRUPT_DIR / planted.name).exists()


def test_the_directories_it_makes_are_this_users_alone(tmp_path: Path) -> None:
    old = os.umask(0o002)
    try:
        store = SpillStore(tmp_path / "spill" / "http-0123456789abcdef", MB)
        assert store.write(b"a request", 1)
    finally:
        os.umask(old)
    # The directory given too, made by spanbatch (its listing names each backend by a digest of its headers).
    for directory in (store.directory.parent, store.directory, store.directory / TEMP_DIR):
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700, directory


FIFO_APP = """
import os, sys
from pathlib import Path
from spanbatch._spill import TEMP_DIR, SpillStore

backend = Path(sys.argv[1])
(backend / TEMP_DIR).mkdir(parents=True)
os.mkfifo(backend / TEMP_DIR / "00000000000000000001-1-00000000.spill.tmp")
SpillStore(backend, 1 << 20)
pid = os.fork()
if pid == 0:
    os._exit(0)
os.waitpid(pid, 0)
print("made, forked", flush=True)
"""


def test_a_fifo_in_tmp_neither_hangs_the_store_nor_a_fork(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(FIFO_APP), str(tmp_path / "spill" / "http-0123456789abcdef")],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "made, forked"


def test_a_store_whose_directory_was_replaced_by_a_link_goes_no_further(tmp_path: Path) -> None:
    # Replaced after the store was made (revZ: removed empty at another process's shutdown, then a link put in its
    # place by whoever can write the directory given): the sweep deleted every old file of the link's target/tmp,
    # and writes landed there. Everything now goes through a descriptor of the store's own directory.
    victim = tmp_path / "victim"
    (victim / TEMP_DIR).mkdir(parents=True)
    for name in ("key.pem", "notes.txt"):
        (victim / TEMP_DIR / name).write_bytes(b"precious " * 100)
        os.utime(victim / TEMP_DIR / name, (0, 0))
    backend = tmp_path / "spill" / "http-0123456789abcdef"
    store = SpillStore(backend, MB)
    (backend / TEMP_DIR).rmdir()
    backend.rmdir()
    backend.symlink_to(victim)
    assert not store.write(b"a request", 1)
    assert replayed(store) == []
    assert sorted(p.name for p in victim.rglob("*")) == ["key.pem", "notes.txt", TEMP_DIR]


@pytest.mark.skipif(os.geteuid() != 0, reason="plants a file as another user: needs root")
def test_a_file_another_user_planted_in_a_directory_left_open_is_not_sent(tmp_path: Path) -> None:
    # An earlier release made the directories under the umask (0775 at 002): a group member could plant a request,
    # which went out with this exporter's credentials (revZ). The store closes them to others and does not send
    # another user's file.
    backend = tmp_path / "spill" / "http-0123456789abcdef"
    (backend / TEMP_DIR).mkdir(parents=True)
    for directory in (backend, backend / TEMP_DIR):
        directory.chmod(0o775)
    planted = backend / "00000000000000000001-1-00000000.spill"
    planted.write_bytes(encode(b"forged", 1))
    os.truncate(planted, 2 * MB)  # over the cap: evictions came for the real requests instead (revZ2)
    os.chown(planted, 65534, 65534)
    with planted.open("rb") as held:
        fcntl.flock(held, fcntl.LOCK_SH)  # its planter holds it, for good: no lock for the store to take
        store = SpillStore(backend, MB)
        assert store.write(b"mine", 1)
        assert replayed(store) == [b"mine"]
    assert store.counts().evicted == 0
    assert not (backend / planted.name).exists()
    for directory in (backend, backend / TEMP_DIR):
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700, directory
