"""A lane: one exporter with its own Rust queue, counters, worker thread and settings.

Lanes never share a queue, so a slow or dead backend fills and drops only its own. The
module's functions flush or shut down many lanes under one deadline: every worker is
told at once, then each is waited for with whatever time is left.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
import time
import weakref
from collections.abc import Iterable, Sequence
from typing import Any, Callable

from opentelemetry.sdk.trace.export import SpanExporter

from spanbatch._config import BatchSettings
from spanbatch._core import BatchCore
from spanbatch._drops import DropReporter
from spanbatch._export import run_worker, shutdown_exporter
from spanbatch._policies import ExportPolicies
from spanbatch._stats import SpanStats
from spanbatch._threads import WorkerThread, cooperative_pause, start_thread

logger = logging.getLogger("spanbatch")


def weak_method(method: Callable[..., Any]) -> Callable[..., Any]:
    """A callable that forwards to ``method`` while its object lives, and returns None after."""
    ref = weakref.WeakMethod(method)

    def call(*args: object) -> Any:
        target = ref()
        return None if target is None else target(*args)

    return call


def remaining_millis(deadline: float) -> float:
    return max(0.0, (deadline - time.monotonic()) * 1000)


class Lane:
    """One backend. ``on_new_core`` is called after a fork gave the lane a fresh core."""

    def __init__(
        self,
        name: str,
        exporter: SpanExporter,
        settings: BatchSettings,
        *,
        policies: ExportPolicies | None = None,
        debug: bool = False,
        drop_label: str = "",
        on_new_core: Callable[[], None] | None = None,
    ) -> None:
        self.name = name
        self.exporter = exporter
        self.settings = settings
        self.policies = ExportPolicies() if policies is None else policies
        self._debug = debug
        self._drop_label = drop_label
        self._on_new_core = on_new_core
        self._fork_claims: dict[int, int] = {}
        self.worker: WorkerThread | None = None
        self.core = self._start()
        if debug:
            logger.debug(
                "%s lane: drop_policy=%s, block_timeout_millis=%g, max_retries=%d, linger_millis=%s, "
                "max_concurrent_exports=%d",
                name,
                self.policies.drop_policy,
                self.policies.block_timeout_millis,
                self.policies.retry.max_retries,
                self.policies.linger_millis,
                self.policies.max_concurrent_exports,
            )
        # A lane nobody can reach any more stops its worker instead of leaking it.
        self._finalizer = weakref.finalize(self, BatchCore.begin_shutdown, self.core)

    def _start(self) -> BatchCore:
        core = BatchCore(
            self.settings.max_queue_size,
            self.settings.schedule_delay_millis,
            self.settings.max_export_batch_size,
            drop_policy=self.policies.drop_policy,
            linger_millis=self.policies.linger_millis,
            block_timeout_millis=self.policies.block_timeout_millis,
            on_fork=weak_method(self.recover_from_fork),
            pause=cooperative_pause(),
        )
        self.drops = DropReporter(self._drop_label)
        work = functools.partial(
            run_worker,
            core,
            self.exporter,
            self.drops,
            self.name,
            self._debug,
            retry=self.policies.retry,
            timeout_millis=self.settings.export_timeout_millis,
            concurrency=self.policies.max_concurrent_exports,
        )
        self.worker = start_thread(work, f"spanbatch-{self.name}")
        return core

    def current_core(self) -> BatchCore:
        """The core of this process; noticing a fork here means it skipped Python's hooks."""
        if self.core.pid != os.getpid():
            self.recover_from_fork(self.core.queue_len())
        return self.core

    def stats(self) -> SpanStats:
        return SpanStats.of(self.current_core())

    def recover_from_fork(self, orphaned: int) -> BatchCore:
        """Give a forked child its own queue and worker; the parent exports what it had queued.

        ``orphaned`` counts spans found in the inherited queue when the fork skipped Python's
        hooks: the child cannot tell its own from its parent's, so it counts them as dropped.
        """
        pid, me = os.getpid(), threading.get_ident()
        if self.core.pid == pid or self.core.is_shutdown:
            return self.core
        # No lock: one held by a parent thread would stay held here. setdefault is atomic.
        if self._fork_claims.setdefault(pid, me) != me:
            return self.core
        self.core = self._start()
        self.core.count_lost_to_fork(orphaned)
        self._finalizer.detach()
        self._finalizer = weakref.finalize(self, BatchCore.begin_shutdown, self.core)
        if self._on_new_core is not None:
            self._on_new_core()
        return self.core

    def on_worker_thread(self) -> bool:
        """Whether the caller is this lane's worker or one of its export threads."""
        return self.core.on_export_thread()


def flush_lanes(lanes: Sequence[Lane], timeout_millis: float) -> dict[str, bool]:
    """Flush every lane in parallel under one deadline; per-lane result."""
    deadline = time.monotonic() + timeout_millis / 1000
    results: dict[str, bool] = {}
    tickets: list[tuple[Lane, BatchCore, int]] = []
    for lane in lanes:
        core = lane.current_core()
        if core.is_shutdown:
            results[lane.name] = False
        elif lane.on_worker_thread():
            logger.warning("force_flush called from %s's own export thread; not waiting.", lane.name)
            results[lane.name] = False
        else:
            tickets.append((lane, core, core.request_flush()))
    for lane, core, ticket in tickets:
        results[lane.name] = core.wait_flush(ticket, remaining_millis(deadline))
    return results


def shutdown_lanes(lanes: Iterable[Lane], timeout_millis: float) -> None:
    """Drain and shut down every lane in parallel; returns by the deadline whatever hangs.

    Spans still queued at the deadline are dropped and counted (``shutdown``); an export still
    running finishes on its own thread.
    """
    deadline = time.monotonic() + timeout_millis / 1000
    stopping = [lane for lane in lanes if lane.current_core().begin_shutdown()]
    for lane in stopping:
        if lane.worker is not None and not lane.on_worker_thread():
            lane.worker.join(remaining_millis(deadline) / 1000)
    for lane in stopping:
        if lane.worker is not None and lane.worker.is_alive():
            abandoned = lane.core.abandon()
            logger.warning(
                "%s: shutdown deadline passed with an export still running; dropped %d queued spans.",
                lane.name,
                abandoned,
            )
    helpers: list[tuple[Lane, WorkerThread]] = []
    for lane in stopping:
        try:
            helper = start_thread(
                shutdown_exporter, f"spanbatch-{lane.name}-shutdown", lane.exporter, remaining_millis(deadline)
            )
        except RuntimeError:
            # Python 3.12+ starts no threads once interpreter shutdown has begun (atexit, late
            # SIGTERM): call it here instead, bounded by the timeout it is passed where it takes one.
            shutdown_exporter(lane.exporter, remaining_millis(deadline))
        else:
            helpers.append((lane, helper))
    for lane, helper in helpers:
        helper.join(remaining_millis(deadline) / 1000)
        if helper.is_alive():
            logger.warning("%s: exporter shutdown did not return by the deadline.", lane.name)
    for lane in stopping:
        lane.drops.report(SpanStats.of(lane.core).dropped, now=True)
