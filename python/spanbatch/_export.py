"""The worker's export loop: one exporter, batches from the Rust core, every outcome counted."""

from __future__ import annotations

import asyncio
import inspect
import logging
import queue
import threading
import time
from collections.abc import Awaitable, Callable, Sequence, Sized
from contextlib import suppress
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from opentelemetry.context import _SUPPRESS_INSTRUMENTATION_KEY, attach, detach, set_value

from spanbatch._capabilities import Exporter, encodes_logs, encodes_spans, exports_many, reports_batch_ends, spills
from spanbatch._core import BatchCore, LogEncoder, LogRequest, SpanEncoder, SpanRequest
from spanbatch._drops import DropReporter, log_stock_export_exception
from spanbatch._encoding import SkipWarnings, accepted_items, items_spilled, requests_read, spans_left_out
from spanbatch._executor import ExportThreads, private_loop
from spanbatch._export_clock import ExportClock
from spanbatch._policies import RetryPolicy
from spanbatch._safe_log import logged
from spanbatch._settings import ExportPolicies
from spanbatch._signals import Signal
from spanbatch._stats import SpanStats
from spanbatch._threads import start_thread, threads_are_greenlets

logger = logging.getLogger("spanbatch")

# (method, exporter type, answer type) already reported for an answer that is not an export result (``export``)
# or not one per batch (``export_many``): reported once, counted every time.
_odd_answers: set[tuple[str, type, type]] = set()

# Most batches handed to one ``export_many`` call: bounds how long the worker holds the GIL
# reading spans (about 1 ms per 512) and how much one failing call puts at stake.
BATCHES_PER_CALL = 8

# An exporter with a SpanEncoder gets its batches read while they fill, this many spans at a
# time: a span read soon after it ends is freed young, where one left queued for a whole batch
# outlives several garbage collections and is promoted to the costly older generations. The
# threads that end the spans read them (see ``read_ahead.rs``): 32 SDK spans (14 tracked objects
# each) stay under the 700 allocations that start a young collection. Measured (1 and 4 threads,
# per 10,000 spans): 64 set off 140 young collections and cost 16-16.6 us per span; 16 and 32,
# 0-40 and 14-15 us.
READ_AHEAD_SPANS = 32

B = TypeVar("B", bound=Sized)  # a batch as one exporter takes it: a list of spans, or a SpanRequest


@dataclass(frozen=True)
class LaneWork:
    """What a lane's worker needs, and nothing that leads back to the lane or its processor:
    a lane nobody can reach stops its worker instead of being kept alive by it."""

    core: BatchCore
    exporter: Exporter[Any]
    signal: Signal
    drops: DropReporter
    name: str
    debug: bool
    policies: ExportPolicies
    timeout_millis: float
    clock: ExportClock
    retry: RetryPolicy


@dataclass(frozen=True)
class Delivery(Generic[B]):
    """How one exporter gets its batches: ``take(most)`` returns up to ``most`` due batches (None to
    stop), ``export`` hands over one, ``export_many`` several where the exporter's class declares it.

    The exporter's methods are looked up at each call, as a direct call would (``delivery_for``'s
    ``export``): the user's code may replace them while the processor runs.
    """

    exporter: object  # named in warnings
    signal: Signal
    take: Callable[[int], Sequence[B] | None]
    export: Callable[[B], object]
    export_many: Callable[[Sequence[B]], object] | None
    clock: ExportClock  # times each call of ``export`` or ``export_many``, with what it returns awaited
    # Whether the exporter's class declares its spill: the spans it notes it stored on disk count as ``spilled``.
    spills: bool = False
    # Whether its class declares that its ``export_many`` tells as each batch ends (see ``ExportClock``).
    paced: bool = False


