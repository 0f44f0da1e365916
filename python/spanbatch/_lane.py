"""A lane: one exporter with its own Rust queue, counters, worker thread and settings.

Lanes never share a queue, so a slow or dead backend fills and drops only its own. The
module's functions flush or shut down many lanes under one deadline: every worker is
told at once, then each is waited for with whatever time is left.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from spanbatch import _drop_teller, _fork, _standby_thread
from spanbatch._capabilities import Exporter, spills
from spanbatch._config import BatchSettings
from spanbatch._core import BatchCore, greenlets_may_pause
from spanbatch._drops import DropReporter
from spanbatch._export import LaneWork, run_worker, shutdown_exporter
from spanbatch._export_clock import ExportClock
from spanbatch._policies import RetryPolicy
from spanbatch._safe_log import logged
from spanbatch._settings import ExportPolicies
from spanbatch._signals import Signal
from spanbatch._standby_thread import start_thread_even_at_exit
from spanbatch._stats import SpanStats
from spanbatch._threads import (
    PAUSE_SECONDS,
    PAUSES_FROM_PYTHON,
    WorkerThread,
    cooperative_pause,
    greenlet_pause,
    pause_while,
    start_thread,
)

if TYPE_CHECKING:
    from spanbatch._spill import SpillCounts

logger = logging.getLogger("spanbatch")

# How often a waiting flush looks again at its bound, which tightens once the main thread is done (``_exit``).
_FLUSH_SLICE_SECONDS = 0.1


def _unbounded(deadline: float) -> float:
    return deadline


def weak_method(method: Callable[..., Any]) -> Callable[..., Any]:
    """A callable that forwards to ``method`` while its object lives, and returns None after."""
    ref = weakref.WeakMethod(method)

    def call(*args: object) -> Any:
        target = ref()
        return None if target is None else target(*args)

    return call


def _collected(core: BatchCore, hooks: list[Callable[[BatchCore], object]]) -> None:
    core.begin_shutdown()
    for hook in hooks:
        hook(core)


def remaining_millis(deadline: float) -> float:
    return max(0.0, (deadline - time.monotonic()) * 1000)


class Backend(NamedTuple):
    """What one lane exports to: its name, its exporter and its batch settings."""

    name: str
    exporter: Exporter[Any]
    settings: BatchSettings


@dataclass
class ShutdownSteps:
    """How far a lane's shutdown got (``finish_shutdown``). A wait it was interrupted in (Ctrl-C raises there, as in
    the stock processor's) leaves the rest to the lane's next shutdown, the exit's at the latest, which takes each
    step once: the spans still queued are counted, the exporter is shut down once."""

    interrupted: bool = False
    abandoned: bool = False
    exporter_closer: WorkerThread | None = None
    exporter_told: bool = False
    finished: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    def take_interrupted(self) -> bool:
        """Whether an interrupted shutdown is left to finish; only one caller is told so."""
        with self.lock:
            taken, self.interrupted = self.interrupted, False
            return taken


class HasLanes(Protocol):
    """A processor, as exit and fork recovery see it."""

    @property
    def lanes(self) -> list[Lane]: ...


class Lane:
    """One backend: its exporter, a Rust core and the worker that exports what the core hands out.

    ``named`` lanes (a Pipeline's) put their name in drop warnings. ``on_core_change`` is called
    once a forked child has given the lane a core of its own (see ``_fork``), and once its core
    begins shutting down: the lane's owner binds its hot path to the core as it is now.
    """

    def __init__(
        self,
        backend: Backend,
        policies: ExportPolicies,
        signal: Signal,
        *,
        debug: bool = False,
        named: bool = False,
        on_core_change: Callable[[], None] | None = None,
    ) -> None:
        self.name, self.exporter, self.settings = backend
        self.policies = policies
        self.signal = signal
        # Decided on the exporter's class once, as the worker decides how to deliver to it.
        self._spill_counts = self.exporter.spill_counts if spills(self.exporter) else None
        self._debug = debug
        self._drop_label = self.name if named else ""
        self._on_core_change = on_core_change
        self.fork_claims: dict[int, int] = {}  # forked child's pid -> the thread recovering this lane there
        self.worker: WorkerThread | None = None
        # The thread finishing a shutdown this lane's own export asked for (see ``shutdown_lanes``).
        self.finishing: WorkerThread | None = None
        self.shutdown_steps = ShutdownSteps()
        self.told_flush_from_export = False  # see ``flush_lanes``
        self.core = self._start()
        _drop_teller.watch(self)  # once whole: the teller may be woken by another core's drop at any moment
        if debug:
            logger.debug("%s lane: %s", self.name, self.policies)
        # Told the lane's last core once the lane is collected (the self-metrics read it until it settled).
        self._when_collected: list[Callable[[BatchCore], object]] = []
        self._stop_when_collected()

    def _stop_when_collected(self) -> None:
        """A lane nobody can reach any more stops its worker instead of leaking it.

        Not at exit: a finalizer would begin the shutdown there without waiting for it, and the
        processor's own bounded shutdown (see ``_exit``) would then find nothing left to wait for.
        """
        self._finalizer = weakref.finalize(self, _collected, self.core, self._when_collected)
        self._finalizer.atexit = False

    def when_collected(self, hook: Callable[[BatchCore], object]) -> None:
        """``hook(core)`` once this lane is collected, with its last core (which must not refer to the lane)."""
        self._when_collected.append(hook)

    def _start(self) -> BatchCore:
        # A log lane takes spanbatch's own lines back (``_own_lines``); a weak method: the worker holds the reporter.
        echoes = weak_method(self.echo_counts) if "export_thread" in self.signal.drop_reasons else None
        self.drops = DropReporter(self._drop_label, self.signal, echoes=echoes)
        core = BatchCore(
            self.settings.max_queue_size,
            self.settings.schedule_delay_millis,
            self.settings.max_export_batch_size,
            drop_policy=self.policies.drop_policy,
            linger_millis=self.policies.linger_millis,
            block_timeout_millis=self.policies.block_timeout_millis,
            on_fork=_fork.on_fork_of(self),
            news=_drop_teller.news(),
            pause=cooperative_pause(),
        )
        self.export_clock = ExportClock(self.settings.export_timeout_millis)
        work = LaneWork(
            core,
            self.exporter,
            self.signal,
            self.drops,
            self.name,
            self._debug,
            self.policies,
            self.settings.export_timeout_millis,
            self.export_clock,
            RetryPolicy.of(self.policies),
        )
        self.worker = start_thread(run_worker, f"spanbatch-{self.name}", work)
        _standby_thread.keep_ready(self)
        return core

    def restart(self) -> BatchCore:
        """A new core and worker in place of the current ones, which belong to the parent process."""
        self.core = self._start()
        _drop_teller.watch(self)  # this process's teller (a forked child's own)
        self.finishing = None  # the parent's thread, which a forked child does not have
        self.told_flush_from_export = False  # the child's exporter is told once too
        self._finalizer.detach()
        self._stop_when_collected()
        self.core_changed()
        return self.core

    def come_to_rest(self) -> None:
        """Once shut down: a core without the queue's ring takes this one's place (``BatchCore.at_rest``), so that
        a processor its provider still holds keeps no queue memory. It shares the counters: a push that still
        reaches the old core, and an export still out from it, count there too. The old core goes once its
        worker lets go of it."""
        self.core = self.core.at_rest()
        self._finalizer.detach()
        self._stop_when_collected()
        self.core_changed()

    def core_changed(self) -> None:
        if self._on_core_change is not None:
            self._on_core_change()

    def tell_drops(self, deadline: float) -> None:
        """Tell every drop not told yet, now: once the lane is shut down no worker is left to tell of them later. Then
        wait, until ``deadline`` at most, for the lines the drop teller booked to be out: at exit a daemon thread may be
        stopped before it logs them."""
        self.drops.report(self.dropped, now=True)
        pause_while(self.drops.lines_on_their_way, remaining_millis(deadline) / 1000)

    def tell_first_full(self) -> None:
        """Tell the lane's first full queue, if it is yet to be told: its worker may be held in an export (see
        ``_drop_teller``). Meanwhile the teller counts as one of the lane's export threads, as the worker that tells
        the other drops is: what a LoggingHandler hands back to a lane of log records is its own line, dropped and
        booked as told (``_drops._ECHOES``), not queued into the full queue as news."""
        core = self.core
        core.enter_export_thread()
        try:
            self.drops.report_first_full(self.dropped)
        finally:
            core.leave_export_thread()

    def dropped(self) -> dict[str, int]:
        """This lane's drops per reason, as its core counts them now."""
        return self.core.stats().dropped

    def echo_counts(self) -> dict[str, int]:
        """On one of this lane's export threads, where a line logged now comes back as ``export_thread``: that count;
        elsewhere none (the line is queued, or refused after shutdown, which books it as it pushes it)."""
        if not self.core.on_export_thread():
            return {}
        return {"export_thread": self.dropped().get("export_thread", 0)}

    def stats(self) -> SpanStats:
        return SpanStats.of(_fork.current_core(self), self.signal.drop_reasons, self._disk())

    def _disk(self) -> SpillCounts | None:
        """What the exporter's spill directory did; None without one, or where the exporter cannot tell (a subclass
        whose ``__init__`` skipped its parent's): its failing exports are told where they fail, not by ``stats()``."""
        if self._spill_counts is None:
            return None
        try:
            return self._spill_counts()
        except Exception:
            return None

    def current_core(self) -> BatchCore:
        """This process's core (a forked child's own once it has one): the self-metrics read its counters, and tell
        by its ``pid`` whether a forked child counts on a core of its own."""
        return _fork.current_core(self)

    def on_export_thread(self) -> bool:
        """Whether the caller is this lane's worker or one of its export threads."""
        return self.core.on_export_thread()


