"""Rate-limited drop warnings: one line with a count per reason, never one per span."""

from __future__ import annotations

import contextvars
import functools
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

from spanbatch._core import DROP_REASONS
from spanbatch._fork import PerProcess
from spanbatch._log_words import in_the_last
from spanbatch._own_lines import EchoMark, own_lines, register, telling
from spanbatch._releases import installed_release
from spanbatch._safe_log import logged
from spanbatch._signals import Signal

logger = logging.getLogger("spanbatch")
# The stock processor warns on this logger with this message when its queue is full: users' log filters
# keep working. It warns per span (its logger's DuplicateFilter lets one line through per 20 s); spanbatch
# once per report, before its own line with the count.
stock_logger = logging.getLogger("opentelemetry.sdk._shared_internal")
# Which lines the installed SDK logs, decided once: from 1.34 its batch processors share one ``BatchProcessor``
# (the logger above), which logs a full queue and an item after shutdown from 1.40 on; before 1.34 each signal's
# processor logs its own lines on its own logger. An SDK of unknown version: the newest.
_SDK = installed_release("opentelemetry-sdk")
_SHARED_PROCESSOR = _SDK is None or _SDK >= (1, 34)
_SHARED_LINES = _SDK is None or _SDK >= (1, 40)
_STOCK_QUEUE_FULL = "Queue full, dropping %s."
# What the SDK's processors log for each item they are given after shutdown (see ``stock_after_shutdown``).
_STOCK_AFTER_SHUTDOWN = "Shutdown called, ignoring %s."
_OLD_STOCK_SPAN_AFTER_SHUTDOWN = "Already shutdown, dropping span."
_OLD_STOCK_SPAN_QUEUE_FULL = "Queue is full, likely spans will be dropped."
_OLD_STOCK_SPAN_LOGGER = "opentelemetry.sdk.trace.export"
# What the stock processor logs, with the traceback, for an exporter that raises: SDK 1.34+ (its shared
# BatchProcessor), and before it each signal's own processor.
_STOCK_EXPORT_EXCEPTION = "Exception while exporting %s."
_OLD_STOCK_EXPORT_EXCEPTION = {
    "span": (_OLD_STOCK_SPAN_LOGGER, "Exception while exporting Span batch."),
    "log": ("opentelemetry.sdk._logs._internal.export", "Exception while exporting logs."),
}

_DEFAULT_INTERVAL_SECONDS = 10.0
_WHY = {reason.name: reason.description for reason in DROP_REASONS}


