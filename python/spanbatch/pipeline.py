"""Several backends at once: one lane per backend and signal, one ``on_end``, one session, one deadline."""

from __future__ import annotations

import contextlib
import logging
import weakref
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, cast

from opentelemetry import _logs, trace
from opentelemetry.context import Context
from opentelemetry.metrics import MeterProvider
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter

from spanbatch import _exit, _settings
from spanbatch._capabilities import Exporter
from spanbatch._config import resolve_settings
from spanbatch._engine import given_timeout
from spanbatch._lane import Backend, Lane
from spanbatch._policies import resolve_policies, spells_out
from spanbatch._setting import read
from spanbatch._settings import LOG_POLICIES, ExportPolicies, PolicyArguments, SpanPolicyArguments
from spanbatch._stats import SpanStats
from spanbatch.log_processor import LogEngine
from spanbatch.processor import SpanEngine

if TYPE_CHECKING:
    from opentelemetry.sdk._logs import ReadWriteLogRecord
    from opentelemetry.sdk._logs.export import LogRecordExporter
    from typing_extensions import Unpack

logger = logging.getLogger("spanbatch")


class Pipeline(SpanEngine):
    """Ships every sampled span to several named backends, each through its own lane.

    A lane is a Rust queue, a worker, counters and settings of its own: a slow or dead
    backend fills and drops only its lane. ``on_end`` checks a span once and pushes it to
    every lane in one call into Rust. Flushes and shutdowns run on all lanes in parallel
    under one deadline. Settings resolve as explicit argument >
    ``SPANBATCH_<NAME>_*`` > ``SPANBATCH_*`` > default (2048, 1000 ms, 512, 30000 ms).

    The export policies (``drop_policy``, ``max_retries``, ``linger_millis`` and the others) are those of
    :class:`~spanbatch.BatchSpanProcessor`, read from the same ``SPANBATCH_*`` variables
    and applied to every lane.

    ``log_exporters`` ship log records beside the spans: :attr:`logs` is then the log side (a
    ``LogRecordProcessor`` for the ``LoggerProvider``, with the same settings per backend), and
    sessions, :meth:`end_session`, :meth:`force_flush` and :meth:`flush_by_backend` flush both signals in parallel: a
    backend counts as flushed when both its lanes are. :meth:`shutdown` shuts both down; :func:`install` gives each
    provider a side of its own to shut down (:class:`PipelineSpans`, :attr:`logs`).
    """

    _span_sides: list[weakref.ref[PipelineSpans]]

    @spells_out(SpanPolicyArguments)
    def __init__(
        self,
        exporters: Mapping[str, SpanExporter],
        *,
        log_exporters: Mapping[str, LogRecordExporter] | None = None,
        max_queue_size: int | None = None,
        schedule_delay_millis: float | None = None,
        max_export_batch_size: int | None = None,
        export_timeout_millis: float | None = None,
        meter_provider: MeterProvider | None = None,
        **policies: Unpack[SpanPolicyArguments],
    ) -> None:
        if not exporters:
            raise ValueError("exporters must name at least one backend.")
        for name in [*exporters, *(log_exporters or {})]:
            if not isinstance(name, str) or not name.strip():
                raise ValueError(f"backend names must be non-empty strings, not {name!r}.")
        batch = (max_queue_size, schedule_delay_millis, max_export_batch_size, export_timeout_millis)
        self._span_sides = []  # held weakly: each holds this pipeline, for its provider

        def backends(named: Mapping[str, Exporter[Any]]) -> list[Backend]:
            return [Backend(name, exporter, resolve_settings(*batch, backend=name)) for name, exporter in named.items()]

        resolved = resolve_policies(policies, type(self).__name__)
        span_backends = backends(exporters)
        log_backends = backends(log_exporters) if log_exporters else None
        super().__init__(span_backends, resolved, named=True, meter_provider=meter_provider)
        if log_backends is None:
            self.logs = None
        else:
            # The same keywords, but a log processor's variables (OTEL_BLRP_*, never OTEL_BSP_*) and no span start.
            log_keywords = {name: value for name, value in policies.items() if name in PolicyArguments.__annotations__}
            log_policies = resolve_policies(log_keywords, type(self).__name__, PolicyArguments, LOG_POLICIES)
            self.logs = PipelineLogs(log_backends, log_policies, meter_provider)

    def _bind_hot_path(self) -> None:
        super()._bind_hot_path()
        # A copy, taken at once: another thread may add a side while these bind.
        for ref in self._span_sides.copy():
            if (side := ref()) is not None:
                side._bind(self)

    @property
    def names(self) -> list[str]:
        return [lane.name for lane in self._lanes]

    def stats(self) -> SpanStats:
        """All backends together: the lanes' counters summed, so a span counts once per lane.

        A span sent to three backends adds 3 to ``enqueued`` and, once delivered, 3 to ``exported``;
        :meth:`stats_by_backend` gives each lane's own counts.
        """
        return super().stats()

    def stats_by_backend(self) -> dict[str, SpanStats]:
        return self._stats_by_lane()

    def force_flush(self, timeout_millis: int | None = None) -> bool:
        """Flush every backend, both signals' lanes, in parallel; True only if all finished in time.

        The ``TracerProvider`` calls this one: its flush then covers the log records too, within its timeout.
        """
        return all(self.flush_by_backend(timeout_millis).values())

    def on_emit(self, log_record: ReadWriteLogRecord) -> None:
        """Hands a log record to :attr:`logs`: a pipeline added to the ``LoggerProvider`` itself ships its records
        too (its ``force_flush`` and ``shutdown`` already cover both signals). One Python call more per record
        than adding :attr:`logs`, whose ``on_emit`` is the Rust push."""
        if self.logs is None:
            raise TypeError("this Pipeline has no log_exporters: it cannot take log records.")
        self.logs.on_emit(log_record)

    emit = on_emit  # what SDKs before 1.28 call

    def _lanes_of_both_signals(self) -> list[Lane]:
        """Every backend's span lane, then its log lane if it has one."""
        return [*self._lanes, *(self.logs.lanes if self.logs is not None else ())]

    def _timeout_millis(self, timeout_millis: float | None) -> float:
        """``timeout_millis``, by default the longest ``drain_timeout_millis`` of both signals' lanes."""
        return given_timeout(
            timeout_millis, max(lane.settings.drain_timeout_millis for lane in self._lanes_of_both_signals())
        )

    def flush_by_backend(self, timeout_millis: float | None = None) -> dict[str, bool]:
        """Flush every lane of both signals in parallel; per backend, True when all its lanes finished."""
        return _exit.flush(self._lanes_of_both_signals(), self._timeout_millis(timeout_millis))

    def end_session(self, timeout_millis: float | None = None) -> dict[str, bool]:
        """The end of a session or turn: flush every backend now, so its whole trace is there.

        Per-backend results. Disabled with ``SPANBATCH_FORCE_FLUSH_ON_SESSION_END=false``,
        in which case nothing is flushed and the result is empty.
        """
        if not read(_settings.FORCE_FLUSH_ON_SESSION_END):
            return {}
        return self.flush_by_backend(timeout_millis)

    @contextlib.contextmanager
    def session(self, timeout_millis: float | None = None) -> Iterator[Pipeline]:
        """``with pipeline.session(): ...`` ends the session (see :meth:`end_session`) on the way out."""
        try:
            yield self
        finally:
            results = self.end_session(timeout_millis)
            late = [name for name, ok in results.items() if not ok]
            if late:
                logger.warning("Session end: %s did not flush in time.", ", ".join(late))

    def shutdown(self, timeout_millis: float | None = None) -> None:
        """Drain and shut down every backend, both signals' lanes, in parallel within one deadline. Idempotent."""
        _exit.shutdown(self._lanes_of_both_signals(), self._timeout_millis(timeout_millis))

    def _shutdown_spans(self, timeout_millis: float | None) -> None:
        # By default within the span lanes' own drain deadline (30 s, as the stock processor's shutdown).
        _exit.shutdown(self._lanes, super()._timeout_millis(timeout_millis))


