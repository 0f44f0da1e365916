"""spanbatch's own lines (its drop warnings, debug lines, the stock processor's lines it logs) as log records.

A ``LoggingHandler`` on the root logger hands each line, on the thread that logged it, to every log processor of its
provider: spanbatch's log lanes among them, this lane's or any other's in the process. Where a lane is running and the
thread is not one of its export threads, the line is queued and exported like any record. Otherwise it is dropped
there and counted, as every record handed over is: on the lane's export thread (``export_thread``: queued, each line
would feed the next export its own line), or once the lane is shut down (``shutdown``). Those drops are not news: the
line was logged, and it is no record of the application's. Told, each would set off the next warning, about
nothing but the line before it (the stock processors log one INFO line for a record given after shutdown, whatever
their number). So, while a thread logs such a line (``own_lines``), a drop report the line sets off on that thread
returns at once, and its drops are booked as told: a shut-down lane's as the refusal pushes it (``Engine``), a lane's
on its export thread by the count, which grows meanwhile by those of the lane's other export threads too (when it
has several; counted all the same).
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Protocol

from spanbatch._fork import PerProcess


class EchoBook(Protocol):
    """A log lane's drop reporter, as ``own_lines`` books echoes with it."""

    def echo_mark(self) -> EchoMark | None:
        """Where the lane's ``export_thread`` count stands now, if the calling thread is one of its export threads;
        else None."""

    def book_echoes(self, mark: EchoMark) -> None:
        """Book as told what those counts grew by since ``mark``."""


class EchoMark:
    """A lane's counts, per drop reason an echo makes, and how many of them were told, when a line began."""

    __slots__ = ("counts", "told")

    def __init__(self, counts: Mapping[str, int], told: Mapping[str, int]) -> None:
        self.counts = dict(counts)
        self.told = dict(told)


_books: weakref.WeakSet[EchoBook] = weakref.WeakSet()
# This process's own: a child forked while another thread registered a lane must not wait on it for ever.
_books_lock = PerProcess(threading.RLock)
_telling = threading.local()


def register(book: EchoBook) -> None:
    """Count ``book``'s lane among those a line of spanbatch's may come back to, while it lives."""
    with _books_lock.get():
        _books.add(book)


def telling() -> bool:
    """Whether the calling thread is logging one of spanbatch's own lines."""
    return bool(getattr(_telling, "lines", False))


def _registered() -> list[EchoBook]:
    if not _books:  # no log lane in the process (the usual case): neither the lock nor the copy
        return []
    with _books_lock.get():
        return list(_books)


@contextmanager
def own_lines() -> Iterator[None]:
    """Around one or more of spanbatch's own lines: see the module's comment. Nested, the outermost books."""
    if telling():
        yield
        return
    marks = [(book, book.echo_mark()) for book in _registered()]
    _telling.lines = True
    try:
        yield
    finally:
        _telling.lines = False
        for book, mark in marks:
            if mark is not None:
                book.book_echoes(mark)
