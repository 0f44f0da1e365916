"""Several backends at once: one lane per backend, one ``on_end``, one deadline."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator, Mapping

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.metrics import MeterProvider
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter

from spanbatch import _exit, _settings
from spanbatch._config import resolve_settings
from spanbatch._core import FanOut
from spanbatch._debug_log import debug_enabled
from spanbatch._lane import Lane, flush_lanes, weak_method
from spanbatch._metrics import internal_metrics_enabled, register_processor_metrics
from spanbatch._policies import DropPolicyName, resolve_policies
from spanbatch._stats import SpanStats

logger = logging.getLogger("spanbatch")


class Pipeline(SpanProcessor):
    """Ships every sampled span to several named backends, each through its own lane.

    A lane is a Rust queue, a worker, counters and settings of its own: a slow or dead
    backend fills and drops only its lane. ``on_end`` checks a span once and pushes it to
    every lane in one call into Rust. Flushes and shutdowns run on all lanes in parallel
    under one deadline. Settings resolve as explicit argument >
    ``SPANBATCH_<NAME>_*`` > ``SPANBATCH_*`` > default (2048, 1000 ms, 512, 30000 ms).

    The export policies (``drop_policy``, ``max_retries``, ``linger_millis`` and the others) are those of
    :class:`~spanbatch.BatchSpanProcessor`, read from the same ``SPANBATCH_*`` variables
    and applied to every lane.
    """

    def __init__(
        self,
        exporters: Mapping[str, SpanExporter],
        *,
        max_queue_size: int | None = None,
        schedule_delay_millis: float | None = None,
        max_export_batch_size: int | None = None,
        export_timeout_millis: float | None = None,
        drop_policy: DropPolicyName | None = None,
        block_timeout_millis: float | None = None,
        meter_provider: MeterProvider | None = None,
        max_retries: int | None = None,
        retry_initial_backoff_millis: float | None = None,
        retry_max_backoff_millis: float | None = None,
        linger_millis: float | None = None,
        export_span_start: bool | None = None,
        max_concurrent_exports: int | None = None,
    ) -> None:
        if not exporters:
            raise ValueError("exporters must name at least one backend.")
        for name in exporters:
            if not isinstance(name, str) or not name.strip():
                raise ValueError(f"backend names must be non-empty strings, not {name!r}.")
        debug = debug_enabled()
        self._policies = resolve_policies(
            drop_policy=drop_policy,
            block_timeout_millis=block_timeout_millis,
            max_retries=max_retries,
            retry_initial_backoff_millis=retry_initial_backoff_millis,
            retry_max_backoff_millis=retry_max_backoff_millis,
            linger_millis=linger_millis,
            export_span_start=export_span_start,
            max_concurrent_exports=max_concurrent_exports,
        )
        self._lanes = [
            Lane(
                name,
                exporter,
                resolve_settings(
                    max_queue_size,
                    schedule_delay_millis,
                    max_export_batch_size,
                    export_timeout_millis,
                    backend=name,
                ),
                policies=self._policies,
                debug=debug,
                drop_label=name,
                on_new_core=weak_method(self._bind_hot_path),
            )
            for name, exporter in exporters.items()
        ]
        self._bind_hot_path()
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=weak_method(self._after_fork_in_child))
        if internal_metrics_enabled():
            for lane in self._lanes:
                register_processor_metrics(
                    weak_method(lane.stats), lane.settings.max_queue_size, meter_provider, lane.name
                )
        _exit.register(self)

    def _bind_hot_path(self) -> None:
        self._fan_out = FanOut([lane.core for lane in self._lanes])
        self.on_end = self._fan_out.on_end  # type: ignore[method-assign]

    def _after_fork_in_child(self) -> None:
        for lane in self._lanes:
            lane.recover_from_fork(0)

    @property
    def lanes(self) -> list[Lane]:
        return list(self._lanes)

    @property
    def names(self) -> list[str]:
        return [lane.name for lane in self._lanes]

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        """Queues the started span in every lane when ``export_span_start`` is on."""
        if self._policies.export_span_start:
            self._fan_out.on_end(span)

    def _on_ending(self, span: Span) -> None:
        pass

    def on_end(self, span: ReadableSpan) -> None:
        # Shadowed per instance by the FanOut's ``on_end``.
        self._fan_out.on_end(span)

    def stats(self) -> SpanStats:
        """All backends together: the lanes' counters summed, so a span counts once per lane.

        A span sent to three backends adds 3 to ``enqueued`` and, once delivered, 3 to ``exported``;
        :meth:`stats_by_backend` gives each lane's own counts.
        """
        return sum(self.stats_by_backend().values(), SpanStats())

    def stats_by_backend(self) -> dict[str, SpanStats]:
        return {lane.name: lane.stats() for lane in self._lanes}

    def force_flush(self, timeout_millis: int | None = None) -> bool:
        """Flush every backend in parallel; True only if all finished in time."""
        return all(self.flush_by_backend(timeout_millis).values())

    def flush_by_backend(self, timeout_millis: float | None = None) -> dict[str, bool]:
        timeout = max(lane.settings.export_timeout_millis for lane in self._lanes)
        return flush_lanes(self._lanes, timeout if timeout_millis is None else timeout_millis)

    def end_session(self, timeout_millis: float | None = None) -> dict[str, bool]:
        """The end of a session or turn: flush every backend now, so its whole trace is there.

        Per-backend results. Disabled with ``SPANBATCH_FORCE_FLUSH_ON_SESSION_END=false``,
        in which case nothing is flushed and the result is empty.
        """
        if not _settings.read(_settings.FORCE_FLUSH_ON_SESSION_END):
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
        """Drain and shut down every backend in parallel within one deadline. Idempotent."""
        timeout = max(lane.settings.export_timeout_millis for lane in self._lanes)
        _exit.shutdown(self._lanes, timeout if timeout_millis is None else timeout_millis)

    def __repr__(self) -> str:
        return f"Pipeline({', '.join(self.names)}, stats={self.stats()})"


def install(
    tracer_provider: TracerProvider | None,
    exporters: Mapping[str, SpanExporter],
    **settings: object,
) -> Pipeline:
    """Ship the provider's spans to every named exporter: ``install(provider, {"phoenix": exp})``.

    ``tracer_provider=None`` uses the global one, which must be an SDK ``TracerProvider``.
    ``settings`` are :class:`Pipeline`'s keyword arguments.
    """
    provider = trace.get_tracer_provider() if tracer_provider is None else tracer_provider
    if not isinstance(provider, TracerProvider):
        raise TypeError(f"spans can only be batched from an SDK TracerProvider, not {type(provider).__name__}.")
    pipeline = Pipeline(exporters, **settings)  # type: ignore[arg-type]
    provider.add_span_processor(pipeline)
    return pipeline
