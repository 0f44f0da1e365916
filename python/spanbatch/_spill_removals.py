"""Whether other stores sharing a spill directory deleted files since this one last listed it, in one ``stat``.

A store that is over its cap evicts the oldest files it counts; if another store (another process, or another
exporter of the same backend here) delivered or evicted some of them since its last listing, its total is too
high, and it would evict a file the directory has room for. A listing says, but costs one entry per file (tens of
thousands after a long outage over a small cap, where every write evicts). So every store that deletes a spill
file appends one byte to the directory's ``removed`` file: a store that finds it as it left it (same inode, size
and modification time) knows no other store deleted anything since, and needs no listing.

A store reads the record before it lists the directory, and there puts a new one in its place once it is over
``RESET_BYTES``: another file, so every store that had seen the old one (or none yet) sees it changed. A byte that
still goes to the old record is of a store that opened it before, so deleted its spill file before the new one
was put in place, and before any listing that reads it. Not thread-safe: the store locks around each use.
"""

from __future__ import annotations

import os
import threading
from contextlib import suppress
from pathlib import Path

NAME = "removed"
RESET_BYTES = 4096  # past it, each store that saw it lists the directory once more: cheap, and kept small

# The record as a store saw it: inode, size, modification time; all 0 when there was none.
Seen = tuple[int, int, int]
_NONE: Seen = (0, 0, 0)


class Removals:
    """One store's view of its directory's record of deletions."""

    def __init__(self, directory: Path) -> None:
        self._path = directory / NAME
        self._seen: Seen | None = None  # None: never read, so anything may have been deleted

    def before_listing(self) -> None:
        """The store lists the directory next: deletions from now on are news to it."""
        seen = self._read()
        if seen[1] > RESET_BYTES:
            self._start_anew()
            seen = self._read()
        self._seen = seen

    def others_deleted(self) -> bool:
        """Whether another store deleted a file since the last listing (true if unsure: never listed, record
        deleted or unreadable)."""
        return self._seen is None or self._read() != self._seen

    def deleted(self) -> None:
        """This store deleted a spill file: tells the other stores; this one knew already."""
        try:
            fd = os.open(self._path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        except OSError:  # an unwritable directory: the others learn of it at their next listing
            return
        try:
            before = os.fstat(fd)
            os.write(fd, b".")
            after = os.fstat(fd)
        except OSError:
            return
        finally:
            os.close(fd)
        # As last seen (or none, and this store made it: a record started anew is never empty), and one byte more,
        # ours: nothing from another store. Anything else shows at the next ``others_deleted``.
        unchanged = self._seen == _seen(before) or (self._seen == _NONE and before.st_size == 0)
        if unchanged and after.st_size == before.st_size + 1:
            self._seen = _seen(after)

    def _start_anew(self) -> None:
        """A new record of one byte in place of this one: neither none nor empty, which a store that saw none would
        take for no deletion since (see ``deleted``)."""
        fresh = self._path.with_name(f"{NAME}.{os.getpid()}-{threading.get_ident()}.new")
        try:
            fd = os.open(fresh, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                os.write(fd, b".")
            finally:
                os.close(fd)
            os.replace(fresh, self._path)
        except OSError:  # it goes on growing until the next listing tries again
            with suppress(OSError):
                os.unlink(fresh)

    def _read(self) -> Seen:
        try:
            return _seen(os.stat(self._path))
        except OSError:
            return _NONE


def _seen(info: os.stat_result) -> Seen:
    return (info.st_ino, info.st_size, info.st_mtime_ns)