def flush_lanes(
    lanes: Sequence[Lane], timeout_millis: float, bound: Callable[[float], float] = _unbounded
) -> dict[str, bool]:
    """Flush every lane in parallel under one deadline; per lane name, True when all lanes of that
    name (a backend's span and log lanes) finished. ``bound(deadline)`` is the deadline to keep
    now (``_exit.flush``: what is left of the exit limit), looked at again while waiting. A lane asked from one of
    its own export threads is not waited for (False): its worker flushes once the current export returns."""
    deadline = time.monotonic() + timeout_millis / 1000
    results: dict[str, bool] = {}

    def settle(lane: Lane, flushed: bool) -> None:
        results[lane.name] = results.get(lane.name, True) and flushed

    waiting = []
    for lane in lanes:
        core = _fork.current_core(lane)
        if lane.on_export_thread() and not core.is_shutdown:
            core.request_flush()
            if not lane.told_flush_from_export:
                # Once per lane: an exporter that flushes in every export would log it per batch.
                lane.told_flush_from_export = True
                logged(
                    logger.warning,
                    "force_flush called from %s's own export thread: not waiting; what is queued is exported once"
                    " this export returns (told once).",
                    lane.name,
                )
            settle(lane, False)
        else:
            waiting.append(lane)
    for lane, flushed in zip(waiting, _flush_running(waiting, lambda: bound(deadline)), strict=True):
        settle(lane, flushed)
    return results