def delivery_for(work: LaneWork) -> Delivery[Any]:
    """Lists of items, except for an exporter whose class declares its signal's encoder (``span_encoder``
    or ``log_encoder``, see ``_capabilities``): it gets each batch as the request that encoder read it
    into while it filled.
    """
    core, exporter, signal = work.core, work.exporter, work.signal

    def export(batch: Any) -> object:
        return exporter.export(batch)

    many = _export_many(exporter)
    spilled = spills(exporter)
    paced = many is not None and reports_batch_ends(exporter)
    encoder = _declared_encoder(exporter)
    if encoder is not None:
        # Counted from one batch to the next: application threads read spans ahead between two calls.
        skips = SkipWarnings(encoder)

        def read(most: int) -> list[SpanRequest] | list[LogRequest] | None:
            requests = core.next_requests(encoder, most, READ_AHEAD_SPANS)
            logged(skips.report)
            return requests

        return Delivery(exporter, signal, read, export, many, work.clock, spilled, paced)
    return Delivery(exporter, signal, core.next_batches, export, many, work.clock, spilled, paced)


def _declared_encoder(exporter: object) -> SpanEncoder | LogEncoder | None:
    """The encoder the exporter's class declares for the requests it takes, if it is one of ours.

    None where the instance cannot give it (a subclass whose ``__init__`` skipped its parent's): its ``export``
    gets lists, as from the stock processor, and what it raises there is logged and counted per batch.
    """
    try:
        if encodes_spans(exporter):
            encoder: object = exporter.span_encoder
            return encoder if isinstance(encoder, SpanEncoder) else None
        if encodes_logs(exporter):
            encoder = exporter.log_encoder
            return encoder if isinstance(encoder, LogEncoder) else None
    except Exception:  # raised here, on the worker thread, it would end the worker before its first batch
        return None
    return None


def _export_many(exporter: object) -> Callable[[Sequence[Any]], object] | None:
    if not exports_many(exporter):
        return None
    return lambda batches: exporter.export_many(batches)  # noqa: PLW0108


# How long an export torn through is given to run its cleanup (``except CancelledError``, ``finally``) before
# its loop is closed under it.
CANCEL_GRACE_SECONDS = 1.0
# What a wait for a lane allows an awaited export beyond its timeout: ``PrivateLoop`` gives it up a grace after the
# timeout; twice that, so the wait sees the loop give up rather than racing it.
_AWAITED_GRACE_SECONDS = 2 * CANCEL_GRACE_SECONDS
# The part of the close's grace kept for the async generators, whatever the tasks before them take: a task that
# ignores its cancellation would otherwise leave them none, and their cleanup would never run to its end.
ASYNC_GENERATORS_SECONDS = 0.25


async def _awaited(awaitable: Awaitable[Any]) -> Any:
    return await awaitable


class ExportTimedOut(Exception):
    """An async export cancelled at ``export_timeout_millis``: spanbatch's timeout, never a ``TimeoutError`` the
    exporter raised itself (a socket's), which is an exception of the exporter's, logged as stock logs one."""


