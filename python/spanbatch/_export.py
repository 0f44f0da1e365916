"""The worker's export loop: one exporter, batches from the Rust core, every outcome counted."""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import queue
import threading
import time
from collections.abc import Awaitable, Sequence
from typing import Any, Callable, cast

from opentelemetry.context import _SUPPRESS_INSTRUMENTATION_KEY, attach, detach, set_value
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from spanbatch._capabilities import ExportsMany, encodes_spans, exports_many
from spanbatch._core import BatchCore, SpanEncoder
from spanbatch._drops import DropReporter
from spanbatch._policies import RetryPolicy
from spanbatch._stats import SpanStats
from spanbatch._threads import native_queue, start_thread
from spanbatch.exporter._encoding import Batch, counting_skips, spans_left_out

logger = logging.getLogger("spanbatch")
# The stock processor's logger and message for an exporter that raises: users' log filters keep working.
stock_logger = logging.getLogger("opentelemetry.sdk._shared_internal")
_STOCK_EXPORT_EXCEPTION = "Exception while exporting %s."

# (exporter type, result type) pairs already reported for not returning a SpanExportResult.
_odd_results: set[tuple[type, type]] = set()

# Most batches handed to one ``export_many`` call: bounds how long the worker holds the GIL
# reading spans (about 1 ms per 512) and how much one failing call puts at stake.
BATCHES_PER_CALL = 8

# An exporter with a SpanEncoder gets its batches read while they fill, this many spans at a
# time: a span read soon after it ends is freed young, where one left queued for a whole batch
# outlives several garbage collections and is promoted to the costly older generations.
READ_AHEAD_SPANS = 32


class PrivateLoop:
    """An event loop owned by one worker thread, for exporters whose ``export`` returns an awaitable.

    Made on first use, so synchronous exporters never pay for one, and never shared: the
    application's own loop (if any) is not touched and cannot stall the export.
    """

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None

    def run(self, awaitable: Awaitable[Any], timeout_millis: float) -> Any:
        """The awaitable's result; ``TimeoutError`` (cancelling it) after ``timeout_millis``."""
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
        return self._loop.run_until_complete(asyncio.wait_for(awaitable, timeout_millis / 1000))

    def close(self) -> None:
        if self._loop is not None:
            self._loop.close()
            self._loop = None


def succeeded(exporter: SpanExporter, result: object) -> bool:
    """Whether ``result`` is SpanExportResult.SUCCESS; anything but a SpanExportResult is reported once per type."""
    if result is SpanExportResult.SUCCESS:
        return True
    kind = (type(exporter), type(result))
    if result is not SpanExportResult.FAILURE and kind not in _odd_results:
        _odd_results.add(kind)
        logger.warning(
            "%s.export returned %r, not a SpanExportResult; counting its batches as failed.",
            type(exporter).__name__,
            result,
        )
    return False


def export_batch(exporter: SpanExporter, batch: Batch, loop: PrivateLoop, timeout_millis: float) -> bool:
    """Export one batch; True only for SpanExportResult.SUCCESS. Never raises.

    An awaitable result is run on ``loop`` and bounded by ``timeout_millis``.
    """
    try:
        result = exporter.export(batch)  # type: ignore[arg-type]  # a SpanRequest only for its own encoder's exporter
        if inspect.isawaitable(result):
            result = loop.run(result, timeout_millis)
    except asyncio.TimeoutError:
        logger.error("Export of %d spans timed out after %.0f ms.", len(batch), timeout_millis)
        return False
    except BaseException:  # an exporter must not take the worker down with it
        stock_logger.exception(_STOCK_EXPORT_EXCEPTION, "Span")
        return False
    return succeeded(exporter, result)


def batch_source(core: BatchCore, exporter: SpanExporter, most: int) -> Callable[[], Sequence[Batch] | None]:
    """Takes up to ``most`` due batches from ``core``, None to stop.

    An exporter whose class declares a ``span_encoder`` (see ``_capabilities``) that is a
    SpanEncoder gets each batch as the ``SpanRequest`` that encoder read it into while it
    filled; any other gets lists of spans.
    """
    encoder = getattr(exporter, "span_encoder", None) if encodes_spans(exporter) else None
    if not isinstance(encoder, SpanEncoder):
        return lambda: core.next_batches(most)
    return lambda: counting_skips(encoder, lambda: core.next_requests(encoder, most, READ_AHEAD_SPANS))


def first_attempts(
    exporter: SpanExporter, batches: Sequence[Batch], loop: PrivateLoop, timeout_millis: float
) -> list[bool]:
    """One attempt at each batch (one call where the exporter's class declares ``export_many``); never raises."""
    if not exports_many(exporter):
        return [export_batch(exporter, batch, loop, timeout_millis) for batch in batches]
    try:
        results = cast(ExportsMany, exporter).export_many(batches)
    except BaseException:  # as in export_batch: the worker outlives its exporter's bugs
        stock_logger.exception(_STOCK_EXPORT_EXCEPTION, "Span")
        return [False] * len(batches)
    if not isinstance(results, Sequence) or len(results) != len(batches):
        logger.error(
            "%s.export_many returned %r for %d batches; counting them as failed.",
            type(exporter).__name__,
            results,
            len(batches),
        )
        return [False] * len(batches)
    return [succeeded(exporter, result) for result in results]