class DropReporter:
    """Logs how many items of ``signal`` were dropped since the last report, at most once per interval."""

    def __init__(
        self,
        label: str,
        signal: Signal,
        interval_seconds: float = _DEFAULT_INTERVAL_SECONDS,
        *,
        echoes: Callable[[], Mapping[str, int] | None] | None = None,
    ) -> None:
        self._label = f"{label} " if label else ""
        self._signal = signal
        self._interval = interval_seconds
        self._reported: dict[str, int] = {}
        self._last = time.monotonic()
        # A lane's first full queue is told at once, as the stock processor's first line is (``report_first_full``);
        # the interval is between reports. (Not every reason: a record a LoggingHandler hands back on the worker,
        # dropped as ``export_thread``, would come back as another such line at once.)
        self._told_full = False
        # This process's own: items handed to a shut-down processor are reported from any thread, and a child
        # forked while one of them held the lock must not wait on it for ever.
        self._locks = PerProcess(threading.Lock)
        # Reports booked as told and not logged yet, per thread (``lines_on_their_way``); this process's own, as a
        # thread logging one at a fork is not in the child.
        self._on_their_way: PerProcess[dict[int, int]] = PerProcess(dict)
        self._holding = threading.local()  # whether this thread is in ``_alone`` (a forked child's own, as threads are)
        self._nested_echoes: list[dict[str, int]] = []  # what nested ``_book`` calls left (``_book_nested_echoes``)
        self._stock_queue_full = stock_queue_full(signal)
        self._refused_before = False
        self._told_exited = False  # a refusal past exit's last hook told (``report_refused``)
        # A log lane's: its count of the drops a line of spanbatch's logged on this thread now would come back as on
        # its export thread (``_own_lines``); None once the lane is gone.
        self._echoes = echoes
        if echoes is not None:
            register(self)

    def report(self, read: Callable[[], Mapping[str, int]], *, now: bool = False, last: bool = False) -> None:
        """Warn about new drops, as ``read()`` counts them, if the interval has passed (or ``now``).

        ``last``: nothing will tell of later drops (the process exits), and the line says so.

        The warning is spanbatch's own line: what a log lane drops it as is not news (``_own_lines``).
        """
        if telling():
            return  # a line of spanbatch's came back here on this thread (a LoggingHandler into a shut-down lane)
        dropped = read()
        if not any(count > self._reported.get(reason, 0) for reason, count in dropped.items()):
            return
        me = threading.get_ident()
        on_their_way = self._on_their_way.get()
        booked = told = False
        try:  # around the booking too: a Ctrl-C landing as the lock is let go must not leave the line on its way
            with self._alone() as alone:
                if not alone:
                    return  # told by the next report (``_alone``)
                self._book_nested_echoes()
                elapsed = time.monotonic() - self._last
                first_full = not self._told_full and dropped.get("queue_full", 0) > 0
                if not now and not first_full and elapsed < self._interval:
                    return
                self._told_full = self._told_full or first_full
                new = {reason: count - self._reported.get(reason, 0) for reason, count in dropped.items()}
                for reason, count in dropped.items():
                    self._reported[reason] = max(count, self._reported.get(reason, 0))
                self._last = time.monotonic()
                on_their_way[me] = on_their_way.get(me, 0) + 1
                booked = True  # no signal handler runs between these two lines (no call, no jump back)
            with own_lines():
                # In a context of its own: a handler that guards its ``emit`` with a context variable
                # (opentelemetry-instrumentation-logging's) would take a line told inside it, for a record it handed
                # to a processor shut down, for recursion, and say so on stderr. ``own_lines`` keeps it from
                # coming back as news.
                contextvars.Context().run(self._log, new, elapsed, last)
            told = True
        finally:
            if booked:
                # Without the lock, whose take a Ctrl-C could interrupt: only this thread changes its own count.
                on_their_way[me] -= 1
                if not on_their_way[me]:
                    del on_their_way[me]
                if not told:  # a Ctrl-C cut the line short (in a user's filter or handler): the next line tells them
                    self._unbook(new, first_full=first_full)

    def _unbook(self, new: Mapping[str, int], *, first_full: bool) -> None:
        """Takes back what a report booked as told and could not tell: its line never went out."""
        with self._alone():  # not nested: only ``report``'s own finally calls it, outside its booking
            for reason, count in new.items():
                self._reported[reason] = max(0, self._reported.get(reason, 0) - count)
            if first_full:
                self._told_full = False

    def lines_on_their_way(self) -> bool:
        """Whether another thread booked drops as told and has not logged their line yet (the drop teller, telling a
        full queue while an export hangs): a report of this thread's meanwhile finds nothing new to tell."""
        me = threading.get_ident()
        return any(thread != me for thread in tuple(self._on_their_way.get()))  # a copy: others change it meanwhile

    def echo_mark(self) -> EchoMark | None:
        counts = self._echo_counts()
        return self._mark(lambda: counts) if counts else None

    def book_echoes(self, mark: EchoMark) -> None:
        self._book(mark, lambda: self._echo_counts() or {})

    def _echo_counts(self) -> Mapping[str, int] | None:
        return self._echoes() if self._echoes is not None else None

    def report_first_full(self, read: Callable[[], Mapping[str, int]]) -> None:
        """``report``, if a full queue is yet to be told: from the thread the push wakes then (``_drop_teller``),
        while the worker, which reports after each export, may be held in one that hangs."""
        if not self._told_full and read().get("queue_full", 0) > 0:
            self.report(read)

    @contextmanager
    def echo(self, read: Callable[[], Mapping[str, int]]) -> Iterator[None]:
        """Around the push of one of spanbatch's own lines into this lane shut down: its drop is no news. (A span
        lane takes no lines: a span ended meanwhile is the application's.)"""
        if self._echoes is None:
            yield
            return
        mark = self._mark(read)
        yield
        self._book(mark, read)

    def _mark(self, read: Callable[[], Mapping[str, int]]) -> EchoMark:
        """The counts ``read()`` and those told, read together under the lock."""
        with self._alone() as alone:
            if alone:
                self._book_nested_echoes()  # first: a nested echo before the read is in both, or in neither
            counts = read()
            return EchoMark(counts, {reason: self._reported.get(reason, 0) for reason in counts})

    def _book(self, mark: EchoMark, read: Callable[[], Mapping[str, int]]) -> None:
        """Books as told the drops spanbatch's lines came back as: what the marked counts grew by meanwhile, to what
        ``read()`` counts under the lock."""
        with self._alone() as alone:
            after = read()
            echoed = {reason: after.get(reason, before) - before for reason, before in mark.counts.items()}
            if not alone:
                self._nested_echoes.append(echoed)  # one C call: the holder's drain cannot lose it
                return
            self._book_nested_echoes()  # after the read: a nested echo before it is in ``echoed`` and booked there
            for reason, count in echoed.items():
                if count > 0:
                    self._reported[reason] = max(self._reported.get(reason, 0), mark.told[reason] + count)

    @contextmanager
    def _alone(self) -> Iterator[bool]:
        """This reporter's lock, unless this thread is in here already; yields whether it took it.

        Nested: a signal's handler that logs (or a finalizer the collector runs) came back on this thread from between
        a read and a write of the counts told (``_reported``). Taking the lock again would wait for itself for ever,
        and a reentrant lock would let the nested call tell again what the interrupted one is telling, or tell in a
        second line within the interval (the interrupted one's time not yet stamped). So a nested call leaves those
        counts alone: a report tells nothing (the next report tells its drops: the worker's, the next refusal's, or
        exit's), an echo's growth waits in ``_nested_echoes`` for the next call that takes the lock. The flag is this
        thread's own, not the lock holder's: a child forked by another thread starts outside.
        """
        if getattr(self._holding, "now", False):
            yield False
            return
        self._holding.now = True  # before the lock: a handler landing while this thread waits for it is nested too
        try:
            with self._locks.get():
                yield True
        finally:
            self._holding.now = False

    def _book_nested_echoes(self) -> None:
        """Books as told the growths nested ``_book`` calls left (see ``_alone``), under the lock, where its caller's
        reads count each once: ``_mark`` books them before it reads the counts, ``_book`` after, ``report`` before it
        compares what it read before the lock (a growth it has not read yet holds back a drop of the same count to its
        next report, as a ``_book`` from another thread would)."""
        while self._nested_echoes:
            for reason, count in self._nested_echoes.pop().items():
                if count > 0:
                    self._reported[reason] = self._reported.get(reason, 0) + count

    def _log(self, new: Mapping[str, int], elapsed: float, last: bool) -> None:
        # Logged once booked, without the lock: a handler may bring the line back here on this thread (a
        # ``LoggingHandler`` into a log processor shut down, whose refusal reports again), and another thread
        # in that handler may wait for this lock while holding the handler's.
        for reason, count in new.items():
            if count > 0 and reason == "queue_full" and self._stock_queue_full is not None:
                logged(self._stock_queue_full)
            if count > 0:
                # A user's filter that raises loses the line, never the count of what was said.
                logged(
                    logger.warning,
                    "%s%s — dropped %s %s%s",
                    self._label,
                    _WHY.get(reason, reason),
                    self._signal.counted(count),
                    in_the_last(elapsed),
                    "; more dropped as the process exits are counted in stats(), not told" if last else "",
                )

    def _interval_passed(self) -> bool:
        return time.monotonic() - self._last >= self._interval

    def report_refused(self, read: Callable[[], Mapping[str, int]], *, exited: bool = False) -> None:
        """``report``, from the thread that handed over an item after shutdown: the first such drop is told at
        once (the worker that told of drops is gone, and nothing may come later to tell of it), the rest at most
        once per interval; what the interval leaves unsaid is told at exit (``_exit``). ``exited``: past exit's last
        hook, which told what was unsaid then: the first drop after it is told at once, saying that those after it
        are counted, not told (a line per item would flood the exit's log)."""
        if telling():
            return  # see ``report``
        if self._refused_before and (self._told_exited if exited else not self._interval_passed()):
            # Nothing to tell now, decided without the lock and the read (each flag only ever turns True): they
            # cost a span ended after shutdown 17 us, against 1.4 us without them and stock's 0.7.
            return
        with self._alone() as alone:
            if not alone:
                return  # told by the next report (``_alone``)
            first, self._refused_before = not self._refused_before, True
            told_exited, self._told_exited = self._told_exited, self._told_exited or exited
        if not exited:
            self.report(read, now=first)
        elif not told_exited:
            self.report(read, now=True, last=True)


