"""A directory of encoded export requests waiting for their backend: the opt-in disk spill.

Knows nothing of exporters: it stores opaque payloads with their span count and hands them
back, oldest first, to a ``send`` callable. Safe for several processes sharing one directory:

- A file appears whole or not at all: written under ``tmp/`` (locked by its writer while it
  is written), flushed to disk, then renamed into place. A writer that dies leaves a temp file
  nobody holds a lock on; the next store to look removes it and counts it (``corrupt``).
- A file is replayed by one process only: the replayer holds ``fcntl.flock`` on it from
  reading until it is deleted, and checks after locking that the path still names the file
  it opened (another process may have replayed and deleted it meanwhile).
- Each file carries a header (magic, version, span count, length, crc32): one that does not
  check out is moved aside to ``corrupt/`` and counted, never replayed, never raised.
- A file the backend refuses for good (``Sent.REJECTED``) is moved aside too, and so is one whose answer
  could not be read (``Sent.UNCONFIRMED``: the backend may have it, and sent again would have it twice). One it
  answers "busy" to (``Sent.RETRY_LATER``) never is, however often: busy says nothing of the file (an overloaded backend
  behind a load balancer answers so at random). After a few such answers it is passed over, tried after
  the newer files (see ``SpillStore.replay``), so that it never holds them up; it stays until delivered,
  or until the cap evicts it (it is among the oldest). A probe the backend did not answer at all
  (``Sent.UNREACHABLE``: down, refused) counts against no file: an outage probes the oldest file
  again and again, and passing it over for that would deliver the files newer first once the backend is back.
- Over ``max_bytes`` the oldest files are deleted and counted (``evicted``); files moved aside count
  toward it too, and go first (they were counted when moved).
- A write lists nothing: the store keeps a running total of the files and bytes there (``_spill_tally``),
  right for what it does itself. What other stores sharing the directory (other processes, or another
  exporter of the same backend here) add or remove, it learns from a listing (a ``stat`` only of files it
  does not know): at every replay pass (one at least every 30 s while files wait), at a write at most once
  every ``RESYNC_SECONDS``, and before a write evicts anything (others may have delivered or evicted any of
  the files it counts: their room must not cost a file of ours). So after a write the directory holds at
  most the cap plus what others wrote since this store last listed it (``RESYNC_SECONDS`` at most before):
  never more for what this store wrote, and it evicts only what the directory really holds over the cap.
  A new file's name sorts after the files of that listing too (``_next_stamp``).
- A directory that cannot be written (read-only, full, not a directory) gives one warning;
  the write returns False and the caller counts the payload as it would have without a spill.
  One deleted while the process runs is made again at the next write.
"""

from __future__ import annotations

import enum
import errno
import fcntl
import itertools
import logging
import math
import os
import stat
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

from spanbatch._fork import PerProcess
from spanbatch._log_words import in_the_last, spans_in_words
from spanbatch._spill_file import CorruptFile, NewerVersion, encode, read_file, span_count
from spanbatch._spill_tally import Footprint, Tally
from spanbatch._threads import shared_lock

logger = logging.getLogger("spanbatch")

SUFFIX = ".spill"
TEMP_DIR = "tmp"
TEMP_SUFFIX = ".tmp"  # a file being written, under ``tmp/``: ``<name>.spill.tmp``
CORRUPT_DIR = "corrupt"
# An empty, unlocked temp file younger than this may be a writer that has not locked it yet.
TORN_AFTER_SECONDS = 60.0
# A file answered busy this many times is passed over: tried after the newer files, never moved aside for it.
PASS_OVER_AFTER = 3
# A write recounts the directory from a listing at most this often, for the files other stores wrote there.
RESYNC_SECONDS = 5.0
# Evictions are warned about in one line with counts at most this often, as drops are: a long outage over
# a small cap evicts a file per request.
EVICTION_REPORT_SECONDS = 10.0