class PipelineSpans(SpanProcessor):
    """A pipeline's span side, the processor :func:`install` adds to the ``TracerProvider``.

    Its ``on_start`` and ``on_end`` are the pipeline's own (the Rust push) and its flush is the pipeline's, both
    signals; its ``shutdown`` shuts the span lanes alone, by default within their own drain deadline. The
    ``LoggerProvider`` shuts the log side (:attr:`Pipeline.logs`) down: a record emitted between the two
    providers' shutdowns (a "traces flushed" line, an exporter's error logged through a ``LoggingHandler``) still
    goes out, as it does with the stock processors. For a pipeline built by hand:
    ``provider.add_span_processor(PipelineSpans(pipeline))``, as :func:`install` does.
    """

    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline
        pipeline._span_sides.append(weakref.ref(self))
        self._bind(pipeline)

    def _bind(self, pipeline: Pipeline) -> None:
        """Take the pipeline's hot path as it is now (its cores change after a fork and a shutdown)."""
        self.on_start = pipeline.on_start  # type: ignore[method-assign]
        self._on_ending = pipeline._on_ending  # type: ignore[method-assign]
        self.on_end = pipeline.on_end  # type: ignore[method-assign]

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        self.pipeline.on_start(span, parent_context)

    def on_end(self, span: ReadableSpan) -> None:
        self.pipeline.on_end(span)

    def force_flush(self, timeout_millis: int | None = None) -> bool:
        """The pipeline's flush: both signals, every backend, in parallel."""
        return self.pipeline.force_flush(timeout_millis)

    def shutdown(self, timeout_millis: float | None = None) -> None:
        """Drain and shut down the pipeline's span lanes in parallel within one deadline. Idempotent."""
        self.pipeline._shutdown_spans(timeout_millis)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.pipeline!r})"