def stock_queue_full(signal: Signal) -> Callable[[], None] | None:
    """What the installed SDK's batch processor of ``signal`` warns when its queue is full.

    SDK 1.40+: WARNING ``Queue full, dropping Span./Log.``; 1.34-1.39: nothing; older ones: WARNING ``Queue is
    full, likely spans will be dropped.`` on the span processor's logger, nothing for log records.
    """
    if _SHARED_PROCESSOR:
        return functools.partial(stock_logger.warning, _STOCK_QUEUE_FULL, signal.exporting) if _SHARED_LINES else None
    if signal.item != "span":
        return None
    return _FirstTimeOnly(
        functools.partial(logging.getLogger(_OLD_STOCK_SPAN_LOGGER).warning, _OLD_STOCK_SPAN_QUEUE_FULL)
    )


class _FirstTimeOnly:
    """``log`` on the first call only: an old SDK's span processor warns of a full queue once in its life."""

    def __init__(self, log: Callable[[], None]) -> None:
        self._log: Callable[[], None] | None = log
        self._locks = PerProcess(threading.Lock)  # see DropReporter

    def __call__(self) -> None:
        with self._locks.get():
            log, self._log = self._log, None
        if log is not None:
            log()


def log_stock_export_exception(signal: Signal) -> None:
    """Log, in an ``except`` block, the installed SDK's stock line for an exporter of ``signal`` that raised."""
    if _SHARED_PROCESSOR or signal.item not in _OLD_STOCK_EXPORT_EXCEPTION:
        stock_logger.exception(_STOCK_EXPORT_EXCEPTION, signal.exporting)
        return
    name, message = _OLD_STOCK_EXPORT_EXCEPTION[signal.item]
    logging.getLogger(name).exception(message)