def retry_export(
    core: BatchCore,
    exporter: SpanExporter,
    batch: Batch,
    *,
    loop: PrivateLoop,
    retry: RetryPolicy,
    deadline: float,
) -> tuple[bool, int]:
    """After a failed attempt, retry as ``retry`` says; (success, retries made).

    ``deadline`` (monotonic) bounds the whole series: a retry whose backoff would end past
    it is not made. Shutdown cuts a backoff short and gives up on the batch, so that a dead
    backend cannot hold the exit for its whole retry budget.
    """
    retries = 0
    while retries < retry.max_retries:
        pause = retry.backoff_millis(retries)
        if time.monotonic() + pause / 1000 >= deadline or not core.backoff(pause):
            break
        retries += 1
        core.count_retry()
        if export_batch(exporter, batch, loop, max(0.0, deadline - time.monotonic()) * 1000):
            return True, retries
    return False, retries


def export_batches(
    core: BatchCore,
    exporter: SpanExporter,
    drops: DropReporter,
    label: str,
    debug: bool,
    *,
    retry: RetryPolicy,
    timeout_millis: float,
    batches: Callable[[], Sequence[Batch] | None],
) -> None:
    """Export what ``batches()`` returns, on this thread, until it returns None.

    Each batch is settled as the core handed it over, whatever the exporter does to the list;
    spans its encoder left out count as dropped (``unencodable``).
    With ``debug``, one line per batch: backend, batch size, retries, duration, outcome.
    Never span contents, headers or credentials.
    """
    core.enter_export_thread()
    token = attach(set_value(_SUPPRESS_INSTRUMENTATION_KEY, True))
    loop = PrivateLoop()
    try:
        with spans_left_out() as left_out:
            while (taken := batches()) is not None:
                started = time.monotonic()
                deadline = started + timeout_millis / 1000
                sizes = [len(batch) for batch in taken]  # before the exporter can change a list
                for batch, size, first_ok in zip(taken, sizes, first_attempts(exporter, taken, loop, timeout_millis)):
                    ok, retries = (
                        (True, 0)
                        if first_ok
                        else retry_export(core, exporter, batch, loop=loop, retry=retry, deadline=deadline)
                    )
                    if debug:  # before settling: a flush that returns then finds its line logged
                        logger.debug(
                            "%s export: batch=%d spans, retries=%d, duration=%.0fms, status=%s",
                            label,
                            size,
                            retries,
                            (time.monotonic() - started) * 1000,
                            "ok" if ok else "failed",
                        )
                    core.finish_batch(batch, ok, left_out_of(batch, taken, left_out))
                left_out.clear()
                drops.report(SpanStats.of(core).dropped)
    finally:
        loop.close()
        detach(token)


def left_out_of(batch: Batch, taken: Sequence[Batch], counts: dict[int, int]) -> int:
    """The spans of ``batch`` the encoder left out while ``taken`` was exported on this thread.

    A batch exported alone owns whatever was left out meanwhile, even from a copy of its list
    (an exporter that wraps another may pass one on).
    """
    if len(taken) == 1:
        return max(counts.values(), default=0)
    return counts.get(id(batch), 0)


def run_worker(
    core: BatchCore,
    exporter: SpanExporter,
    drops: DropReporter,
    label: str,
    debug: bool,
    *,
    retry: RetryPolicy,
    timeout_millis: float,
    concurrency: int = 1,
) -> None:
    """Export batches until the core says stop. Holds no reference to the processor.

    With ``concurrency`` > 1 this thread only takes batches, each once one of ``concurrency``
    export threads is free, and hands it over; it returns when every export has returned.
    """
    export = functools.partial(
        export_batches, core, exporter, drops, label, debug, retry=retry, timeout_millis=timeout_millis
    )
    if concurrency == 1:
        # An exporter that takes several batches per call gets every batch that is due at
        # once: the worker then waits for the GIL once per call, not once per batch.
        export(batches=batch_source(core, exporter, BATCHES_PER_CALL if exports_many(exporter) else 1))
        return
    core.enter_export_thread()
    # Real OS threads and the queues between them, even under gevent (see _threads).
    handoff: queue.SimpleQueue[Batch | None] = native_queue()
    take_one = batch_source(core, exporter, 1)
    # One token per idle export thread, so a batch leaves the queue only when one can export it at once.
    idle: queue.SimpleQueue[None] = native_queue()

    def next_batch() -> list[Batch] | None:
        idle.put(None)  # this thread's previous export (if any) has returned and been counted
        batch = handoff.get()
        return None if batch is None else [batch]

    threads = [
        start_thread(functools.partial(export, batches=next_batch), f"{threading.current_thread().name}-export-{i}")
        for i in range(concurrency)
    ]
    while True:
        idle.get()
        batch = take_one()
        if batch is None:
            break
        handoff.put(batch[0])
    for _ in threads:
        handoff.put(None)
    for thread in threads:
        thread.join()


def shutdown_exporter(exporter: SpanExporter, timeout_millis: float) -> None:
    """Call ``exporter.shutdown``, passing the time left where it accepts ``timeout_millis``."""
    try:
        takes_timeout = "timeout_millis" in inspect.signature(exporter.shutdown).parameters
    except (TypeError, ValueError):
        takes_timeout = False
    try:
        if takes_timeout:
            exporter.shutdown(timeout_millis=max(0.0, timeout_millis))  # type: ignore[call-arg]
        else:
            exporter.shutdown()
    except Exception:
        logger.exception("Exception while shutting down %s.", type(exporter).__name__)