class Sent(enum.Enum):
    """What the backend did with one replayed payload."""

    DELIVERED = "delivered"  # accepted: the file is deleted
    RETRY_LATER = "retry_later"  # answered busy: the file stays, the replay pass stops
    UNREACHABLE = "unreachable"  # not answered (down, refused): as busy, but no answer about this file
    REJECTED = "rejected"  # refused for good (not retryable, or too large): moved aside, as a corrupt file is
    UNCONFIRMED = "unconfirmed"  # its answer could not be read, the backend may have it: moved aside, not sent again


@dataclass(frozen=True)
class SpillCounts:
    """What one store did, in this process. Spans, except ``corrupt`` and ``write_failures`` (files)."""

    spilled: int = 0
    replayed: int = 0
    evicted: int = 0
    corrupt: int = 0
    write_failures: int = 0


class SpillStore:
    """One spill directory, as this process sees it. Thread-safe; never raises an ``OSError``."""

    def __init__(self, directory: str | os.PathLike[str], max_bytes: int) -> None:
        # Absolute: a process that changes directory later (a daemon's chdir("/")) keeps its files in one place.
        self.directory = Path(directory).absolute()
        self.max_bytes = max_bytes
        # Its locks are shared with the replay thread, a real OS thread even under gevent (see ``shared_lock``).
        self._lock = shared_lock()
        self._counts = SpillCounts()
        self._sequence = itertools.count()
        self._last_stamp = 0
        # Evicted files and spans not yet warned about, and when the last warning was.
        self._unreported = (0, 0)
        self._reported_at = -EVICTION_REPORT_SECONDS
        self._warned_unwritable = False
        self._warned_over_cap = False
        # Per file name: the busy answers it had (see ``replay``).
        self._failures: dict[str, int] = {}
        # The files there and their bytes, and the newest write time among their names: see the module's doc.
        # Its own lock, held while a listing recounts it, so that a file added or removed meanwhile counts once.
        self._tally = Tally()
        self._tally_lock = shared_lock()
        self._newest = 0
        self._synced_at = -math.inf
        self._evicting = shared_lock()  # one eviction at a time: two would both pick the same oldest file
        self._usable = self._prepare()
        _stores.add(self)

    def __repr__(self) -> str:
        footprint = self.footprint()
        return (
            f"SpillStore({str(self.directory)!r}, max_bytes={self.max_bytes}, files={footprint.files}, "
            f"bytes={footprint.bytes}, "
            f"counts={self.counts()})"
        )

    def _after_fork_in_child(self) -> None:
        # A lock another thread of the parent held stays held in the child; the counts (and the evictions not yet
        # warned about) are the parent's.
        self._lock = shared_lock()
        self._tally_lock = shared_lock()
        self._evicting = shared_lock()
        self._counts = SpillCounts()
        self._unreported = (0, 0)
        self._synced_at = -math.inf  # the parent goes on writing: recount at the first write

    def counts(self) -> SpillCounts:
        with self._lock:
            return self._counts

    def footprint(self) -> Footprint:
        """The files and bytes this store counts toward its cap (those moved aside included), as it last knew."""
        with self._tally_lock:
            return self._tally.footprint()

    def _count(self, **more: int) -> None:
        with self._lock:
            now = self._counts
            self._counts = replace(now, **{name: getattr(now, name) + n for name, n in more.items()})

    def _prepare(self) -> bool:
        try:
            self._make_directories()
        except OSError as error:
            self._unwritable(error)
            return False
        self._sweep_temp_files()
        self._sync()
        return True

    def _make_directories(self) -> None:
        """This store's directory and its ``tmp/``, made for this user alone; ``OSError`` if either is not a real
        directory of this user's (see ``_own_directory``)."""
        # The directory given, if missing, is made this user's alone too: a listing of it shows each backend's
        # name, a digest of its endpoint and headers that a weak password in them could be guessed from.
        self.directory.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        with suppress(FileExistsError):
            self.directory.mkdir(mode=0o700)
        with self._here() as home:
            with suppress(FileExistsError):
                os.mkdir(TEMP_DIR, 0o700, dir_fd=home)
            with _own_directory(TEMP_DIR, home):
                pass

    def _unwritable(self, error: OSError) -> None:
        if not self._warned_unwritable:
            self._warned_unwritable = True
            logger.warning(
                "Cannot write to the spill directory %s (%s); requests that fail are dropped and counted.",
                self.directory,
                error,
            )

    # -- writing --------------------------------------------------------------------------------

    def write(self, payload: bytes, spans: int) -> bool:
        """Store one payload; False (one warning per store, a count) if it could not be stored."""
        data = encode(payload, spans)
        if len(data) > self.max_bytes:  # the cap would evict it at once
            if not self._warned_over_cap:  # each is counted; the cap needs saying once
                self._warned_over_cap = True
                logger.warning("A request of %d bytes is over the spill cap of %d bytes.", len(data), self.max_bytes)
            self._count(write_failures=1)
            return False
        if not self._usable:
            self._usable = self._prepare()  # the directory may have come back
            if not self._usable:
                self._count(write_failures=1)
                return False
        began = time.monotonic()
        if began - self._synced_at >= RESYNC_SECONDS:  # what other stores wrote meanwhile
            self._sync()
        try:
            name = self._write_anew(data)
        except OSError as error:
            self._unwritable(error)
            self._count(write_failures=1)
            return False
        with self._tally_lock:
            self._tally.add(name, len(data))
            # Unlocked once renamed into place, it may have been listed, delivered and uncounted since by the
            # replay thread: counted only if still there (a removal uncounts it under this lock, after deleting it).
            if not self._exists(name):
                self._tally.remove(name)
        self._count(spilled=spans)
        self._evict_over_cap(began)
        return True

    def _write_anew(self, data: bytes) -> str:
        try:
            return self._write_file(data, self._newest)
        except FileNotFoundError:  # the directory was deleted meanwhile (a /tmp cleaner): make it again
            self._make_directories()
            self._sync()  # its files went with it
            return self._write_file(data, self._newest)

    def _write_file(self, data: bytes, newest: int) -> str:
        """Write ``data`` to a new file named after the write time ``newest`` (see ``_next_stamp``); its name."""
        with self._here() as home, _own_directory(TEMP_DIR, home) as temp_dir:
            for _ in range(3):
                name = f"{self._next_stamp(newest):020d}-{os.getpid()}-{next(self._sequence):08d}" + SUFFIX
                temp = name + TEMP_SUFFIX
                fd = _open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, dir_fd=temp_dir)
                try:
                    # Locked while written, so the sweep leaves it alone; a sweep that removed it
                    # between its creation and this lock leaves it nameless: start again.
                    fcntl.flock(fd, fcntl.LOCK_EX)
                    if not os.path.samestat(os.fstat(fd), _stat(temp, temp_dir)):
                        continue
                    view = memoryview(data)
                    while view:
                        view = view[os.write(fd, view) :]
                    os.fsync(fd)
                    os.rename(temp, name, src_dir_fd=temp_dir, dst_dir_fd=home)
                    return name
                except OSError:
                    _remove(temp, temp_dir)
                    raise
                finally:
                    _close(fd)
        raise OSError("temp files kept disappearing")

    def _next_stamp(self, newest: int) -> int:
        """The write time a new file is named by: now, unless the clock went back since the ``newest`` file there
        (at the last listing) or one of this store's was named; then just after it, so that names keep sorting in
        write order."""
        with self._lock:
            self._last_stamp = max(time.time_ns(), self._last_stamp + 1, newest + 1)
            return self._last_stamp

    def _evict_over_cap(self, began: float) -> None:
        """While the files counted add up to more than the cap, delete the oldest of those moved aside (never
        replayed, counted when moved), then the oldest waiting (those being replayed left to their replayer).

        Recounted from a listing first, unless done since the write ``began``: other stores (processes) may have
        deleted any of the files counted, and their room must not cost a file of ours. Evicting is the rare
        path; a write under the cap lists nothing."""
        with self._evicting:
            held: set[str] = set()
            while True:
                with self._tally_lock:
                    oldest = self._tally.oldest(held) if self._tally.bytes > self.max_bytes else None
                if oldest is None:
                    return
                if self._synced_at < began:
                    self._sync()
                    continue
                name = oldest.name
                if oldest.aside:
                    self._remove_here(name, CORRUPT_DIR)  # gone already or not, it is no longer counted
                    with self._tally_lock:
                        self._tally.remove_aside(name)
                    continue
                outcome = self._evict(name)
                if outcome == "held":
                    held.add(name)
                elif outcome == "gone":  # delivered or evicted by another store since the listing
                    with self._tally_lock:
                        self._tally.remove(name)

    def _evict(self, name: str) -> Literal["evicted", "held", "gone"]:
        """Delete one waiting file and count it; "held" if being replayed (its replayer deletes it)."""
        if self._moved_aside_if_foreign(name):  # then evicted from there first, whoever holds its lock
            return "gone"
        with self._claimed(name) as fd:
            if fd is None:
                return "held" if self._exists(name) else "gone"
            spans = span_count(fd)
            self._remove_here(name)
        with self._tally_lock:
            self._tally.remove(name)
        if spans is None:  # not a whole spill file: no spans to count as evicted
            self._count(corrupt=1)
            logger.warning(
                "Spill directory over %d bytes: removed the unusable %s.", self.max_bytes, self.directory / name
            )
        else:
            self._count(evicted=spans)
            self._warn_evicted(1, spans)
        return "evicted"

    def tell_evictions_held_back(self) -> None:
        """Says the evictions the rate limit has not said yet: at the exporter's shutdown, no later pass will."""
        self._warn_evicted(at_once=True)

    def _warn_evicted(self, files: int = 0, spans: int = 0, *, at_once: bool = False) -> None:
        """Adds ``files`` evicted, of ``spans``, to those unreported (none: only reports); reports if it is time."""
        with self._lock:
            unreported = self._unreported
            self._unreported = (unreported[0] + files, unreported[1] + spans)
            now = time.monotonic()
            if self._unreported == (0, 0) or (now - self._reported_at < EVICTION_REPORT_SECONDS and not at_once):
                return
            (files, spans), self._unreported = self._unreported, (0, 0)
            elapsed, self._reported_at = now - self._reported_at, now
        logger.warning(
            "Spill directory %s over %d bytes: evicted the oldest %d file(s), %s%s.",
            self.directory,
            self.max_bytes,
            files,
            spans_in_words(spans),
            f" {in_the_last(elapsed)}" if elapsed < 2 * EVICTION_REPORT_SECONDS else "",
        )

    def remove_if_empty(self) -> None:
        """The directory (and its ``tmp/``) removed if it holds nothing else: its exporter is shut down, and one per
        credential (a rotating token names a directory of its own) left two for good. Another process's store that
        uses it makes it again at its next write; one holding anything, a file being written included, stays."""
        with suppress(OSError):
            with self._here() as home:
                if any(entry != TEMP_DIR for entry in os.listdir(home)):
                    return
                os.rmdir(TEMP_DIR, dir_fd=home)
            self.directory.rmdir()  # a link put in its place meanwhile is not removed (nor followed)

    # -- reading --------------------------------------------------------------------------------

    def pending(self) -> list[Path]:
        """The stored files, oldest first (names start with their write time)."""
        return [self.directory / name for name in self._names()]

    def _names(self, under: str = "") -> list[str]:
        """The stored files' names (``under`` a subdirectory: those moved there), oldest first: no ``Path``
        nor ``stat`` each, a directory may hold many."""
        try:
            with self._here(under) as directory, os.scandir(directory) as entries:
                # Regular files only: a link or a FIFO named like one is not this store's (planted, or another
                # backend's file linked in, which would go with this one's credentials). Another user's is moved aside
                # when replayed (``_replay_one``): looking here would cost a stat per file.
                return sorted(
                    entry.name
                    for entry in entries
                    if entry.name.endswith(SUFFIX) and entry.is_file(follow_symlinks=False)
                )
        except OSError:
            return []

    @contextmanager
    def _here(self, under: str = "") -> Iterator[int]:
        """This store's directory (``under``: its subdirectory), opened as ``_own_directory`` opens it."""
        with _own_directory(self.directory) as home:
            if not under:
                yield home
                return
            with _own_directory(under, home) as directory:
                yield directory

    def _moved_aside_if_foreign(self, name: str) -> bool:
        """Whether the stored file ``name`` is another user's (planted while an earlier release left the directory
        open to others): moved aside then, never sent, and first evicted. Looked at before its lock, which its
        planter may hold for good: locked elsewhere, it would be passed over for ever, its room counted."""
        try:
            with self._here() as home:
                foreign = os.stat(name, dir_fd=home, follow_symlinks=False).st_uid != os.geteuid()
        except OSError:
            return False
        if foreign:
            self._quarantine(name, "is another user's file, not sent")
        return foreign

    def _exists(self, name: str, under: str = "") -> bool:
        try:
            with self._here(under) as directory:
                os.stat(name, dir_fd=directory, follow_symlinks=False)
        except OSError:
            return False
        return True

    def _remove_here(self, name: str, under: str = "") -> None:
        with suppress(OSError), self._here(under) as directory:
            os.unlink(name, dir_fd=directory)

    def _sync(self) -> list[str]:
        """Recount the tally from listings of the directory and of ``corrupt/``; the names waiting, oldest first."""
        # Under the lock: a file this store adds or removes meanwhile is counted once, before or after.
        with self._tally_lock:
            waiting = self._names()
            self._tally.sync(waiting, self._names(CORRUPT_DIR), self._size_of)
            # The last name that starts with a stamp (20 digits sort as their value). ASCII only: str.isdigit also
            # takes superscripts, which int() refuses (a stray file must not fail writes).
            stamps = (name[:20] for name in reversed(waiting))
            self._newest = next((int(s) for s in stamps if len(s) == 20 and s.isascii() and s.isdigit()), 0)
            self._synced_at = time.monotonic()
        return waiting

    def _size_of(self, name: str, aside: bool) -> int | None:
        try:
            with self._here(CORRUPT_DIR if aside else "") as directory:
                return os.stat(name, dir_fd=directory, follow_symlinks=False).st_size
        except OSError:  # gone since it was listed
            return None

    def replay(self, send: Callable[[bytes], Sent], stopped: Callable[[], bool] = lambda: False) -> int:
        """Hand stored payloads to ``send``, oldest first; returns how many it delivered.

        Stops at the first ``RETRY_LATER`` or ``UNREACHABLE`` (the backend is busy or down: one such answer a
        pass), or before the next file once ``stopped()``. A file answered busy ``PASS_OVER_AFTER`` times (not
        ``UNREACHABLE``, which is no answer about the file) is passed over, so
        that it never blocks the files behind it: it is tried after them, the passed-over files answered
        busy least first (so that they take turns). It is never moved aside for
        being busy, only when ``send`` says REJECTED or it does not check out. A file another process holds
        is skipped; a file is deleted only after ``send`` said DELIVERED. The busy answers are remembered by
        this store, in this process.
        """
        delivered = self._replay_pass(send, stopped)
        # Evictions the rate limit left unsaid are said at a later pass, at once if the outage is over.
        self._warn_evicted(at_once=delivered > 0)
        return delivered

    def _replay_pass(self, send: Callable[[bytes], Sent], stopped: Callable[[], bool]) -> int:
        self._sweep_temp_files()
        names = self._sync()
        listed = set(names)
        for name in [name for name in self._failures if name not in listed]:
            del self._failures[name]
        first = [name for name in names if self._failures.get(name, 0) < PASS_OVER_AFTER]
        # Least answered busy first (sorted keeps the oldest first on ties): they take turns behind the rest.
        passed_over = sorted(
            (name for name in names if self._failures.get(name, 0) >= PASS_OVER_AFTER),
            key=lambda name: self._failures[name],
        )
        delivered = 0
        for name in first + passed_over:
            if stopped():
                break
            outcome = self._replay_one(name, send)
            if outcome is Sent.RETRY_LATER or outcome is Sent.UNREACHABLE:  # busy or down: one such answer a pass
                break
            delivered += outcome is Sent.DELIVERED
        return delivered

    def _replay_one(self, name: str, send: Callable[[bytes], Sent]) -> Sent | None:
        """Send one stored file; None if it was not sent (held elsewhere, unreadable, newer)."""
        if self._moved_aside_if_foreign(name):
            return None
        with self._claimed(name) as fd:
            if fd is None:
                return None
            try:
                payload, spans = read_file(fd)
            except NewerVersion:
                return None
            except (CorruptFile, OSError) as error:
                self._quarantine(name, f"is unusable ({error})")
                return None
            outcome = send(payload)
            # Busy says nothing of this file, but it must not hold up the rest. UNREACHABLE (down) counts
            # against no file: it was no answer, and the file stays first.
            if outcome is Sent.RETRY_LATER:
                self._failures[name] = self._failures.get(name, 0) + 1
            elif outcome is Sent.REJECTED:
                self._quarantine(name, "is unusable (the backend refused it)")
            elif outcome is Sent.UNCONFIRMED:
                self._quarantine(name, "was sent, but its answer could not be read (the backend may have it)")
            elif outcome is Sent.DELIVERED:
                self._remove_here(name)
                with self._tally_lock:
                    self._tally.remove(name)
                self._count(replayed=spans)
            return outcome

    @contextmanager
    def _claimed(self, name: str) -> Iterator[int | None]:
        """An open, exclusively locked descriptor of the stored file ``name``; None if another holds it, it is gone,
        or it is no regular file."""
        try:
            with self._here() as home:
                fd = _open(name, os.O_RDONLY, dir_fd=home)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    same = os.path.samestat(os.fstat(fd), _stat(name, home))
                except OSError:  # locked elsewhere, or deleted since it was opened
                    same = False
        except OSError:
            yield None
            return
        try:
            yield fd if same else None
        finally:
            _close(fd)

    def _quarantine(self, name: str, what: str) -> None:
        """Moves the stored file ``name`` aside for good, counted as corrupt; the warning says what happened to it
        (``what``)."""
        self._count(corrupt=1)
        logger.warning("Spill file %s %s; moved to %s/.", self.directory / name, what, CORRUPT_DIR)
        try:
            with self._here() as home:
                with suppress(FileExistsError):
                    os.mkdir(CORRUPT_DIR, 0o700, dir_fd=home)
                with _own_directory(CORRUPT_DIR, home) as corrupt:
                    os.rename(name, name, src_dir_fd=home, dst_dir_fd=corrupt)
        except OSError:
            self._remove_here(name)  # never replay it again, whatever it takes
            with self._tally_lock:
                self._tally.remove(name)
            return
        with self._tally_lock:
            self._tally.set_aside(name)

    def _sweep_temp_files(self) -> None:
        """Remove temp files whose writer died (nobody holds their lock), counting each as corrupt."""
        try:
            with self._here(TEMP_DIR) as temp_dir:
                for name in os.listdir(temp_dir):
                    try:
                        fd = _open(name, os.O_RDONLY, dir_fd=temp_dir)
                    except OSError:
                        continue
                    try:
                        self._sweep_one(name, fd, temp_dir)
                    except OSError:
                        continue
                    finally:
                        _close(fd)
        except OSError:
            return

    def _sweep_one(self, name: str, fd: int, temp_dir: int) -> None:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return  # its writer is still at it
        info = os.fstat(fd)
        # Empty and recent: a writer between creating it and locking it. Renamed into place meanwhile: not torn.
        # Far ahead of the clock is not recent (the clock went back): a writer that loses its file starts again.
        if info.st_size == 0 and abs(time.time() - info.st_mtime) < TORN_AFTER_SECONDS:
            return
        if os.path.samestat(info, _stat(name, temp_dir)) and _remove(name, temp_dir):
            self._count(corrupt=1)
            logger.warning("Removed the torn spill file %s left by a writer that died.", name)


