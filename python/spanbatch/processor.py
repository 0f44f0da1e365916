"""``BatchSpanProcessor``: the stock processor's contract on a Rust queue."""

from __future__ import annotations

from typing import cast

from opentelemetry.metrics import MeterProvider
from opentelemetry.sdk.trace.export import SpanExporter

from spanbatch._config import BatchSettings, resolve_settings
from spanbatch._lane import Backend
from spanbatch._policies import DropPolicyName, policy_arguments, resolve_policies
from spanbatch._spans import SpanEngine
from spanbatch._stats import SpanStats


class BatchSpanProcessor(SpanEngine):
    """Batches ended spans and exports them from a background thread.

    A drop-in for ``opentelemetry.sdk.trace.export.BatchSpanProcessor`` (same arguments,
    ``OTEL_BSP_*`` variables, defaults and errors) whose queue lives in Rust: ``on_end``
    runs no Python code, ``force_flush`` and ``shutdown`` keep their deadlines even when
    the exporter hangs, and :meth:`stats` accounts for every span.

    Settings resolve as explicit argument > ``SPANBATCH_*`` > ``OTEL_BSP_*`` > default.
    ``drop_policy`` (``SPANBATCH_DROP_POLICY``) chooses which span a full queue loses:
    ``"oldest"`` (the stock behaviour), ``"newest"``, or ``"block"``: ``on_end`` waits for
    room, without the GIL so the worker can drain, up to ``block_timeout_millis``
    (``SPANBATCH_BLOCK_TIMEOUT_MS``, 100), then drops the new span (``queue_full``). A span
    ended on the export thread itself never waits, and shutdown wakes every waiting
    producer (its span counts as ``shutdown``). While a producer waits, its span counts as
    ``queued``. With a :class:`~spanbatch.Pipeline` each blocked lane adds its own wait.

    Export policies (keyword-only, off by default; argument > variable > default):

    - ``max_retries`` (``SPANBATCH_MAX_RETRIES``, 0): export a batch again after FAILURE or
      an exception, up to this many times, pausing a random time up to
      ``retry_initial_backoff_millis`` (``SPANBATCH_RETRY_INITIAL_BACKOFF_MS``, 100) doubled
      per retry and capped at ``retry_max_backoff_millis`` (``SPANBATCH_RETRY_MAX_BACKOFF_MS``,
      5000). ``export_timeout_millis`` bounds the whole series; shutdown cuts a pause short and
      gives up. Retries are counted in ``stats().retried``; a batch that still fails counts
      as ``export_failed`` once.
    - ``linger_millis`` (``SPANBATCH_LINGER_MS``, off): the latency cap of a partial batch.
      Once the first span of a batch is queued, wait at most this long for the batch to
      fill; a full batch still goes at once. ``schedule_delay_millis`` stays the stock knob
      for the same wait: when both are set, the earlier deadline wins, so linger only
      matters when it is shorter than the schedule delay.
    - ``export_span_start`` (``SPANBATCH_EXPORT_SPAN_START``, off): by default nothing is
      written when a span starts (end-only ingest). When on, ``on_start`` also queues the
      sampled span, so a backend that upserts by span id shows spans still in progress; the
      span is queued again when it ends, and each copy is counted. The resolved mode is
      logged once at INFO when the processor is built.
    - ``max_concurrent_exports`` (``SPANBATCH_MAX_CONCURRENT_EXPORTS``, 1): how many batches
      a lane may export at once. The OpenTelemetry specification forbids calling ``export``
      concurrently on one exporter, so raise it only for an exporter documented as safe for
      that. Spans keep their order within a batch; batches may finish in any order. Flush
      and shutdown still wait for every export in flight. It pays off when ``export`` waits
      on the network (the GIL is released); for an exporter that returns at once keep 1:
      each hand-over to an export thread then costs a GIL switch.

    An exporter whose ``export`` returns an awaitable (an ``async def export``) is run on a
    private event loop owned by the lane's worker thread; ``export_timeout_millis`` cancels
    it (``asyncio.wait_for``), and flush, retries and shutdown behave as for a synchronous one.
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
        drop_policy: DropPolicyName | None = None,
        block_timeout_millis: float | None = None,
        max_retries: int | None = None,
        retry_initial_backoff_millis: float | None = None,
        retry_max_backoff_millis: float | None = None,
        linger_millis: float | None = None,
        export_span_start: bool | None = None,
        max_concurrent_exports: int | None = None,
    ) -> None:
        settings = resolve_settings(max_queue_size, schedule_delay_millis, max_export_batch_size, export_timeout_millis)
        super().__init__(
            [Backend(type(span_exporter).__name__, span_exporter, settings)],
            resolve_policies(policy_arguments(locals())),
            named=False,
            meter_provider=meter_provider,
        )

    @property
    def span_exporter(self) -> SpanExporter:
        return cast(SpanExporter, self._lanes[0].exporter)

    @property
    def settings(self) -> BatchSettings:
        return self._lanes[0].settings

    def stats(self) -> SpanStats:
        """An exact, immutable snapshot of where every received span is."""
        return super().stats()

    def force_flush(self, timeout_millis: int | None = None) -> bool:
        """Export every span queued before this call; False if ``timeout_millis`` passes first.

        ``None`` waits up to ``export_timeout_millis``. An export still running at the
        deadline goes on in the background.
        """
        return super().force_flush(timeout_millis)

    def shutdown(self, timeout_millis: float | None = None) -> None:
        """Export what is queued, then shut the exporter down, all within ``export_timeout_millis``.

        Idempotent. Spans still queued at the deadline are dropped and counted (``shutdown``).
        """
        super().shutdown(timeout_millis)

    def __repr__(self) -> str:
        s = self.settings
        return (
            f"{type(self).__name__}({self._lanes[0].name}, max_queue_size={s.max_queue_size}, "
            f"schedule_delay_millis={s.schedule_delay_millis:g}, max_export_batch_size={s.max_export_batch_size}, "
            f"export_timeout_millis={s.export_timeout_millis:g}, drop_policy={self._policies.drop_policy!r}, "
            f"max_retries={self._policies.retry.max_retries}, linger_millis={self._policies.linger_millis}, "
            f"max_concurrent_exports={self._policies.max_concurrent_exports}, "
            f"stats={self.stats()})"
        )