class PrivateLoop:
    """An event loop owned by one worker thread, for exporters whose ``export`` returns an awaitable.

    Made on first use, so synchronous exporters never pay for one, and never shared: the
    application's own loop (if any) is not touched and cannot stall the export. Its default executor
    (``asyncio.to_thread``, ``run_in_executor(None, ...)``) is a ``DaemonThreadPool`` (a ``GreenletPool``
    under gevent): a blocking call hung there holds neither the exit nor the later exports (see ``_executor``).
    """

    def __init__(self, lane: ExportThreads) -> None:
        self._lane = lane
        self._loop: asyncio.AbstractEventLoop | None = None

    def run(self, awaitable: Awaitable[Any], timeout_millis: float) -> Any:
        """The awaitable's result; ``ExportTimedOut`` (cancelling it) after ``timeout_millis``. An export that
        ignores its cancellation is given up after ``CANCEL_GRACE_SECONDS`` and takes the loop with it.

        A run that something other than an ``Exception`` tore through (a ``KeyboardInterrupt`` or ``SystemExit``
        from the export or a callback of the loop), or that ended before its export did (the exporter stopped the
        loop), takes the loop with it: kept, it would stop the next run at once and resume this export during
        that one. The export is cancelled into its own cleanup as the loop closes (see ``close``).
        """
        if self._loop is None:
            self._loop = private_loop(f"{threading.current_thread().name}-call", self._lane)
        loop = self._loop
        task = loop.create_task(_awaited(awaitable))
        try:
            loop.run_until_complete(asyncio.wait({task}, timeout=timeout_millis / 1000))
            if task.done():
                return task.result()
        except BaseException as error:
            if not task.done() or not isinstance(error, Exception):
                self.close()
            raise
        # Timed out: cancelled as ``wait_for`` would, but not waited for past the grace (``wait_for`` waits
        # without bound, so an export that ignores its cancellation would hold the worker for ever).
        self._cancel(task)
        if not task.done():
            self.close(given_up=task)
        elif not task.cancelled():
            # It finished in its cancellation's cleanup: its outcome, as ``wait_for`` gives it.
            return task.result()
        raise ExportTimedOut

    def _cancel(self, task: asyncio.Task[Any]) -> None:
        """Cancel the export into its own cleanup, for ``CANCEL_GRACE_SECONDS`` at most."""
        task.cancel()
        if self._loop is not None:
            # Whatever the cleanup raises, the error that tore through (or the timeout) is the one to report.
            with suppress(BaseException):
                self._loop.run_until_complete(asyncio.wait({task}, timeout=CANCEL_GRACE_SECONDS))

    def close(self, given_up: asyncio.Task[Any] | None = None) -> None:
        """Close the loop as ``asyncio.run`` closes its own, but within ``CANCEL_GRACE_SECONDS`` in all: the tasks
        left running (the export's, or the exporter's own in the background) are cancelled into their cleanup, then
        the async generators left suspended are closed, in ``ASYNC_GENERATORS_SECONDS`` of the grace at least (and
        whatever the tasks left of theirs). ``given_up``: an export that had its grace already, cancelled again but
        not waited for. The executor's threads are let go, never joined (a call hung in one would hold the worker
        for ever): a call still running finishes on its own thread, which then ends.
        """
        loop, self._loop = self._loop, None
        if loop is None:
            return
        deadline = time.monotonic() + CANCEL_GRACE_SECONDS
        try:
            tasks = asyncio.all_tasks(loop)
            for task in tasks:
                task.cancel()
            # Whatever a callback raises meanwhile (a task's own error is reported as asyncio reports it, when the
            # task goes), the close goes on.
            if waited := tasks - {given_up}:
                left = deadline - ASYNC_GENERATORS_SECONDS - time.monotonic()
                with suppress(BaseException):
                    loop.run_until_complete(asyncio.wait(waited, timeout=max(0.0, left)))
            with suppress(BaseException):
                closing = loop.create_task(loop.shutdown_asyncgens())
                loop.run_until_complete(asyncio.wait({closing}, timeout=max(0.0, deadline - time.monotonic())))
        finally:
            loop.close()  # shuts its default executor down without waiting


def succeeded(signal: Signal, exporter: object, result: object) -> bool:
    """Whether ``result`` is the signal's SUCCESS; anything but its SUCCESS or FAILURE is reported once per type."""
    if any(result is success for success in signal.successes):
        return True
    if not any(result is failure for failure in signal.failures) and _first_odd_answer("export", exporter, result):
        logged(
            logger.warning,
            "%s.export returned %r, not a %s; counting its batches as failed.",
            type(exporter).__name__,
            result,
            signal.result_type,
        )
    return False


def _first_odd_answer(method: str, exporter: object, answer: object) -> bool:
    """Whether this is the first odd ``answer`` of its type from ``exporter``'s class to ``method``."""
    kind = (method, type(exporter), type(answer))
    if kind in _odd_answers:
        return False
    _odd_answers.add(kind)
    return True


