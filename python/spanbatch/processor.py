"""Spans: the engine as an SDK ``SpanProcessor`` (``SpanEngine``, which ``Pipeline`` is too), and
``BatchSpanProcessor``, the stock processor's contract on it."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, cast

from opentelemetry.context import Context
from opentelemetry.metrics import MeterProvider
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from spanbatch._config import resolve_settings
from spanbatch._core import DROP_REASONS, FanOut
from spanbatch._engine import Engine, OneLane
from spanbatch._policies import resolve_policies, spells_out
from spanbatch._room import waiting_for_room, waits_in_python
from spanbatch._settings import SpanPolicyArguments
from spanbatch._signals import MetricWords, Signal
from spanbatch._stats import SpanStats

if TYPE_CHECKING:
    from typing_extensions import Unpack


SPANS = Signal(
    "span",
    "span",
    "spans",
    "batching_span_processor",
    (SpanExportResult.SUCCESS,),
    (SpanExportResult.FAILURE,),
    "Span",
    "SpanExportResult",
    MetricWords(
        "{span}",
        "The number of spans for which the processing has finished, either successful or failed.",
        "{span}",
        "The number of spans in the queue of a given instance of an SDK span processor.",
        "The maximum number of spans the queue of a given instance of an SDK span processor can hold.",
    ),
    # Only log records are dropped for being emitted on their own export thread (a span ended there is queued).
    tuple(reason.name for reason in DROP_REASONS if reason.name != "export_thread"),
)


class SpanEngine(Engine[ReadableSpan], SpanProcessor):
    """Spans into every lane: ``on_end`` is the Rust push itself, one sampled check for all lanes."""

    signal = SPANS
    _policy_keywords = SpanPolicyArguments
    _push: Callable[[ReadableSpan], None]
    _start_push: Callable[[ReadableSpan], None]

    def _bind_hot_path(self) -> None:
        cores = [lane.core for lane in self._lanes]
        if waits_in_python(self._policies):
            # A greenlet waits for room from Python code (``_room``): the push hands back what a full queue refused.
            self._start_push = waiting_for_room(FanOut(cores).on_end_handing_back)
        else:
            self._start_push = cores[0].on_end if len(cores) == 1 else FanOut(cores).on_end
        # After shutdown the stock processor logs each ended span it is given, not a started one.
        self._push = self._after_shutdown(self._start_push)
        if type(self).on_end is SpanEngine.on_end:
            # The SDK calls ``processor.on_end(span)`` and lands straight in Rust: no Python frame (but ``_room``'s).
            self.on_end = self._push  # type: ignore[method-assign]

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        """Queues the started span in every lane when ``export_span_start`` is on."""
        if self._policies.export_span_start:
            self._start_push(span)

    def _on_ending(self, span: Span) -> None:
        pass

    def on_end(self, span: ReadableSpan) -> None:
        # Shadowed per instance by the Rust push unless a subclass overrides it (its super().on_end lands here).
        self._push(span)


class BatchSpanProcessor(OneLane[ReadableSpan], SpanEngine):
    """Batches ended spans and exports them from a background thread.

    A drop-in for ``opentelemetry.sdk.trace.export.BatchSpanProcessor`` (same arguments,
    ``OTEL_BSP_*`` variables, defaults and errors) whose queue lives in Rust: ``on_end``
    runs no Python code (but a greenlet's wait for room, on 3.11+ under ``"block"``),
    ``force_flush`` and ``shutdown`` keep their deadlines even when
    the exporter hangs, and :meth:`stats` accounts for every span.

    Settings resolve as explicit argument > ``SPANBATCH_*`` > ``OTEL_BSP_*`` > default.
    ``drop_policy`` (``SPANBATCH_DROP_POLICY``) chooses which span a full queue loses:
    ``"oldest"`` (the stock behaviour), ``"newest"``, or ``"block"``: ``on_end`` waits for
    room, without the GIL so the worker can drain, up to ``block_timeout_millis``
    (``SPANBATCH_BLOCK_TIMEOUT_MS``, 100), then drops the new span (``queue_full``). A span
    ended on the export thread itself never waits, and shutdown wakes every waiting
    producer (its span counts as ``shutdown``). While a producer waits, its span counts as
    ``queued``. With a :class:`~spanbatch.Pipeline` each blocked lane adds its own wait.

    Export policies: keyword-only, each off (or the stock behaviour) by default, argument >
    ``SPANBATCH_*`` variable > default; ``ExportPolicies`` in ``spanbatch._settings`` declares
    them and the README's "Export policies" section explains each: retries with backoff
    (``max_retries``), a latency cap for partial batches (``linger_millis``), span-start export
    (``export_span_start``), concurrent exports (``max_concurrent_exports``).

    An exporter whose ``export`` returns an awaitable (an ``async def export``) is run on a
    private event loop owned by the lane's worker thread; ``export_timeout_millis`` cancels
    it (``asyncio.wait_for``), and flush, retries and shutdown behave as for a synchronous one.
    """

    @spells_out(SpanPolicyArguments)
    def __init__(
        self,
        span_exporter: SpanExporter,
        max_queue_size: int | None = None,
        schedule_delay_millis: float | None = None,
        max_export_batch_size: int | None = None,
        export_timeout_millis: float | None = None,
        *,
        meter_provider: MeterProvider | None = None,
        **policies: Unpack[SpanPolicyArguments],
    ) -> None:
        super().__init__(
            span_exporter,
            resolve_settings(max_queue_size, schedule_delay_millis, max_export_batch_size, export_timeout_millis),
            resolve_policies(policies, type(self).__name__),
            meter_provider,
        )

    @property
    def span_exporter(self) -> SpanExporter:
        return cast(SpanExporter, self._lanes[0].exporter)

    def stats(self) -> SpanStats:
        """An exact, immutable snapshot of where every received span is."""
        return super().stats()
