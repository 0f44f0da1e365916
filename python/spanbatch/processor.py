"""``BatchSpanProcessor``: the stock processor's contract on a Rust queue."""

from __future__ import annotations

import logging
import os
import threading
import time
import weakref
from typing import Any, Callable, Literal

from opentelemetry.context import Context
from opentelemetry.metrics import MeterProvider
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.sdk.trace.export import SpanExporter

from spanbatch._config import BatchSettings, resolve_settings
from spanbatch._core import BatchCore
from spanbatch._drops import DropReporter
from spanbatch._export import run_worker, shutdown_exporter
from spanbatch._metrics import component_name, internal_metrics_enabled, register_processor_metrics
from spanbatch._stats import SpanStats

DropPolicyName = Literal["oldest", "newest"]

logger = logging.getLogger("spanbatch")


def _weak_method(method: Callable[..., Any]) -> Callable[..., Any]:
    """A callable that forwards to ``method`` while its object lives, and returns None after."""
    ref = weakref.WeakMethod(method)

    def call(*args: object) -> Any:
        target = ref()
        return None if target is None else target(*args)

    return call


class BatchSpanProcessor(SpanProcessor):
    """Batches ended spans and exports them from a background thread.

    A drop-in for ``opentelemetry.sdk.trace.export.BatchSpanProcessor`` (same arguments,
    ``OTEL_BSP_*`` variables, defaults and errors) whose queue lives in Rust: ``on_end``
    runs no Python code, ``force_flush`` and ``shutdown`` keep their deadlines even when
    the exporter hangs, and :meth:`stats` accounts for every span.

    Settings resolve as explicit argument > ``SPANBATCH_*`` > ``OTEL_BSP_*`` > default.
    ``drop_policy`` chooses which span a full queue loses: ``"oldest"`` (the stock
    behaviour) or ``"newest"``.
    """

    def __init__(
        self,
        span_exporter: SpanExporter,
        max_queue_size: int | None = None,
        schedule_delay_millis: float | None = None,
        max_export_batch_size: int | None = None,
        export_timeout_millis: float | None = None,
        *,
        meter_provider: MeterProvider | None = None,
        drop_policy: DropPolicyName = "oldest",
    ) -> None:
        self._settings: BatchSettings = resolve_settings(
            max_queue_size, schedule_delay_millis, max_export_batch_size, export_timeout_millis
        )
        self._exporter = span_exporter
        self._drop_policy = drop_policy
        self._fork_claims: dict[int, int] = {}
        self._worker: threading.Thread | None = None
        self._core = self._start_lane()
        # Without a processor nobody can stop the worker, so stop it when the processor goes.
        self._finalizer = weakref.finalize(self, BatchCore.begin_shutdown, self._core)
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=_weak_method(self._after_fork_in_child))
        if internal_metrics_enabled():
            register_processor_metrics(
                _weak_method(self.stats),
                self._settings.max_queue_size,
                meter_provider,
                component_name(),
            )

    def _start_lane(self) -> BatchCore:
        core = BatchCore(
            self._settings.max_queue_size,
            self._settings.schedule_delay_millis,
            self._settings.max_export_batch_size,
            drop_policy=self._drop_policy,
            on_fork=_weak_method(self._recover_from_fork),
        )
        self._drops = DropReporter()
        self._worker = threading.Thread(
            target=run_worker,
            args=(core, self._exporter, self._drops),
            name="OtelBatchSpanRecordProcessor",
            daemon=True,
        )
        self._worker.start()
        # The hot path: the SDK calls ``processor.on_end`` and lands straight in Rust.
        self.on_end = core.on_end  # type: ignore[method-assign]
        return core

    @property
    def span_exporter(self) -> SpanExporter:
        return self._exporter

    @property
    def settings(self) -> BatchSettings:
        return self._settings

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        pass

    def _on_ending(self, span: Span) -> None:
        pass

    def on_end(self, span: ReadableSpan) -> None:
        # Shadowed per instance by the core's ``on_end``; kept for subclasses and type checkers.
        self._core.on_end(span)

    def stats(self) -> SpanStats:
        """An exact, immutable snapshot of where every received span is."""
        return SpanStats.of(self._current_core())

    def force_flush(self, timeout_millis: int | None = None) -> bool:
        """Export every span queued before this call; False if ``timeout_millis`` passes first.

        ``None`` waits up to ``export_timeout_millis``. An export still running at the
        deadline goes on in the background.
        """
        core = self._current_core()
        if core.is_shutdown:
            return False
        if threading.current_thread() is self._worker:
            logger.warning("force_flush called from the export thread itself; returning False.")
            return False
        timeout = self._settings.export_timeout_millis if timeout_millis is None else timeout_millis
        return core.wait_flush(core.request_flush(), timeout)

    def shutdown(self, timeout_millis: float | None = None) -> None:
        """Export what is queued, then shut the exporter down, all within ``export_timeout_millis``.

        Idempotent. Spans still queued at the deadline are dropped and counted (``shutdown``).
        """
        core = self._core
        if not core.begin_shutdown():
            return
        timeout = self._settings.export_timeout_millis if timeout_millis is None else timeout_millis
        deadline = time.monotonic() + timeout / 1000
        worker = self._worker
        if worker is not None and worker is not threading.current_thread():
            worker.join(max(0.0, deadline - time.monotonic()))
        if worker is not None and worker.is_alive():
            abandoned = core.abandon()
            logger.warning(
                "Shutdown deadline of %.0f ms passed with an export still running; dropped %d queued spans.",
                timeout,
                abandoned,
            )
        shutdown_exporter(self._exporter, (deadline - time.monotonic()) * 1000)
        self._drops.report(SpanStats.of(core).dropped, now=True)

    def _current_core(self) -> BatchCore:
        """The core of this process; noticing here means the fork skipped Python's hooks."""
        if self._core.pid != os.getpid():
            self._recover_from_fork(self._core.queue_len())
        return self._core

    def _after_fork_in_child(self) -> None:
        self._recover_from_fork(0)

    def _recover_from_fork(self, orphaned: int) -> BatchCore:
        """Give a forked child its own queue and worker; the parent exports what it had queued.

        ``orphaned`` counts spans found in the inherited queue when the fork skipped Python's
        hooks: the child cannot tell its own from its parent's, so it counts them as dropped.
        """
        pid, me = os.getpid(), threading.get_ident()
        if self._core.pid == pid or self._core.is_shutdown:
            return self._core
        # No lock: one held by a parent thread would stay held here. setdefault is atomic.
        if self._fork_claims.setdefault(pid, me) != me:
            return self._core
        self._core = self._start_lane()
        self._core.count_lost_to_fork(orphaned)
        self._finalizer.detach()
        self._finalizer = weakref.finalize(self, BatchCore.begin_shutdown, self._core)
        return self._core

    def __repr__(self) -> str:
        s = self._settings
        return (
            f"{type(self).__name__}({type(self._exporter).__name__}, max_queue_size={s.max_queue_size}, "
            f"schedule_delay_millis={s.schedule_delay_millis:g}, max_export_batch_size={s.max_export_batch_size}, "
            f"export_timeout_millis={s.export_timeout_millis:g}, drop_policy={self._drop_policy!r}, "
            f"stats={self.stats()})"
        )