def log_timed_out(signal: Signal, items: int, timeout_millis: float) -> None:
    """An async export (or ``export_many``) cancelled at its timeout."""
    logged(logger.error, "Export of %s timed out after %.0f ms.", signal.counted(items), timeout_millis)


def export_batch(delivery: Delivery[B], batch: B, loop: PrivateLoop, timeout_millis: float) -> bool:
    """Export one batch; True only for the signal's SUCCESS. Never raises.

    An awaitable result is run on ``loop`` and bounded by ``timeout_millis``.
    """
    try:
        with delivery.clock.timing() as allow:
            result = delivery.export(batch)
            if inspect.isawaitable(result):
                allow(_AWAITED_GRACE_SECONDS)
                result = loop.run(result, timeout_millis)
    except ExportTimedOut:
        log_timed_out(delivery.signal, len(batch), timeout_millis)
        return False
    except BaseException:  # an exporter must not take the worker down with it
        # The stock processor's line on its logger: users' log filters keep working.
        logged(log_stock_export_exception, delivery.signal)
        return False
    return succeeded(delivery.signal, delivery.exporter, result)


def first_attempts(delivery: Delivery[B], batches: Sequence[B], loop: PrivateLoop, timeout_millis: float) -> list[bool]:
    """One attempt at each batch (one call where the exporter's class declares ``export_many``); never raises."""
    if delivery.export_many is None:
        return [export_batch(delivery, batch, loop, timeout_millis) for batch in batches]
    try:
        # A copy: the exporter may change the list it is given, and the caller settles the batches it handed over.
        with delivery.clock.timing(len(batches), paced=delivery.paced) as allow:
            results = delivery.export_many(list(batches))
            if inspect.isawaitable(results):  # an ``async def export_many``, run and bounded as an async ``export`` is
                allow(_AWAITED_GRACE_SECONDS)
                results = loop.run(results, timeout_millis)
    except ExportTimedOut:
        log_timed_out(delivery.signal, sum(map(len, batches)), timeout_millis)
        return [False] * len(batches)
    except BaseException:  # as in export_batch: the worker outlives its exporter's bugs
        # The stock processor's line on its logger: users' log filters keep working.
        logged(log_stock_export_exception, delivery.signal)
        return [False] * len(batches)
    if not isinstance(results, Sequence) or len(results) != len(batches):
        if _first_odd_answer("export_many", delivery.exporter, results):
            logged(
                logger.error,
                "%s.export_many returned %r for %d batches; counting them as failed.",
                type(delivery.exporter).__name__,
                results,
                len(batches),
            )
        return [False] * len(batches)
    return [succeeded(delivery.signal, delivery.exporter, result) for result in results]


def retry_export(
    work: LaneWork,
    delivery: Delivery[B],
    batch: B,
    *,
    loop: PrivateLoop,
    deadline: float,
    handed: list[Any] | None = None,
) -> tuple[bool, int]:
    """After a failed attempt, retry as the lane's retry policy says; (success, retries made).

    ``deadline`` (monotonic) bounds the whole series: a retry whose backoff would end past
    it is not made. Shutdown cuts a backoff short and gives up on the batch, so that a dead
    backend cannot hold the exit for its whole retry budget. ``handed``: what a list ``batch``
    held when handed over, put back in it before each retry (see ``handed_over``).
    """
    retry, retries = work.retry, 0
    while retries < retry.max_retries:
        pause = retry.backoff_millis(retries)
        if time.monotonic() + pause / 1000 >= deadline or not work.core.backoff(pause):
            break
        retries += 1
        work.core.count_retry()
        if handed is not None and isinstance(batch, list):
            batch[:] = handed
        if export_batch(delivery, batch, loop, max(0.0, deadline - time.monotonic()) * 1000):
            return True, retries
    return False, retries


