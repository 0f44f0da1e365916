"""A ``NonRecordingSpan`` handed to ``on_end`` by hand (``processor.on_end(trace.get_current_span())``) is refused
as the stock processor refuses it: ``AttributeError`` (it has no ``context``), nothing queued.

spanbatch's sampled check reads the SDK's private ``_context`` first, which a ``NonRecordingSpan`` also has: a
sampled one was queued and handed to the exporter, where the stock OTLP exporter fails to encode the whole batch
("'NonRecordingSpan' object has no attribute 'resource'"), losing every good span exported with it.
"""

from __future__ import annotations

from typing import Any

import pytest
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from tests.helpers import RecordingExporter, balanced, end_spans


@pytest.mark.parametrize("flags", [TraceFlags(TraceFlags.SAMPLED), TraceFlags(TraceFlags.DEFAULT)], ids=repr)
def test_a_non_recording_span_raises_and_leaves_the_batch_whole(
    processor_class: Any, shutdown_later: Any, flags: TraceFlags
) -> None:
    exporter = RecordingExporter()
    processor = shutdown_later(processor_class(exporter))
    end_spans(processor, 3)
    with pytest.raises(AttributeError, match="'NonRecordingSpan' object has no attribute 'context'"):
        processor.on_end(NonRecordingSpan(SpanContext(1, 2, is_remote=False, trace_flags=flags)))
    end_spans(processor, 2)

    assert processor.force_flush(5000)
    assert [type(span).__name__ for span in exporter.spans] == ["ReadableSpan"] * 5
    if hasattr(processor, "stats"):
        stats = processor.stats()
        assert (stats.enqueued, stats.exported) == (5, 5)
        assert balanced(stats)
