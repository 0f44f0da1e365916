"""The engine as an SDK ``SpanProcessor``: what ``BatchSpanProcessor`` and ``Pipeline`` share."""

from __future__ import annotations

from collections.abc import Callable

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor

from spanbatch._core import FanOut
from spanbatch._engine import Engine
from spanbatch._signals import SPANS


class SpanEngine(Engine[ReadableSpan], SpanProcessor):
    """Spans into every lane: ``on_end`` is the Rust push itself, one sampled check for all lanes."""

    signal = SPANS
    _push: Callable[[ReadableSpan], None]

    def _bind_hot_path(self) -> None:
        cores = [lane.core for lane in self._lanes]
        self._push = cores[0].on_end if len(cores) == 1 else FanOut(cores).on_end
        # The SDK calls ``processor.on_end(span)`` and lands straight in Rust: no Python frame.
        self.on_end = self._push  # type: ignore[method-assign]

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        """Queues the started span in every lane when ``export_span_start`` is on."""
        if self._policies.export_span_start:
            self._push(span)

    def _on_ending(self, span: Span) -> None:
        pass

    def on_end(self, span: ReadableSpan) -> None:
        # Shadowed per instance by the Rust push; kept for subclasses and type checkers.
        self._push(span)