def export_batches(work: LaneWork, delivery: Delivery[B], batches: Callable[[], Sequence[B] | None]) -> None:
    """Export what ``batches()`` returns, on this thread, until it returns None.

    Each batch is settled as the core handed it over, whatever the exporter does to the list;
    spans its encoder left out count as dropped (``unencodable``), spans it stored on disk as ``spilled``.
    With ``work.debug``, one line per batch: backend, batch size, retries, duration, outcome.
    Never span contents, headers or credentials.
    """
    core = work.core
    core.enter_export_thread()
    token = attach(set_value(_SUPPRESS_INSTRUMENTATION_KEY, True))
    loop = PrivateLoop(core)
    try:
        with spans_left_out() as left_out, items_spilled() as spilled, requests_read() as read:
            while (taken := batches()) is not None:
                try:
                    export_taken(work, delivery, taken, loop, left_out=left_out, spilled=spilled, read=read)
                except BaseException:
                    # Not the export (``export_batch`` absorbs what it raises): a bug here or in code the
                    # worker calls around it. The worker goes on, and the batches left unsettled count as failed.
                    settle_as_failed(core, taken)
                    logged(
                        logger.exception, "%s: unexpected error while exporting; batches counted as failed.", work.name
                    )
                left_out.clear()
                spilled.clear()
                read.clear()
                work.drops.report(lambda: SpanStats.of(core).dropped)
                # Not held while waiting for the next batches: the spans die once exported, before
                # the garbage collector's young collections can walk and promote them.
                del taken
    finally:
        loop.close()
        detach(token)


def export_taken(
    work: LaneWork,
    delivery: Delivery[B],
    taken: Sequence[B],
    loop: PrivateLoop,
    *,
    left_out: dict[int, int],
    spilled: dict[int, int],
    read: dict[int, list[SpanRequest | LogRequest]],
) -> None:
    """Export and settle the batches ``taken`` at once (see ``export_batches``)."""
    core = work.core
    started = time.monotonic()
    deadline = started + work.timeout_millis / 1000
    sizes = [len(batch) for batch in taken]  # before the exporter can change a list
    handed = handed_over(work, taken)
    for batch, size, items, first_ok in zip(
        taken, sizes, handed, first_attempts(delivery, taken, loop, work.timeout_millis), strict=True
    ):
        ok, retries = (
            (True, 0) if first_ok else retry_export(work, delivery, batch, loop=loop, deadline=deadline, handed=items)
        )
        if work.debug:  # before settling: a flush that returns then finds its line logged
            logged(
                logger.debug,
                "%s export: batch=%d %s, retries=%d, duration=%.0fms, status=%s",
                work.name,
                size,
                work.signal.items,
                retries,
                (time.monotonic() - started) * 1000,
                "ok" if ok else "failed",
            )
        stored = left_out_of(batch, taken, spilled) if delivery.spills else 0
        # A failed batch cut in parts: those the backend took before count as exported.
        delivered = 0 if ok else max(0, accepted_of(batch, taken, read) - stored)
        core.finish_batch(batch, ok, left_out_of(batch, taken, left_out), stored, delivered)


def handed_over(work: LaneWork, taken: Sequence[object]) -> list[list[Any] | None]:
    """Per batch, the items a list held when handed over, where the lane retries: an exporter may empty, extend or
    reorder the list it is given, and a retry must send what failed, in that same list (the core settles a batch by
    its identity). None for a request, or where no retry can follow (no copy to pay for)."""
    if work.retry.max_retries == 0:
        return [None] * len(taken)
    return [list(batch) if isinstance(batch, list) else None for batch in taken]


def settle_as_failed(core: BatchCore, taken: Sequence[object]) -> None:
    """Settles as failed each batch of ``taken`` not settled yet (``finish_batch`` refuses one settled)."""
    for batch in taken:
        with suppress(ValueError):
            core.finish_batch(batch, False)


