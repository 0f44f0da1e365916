"""Several backends at once: one lane per backend, one ``on_end``, one deadline."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING

from opentelemetry import trace
from opentelemetry.metrics import MeterProvider
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter

from spanbatch import _settings
from spanbatch._config import resolve_settings
from spanbatch._lane import Backend
from spanbatch._policies import resolve_policies, spells_out
from spanbatch._settings import SpanPolicyArguments
from spanbatch._spans import SpanEngine
from spanbatch._stats import SpanStats

if TYPE_CHECKING:
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
    """

    @spells_out(SpanPolicyArguments)
    def __init__(
        self,
        exporters: Mapping[str, SpanExporter],
        *,
        max_queue_size: int | None = None,
        schedule_delay_millis: float | None = None,
        max_export_batch_size: int | None = None,
        export_timeout_millis: float | None = None,
        meter_provider: MeterProvider | None = None,
        **policies: Unpack[SpanPolicyArguments],
    ) -> None:
        if not exporters:
            raise ValueError("exporters must name at least one backend.")
        for name in exporters:
            if not isinstance(name, str) or not name.strip():
                raise ValueError(f"backend names must be non-empty strings, not {name!r}.")
        backends = [
            Backend(
                name,
                exporter,
                resolve_settings(
                    max_queue_size,
                    schedule_delay_millis,
                    max_export_batch_size,
                    export_timeout_millis,
                    backend=name,
                ),
            )
            for name, exporter in exporters.items()
        ]
        super().__init__(
            backends, resolve_policies(policies, type(self).__name__), named=True, meter_provider=meter_provider
        )

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
        """Flush every backend in parallel; True only if all finished in time."""
        return super().force_flush(timeout_millis)

    def flush_by_backend(self, timeout_millis: float | None = None) -> dict[str, bool]:
        return self._flush_by_lane(timeout_millis)

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
        super().shutdown(timeout_millis)

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