def flush_until(lanes: Sequence[Lane], deadline: float) -> list[Lane]:
    """Flush the running lanes in parallel; those that finished by ``deadline`` (monotonic)."""
    return [lane for lane, flushed in zip(lanes, _flush_running(lanes, lambda: deadline), strict=True) if flushed]


def _flush_running(lanes: Sequence[Lane], until: Callable[[], float]) -> list[bool]:
    """Per lane, in order, whether its flush finished by ``until()``: every running lane is asked first, then each
    waited for (so they flush in parallel); a lane shut down flushes nothing."""
    asked = []
    since = time.monotonic()
    for lane in lanes:
        core = _fork.current_core(lane)
        asked.append((lane, core, None if core.is_shutdown else core.request_flush()))
    return [
        ticket is not None and wait_flush(core, ticket, until, partial(lane.export_clock.overdue_at, since))
        for lane, core, ticket in asked
    ]


def start_flushes(lanes: Iterable[Lane]) -> None:
    """Wake every running lane to export what it holds, without waiting for it."""
    for lane in lanes:
        core = _fork.current_core(lane)
        if not core.is_shutdown:
            core.request_flush()


def wait_flush(core: BatchCore, ticket: int, until: Callable[[], float], overdue_at: Callable[[], float]) -> bool:
    """Waits for ``ticket`` until ``until()``, in slices: a bound that tightens meanwhile is kept. It gives up
    sooner once an export call it waits behind has taken longer than it may (``overdue_at``, see ``ExportClock``)."""
    pause = greenlet_pause() if PAUSES_FROM_PYTHON else None
    while True:
        if core.pid != os.getpid():
            # Forked during the wait (by a signal handler it ran): what it waited for is the parent's to export, and
            # the child's own lane holds nothing from before the call.
            return True
        deadline = until()
        # Once spanbatch's last atexit hook has run, a greenlet's flush waits without the GIL (see
        # ``greenlets_may_pause``).
        if pause is not None and greenlets_may_pause():
            outcome = core.flush_outcome(ticket)
            if outcome is not None:
                return outcome
            left = min(deadline, overdue_at()) - time.monotonic()
            if left <= 0:
                return False
            pause(min(left, PAUSE_SECONDS))
            continue
        if core.is_shutdown:  # the shutdown completes the flush or gives it up: one last wait settles it
            return core.wait_flush(ticket, remaining_millis(deadline))
        if core.wait_flush(
            ticket, remaining_millis(min(deadline, overdue_at(), time.monotonic() + _FLUSH_SLICE_SECONDS))
        ):
            return True
        # The overdue time looked at afresh: the export it waited for may have returned, and the next begun.
        if time.monotonic() >= min(deadline, overdue_at()):
            return False


