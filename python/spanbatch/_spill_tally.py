"""What a spill directory holds, as one ``SpillStore`` counts it toward its cap: names and sizes, oldest first.

The store keeps it as it writes, delivers, moves aside and evicts, so that a write needs no listing of the
directory (tens of thousands of files after a long outage); it is recounted from listings (``sync``) when the
directory may have changed under it (see ``spanbatch._spill``). Not thread-safe: the store locks around each use.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Container, Iterable
from typing import NamedTuple


class Footprint(NamedTuple):
    """The files a store counts toward its cap and their bytes."""

    files: int
    bytes: int


class Oldest(NamedTuple):
    """The next file to evict, and whether it was moved aside."""

    name: str
    aside: bool


class Tally:
    """The files waiting to be replayed and those moved aside, each in order (oldest first), and their bytes."""

    def __init__(self) -> None:
        # Insertion order is age: a sync inserts in name (write time) order, and a store's new file is its newest.
        self._waiting: OrderedDict[str, int] = OrderedDict()
        self._aside: OrderedDict[str, int] = OrderedDict()
        self.bytes = 0

    def __repr__(self) -> str:
        return f"Tally(files={self.files}, bytes={self.bytes})"

    @property
    def files(self) -> int:
        return len(self._waiting) + len(self._aside)

    def add(self, name: str, size: int) -> None:
        """A file written; counted once, though a sync since its rename may have counted it already."""
        if name not in self._waiting:
            self._waiting[name] = size
            self.bytes += size

    def remove(self, name: str) -> None:
        """A waiting file deleted (delivered, evicted, found gone); nothing if it was not counted."""
        self.bytes -= self._waiting.pop(name, 0)

    def set_aside(self, name: str) -> None:
        """A waiting file moved aside: it still takes its room, now among the first evicted."""
        size = self._waiting.pop(name, None)
        if size is None:  # not counted (another's, since the last sync): the next sync counts it
            return
        if name in self._aside:
            self.bytes -= size
        else:
            self._aside[name] = size

    def remove_aside(self, name: str) -> None:
        self.bytes -= self._aside.pop(name, 0)

    def footprint(self) -> Footprint:
        return Footprint(self.files, self.bytes)

    def oldest(self, skip: Container[str]) -> Oldest | None:
        """The next file to evict: the oldest of those moved aside (never replayed), else the oldest waiting not
        in ``skip``; None when there is none."""
        for name in self._aside:
            return Oldest(name, aside=True)
        for name in self._waiting:
            if name not in skip:
                return Oldest(name, aside=False)
        return None

    def sync(self, waiting: Iterable[str], aside: Iterable[str], size_of: Callable[[str, bool], int | None]) -> None:
        """Recount from listings of the files waiting and of those moved aside (names, oldest first).

        A file keeps the size it was counted with (a spill file never changes once in place); ``size_of(name,
        aside)`` gives the size of one not counted yet (another store's), None if it went meanwhile.
        """
        known = {**self._aside, **self._waiting}

        def counted(names: Iterable[str], moved: bool) -> OrderedDict[str, int]:
            found: OrderedDict[str, int] = OrderedDict()
            for name in names:
                size = known.get(name)
                if size is None:
                    size = size_of(name, moved)
                if size is not None:
                    found[name] = size
            return found

        self._waiting, self._aside = counted(waiting, False), counted(aside, True)
        self.bytes = sum(self._waiting.values()) + sum(self._aside.values())