# Descriptors of spill files this process has open. A flock belongs to the open file, which a forked
# child shares: a child that kept its copies would hold their locks for as long as it lives, and no
# process could replay those files. So the child closes them; the lock makes the set exact at a fork.
# The lock is each process's own: a child forked from C (no hooks below) while a thread held it.
_held_locks = PerProcess(shared_lock)
_held: set[int] = set()
_stores: weakref.WeakSet[SpillStore] = weakref.WeakSet()


def _open(path: Path | str, flags: int, dir_fd: int | None = None) -> int:
    """A regular file's descriptor, never through a link nor blocking on a FIFO planted in its place (the lock is
    held meanwhile, and a fork waits for it)."""
    with _held_locks.get():
        fd = os.open(path, flags | os.O_NOFOLLOW | os.O_NONBLOCK, 0o600, dir_fd=dir_fd)
        _held.add(fd)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        _close(fd)
        raise OSError(errno.EINVAL, "not a regular file", str(path))
    return fd


def _close(fd: int) -> None:
    with _held_locks.get():
        _held.discard(fd)
        os.close(fd)


def _before_fork() -> None:
    _held_locks.get().acquire()


def _after_fork_in_parent() -> None:
    _held_locks.get().release()


def _after_fork_in_child() -> None:
    for fd in _held:
        with suppress(OSError):
            os.close(fd)
    _held.clear()
    for store in list(_stores):
        store._after_fork_in_child()