def _as_given(deadline: float) -> float:
    return deadline


def shutdown_lanes(
    lanes: Iterable[Lane],
    timeout_millis: float,
    *,
    drain: bool = True,
    bound: Callable[[float], float] = _as_given,
) -> None:
    """Drain and shut down every lane in parallel; returns by the deadline whatever hangs.

    Spans still queued at the deadline are dropped and counted (``shutdown``); an export still
    running finishes on its own thread. ``drain=False`` (an exit a Ctrl-C interrupted): no wait for the workers nor
    for the exporters' own shutdown, which are started; what the workers hold is given up at once. ``bound`` narrows
    the deadline each time a wait looks at it (to what is left of the exit limit once the main thread is done).
    """
    deadline = time.monotonic() + timeout_millis / 1000
    lanes = list(lanes)
    for lane in lanes:
        _fork.current_core(lane)  # a child forked from C takes its lanes over here
    # One whose core is still the parent's (such a child cannot take it over at exit on 3.12) is left alone.
    stopping = [lane for lane in _fork.of_this_process(lanes) if lane.core.begin_shutdown()]
    for lane in stopping:
        lane.core_changed()
    # Asked from a lane's own export (an exporter that shuts its processor down): its worker drains what is
    # queued once that export returns, as the stock worker does, so a helper waits for that, not this thread.
    own = [lane for lane in stopping if lane.on_export_thread()]
    if own:
        try:
            finishing = start_thread(finish_shutdown, "spanbatch-shutdown", own, deadline)
        except RuntimeError:  # no new threads once interpreter shutdown has begun (3.12+): give them up now
            finish_shutdown(own, deadline)
        else:
            for lane in own:
                lane.finishing = finishing
    # A shutdown of these lanes interrupted before (see ``ShutdownSteps``) is finished by this one; in this process
    # only: a child forked since has the mark in its copy of memory, and its parent's exporter and spans.
    resumed = [
        lane for lane in _fork.of_this_process(lanes) if lane not in stopping and lane.shutdown_steps.take_interrupted()
    ]
    finish_shutdown([lane for lane in stopping if lane not in own] + resumed, deadline, drain=drain, bound=bound)


def wait_for_drains(lanes: Iterable[Lane], timeout_millis: float) -> None:
    """Waits, within the timeout, for the drains of shutdowns the lanes' own exports asked for (at exit, the exit
    gate would close under such a drain and drop the rest unreported). Only the exit waits: a later ``shutdown()``
    returns at once, as stock's second one does, and an exporter's ``shutdown()`` that shuts its processor down
    again must not wait for the drain that is waiting for it."""
    deadline = time.monotonic() + timeout_millis / 1000
    for lane in lanes:
        if lane.finishing is not None and not lane.on_export_thread():
            lane.finishing.join(remaining_millis(deadline) / 1000)
            if lane.finishing.is_alive():
                logged(
                    logger.warning,
                    "%s: the shutdown its own export asked for was still draining at the exit deadline.",
                    lane.name,
                )


def wait_for_shutdowns_under_way(lanes: Iterable[Lane], deadline: float) -> None:
    """Waits, until ``deadline``, for the workers of the lanes another shutdown is draining (one on another thread, or
    the one a signal handler on this thread interrupted) to drain, or their exports to stall: that shutdown finishes
    them, but the process may not live to see it (SIGTERM's default action comes next)."""
    since = time.monotonic()
    for lane in lanes:
        worker = lane.worker
        steps = lane.shutdown_steps
        core = _fork.current_core(lane)
        # A shutdown the lane's own export asked for is waited for by ``wait_for_drains``, which tells its own.
        if worker is None or not core.is_shutdown or lane.finishing is not None or lane.on_export_thread():
            continue
        if steps.finished or steps.abandoned:
            continue
        _join_worker(lane, worker, lambda: deadline, since)
        stats = core.stats()
        # The shutdown under way may have given the lane up meanwhile, and told what it held.
        if worker.is_alive() and not (steps.finished or steps.abandoned) and stats.queued + stats.in_flight:
            logged(
                logger.warning,
                "%s: its shutdown under way had not drained by the exit deadline: %s queued and %d in flight are lost"
                " if the process ends now.",
                lane.name,
                lane.signal.counted(stats.queued),
                stats.in_flight,
            )