class PipelineLogs(LogEngine):
    """A pipeline's log side: a log lane per backend, named as its span lane (see :attr:`Pipeline.logs`)."""

    def __init__(self, backends: list[Backend], policies: ExportPolicies, meter_provider: MeterProvider | None) -> None:
        super().__init__(backends, policies, named=True, meter_provider=meter_provider)

    def stats_by_backend(self) -> dict[str, SpanStats]:
        return self._stats_by_lane()


def install(
    tracer_provider: TracerProvider | None,
    exporters: Mapping[str, SpanExporter],
    *,
    logger_provider: LoggerProvider | None = None,
    log_exporters: Mapping[str, LogRecordExporter] | None = None,
    **settings: object,
) -> Pipeline:
    """Ship the provider's spans to every named exporter: ``install(provider, {"phoenix": exp})``.

    ``tracer_provider=None`` uses the global one, which must be an SDK ``TracerProvider``. With
    ``log_exporters``, the log records of ``logger_provider`` (None: the global one, which must be an
    SDK ``LoggerProvider``) go to those backends too. ``settings`` are :class:`Pipeline`'s keyword arguments.

    Each provider gets a side of the pipeline to shut down: its span side (:class:`PipelineSpans`) and
    :attr:`Pipeline.logs`; ``pipeline.shutdown()`` shuts both.
    """
    provider = trace.get_tracer_provider() if tracer_provider is None else tracer_provider
    if not isinstance(provider, TracerProvider):
        raise TypeError(f"spans can only be batched from an SDK TracerProvider, not {type(provider).__name__}.")
    log_provider = _logs.get_logger_provider() if logger_provider is None else logger_provider
    if log_exporters and not isinstance(log_provider, LoggerProvider):
        raise TypeError(
            f"log records can only be batched from an SDK LoggerProvider, not {type(log_provider).__name__}."
        )
    pipeline = Pipeline(exporters, log_exporters=log_exporters, **settings)  # type: ignore[arg-type]
    provider.add_span_processor(PipelineSpans(pipeline))
    if pipeline.logs is not None:
        cast(LoggerProvider, log_provider).add_log_record_processor(pipeline.logs)
    return pipeline