os.register_at_fork(before=_before_fork, after_in_parent=_after_fork_in_parent, after_in_child=_after_fork_in_child)


def _stat(path: Path | str, dir_fd: int | None = None) -> os.stat_result:
    try:
        return os.stat(path, dir_fd=dir_fd, follow_symlinks=False)
    except OSError:
        return os.stat_result((0,) * 10)


def _remove(path: Path | str, dir_fd: int | None = None) -> bool:
    try:
        os.unlink(path, dir_fd=dir_fd)
    except OSError:
        return False
    return True


class NotOwnDirectoryError(OSError):
    """A directory spanbatch keeps spill files in that is a link, not a directory, or another user's."""


@contextmanager
def _own_directory(directory: Path | str, dir_fd: int | None = None) -> Iterator[int]:
    """A descriptor of ``directory`` (relative to ``dir_fd``), opened without following a link and checked to be this
    user's own, for the calls made relative to it: what is written, read, swept and removed never lands elsewhere,
    even if it was replaced meanwhile (a shared spill directory may be written by others). One an earlier release made
    under a loose umask is closed to others (they could plant files there). ``NotOwnDirectoryError`` otherwise."""
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=dir_fd)
    except OSError as error:
        if error.errno not in (errno.ELOOP, errno.ENOTDIR):
            raise
        raise NotOwnDirectoryError(errno.EPERM, "a link or not a directory", str(directory)) from error
    try:
        info = os.fstat(fd)
        if info.st_uid != os.geteuid():
            raise NotOwnDirectoryError(errno.EPERM, "another user's directory", str(directory))
        if stat.S_IMODE(info.st_mode) & 0o077:
            os.fchmod(fd, 0o700)
        yield fd
    finally:
        os.close(fd)
