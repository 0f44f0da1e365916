"""A span class that overrides ``context`` is read through it, as the stock processor reads every span.

spanbatch reads the SDK's stored ``_context`` directly only for a class whose ``context`` is the SDK's own
``ReadableSpan.context`` property; before, it read ``_context`` of any span that had one, so a subclass that
answers ``context`` otherwise (here: unsampled, with a sampled ``_context``) was queued where stock passes it over.
"""

from __future__ import annotations

from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanContext, TraceFlags

from tests.helpers import RecordingExporter, balanced


class UnsampledView(ReadableSpan):
    """Stored sampled, answered unsampled: the class's own ``context`` is the contract."""

    @property
    def context(self) -> SpanContext:
        stored = self._context
        assert stored is not None
        return SpanContext(stored.trace_id, stored.span_id, stored.is_remote, TraceFlags(TraceFlags.DEFAULT))


def sampled_context() -> SpanContext:
    return SpanContext(1, 2, is_remote=False, trace_flags=TraceFlags(TraceFlags.SAMPLED))


def test_the_overridden_context_decides(processor_class: Any, shutdown_later: Any) -> None:
    exporter = RecordingExporter()
    processor = shutdown_later(processor_class(exporter))
    processor.on_end(UnsampledView("skipped", context=sampled_context()))
    processor.on_end(ReadableSpan("taken", context=sampled_context()))

    assert processor.force_flush(5000)
    assert [span.name for span in exporter.spans] == ["taken"]
    if hasattr(processor, "stats"):
        stats = processor.stats()
        assert (stats.enqueued, stats.exported) == (1, 1)
        assert balanced(stats)