def left_out_of(batch: object, taken: Sequence[object], counts: dict[int, int]) -> int:
    """The spans of ``batch`` the encoder left out (or the exporter spilled) while ``taken`` was exported on
    this thread.

    A batch exported alone owns whatever was left out meanwhile, even from a copy of its list
    (an exporter that wraps another may pass one on).
    """
    if len(taken) == 1:
        return max(counts.values(), default=0)
    return counts.get(id(batch), 0)


def accepted_of(batch: object, taken: Sequence[object], read: dict[int, list[SpanRequest | LogRequest]]) -> int:
    """The items of ``batch`` whose parts the backend accepted (spilled ones included), in the attempt that
    got furthest: a request is its own record; a list is read into a new request at each attempt."""
    if isinstance(batch, SpanRequest | LogRequest):
        return accepted_items(batch)
    requests = [r for rs in read.values() for r in rs] if len(taken) == 1 else read.get(id(batch), [])
    return max(map(accepted_items, requests), default=0)


def run_worker(work: LaneWork) -> None:
    """Export batches until the core says stop. Holds no reference to the processor.

    With ``max_concurrent_exports`` > 1 this thread only takes batches, each once one of that many
    export threads is free, and hands it over; it returns when every export has returned.
    """
    delivery = delivery_for(work)
    concurrency = work.policies.max_concurrent_exports
    if concurrency > 1 and threads_are_greenlets():
        # gevent's patched locks and queues (which gRPC's channel and most clients use) are not
        # safe across OS threads: several export threads lost spans or hung a flush.
        logged(
            logger.warning,
            "%s: max_concurrent_exports=%d is not used under gevent; exporting one batch at a time.",
            work.name,
            concurrency,
        )
        concurrency = 1
    if concurrency == 1:
        # An exporter that takes several batches per call gets every batch that is due at
        # once: the worker then waits for the GIL once per call, not once per batch.
        most = 1 if delivery.export_many is None else BATCHES_PER_CALL
        export_batches(work, delivery, lambda: delivery.take(most))
        return
    work.core.enter_export_thread()
    handoff: queue.SimpleQueue[Any] = queue.SimpleQueue()
    # One token per idle export thread, so a batch leaves the queue only when one can export it at once.
    idle: queue.SimpleQueue[None] = queue.SimpleQueue()

    def next_batch() -> list[Any] | None:
        idle.put(None)  # this thread's previous export (if any) has returned and been counted
        batch = handoff.get()
        return None if batch is None else [batch]

    name = threading.current_thread().name
    threads = [
        start_thread(export_batches, f"{name}-export-{i}", work, delivery, next_batch) for i in range(concurrency)
    ]
    while True:
        idle.get()
        batch = delivery.take(1)
        if batch is None:
            break
        handoff.put(batch[0])
        del batch  # held by the export thread alone, which lets it go once exported
    for _ in threads:
        handoff.put(None)
    for thread in threads:
        thread.join()


def shutdown_exporter(exporter: Exporter[Any], timeout_millis: float) -> None:
    """Call ``exporter.shutdown``, passing the time left where it accepts ``timeout_millis``.

    What it raises is logged, looking it up included (an exporter without one: stock raises that into the caller),
    and so is a ``SystemExit`` or ``KeyboardInterrupt`` on spanbatch's own thread, which only the exporter's code can
    raise there and nobody would catch. On the main thread (at exit, where no thread can be started) those are the
    application's, a Ctrl-C or its exit, and go on up.
    """
    try:
        shutdown = exporter.shutdown
        if _takes_timeout(shutdown):
            shutdown(timeout_millis=max(0.0, timeout_millis))  # type: ignore[call-arg]
        else:
            shutdown()
    except BaseException as error:
        if not isinstance(error, Exception) and threading.current_thread() is threading.main_thread():
            raise
        logged(logger.exception, "Exception while shutting down %s.", type(exporter).__name__)


def _takes_timeout(shutdown: Callable[..., object]) -> bool:
    try:
        return "timeout_millis" in inspect.signature(shutdown).parameters
    except (TypeError, ValueError):
        return False