def stock_after_shutdown(signal: Signal) -> StockLine | None:
    """What the installed SDK's batch processor of ``signal`` logs for each item given to it after shutdown.

    SDK 1.40+: INFO ``Shutdown called, ignoring Span./Log.`` (the logger's filter lets one line through per
    20 s); 1.34-1.39: nothing; older ones: a WARNING per span on the span processor's logger, nothing for log
    records.
    """
    if _SHARED_PROCESSOR:
        if not _SHARED_LINES:
            return None
        return StockLine(stock_logger, logging.INFO, _STOCK_AFTER_SHUTDOWN, (signal.exporting,))
    if signal.item != "span":
        return None
    return StockLine(logging.getLogger(_OLD_STOCK_SPAN_LOGGER), logging.WARNING, _OLD_STOCK_SPAN_AFTER_SHUTDOWN)


@dataclass(frozen=True)
class StockLine:
    """A line the stock processor logs per item, and whether its logger takes it at all: an item refused after
    shutdown skips the bookkeeping of spanbatch's own lines (``own_lines``) for one nothing would log, as under
    the usual WARNING level."""

    logger: logging.Logger
    level: int
    message: str
    args: tuple[object, ...] = ()

    def enabled(self) -> bool:
        return self.logger.isEnabledFor(self.level)

    def __call__(self) -> None:
        self.logger.log(self.level, self.message, *self.args)