def finish_shutdown(
    stopping: Sequence[Lane], deadline: float, *, drain: bool = True, bound: Callable[[float], float] = _as_given
) -> None:
    """Waits for the lanes' workers to drain until ``deadline`` (as ``bound`` narrows it), gives up what is left,
    shuts the exporters down.

    Interrupted in a wait, it leaves the lanes it did not finish to their next shutdown (``ShutdownSteps``).
    """
    try:
        _finish_shutdown(stopping, lambda: bound(deadline), drain)
    except BaseException:
        for lane in stopping:
            if not lane.shutdown_steps.finished:
                lane.shutdown_steps.interrupted = True
        raise


def _join_until(thread: WorkerThread, until: Callable[[], float]) -> None:
    """Waits for ``thread`` to end until ``until()``, looked at again every slice (it may draw nearer meanwhile)."""
    while thread.is_alive() and (left := remaining_millis(until())) > 0:
        thread.join(min(left / 1000, _FLUSH_SLICE_SECONDS))


def _join_worker(lane: Lane, worker: WorkerThread, until: Callable[[], float], since: float) -> None:
    """Waits for the worker to end until the deadline, or until the lane's exports stop moving (``ExportClock``)."""
    _join_until(worker, lambda: min(until(), lane.export_clock.stalled_at(since)))


def _join_exporter_closer(lane: Lane, closer: WorkerThread, until: Callable[[], float], cap: float) -> None:
    """Waits for the exporter's shutdown to return until the deadline or the lane's cap, whichever comes first."""
    _join_until(closer, lambda: min(cap, until()))
    if closer.is_alive():
        logged(logger.warning, "%s: exporter shutdown did not return by the deadline.", lane.name)


def _why_given_up(lane: Lane, drain: bool, deadline: float) -> str:
    if not drain:
        return "exit interrupted"
    if time.monotonic() >= deadline:
        return "shutdown deadline passed"
    millis = lane.settings.export_timeout_millis
    return f"exports stalled past export_timeout_millis={int(millis) if millis.is_integer() else millis}"


def _finish_shutdown(stopping: Sequence[Lane], until: Callable[[], float], drain: bool) -> None:
    since = time.monotonic()
    for lane in stopping:
        if drain and lane.worker is not None and not lane.on_export_thread():
            _join_worker(lane, lane.worker, until, since)
    for lane in stopping:
        if lane.worker is not None and lane.worker.is_alive() and not lane.shutdown_steps.abandoned:
            lane.shutdown_steps.abandoned = True
            abandoned = lane.core.abandon()
            in_flight = lane.core.stats().in_flight
            if not abandoned and not in_flight:
                continue  # an idle worker, not joined in the time left: nothing was at stake
            logged(
                logger.warning,
                "%s: %s with the worker still busy (an export, or %s another thread was reading); dropped %s still"
                " queued; %d in flight are counted as their export ends (lost, uncounted, if the process ends first).",
                lane.name,
                _why_given_up(lane, drain, until()),
                lane.signal.items,
                lane.signal.counted(abandoned),
                in_flight,
            )
    # A lane whose exports drained in time has a working exporter: its shutdown gets the rest of the deadline, as
    # stock gives it (one that writes out what it buffered needs it). One whose worker was let go (an export hung, or
    # the deadline passed), or whose last export took its whole timeout, likely hangs there too: it gets what an
    # export may take, so a shutdown whose export and exporter shutdown both hang still ends within about twice that.
    # An exit a Ctrl-C interrupted waits for none.
    now = time.monotonic()
    capped = {
        lane: now
        if not drain
        else now + lane.settings.export_timeout_millis / 1000
        if lane.shutdown_steps.abandoned or lane.export_clock.last_overran
        else math.inf
        for lane in stopping
    }
    for lane in stopping:
        if lane.shutdown_steps.exporter_told:
            continue
        lane.shutdown_steps.exporter_told = True
        try:
            lane.shutdown_steps.exporter_closer = start_thread_even_at_exit(
                shutdown_exporter,
                f"spanbatch-{lane.name}-shutdown",
                lane.exporter,
                remaining_millis(min(capped[lane], until())),
            )
        except RuntimeError:
            # CPython 3.12 starts no threads once interpreter shutdown has begun, and this process has no standby
            # thread (see ``_standby_thread``): call it here instead, bounded by the timeout it is passed where it
            # takes one.
            shutdown_exporter(lane.exporter, remaining_millis(min(capped[lane], until())))
    for lane in stopping:
        closer = lane.shutdown_steps.exporter_closer
        if closer is not None:
            _join_exporter_closer(lane, closer, until, capped[lane])
    for lane in stopping:
        lane.tell_drops(until())
        lane.come_to_rest()
        lane.shutdown_steps.finished = True
        _standby_thread.let_go(lane)
